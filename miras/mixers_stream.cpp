// Streaming forward of the memory mixers (miras/mixers.h, "Streaming"): the
// same function as forward, read in pieces of any lengths down to one token,
// with what each mixer needs of the past kept in its MixerState.
#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "miras/mixer_util.h"
#include "miras/mixers.h"
#include "miras/scan.h"

namespace miras {
using mixer_detail::check_input;
using mixer_detail::with_prefix;

namespace {

// The state of `who`'s stream, begun for a batch of `batch`, fit for piece x.
template <class S>
S& stream_state(const char* who, MixerState& state, const Tensor& x, int64_t d) {
    check_input(who, x, d);
    auto* s = dynamic_cast<S*>(&state);
    if constexpr (requires { s->kind; })  // a state type shared by several mixers names its own
        if (s && std::string(s->kind) != who) s = nullptr;
    if (!s) throw std::invalid_argument(std::string(who) + "::forward_stream: the state was not begun by this kind of mixer");
    if (x.size(0) != s->batch)
        throw std::invalid_argument(std::string(who) + "::forward_stream: the state was begun for a batch of " +
                                    std::to_string(s->batch) + ", but x has " + std::to_string(x.size(0)) +
                                    " rows " + shape_str(x.shape()));
    if (x.size(1) < 1) throw std::invalid_argument(std::string(who) + "::forward_stream: empty piece " +
                                                   shape_str(x.shape()));
    return *s;
}

void check_batch(const char* who, int64_t batch) {
    if (batch < 1) throw std::invalid_argument(std::string(who) + "::begin_stream: batch must be >= 1, got " +
                                               std::to_string(batch));
}

struct LmmState : MixerState {
    int64_t batch = 0;
    MemoryState memory;
};

// mag and mal: the memory's state, and nn's streamed self-attention
// (self_attention_stream: the RoPE'd keys and values of the prefix and of
// the last w − 1 tokens).
struct HybridState : MixerState {
    const char* kind = "";  // "MagMixer" or "MalMixer": the one that began it
    int64_t batch = 0;
    bool started = false;  // P fed to the memory
    MemoryState memory;
    AttentionState attn;
    Tensor prefix;  // mal: (B, N_p, d), Mem's outputs at P, the attention's prefix; else undefined
};

std::unique_ptr<MixerState> begin_hybrid(const char* who, const MirasLayer& memory, int64_t batch) {
    check_batch(who, batch);
    auto s = std::make_unique<HybridState>();
    s->kind = who;
    s->batch = batch;
    s->memory = memory.initial_state(batch);
    s->attn.batch = batch;
    return s;
}

struct MacState : MixerState {
    int64_t batch = 0;
    int64_t pos = 0;           // tokens so far; pos % C of them in the current segment
    MemoryState read;          // conv tail of the read's query projection over x
    MemoryState memory;        // the written memory, after the last token
    MemoryState at_start;      // `memory` at the current segment's start: W(s−1)
    Tensor pk, pv;             // P's keys and values (B, H, N_p, d_h); undefined when N_p = 0
    Tensor hk, hv, sk, sv;     // the current segment's h and S rows so far (B, H, m, d_h)
    ConvTails tails;           // the attention's conv over x (cfg.conv > 0)
};

}  // namespace

// ---- lmm

std::unique_ptr<MixerState> MemoryMixer::begin_stream(int64_t batch) const {
    check_batch("MemoryMixer", batch);
    auto s = std::make_unique<LmmState>();
    s->batch = batch;
    s->memory = memory_->initial_state(batch);
    return s;
}

Tensor MemoryMixer::forward_stream(const Tensor& x, MixerState& state) {
    auto& s = stream_state<LmmState>("MemoryMixer", state, x, memory_->config().d);
    return memory_->forward(x, &s.memory, scan_);
}

// ---- mag

std::unique_ptr<MixerState> MagMixer::begin_stream(int64_t batch) const {
    return begin_hybrid("MagMixer", *memory_, batch);
}

Tensor MagMixer::forward_stream(const Tensor& x, MixerState& state) {
    const AttentionConfig& ac = attn_->config();
    auto& s = stream_state<HybridState>("MagMixer", state, x, ac.d_model);
    Tensor m;
    if (!s.started) {
        // The memory reads P before the first token; its outputs there are dropped.
        m = narrow(memory_->forward(with_prefix(attn_->persistent(), x), &s.memory, scan_), 1, ac.n_persistent,
                   x.size(1));
        s.started = true;
    } else {
        m = memory_->forward(x, &s.memory, scan_);  // (B, n, d)
    }
    Tensor y = self_attention_stream(x, attn_->W_Q(), attn_->W_K(), attn_->W_V(), attn_->W_O(), attn_->persistent(),
                                     ac, s.attn, attn_->convs());  // (B, n, d)
    return mul(norm_a_->forward(y), sigmoid(norm_b_->forward(m)));
}

// ---- mal

std::unique_ptr<MixerState> MalMixer::begin_stream(int64_t batch) const {
    return begin_hybrid("MalMixer", *memory_, batch);
}

Tensor MalMixer::forward_stream(const Tensor& x, MixerState& state) {
    auto& s = stream_state<HybridState>("MalMixer", state, x, cfg_.d_model);
    const int64_t Np = cfg_.n_persistent;
    Tensor y;
    if (!s.started) {
        // Mem([P ; x_1]); the outputs at P are the attention's always-visible
        // prefix (B, N_p, d), read by the first self_attention_stream call.
        Tensor all = memory_->forward(with_prefix(persistent_, x), &s.memory, scan_);  // (B, N_p + n, d)
        s.prefix = Np > 0 ? narrow(all, 1, 0, Np) : Tensor();
        y = narrow(all, 1, Np, x.size(1));
        s.started = true;
    } else {
        y = memory_->forward(x, &s.memory, scan_);  // (B, n, d)
    }
    return self_attention_stream(y, attn_->W_Q(), attn_->W_K(), attn_->W_V(), attn_->W_O(), s.prefix, cfg_, s.attn,
                                 attn_->convs());
}

// ---- mac

std::unique_ptr<MixerState> MacMixer::begin_stream(int64_t batch) const {
    check_batch("MacMixer", batch);
    const AttentionConfig& ac = attn_->config();
    auto s = std::make_unique<MacState>();
    s->batch = batch;
    s->read = memory_->initial_state(batch);
    s->memory = memory_->initial_state(batch);
    if (ac.n_persistent > 0) {
        std::tie(s->pk, s->pv) = persistent_heads(attn_->persistent(), attn_->W_K(), attn_->W_V(), ac, batch);
    }
    return s;
}

Tensor MacMixer::forward_stream(const Tensor& x, MixerState& state) {
    const AttentionConfig& ac = attn_->config();
    auto& s = stream_state<MacState>("MacMixer", state, x, ac.d_model);
    const int64_t H = ac.n_heads, Np = ac.n_persistent, C = segment_, n = x.size(1);
    const Tensor q_read = memory_->project_queries(x, s.read);  // (B, H, n, d_h), the conv run on from the last piece
    const std::array<Tensor, 3> z = attention_projections(x, attn_->W_Q(), attn_->W_K(), attn_->W_V(), ac,
                                                          attn_->convs(), &s.tails);  // (B, n, d) each
    TensorList outs;
    // Part by part, each within one segment: rows m … m + k − 1 of it.
    for (int64_t i0 = 0; i0 < n;) {
        const int64_t m = s.pos % C, k = std::min(n - i0, C - m);
        if (m == 0) {  // a new segment: its reads are at W(s−1), its keys start afresh
            s.at_start = s.memory;
            s.hk = s.hv = s.sk = s.sv = Tensor();
        }
        Tensor S = narrow(x, 1, i0, k);  // (B, k, d)
        Tensor h = memory_->output(S, memory_retrieve(memory_->config(), narrow(q_read, 2, i0, k), s.at_start));
        // Keys and values at the positions of forward's segment_attention:
        // h_j at N_p + j, S_j at N_p + C + j; queries S_j at N_p + C + j.
        Tensor q = split_heads(narrow(z[0], 1, i0, k), H);  // (B, H, k, d_h)
        Tensor hk = split_heads(matmul(h, attn_->W_K()), H), hv = split_heads(matmul(h, attn_->W_V()), H);
        Tensor sk = split_heads(narrow(z[1], 1, i0, k), H), sv = split_heads(narrow(z[2], 1, i0, k), H);
        if (ac.use_rope) {
            q = rope_from(q, Np + C + m, ac.rope_base);
            hk = rope_from(hk, Np + m, ac.rope_base);
            sk = rope_from(sk, Np + C + m, ac.rope_base);
        }
        auto append = [](Tensor& cache, const Tensor& t) { cache = cache.defined() ? cat({cache, t}, 2) : t; };
        append(s.hk, hk);
        append(s.hv, hv);
        append(s.sk, sk);
        append(s.sv, sv);
        // Keys [P ; h_0 … h_{m+k−1} ; S_0 … S_{m+k−1}]; query m + r sees P and
        // the h and S rows of its segment up to its own.
        const int64_t seen = m + k, Tk = Np + 2 * seen;
        TensorList ks, vs;
        if (Np > 0) { ks.push_back(s.pk); vs.push_back(s.pv); }
        ks.insert(ks.end(), {s.hk, s.sk});
        vs.insert(vs.end(), {s.hv, s.sv});
        std::vector<bool> visible((size_t)(k * Tk));
        for (int64_t r = 0; r < k; ++r)
            for (int64_t j = 0; j < Tk; ++j)
                visible[(size_t)(r * Tk + j)] = j < Np || (j - Np) % seen <= m + r;
        Tensor y = matmul(merge_heads(attention_masked(q, cat(ks, 2), cat(vs, 2), visible)), attn_->W_O());  // (B, k, d)
        // The write of y (or S), each token read after its own.
        Tensor g = memory_->forward(write_ == MacWrite::input ? S : y, &s.memory, scan_);
        outs.push_back(mul(y, sigmoid(g)));
        s.pos += k;
        i0 += k;
    }
    return outs.size() == 1 ? outs[0] : cat(outs, 1);
}

}  // namespace miras
