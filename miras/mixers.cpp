// The token mixers of docs/math.md §2 on the memory layer (see miras/mixers.h).
#include "miras/mixers.h"

#include <array>
#include <stdexcept>
#include <string>

#include "miras/mixer_util.h"
#include "miras/scan.h"
#include "nn/init.h"

namespace miras {
using mixer_detail::check_input;
using mixer_detail::with_prefix;

namespace {

// The attention and memory of one hybrid must agree on width, heads and dtype.
void check_pair(const char* who, const AttentionConfig& a, const MemoryConfig& m) {
    if (a.d_model != m.d || a.n_heads != m.heads || a.dtype != m.dtype)
        throw std::invalid_argument(std::string(who) + ": attention (d " + std::to_string(a.d_model) + ", heads " +
                                    std::to_string(a.n_heads) + ", " + dtype_name(a.dtype) + ") and memory (d " +
                                    std::to_string(m.d) + ", heads " + std::to_string(m.heads) + ", " +
                                    dtype_name(m.dtype) + ") must agree");
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
                          cfg_, attn_->convs());                               // SWA(w)(y) at x: (B, T, d)
}

double MalMixer::forward_flops_per_token(int64_t seq_len) const {
    // The attention with N_p prefix keys (projected per sequence here, the
    // same 4 N_p d² / T term), plus the memory over N_p + T tokens.
    const double Np = (double)cfg_.n_persistent, T = (double)seq_len;
    return self_attention_flops_per_token(cfg_, seq_len) +
           memory_flops_per_token(memory_->config()) * (seq_len > 0 ? (T + Np) / T : 1.0);
}

// ---- mac

namespace {

// y = attention at S over Ŝ = [P ; h ; S] (N_p + 2n rows, n <= C). Query i
// (token S_i) sees every P, h_0 … h_i and S_0 … S_i: causal along the
// segment for h as for S, since h_j is the read of token j's query
// ([choice]: a causal mask over Ŝ as written would show S_i every h_j, i.e.
// later tokens of its segment). RoPE positions are those of a full segment
// of C: P at 0 … N_p − 1, h_j at N_p + j, S_j at N_p + C + j, also in a last,
// shorter segment, so that a token's output does not depend on how many
// tokens follow it in its segment (streaming, docs/math.md §2 "segments of length C").
// zS: the segment's rows of attention_projections over x (so with
// cfg.conv > 0 the S rows' q, k, v are convolved along x, across segment
// borders; the reads h and P are not convolved: they are not a stretch of x).
Tensor segment_attention(const Attention& attn, const Tensor& h, const std::array<Tensor, 3>& zS, int64_t C) {
    const AttentionConfig& ac = attn.config();
    const int64_t n = h.size(1), H = ac.n_heads, Np = ac.n_persistent;
    const int64_t Tk = Np + 2 * n;
    const Tensor& P = attn.persistent();
    Tensor q = split_heads(zS[0], H);  // (B, H, n, d_h)
    Tensor k = split_heads(with_prefix(Np > 0 ? matmul(P, attn.W_K()) : Tensor(), cat({matmul(h, attn.W_K()), zS[1]}, 1)),
                           H);  // (B, H, N_p + 2n, d_h)
    Tensor v = split_heads(with_prefix(Np > 0 ? matmul(P, attn.W_V()) : Tensor(), cat({matmul(h, attn.W_V()), zS[2]}, 1)),
                           H);
    if (ac.use_rope) {
        std::vector<int64_t> pos((size_t)Tk);
        for (int64_t j = 0; j < Tk; ++j) pos[(size_t)j] = j < Np + n ? j : j - n + C;
        q = rope_from(q, Np + C, ac.rope_base);  // S_i at N_p + C + i
        k = rope(k, pos, ac.rope_base);
    }
    std::vector<bool> visible((size_t)(n * Tk));
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < Tk; ++j) {
            const int64_t jj = j < Np ? -1 : (j - Np) % n;  // index within h or S; P: always
            visible[(size_t)(i * Tk + j)] = jj <= i;
        }
    return matmul(merge_heads(attention_masked(q, k, v, visible)), attn.W_O());  // (B, n, d)
}

}  // namespace

MacMixer::MacMixer(const AttentionConfig& attn, Generator& attn_gen, const MemoryConfig& memory, int64_t segment,
                   ScanMode scan, MacWrite write)
    : segment_(segment), scan_(scan), write_(write) {
    check_pair("MacMixer", attn, memory);
    if (segment < 1) throw std::invalid_argument("MacMixer: segment must be >= 1, got " + std::to_string(segment));
    if (attn.window != 0)
        throw std::invalid_argument("MacMixer: window must be 0 (attention is full within a segment), got " +
                                    std::to_string(attn.window));
    attn_ = register_module("attn", std::make_shared<Attention>(attn, attn_gen));
    memory_ = register_module("memory", std::make_shared<MirasLayer>(memory));
}

Tensor MacMixer::forward(const Tensor& x) {
    const AttentionConfig& ac = attn_->config();
    check_input("MacMixer", x, ac.d_model);
    const int64_t B = x.size(0), T = x.size(1);
    // The read's queries q(x) for the whole sequence at once: the projection
    // and its causal conv run over the stream of inputs x, apart from the
    // stream of attention outputs y that the memory is written with.
    MemoryState read_stream = memory_->initial_state(B);
    const Tensor q = memory_->project_queries(x, read_stream);  // (B, H, T, d_h)
    const std::array<Tensor, 3> z = attention_projections(x, attn_->W_Q(), attn_->W_K(), attn_->W_V(), ac,
                                                          attn_->convs());  // the attention's q, k, v of x
    MemoryState state = memory_->initial_state(B);       // the written memory: W(0) = φ(A_0)
    TensorList outs;
    for (int64_t t0 = 0; t0 < T; t0 += segment_) {
        const int64_t n = std::min(segment_, T - t0);
        Tensor S = narrow(x, 1, t0, n);  // (B, n, d)
        // h = M_{W(s−1)}(q(S)): read only, through the layer's output stage.
        Tensor h = memory_->output(S, memory_retrieve(memory_->config(), narrow(q, 2, t0, n), state));  // (B, n, d)
        const std::array<Tensor, 3> zS{narrow(z[0], 1, t0, n), narrow(z[1], 1, t0, n), narrow(z[2], 1, t0, n)};
        Tensor y = segment_attention(*attn_, h, zS, segment_);  // (B, n, d)
        // Write y (or S), reading each token after its own write: m_t = Mem_{W_t}(q(y_t)).
        Tensor m = memory_->forward(write_ == MacWrite::input ? S : y, &state, scan_);  // (B, n, d); state ends at W(s)
        outs.push_back(mul(y, sigmoid(m)));
    }
    return outs.size() == 1 ? outs[0] : cat(outs, 1);
}

double MacMixer::forward_flops_per_token(int64_t seq_len) const {
    const AttentionConfig& ac = attn_->config();
    const double d = (double)ac.d_model, Np = (double)ac.n_persistent;
    const double C = (double)std::max<int64_t>(1, std::min(segment_, std::max<int64_t>(1, seq_len)));
    const double keys = Np + C + (C + 1) / 2;
    const double attn = 8 * d * d + 4 * d * keys + 4 * (Np + C) * d * d / C;
    return attn + 2 * memory_flops_per_token(memory_->config());
}

}  // namespace miras
