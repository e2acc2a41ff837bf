#pragma once
// The standard layers, as Modules over the functions of nn/functional.h.
// Every layer is built in one dtype (f32 or f64, fixed at construction) and
// draws its initial values from an explicit Generator, so the same seed gives
// the same model.
//
// Storage convention (docs/math.md §0): tokens are row vectors and a projection is
// y = x W + b, so a Linear weight is stored (d_in, d_out), not PyTorch's
// (d_out, d_in). A checkpoint imported from PyTorch needs its Linear weights
// transposed.
#include <cstdint>

#include "nn/functional.h"
#include "nn/init.h"
#include "nn/module.h"

namespace miras {

// y = x W (+ b).  x (..., d_in) -> (..., d_out).
// Parameters: "weight" (d_in, d_out) ~ N(0, init_std²), default init_std =
// 1/sqrt(d_in); "bias" (d_out), zeros, only with bias = true. Bias-free by
// default: the memory layer's projections have none (docs/math.md §1.1).
class Linear : public Module {
public:
    Linear(int64_t d_in, int64_t d_out, Generator& gen, DType dt = DType::f32, bool bias = false,
           double init_std = -1);
    Tensor forward(const Tensor& x) const { return linear(x, weight_, bias_); }
    const Tensor& weight() const { return weight_; }
    const Tensor& bias() const { return bias_; }  // undefined without bias
    int64_t d_in() const { return weight_.size(0); }
    int64_t d_out() const { return weight_.size(1); }

private:
    Tensor weight_, bias_;
};

// Token ids (...) -> rows of the table (..., D).
// Parameter "weight" (V, D) ~ N(0, init_std²), default init_std = 1/sqrt(D),
// so a tied output head h Eᵀ with |h| ≈ sqrt(D) starts with unit-scale logits.
class Embedding : public Module {
public:
    Embedding(int64_t vocab, int64_t dim, Generator& gen, DType dt = DType::f32, double init_std = -1);
    Tensor forward(const IndexTensor& ids) const;  // throws on an id outside [0, V)
    const Tensor& weight() const { return weight_; }
    int64_t vocab() const { return weight_.size(0); }
    int64_t dim() const { return weight_.size(1); }

private:
    Tensor weight_;
};

// y = x / sqrt(mean(x²) + eps) ⊙ weight over the last dim.  x (..., d) -> (..., d).
// Parameter "weight" (d), ones. With n_heads > 1 the normalisation is taken
// per head over d / n_heads channels (docs/math.md §1.7) and the weight still spans d.
class RMSNorm : public Module {
public:
    explicit RMSNorm(int64_t d, DType dt = DType::f32, double eps = 1e-6, int64_t n_heads = 1);
    Tensor forward(const Tensor& x) const;
    const Tensor& weight() const { return weight_; }
    double eps() const { return eps_; }

private:
    Tensor weight_;
    double eps_;
    int64_t n_heads_;
};

// y = (x − mean) / sqrt(var + eps) (⊙ weight + bias) over the last dim.
// Parameters "weight" (d) ones and "bias" (d) zeros, only with affine = true.
class LayerNorm : public Module {
public:
    explicit LayerNorm(int64_t d, DType dt = DType::f32, bool affine = true, double eps = 1e-5);
    Tensor forward(const Tensor& x) const { return layer_norm(x, weight_, bias_, eps_); }
    const Tensor& weight() const { return weight_; }  // undefined without affine
    const Tensor& bias() const { return bias_; }

private:
    Tensor weight_, bias_;
    double eps_;
};

// The SwiGLU MLP of a block (docs/math.md §2): (silu(x W_gate) ⊙ (x W_up)) W_down.
// x (..., d) -> (..., d). Parameters "W_gate", "W_up" (d, hidden) ~ N(0, 1/d)
// and "W_down" (hidden, d) ~ N(0, 1/hidden).
class SwiGLU : public Module {
public:
    SwiGLU(int64_t d, int64_t hidden, Generator& gen, DType dt = DType::f32);
    Tensor forward(const Tensor& x) const { return swiglu(x, W_gate_, W_up_, W_down_); }
    const Tensor& W_gate() const { return W_gate_; }
    const Tensor& W_up() const { return W_up_; }
    const Tensor& W_down() const { return W_down_; }

private:
    Tensor W_gate_, W_up_, W_down_;
};

// Causal depthwise 1-D convolution over time (docs/math.md §1.1):
//   out[b, t, c] = Σ_{j=0..K−1} weight[c, j] · x[b, t−K+1+j, c]  (+ bias[c]),
// left zero padding, so tap K−1 multiplies the current token.
// x (B, T, C) -> (B, T, C). Parameters "weight" (C, K) ~ U(±1/sqrt(K)) (the
// usual fan-in bound of a depthwise conv) and "bias" (C), zeros, only with
// bias = true (off by default, as in docs/math.md §1.1).
class CausalDepthwiseConv1d : public Module {
public:
    CausalDepthwiseConv1d(int64_t channels, Generator& gen, DType dt = DType::f32, int64_t kernel = 4,
                          bool bias = false);
    Tensor forward(const Tensor& x) const { return causal_depthwise_conv1d(x, weight_, bias_); }
    const Tensor& weight() const { return weight_; }
    const Tensor& bias() const { return bias_; }  // undefined without bias
    int64_t kernel() const { return weight_.size(1); }

private:
    Tensor weight_, bias_;
};

}  // namespace miras
