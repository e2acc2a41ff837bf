#include "nn/functional.h"

#include <stdexcept>
#include <string>

namespace miras {
namespace {

// Throws naming `op` unless `t` is undefined or a vector of length d.
void check_vec(const Tensor& t, int64_t d, const char* op, const char* what, const Tensor& x) {
    if (!t.defined()) return;
    if (t.dim() != 1 || t.size(0) != d)
        throw std::invalid_argument(std::string(op) + ": " + what + " must be (" + std::to_string(d) + ") for input " +
                                    shape_str(x.shape()) + ", got " + shape_str(t.shape()));
}

void check_last_dim(const Tensor& x, const char* op) {
    if (x.dim() < 1) throw std::invalid_argument(std::string(op) + ": input must have at least 1 dim, got a scalar");
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& W, const Tensor& b) {
    if (W.dim() != 2 || x.dim() < 1 || x.size(-1) != W.size(0))
        throw std::invalid_argument("linear: input " + shape_str(x.shape()) + " does not fit weight " +
                                    shape_str(W.shape()) + " (expected (..., d_in) and (d_in, d_out))");
    check_vec(b, W.size(1), "linear", "bias", x);
    Tensor y = matmul(x, W);  // (..., d_out): one GEMM with the batch folded into rows
    return b.defined() ? add(y, b) : y;
}

Tensor rms_norm(const Tensor& x, const Tensor& w, double eps) {
    check_last_dim(x, "rms_norm");
    check_vec(w, x.size(-1), "rms_norm", "weight", x);
    int64_t last = x.dim() - 1;
    Tensor y = mul(x, rsqrt(add(mean(square(x), {last}, true), eps)));  // (..., d)
    return w.defined() ? mul(y, w) : y;
}

Tensor rms_norm_heads(const Tensor& x, const Tensor& w, int64_t n_heads, double eps) {
    check_last_dim(x, "rms_norm_heads");
    int64_t d = x.size(-1);
    if (n_heads <= 0 || d % n_heads != 0)
        throw std::invalid_argument("rms_norm_heads: last dim of " + shape_str(x.shape()) +
                                    " is not divisible into " + std::to_string(n_heads) + " heads");
    check_vec(w, d, "rms_norm_heads", "weight", x);
    Shape split = x.shape();
    split.back() = n_heads;
    split.push_back(d / n_heads);
    Tensor y = reshape(rms_norm(reshape(x, split), Tensor(), eps), x.shape());  // (..., H, d_h) -> (..., d)
    return w.defined() ? mul(y, w) : y;
}

Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
    check_last_dim(x, "layer_norm");
    check_vec(w, x.size(-1), "layer_norm", "weight", x);
    check_vec(b, x.size(-1), "layer_norm", "bias", x);
    int64_t last = x.dim() - 1;
    Tensor xc = sub(x, mean(x, {last}, true));                          // (..., d)
    Tensor y = mul(xc, rsqrt(add(mean(square(xc), {last}, true), eps)));  // (..., d)
    if (w.defined()) y = mul(y, w);
    if (b.defined()) y = add(y, b);
    return y;
}

Tensor l2_normalize(const Tensor& x, double eps) {
    check_last_dim(x, "l2_normalize");
    return mul(x, rsqrt(add(sum(square(x), {x.dim() - 1}, true), eps)));
}

Tensor causal_depthwise_conv1d(const Tensor& x, const Tensor& w, const Tensor& bias) {
    if (x.dim() < 2 || w.dim() != 2 || w.size(0) != x.size(-1) || w.size(1) < 1)
        throw std::invalid_argument("causal_depthwise_conv1d: input " + shape_str(x.shape()) + " and weight " +
                                    shape_str(w.shape()) + " do not fit (expected (..., T, C) and (C, K), K >= 1)");
    check_vec(bias, x.size(-1), "causal_depthwise_conv1d", "bias", x);
    if (w.dtype() != x.dtype())
        throw std::invalid_argument(std::string("causal_depthwise_conv1d: input is ") + dtype_name(x.dtype()) +
                                    " but weight is " + dtype_name(w.dtype()));
    // One fused kernel (autograd/ops_conv.cpp) rather than K shifted views,
    // multiplies and adds (~8 passes over x forward, ~30 backward).
    Tensor out = depthwise_conv1d(x, w, false);  // (..., T, C)
    return bias.defined() ? add(out, bias) : out;
}

Tensor silu_gate(const Tensor& gate, const Tensor& up) {
    if (gate.shape() != up.shape())
        throw std::invalid_argument("silu_gate: gate " + shape_str(gate.shape()) + " and up " + shape_str(up.shape()) +
                                    " must have the same shape");
    return mul(silu(gate), up);
}

Tensor swiglu(const Tensor& x, const Tensor& W_gate, const Tensor& W_up, const Tensor& W_down) {
    if (W_gate.shape() != W_up.shape() || W_down.dim() != 2 || W_gate.dim() != 2 || W_down.size(0) != W_gate.size(1))
        throw std::invalid_argument("swiglu: weights W_gate " + shape_str(W_gate.shape()) + ", W_up " +
                                    shape_str(W_up.shape()) + ", W_down " + shape_str(W_down.shape()) +
                                    " do not fit (expected (d, hidden), (d, hidden), (hidden, d))");
    Tensor h = silu_gate(linear(x, W_gate), linear(x, W_up));  // (..., hidden)
    return linear(h, W_down);                                   // (..., d)
}

}  // namespace miras
