#include "miras/layer.h"

#include <cmath>
#include <stdexcept>

#include "miras/retention.h"
#include "nn/functional.h"

namespace miras {

Tensor MirasLayer::add_param(const std::string& name, Tensor t, StoredLayout layout) {
    Tensor p = register_parameter(name, std::move(t), layout);
    by_name_[name] = p;
    return p;
}

MirasLayer::MirasLayer(const MemoryConfig& cfg) : cfg_(cfg) {
    cfg_.validate();
    const int64_t d = cfg_.d, H = cfg_.heads;
    const DType dt = cfg_.dtype;
    Generator gen(cfg_.seed);
    auto normal = [&](const Shape& s, double std) { return randn(s, gen, dt, 0.0, std); };

    // Projections: N(0, 1/d) keeps |x W| ≈ |x|.
    W_Q_ = add_param("W_Q", normal({d, d}, 1.0 / std::sqrt((double)d)), StoredLayout::linear);
    W_K_ = add_param("W_K", normal({d, d}, 1.0 / std::sqrt((double)d)), StoredLayout::linear);
    W_V_ = add_param("W_V", normal({d, d}, 1.0 / std::sqrt((double)d)), StoredLayout::linear);
    W_G_ = add_param("W_G", normal({d, d}, 1.0 / std::sqrt((double)d)), StoredLayout::linear);
    W_O_ = add_param("W_O", normal({d, d}, 1.0 / std::sqrt((double)d)), StoredLayout::linear);
    // Convolutions start near the identity (last tap = current token ≈ 1) so
    // q, k, v are informative from the first step.
    auto conv_init = [&]() {
        Tensor w = normal({d, kConvTaps}, 0.3);
        raw::add_(raw::select(w, 1, kConvTaps - 1), scalar_tensor(1.0, dt));
        return w;
    };
    conv_q_ = add_param("conv_q", conv_init(), StoredLayout::depthwise);
    conv_k_ = add_param("conv_k", conv_init(), StoredLayout::depthwise);
    conv_v_ = add_param("conv_v", conv_init(), StoredLayout::depthwise);
    if (cfg_.conv_bias) {
        conv_q_b_ = add_param("conv_q_b", normal({d}, 0.1));
        conv_k_b_ = add_param("conv_k_b", normal({d}, 0.1));
        conv_v_b_ = add_param("conv_v_b", normal({d}, 0.1));
    }
    for (const std::string& g : gate_names()) {
        if (!cfg_.gate_learned(g)) continue;
        Tensor w = add_param("gate_" + g + "_w", normal({d, H}, 1.0 / std::sqrt((double)d)), StoredLayout::linear);
        Tensor b = add_param("gate_" + g + "_b", raw::binary_scalar(raw::Binary::add, normal({H}, 0.1), cfg_.gate_bias_centre(g)));
        gates_[g] = {w, b};
    }
    if (!cfg_.fix_A0_zero) {
        const Retention& ret = retention(cfg_.retention);
        auto shapes = cfg_.weight_shapes();
        auto names = cfg_.a0_names();
        for (size_t l = 0; l < shapes.size(); ++l)
            A0_.push_back(add_param(names[l], ret.init({H, shapes[l].first, shapes[l].second}, gen, cfg_)));
    }
    out_norm_w_ = add_param("out_norm_w", raw::binary_scalar(raw::Binary::add, normal({d}, 0.1), 1.0));
}

const Tensor& MirasLayer::param(const std::string& name) const {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) throw std::invalid_argument("MirasLayer: no parameter named '" + name + "'");
    return it->second;
}

MemoryState MirasLayer::initial_state(int64_t batch) const {
    return initial_memory_state(cfg_, A0_, batch, cfg_.dtype);
}

