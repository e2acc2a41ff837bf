#pragma once
// Differentiable building blocks shared by the layers (nn/layers.h), the
// memory layers and the models. Each is a composition of autograd ops, so it
// has gradients of every order for free (gradchecked and gradgradchecked in
// tests/test_nn_layers.cpp). Shapes follow docs/math.md §0: tokens are row vectors and
// a projection is x W with W stored (d_in, d_out).
#include "autograd/ops.h"

namespace miras {

// y = x W (+ b).  x (..., d_in), W (d_in, d_out), b (d_out) or undefined -> (..., d_out)
Tensor linear(const Tensor& x, const Tensor& W, const Tensor& b = Tensor());

// RMSNorm over the last dim: y = x / sqrt(mean(x²) + eps) ⊙ w.
// x (..., d), w (d) or undefined (no affine weight) -> (..., d)
Tensor rms_norm(const Tensor& x, const Tensor& w, double eps);

// RMSNorm taken separately over each head's d_h = d / n_heads contiguous
// channels, then one learned weight over all d channels (docs/math.md §1.7: the
// memory layer's output norm).  x (..., d), w (d) or undefined -> (..., d)
Tensor rms_norm_heads(const Tensor& x, const Tensor& w, int64_t n_heads, double eps);

// LayerNorm over the last dim: y = (x − mean) / sqrt(var + eps) ⊙ w + b, with
// the biased variance (mean of squared deviations), as PyTorch.
// x (..., d), w (d) or undefined, b (d) or undefined -> (..., d)
Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps);

// docs/math.md §1.1 norm2: z / sqrt(|z|² + eps) over the last dim (eps = 1e-6 there;
// the eps keeps the gradient finite at z = 0).  x (..., d) -> (..., d)
Tensor l2_normalize(const Tensor& x, double eps);

// Causal depthwise 1-D convolution over time with left zero padding (docs/math.md §1.1):
//   out[b, t, c] = Σ_{j=0..K−1} w[c, j] · x[b, t−K+1+j, c]  (+ bias[c]),
// x[t'] = 0 for t' < 0, so tap j = K−1 multiplies the current token and no
// output sees a later token.  x (..., T, C), w (C, K), bias (C) or undefined -> (..., T, C)
Tensor causal_depthwise_conv1d(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor());

// silu(gate) ⊙ up: the gated unit of SwiGLU (Shazeer 2020).  same shapes -> same shape
Tensor silu_gate(const Tensor& gate, const Tensor& up);

// The SwiGLU MLP of docs/math.md §2: (silu(x W_gate) ⊙ (x W_up)) W_down.
// x (..., d), W_gate/W_up (d, hidden), W_down (hidden, d) -> (..., d)
Tensor swiglu(const Tensor& x, const Tensor& W_gate, const Tensor& W_up, const Tensor& W_down);

}  // namespace miras
