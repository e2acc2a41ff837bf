// Depthwise 1-D convolution over time, x (..., T, C) with w (C, K), and its
// weight gradient. Each channel has its own K taps; time is zero outside
// [0, T). Tap j reads x at t + d_j with
//   causal:      d_j = j − (K − 1)   (tap K − 1 is the current step)
//   anticausal:  d_j = (K − 1) − j   (the mirror image: the adjoint in x)
//
// This file checks shapes, makes the operands contiguous and hands the
// (lead, T, C) slabs to the kernel table (tensor/kernels.h), whose loops
// (tensor/conv_loops.h) are built for baseline x86-64 and for AVX2 + FMA:
//   forward  per output row, its in-range taps four at a time, so the row is
//            stored once per four taps; the taps come from a (K, C) copy of w.
//   weight   per tap, blocks of 16 channels summed in double in registers all
//            along time, then added to a (K, C) double accumulator.
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/kernels.h"
#include "tensor/ops.h"

namespace miras::raw {
namespace {

void check_input(const Tensor& x, const char* op, const char* what) {
    if (x.dim() < 2)
        throw std::invalid_argument(std::string(op) + ": " + what + " " + shape_str(x.shape()) +
                                    " must have at least 2 dims (..., T, C)");
}

}  // namespace

Tensor depthwise_conv1d(const Tensor& x, const Tensor& w, bool anticausal) {
    const char* op = "depthwise_conv1d";
    check_input(x, op, "input");
    if (w.dim() != 2 || w.size(0) != x.size(-1) || w.size(1) < 1)
        throw std::invalid_argument(std::string(op) + ": input " + shape_str(x.shape()) + " and weight " +
                                    shape_str(w.shape()) + " do not fit (expected (..., T, C) and (C, K), K >= 1)");
    if (w.dtype() != x.dtype())
        throw std::invalid_argument(std::string(op) + ": input is " + dtype_name(x.dtype()) + " but weight is " +
                                    dtype_name(w.dtype()));
    const int64_t T = x.size(-2), C = x.size(-1), K = w.size(1);
    const int64_t lead = T * C > 0 ? x.numel() / (T * C) : 0;
    Tensor xc = contiguous(x);
    Tensor wt = contiguous(transpose(w, 0, 1));  // (K, C)
    Tensor out = Tensor::empty(x.shape(), x.dtype());
    dispatch(x.dtype(), [&]<class S>() {
        kernels::conv<S>(kernels::loops(), out.data<S>(), xc.data<S>(), wt.data<S>(), lead, T, C, K, anticausal);
    });
    return out;
}

Tensor depthwise_conv1d_weight(const Tensor& x, const Tensor& g, int64_t K, bool anticausal) {
    const char* op = "depthwise_conv1d_weight";
    check_input(x, op, "input");
    if (g.shape() != x.shape())
        throw std::invalid_argument(std::string(op) + ": input " + shape_str(x.shape()) + " and gradient " +
                                    shape_str(g.shape()) + " must have the same shape");
    if (g.dtype() != x.dtype())
        throw std::invalid_argument(std::string(op) + ": input is " + dtype_name(x.dtype()) + " but gradient is " +
                                    dtype_name(g.dtype()));
    if (K < 1) throw std::invalid_argument(std::string(op) + ": kernel size K = " + std::to_string(K) + " must be >= 1");
    const int64_t T = x.size(-2), C = x.size(-1);
    const int64_t lead = T * C > 0 ? x.numel() / (T * C) : 0;
    Tensor xc = contiguous(x), gc = contiguous(g);
    // dw[c, j] = Σ_{lead, t} g[t, c] · x[t + d_j, c], summed in double as (K, C)
    // so the channel loop stays unit-stride; transposed to (C, K) at the end.
    std::vector<double> acc((size_t)(K * C), 0.0);
    Tensor out = Tensor::empty({C, K}, x.dtype());
    dispatch(x.dtype(), [&]<class S>() {
        kernels::conv_weight<S>(kernels::loops(), acc.data(), gc.data<S>(), xc.data<S>(), lead, T, C, K, anticausal);
        S* o = out.data<S>();
        for (int64_t c = 0; c < C; ++c)
            for (int64_t j = 0; j < K; ++j) o[c * K + j] = (S)acc[(size_t)(j * C + c)];
    });
    return out;
}

}  // namespace miras::raw
