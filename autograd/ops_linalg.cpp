// Matrix multiply. For C = A B: dA = dC Bᵀ, dB = Aᵀ dC, each summed back over
// broadcast batch dims.
#include "autograd/ops.h"

namespace miras {

Tensor matmul(const Tensor& a, const Tensor& b) {
    // Vectors go through the matrix case so one formula covers everything.
    // (The added row sits at -2 of the result, or at -1 when b is a vector too
    // and its own column has already been squeezed away.)
    if (a.dim() == 1 && b.dim() >= 1) return squeeze(matmul(unsqueeze(a, 0), b), b.dim() == 1 ? -1 : -2);
    if (b.dim() == 1 && a.dim() >= 1) return squeeze(matmul(a, unsqueeze(b, 1)), -1);
    Tensor out = raw::matmul(a, b);
    if (!should_record(a, b)) return out;
    record("matmul", {a, b}, {out}, [a, b](Node& n, const TensorList& g) -> TensorList {
        Tensor ga, gb;
        if (n.needs_input_grad(0)) ga = sum_to(matmul(g[0], transpose(b, -1, -2)), a.shape());
        if (n.needs_input_grad(1)) {
            if (b.dim() == 2 && a.dim() > 2) {
                // Shared weight (a Linear layer): fold the batch into one GEMM
                // instead of a batched product followed by a sum.
                int64_t k = a.size(-1), m = b.size(-1);
                gb = matmul(transpose(reshape(a, {-1, k}), 0, 1), reshape(g[0], {-1, m}));
            } else {
                gb = sum_to(matmul(transpose(a, -1, -2), g[0]), b.shape());
            }
        }
        return {ga, gb};
    });
    return out;
}

}  // namespace miras