// docs/math.md §1.1: SiLU(conv(x W)) per head, the conv continuing from the last 3
// inputs of the previous piece (zeros at the start of a stream); advances
// `tail`. x (B, T, d) -> (B, H, T, d_h).
Tensor MirasLayer::branch(const Tensor& x, const Tensor& W, const Tensor& conv_w, const Tensor& conv_b, Tensor& tail,
                          bool normalise) const {
    const int64_t B = x.size(0), T = x.size(1), H = cfg_.heads, dh = cfg_.head_dim();
    Tensor z = linear(x, W);                                   // (B, T, d)
    Tensor zc = cat({tail, z}, 1);                             // (B, 3 + T, d)
    tail = narrow(zc, 1, T, kConvTaps - 1);                    // the last 3 inputs, for the next piece
    Tensor c = narrow(causal_depthwise_conv1d(zc, conv_w, conv_b), 1, kConvTaps - 1, T);  // (B, T, d)
    Tensor h = permute(reshape(silu(c), {B, T, H, dh}), {0, 2, 1, 3});  // (B, H, T, d_h)
    return normalise ? l2_normalize(h, kNorm2Eps) : h;         // norm2 per head
}

Tensor MirasLayer::project_queries(const Tensor& x, MemoryState& st) const {
    if (!st.conv_q.defined())
        throw std::invalid_argument("MirasLayer::project_queries: the state has no conv tails (start it with initial_state)");
    return branch(x, W_Q_, conv_q_, conv_q_b_, st.conv_q, true);
}

MemoryInputs MirasLayer::project(const Tensor& x, MemoryState& st) const {
    if (!st.conv_q.defined() || !st.conv_k.defined() || !st.conv_v.defined())
        throw std::invalid_argument("MirasLayer::project: the state has no conv tails (start it with initial_state)");
    const int64_t B = x.size(0), T = x.size(1), H = cfg_.heads;
    MemoryInputs in;
    in.q = branch(x, W_Q_, conv_q_, conv_q_b_, st.conv_q, true);
    in.k = branch(x, W_K_, conv_k_, conv_k_b_, st.conv_k, true);
    in.v = branch(x, W_V_, conv_v_, conv_v_b_, st.conv_v, false);

    // docs/math.md §1.2: one scalar per token and head; a fixed gate is the constant itself.
    auto gate = [&](const std::string& g) -> Tensor {
        if (!cfg_.gate_used(g)) return Tensor();
        if (auto c = cfg_.fixed_gate(g)) return full({B, H, T}, *c, x.dtype());
        const auto& [w, b] = gates_.at(g);
        Tensor z = permute(linear(x, w, b), {0, 2, 1});  // (B, H, T)
        if (g == "theta") return mul(sigmoid(z), cfg_.theta_max);
        if (g == "delta") return softplus(z);
        return sigmoid(z);
    };
    in.theta = gate("theta");
    in.eta = gate("eta");
    in.alpha = gate("alpha");
    in.delta = gate("delta");
    return in;
}

Tensor MirasLayer::output(const Tensor& x, const Tensor& y) const {
    const int64_t B = x.size(0), T = x.size(1);
    Tensor yt = reshape(permute(y, {0, 2, 1, 3}), {B, T, cfg_.d});                 // (B, T, d), heads contiguous
    Tensor gated = mul(rms_norm_heads(yt, out_norm_w_, cfg_.heads, kOutNormEps),  // RMSNorm per head
                       sigmoid(linear(x, W_G_)));                                 // ⊙ σ(x W_G)
    return linear(gated, W_O_);                                                   // (B, T, d)
}

Tensor MirasLayer::forward(const Tensor& x, MemoryState* state, ScanMode mode) {
    if (x.dim() != 3 || x.size(2) != cfg_.d)
        throw std::invalid_argument("MirasLayer::forward: x must be (B, T, d=" + std::to_string(cfg_.d) + "), got " +
                                    shape_str(x.shape()));
    if (x.dtype() != cfg_.dtype)
        throw std::invalid_argument(std::string("MirasLayer::forward: x is ") + dtype_name(x.dtype()) +
                                    " but the layer is " + dtype_name(cfg_.dtype));
    MemoryState local;
    MemoryState& st = state ? *state : local;
    if (!st.started()) st = initial_state(x.size(0));
    if (st.batch() != x.size(0))
        throw std::invalid_argument("MirasLayer::forward: the state holds a batch of " + std::to_string(st.batch()) +
                                    " but x has " + std::to_string(x.size(0)));
    MemoryInputs in = project(x, st);
    Tensor y = mode == ScanMode::chunked ? memory_scan_chunked(cfg_, in, st) : memory_scan_sequential(cfg_, in, st);
    return output(x, y);
}

}  // namespace miras
