// Matrix multiply. For C = A B: dA = dC Bᵀ, dB = Aᵀ dC, each summed back over
// broadcast batch dims.
#include "autograd/ops.h"

namespace miras {
namespace {

// A matrix stored transposed (column-major), e.g. transpose(W). Its gradient
// is computed as the transpose of a row-major product, so that it comes out
// in the same layout: the transpose node's backward then hands the weight a
// contiguous gradient, and accumulating it is a unit-stride add instead of
// a strided one (which does not vectorise).
bool col_major(const Tensor& t) {
    if (t.dim() < 2) return false;
    const int64_t r = t.size(-2), c = t.size(-1);
    return r > 1 && c > 1 && t.strides()[(size_t)t.dim() - 2] == 1 && t.strides()[(size_t)t.dim() - 1] >= r;
}

}  // namespace

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
        const Tensor& gc = g[0];
        if (n.needs_input_grad(0)) {
            ga = col_major(a) ? transpose(matmul(b, transpose(gc, -1, -2)), -1, -2)  // (B gᵀ)ᵀ
                              : matmul(gc, transpose(b, -1, -2));                    // g Bᵀ
            ga = sum_to(ga, a.shape());
        }
        if (n.needs_input_grad(1)) {
            if (b.dim() == 2 && a.dim() > 2) {
                // Shared weight (a Linear layer): fold the batch into one GEMM
                // instead of a batched product followed by a sum.
                int64_t k = a.size(-1), m = b.size(-1);
                Tensor a2 = reshape(a, {-1, k}), g2 = reshape(gc, {-1, m});  // (N, k), (N, m)
                gb = col_major(b) ? transpose(matmul(transpose(g2, 0, 1), a2), 0, 1)  // (g2ᵀ a2)ᵀ
                                  : matmul(transpose(a2, 0, 1), g2);                  // a2ᵀ g2
            } else {
                gb = col_major(b) ? transpose(matmul(transpose(gc, -1, -2), a), -1, -2)  // (gᵀ A)ᵀ
                                  : matmul(transpose(a, -1, -2), gc);                    // Aᵀ g
                gb = sum_to(gb, b.shape());
            }
        }
        return {ga, gb};
    });
    return out;
}

}  // namespace miras
