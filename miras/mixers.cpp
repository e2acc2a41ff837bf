// The token mixers of SPEC §2 on the memory layer (see miras/mixers.h).
#include "miras/mixers.h"

#include <stdexcept>
#include <string>

#include "nn/init.h"

namespace miras {
namespace {

// The attention and memory of one hybrid must agree on width, heads and dtype.
void check_pair(const char* who, const AttentionConfig& a, const MemoryConfig& m) {
    if (a.d_model != m.d || a.n_heads != m.heads || a.dtype != m.dtype)
        throw std::invalid_argument(std::string(who) + ": attention (d " + std::to_string(a.d_model) + ", heads " +
                                    std::to_string(a.n_heads) + ", " + dtype_name(a.dtype) + ") and memory (d " +
                                    std::to_string(m.d) + ", heads " + std::to_string(m.heads) + ", " +
                                    dtype_name(m.dtype) + ") must agree");
}

// [P ; x]: P (N_p, d) in front of every sequence of x (B, T, d) -> (B, N_p + T, d).
Tensor with_prefix(const Tensor& P, const Tensor& x) {
    if (!P.defined()) return x;
    return cat({expand(unsqueeze(P, 0), {x.size(0), P.size(0), P.size(1)}), x}, 1);
}

void check_input(const char* who, const Tensor& x, int64_t d) {
    if (x.dim() != 3 || x.size(2) != d)
        throw std::invalid_argument(std::string(who) + ": x must be (B, T, " + std::to_string(d) + "), got " +
                                    shape_str(x.shape()));
}

}  // namespace

double memory_flops_per_token(const MemoryConfig& c) {
    double f = 10.0 * (double)c.d * (double)c.d;
    for (auto [out, in] : c.weight_shapes()) f += (double)c.heads * 8.0 * (double)out * (double)in;
    return f;
}

// ---- lmm

MemoryMixer::MemoryMixer(const MemoryConfig& cfg, ScanMode scan)
    : memory_(register_module("memory", std::make_shared<MirasLayer>(cfg))), scan_(scan) {}

Tensor MemoryMixer::forward(const Tensor& x) { return memory_->forward(x, nullptr, scan_); }

double MemoryMixer::forward_flops_per_token(int64_t) const { return memory_flops_per_token(memory_->config()); }

// ---- mag

MagMixer::MagMixer(const AttentionConfig& attn, Generator& attn_gen, const MemoryConfig& memory, ScanMode scan)
    : scan_(scan) {
    check_pair("MagMixer", attn, memory);
    attn_ = register_module("attn", std::make_shared<Attention>(attn, attn_gen));
    memory_ = register_module("memory", std::make_shared<MirasLayer>(memory));
    norm_a_ = register_module("norm_a", std::make_shared<RMSNorm>(attn.d_model, attn.dtype));
    norm_b_ = register_module("norm_b", std::make_shared<RMSNorm>(attn.d_model, attn.dtype));
}

Tensor MagMixer::forward(const Tensor& x) {
    check_input("MagMixer", x, attn_->config().d_model);
    const int64_t Np = attn_->config().n_persistent, T = x.size(1);
    Tensor y = attn_->forward(x);                                              // SWA(w)([P ; x]) at x: (B, T, d)
    Tensor m = memory_->forward(with_prefix(attn_->persistent(), x), nullptr, scan_);  // (B, N_p + T, d)
    m = narrow(m, 1, Np, T);                                                   // persistent rows dropped
    return mul(norm_a_->forward(y), sigmoid(norm_b_->forward(m)));            // RMSNorm_a(y) ⊙ σ(RMSNorm_b(m))
}

double MagMixer::forward_flops_per_token(int64_t seq_len) const {
    const double Np = (double)attn_->config().n_persistent, T = (double)seq_len;
    return attn_->forward_flops_per_token(seq_len) +
           memory_flops_per_token(memory_->config()) * (seq_len > 0 ? (T + Np) / T : 1.0);
}

// ---- mal

MalMixer::MalMixer(const AttentionConfig& attn, Generator& attn_gen, const MemoryConfig& memory, ScanMode scan)
    : cfg_(attn), scan_(scan) {
    check_pair("MalMixer", attn, memory);
    if (attn.n_persistent < 0) throw std::invalid_argument("MalMixer: n_persistent must be >= 0, got " +
                                                           std::to_string(attn.n_persistent));
    // P is the mixer's: the attention sees the memory's outputs at P's
    // positions, not P, so its own module holds no persistent tokens.
    AttentionConfig inner = attn;
    inner.n_persistent = 0;
    attn_ = register_module("attn", std::make_shared<Attention>(inner, attn_gen));
    if (attn.n_persistent > 0)
        persistent_ = register_parameter("persistent",
                                         init::normal({attn.n_persistent, attn.d_model}, 1.0, attn_gen, attn.dtype));
    memory_ = register_module("memory", std::make_shared<MirasLayer>(memory));
}

Tensor MalMixer::forward(const Tensor& x) {
    check_input("MalMixer", x, cfg_.d_model);
    const int64_t Np = cfg_.n_persistent, T = x.size(1);
    Tensor y = memory_->forward(with_prefix(persistent_, x), nullptr, scan_);  // Mem([P ; x]): (B, N_p + T, d)
    Tensor prefix = Np > 0 ? narrow(y, 1, 0, Np) : Tensor();                   // (B, N_p, d), always visible
    return self_attention(narrow(y, 1, Np, T), attn_->W_Q(), attn_->W_K(), attn_->W_V(), attn_->W_O(), prefix,
                          cfg_);                                               // SWA(w)(y) at x: (B, T, d)
}

double MalMixer::forward_flops_per_token(int64_t seq_len) const {
    // Attention as Attention's own count with N_p prefix keys (projected per
    // sequence here: 4 N_p d² / T, the same term), plus the memory over N_p + T tokens.
    const double d = (double)cfg_.d_model, Np = (double)cfg_.n_persistent, T = (double)seq_len;
    const double n = attended_keys_per_query(seq_len, cfg_.window, cfg_.n_persistent);
    const double attn = 8 * d * d + 4 * d * n + (seq_len > 0 ? 4 * Np * d * d / T : 0.0);
    return attn + memory_flops_per_token(memory_->config()) * (seq_len > 0 ? (T + Np) / T : 1.0);
}

}  // namespace miras
