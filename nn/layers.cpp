#include "nn/layers.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace miras {
namespace {

void check_positive(int64_t v, const char* layer, const char* what) {
    if (v <= 0)
        throw std::invalid_argument(std::string(layer) + ": " + what + " must be positive, got " + std::to_string(v));
}

double default_std(double init_std, int64_t fan) { return init_std < 0 ? 1.0 / std::sqrt((double)fan) : init_std; }

}  // namespace

Linear::Linear(int64_t d_in, int64_t d_out, Generator& gen, DType dt, bool bias, double init_std) {
    check_positive(d_in, "Linear", "d_in");
    check_positive(d_out, "Linear", "d_out");
    weight_ = register_parameter("weight", init::normal({d_in, d_out}, default_std(init_std, d_in), gen, dt),
                                 StoredLayout::linear);
    if (bias) bias_ = register_parameter("bias", zeros({d_out}, dt));
}

Embedding::Embedding(int64_t vocab, int64_t dim, Generator& gen, DType dt, double init_std) {
    check_positive(vocab, "Embedding", "vocab");
    check_positive(dim, "Embedding", "dim");
    weight_ = register_parameter("weight", init::normal({vocab, dim}, default_std(init_std, dim), gen, dt));
}

Tensor Embedding::forward(const IndexTensor& ids) const {
    ids.check_range(vocab(), "Embedding");
    return embedding(weight_, ids);  // (..., D)
}

RMSNorm::RMSNorm(int64_t d, DType dt, double eps, int64_t n_heads) : eps_(eps), n_heads_(n_heads) {
    check_positive(d, "RMSNorm", "d");
    check_positive(n_heads, "RMSNorm", "n_heads");
    if (d % n_heads != 0)
        throw std::invalid_argument("RMSNorm: d = " + std::to_string(d) + " is not divisible by n_heads = " +
                                    std::to_string(n_heads));
    weight_ = register_parameter("weight", ones({d}, dt));
}

Tensor RMSNorm::forward(const Tensor& x) const {
    return n_heads_ == 1 ? rms_norm(x, weight_, eps_) : rms_norm_heads(x, weight_, n_heads_, eps_);
}

LayerNorm::LayerNorm(int64_t d, DType dt, bool affine, double eps) : eps_(eps) {
    check_positive(d, "LayerNorm", "d");
    if (affine) {
        weight_ = register_parameter("weight", ones({d}, dt));
        bias_ = register_parameter("bias", zeros({d}, dt));
    }
}

SwiGLU::SwiGLU(int64_t d, int64_t hidden, Generator& gen, DType dt) {
    check_positive(d, "SwiGLU", "d");
    check_positive(hidden, "SwiGLU", "hidden");
    W_gate_ = register_parameter("W_gate", init::lecun_normal({d, hidden}, d, gen, dt), StoredLayout::linear);
    W_up_ = register_parameter("W_up", init::lecun_normal({d, hidden}, d, gen, dt), StoredLayout::linear);
    W_down_ = register_parameter("W_down", init::lecun_normal({hidden, d}, hidden, gen, dt), StoredLayout::linear);
}

CausalDepthwiseConv1d::CausalDepthwiseConv1d(int64_t channels, Generator& gen, DType dt, int64_t kernel, bool bias) {
    check_positive(channels, "CausalDepthwiseConv1d", "channels");
    check_positive(kernel, "CausalDepthwiseConv1d", "kernel");
    weight_ = register_parameter("weight", init::uniform({channels, kernel}, 1.0 / std::sqrt((double)kernel), gen, dt),
                                 StoredLayout::depthwise);
    if (bias) bias_ = register_parameter("bias", zeros({channels}, dt));
}

}  // namespace miras
