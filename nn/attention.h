#pragma once
// Multi-head softmax attention (docs/math.md §2): a functional kernel built from
// differentiable ops, usable by every architecture (attn, MAG, MAL, MAC), and
// the causal self-attention mixer with RoPE, sliding window and persistent
// tokens. Also the Mixer interface that every token mixer implements.
#include <array>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "nn/module.h"
#include "nn/rope.h"

namespace miras {

// A token mixer: (B, T, d) -> (B, T, d), causal along T. A Transformer block
// (nn/transformer.h) holds one; attention is one, the memory layers of miras/
// are others.
//
// Streaming: a mixer that can read a sequence in pieces keeps what it needs
// of the past in a MixerState (attention: the keys and values so far; a
// memory layer: its MemoryState; a hybrid: both). For pieces x_1, x_2, … of x
// along T,
//     s = begin_stream(B);  forward_stream(x_1, *s), forward_stream(x_2, *s), …
// gives forward(x) piece by piece (to rounding; exactly the same function),
// whatever the cut, down to one token per call: what generation needs.
struct MixerState {
    virtual ~MixerState() = default;
};

class Mixer : public Module {
public:
    virtual Tensor forward(const Tensor& x) = 0;  // (B, T, d) -> (B, T, d)
    // Forward FLOPs per token for a sequence of length seq_len (a multiply-add
    // counts 2), for `miras info` and throughput reports.
    virtual double forward_flops_per_token(int64_t seq_len) const = 0;

    // The state of a fresh sequence of `batch` rows; nullptr if this mixer
    // cannot stream (then forward_stream throws).
    virtual std::unique_ptr<MixerState> begin_stream(int64_t batch) const { return nullptr; }
    // The next piece x (B, n, d), n >= 1, of the sequence `state` was begun
    // for -> (B, n, d); advances `state` by n tokens.
    virtual Tensor forward_stream(const Tensor& x, MixerState& state);
};

inline constexpr int64_t kAttentionBlock = 64;
inline constexpr int64_t kMaxAttentionConv = 64;  // AttentionConfig::conv

// softmax(q kᵀ / sqrt(d_k) + mask) v, per (batch, head).
//   q: (B, H, Tq, d_k), k: (B, H, Tk, d_k), v: (B, H, Tk, d_v), Tq <= Tk.
//   Returns (B, H, Tq, d_v).
// Queries are aligned with the *last* Tq keys: query i sits at key index
// a = Tk − Tq + i (so q may cover only the tokens whose outputs are kept,
// while k and v also cover a prefix of persistent tokens).
// Key j is visible to query a iff
//   (!causal || j <= a)  and  (j < n_persistent_prefix || window == 0 || a − j < window):
// the first n_persistent_prefix keys are always visible (up to causality);
// the others only inside the sliding window (token a sees a − window + 1 .. a).
// window > 0 needs causal. Every query sees at least one key.
//
// Cost: queries are processed in blocks of block_size rows; with a window,
// each block gathers only its prefix keys and the keys in
// [block_start − window + 1, block_end), so time and memory are
// O(Tq · (n_prefix + window + block_size)), not O(Tq · Tk); when that is not
// smaller (no window, or window + block_size ≳ Tk) all Tq × Tk scores are
// computed at once under one mask (the dense path). The backward of
// the gather is one index_add (a per-block narrow would scatter a full-size
// zero tensor per block: O(Tk) each).
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal = true, int64_t window = 0,
                 int64_t n_persistent_prefix = 0, int64_t block_size = kAttentionBlock);

// softmax(q kᵀ / sqrt(d_k) + mask) v with the visibility given explicitly,
// for layouts the rule above cannot express (MAC, miras/mixers.h):
// visible[i·Tk + j] says whether query i sees key j; every query must see at
// least one key. Shapes as for attention() (any Tq, Tk); dense, O(Tq · Tk).
Tensor attention_masked(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<bool>& visible);

// Score entries attention() computes per (batch, head) for these sizes (the
// blocked path's gathered keys, or Tq · Tk for the dense path): its cost.
int64_t attention_score_count(int64_t Tq, int64_t Tk, bool causal, int64_t window, int64_t n_persistent_prefix,
                              int64_t block_size = kAttentionBlock);

// Mean number of keys a query attends to under the rule above, for
// self-attention over n_prefix + T keys with T queries (FLOPs accounting).
double attended_keys_per_query(int64_t T, int64_t window, int64_t n_prefix);

// (B, T, H·d_h) -> (B, H, T, d_h): head h owns channels [h·d_h, (h+1)·d_h) (docs/math.md §0).
Tensor split_heads(const Tensor& x, int64_t n_heads);
// (B, H, T, d_h) -> (B, T, H·d_h), the inverse.
Tensor merge_heads(const Tensor& x);

struct AttentionConfig {
    int64_t d_model = 64;
    int64_t n_heads = 4;
    int64_t window = 0;        // sliding window w over x (0: full causal)
    int64_t n_persistent = 0;  // N_p learned tokens P (N_p, d) prepended to the input
    int64_t block_size = kAttentionBlock;
    bool use_rope = true;
    double rope_base = kRopeBase;
    // K taps of a causal depthwise convolution over time on x W_Q, x W_K and
    // x W_V (docs/math.md §2 "attention conv"; 0: none, else 2 … 64). It gives
    // every key the few tokens before it, the previous-token channel that
    // recall needs (an induction head otherwise has to learn it with a whole
    // layer); the memory layers have the same convolution (§1.1).
    int64_t conv = 0;
    DType dtype = DType::f32;
};

// The convolution weights of AttentionConfig::conv: (d, K) each, all
// undefined when conv = 0.
struct AttentionConvs {
    Tensor q, k, v;
};

// What a stream keeps for those convolutions: the last K − 1 rows (B, K − 1, d)
// of x W_Q, x W_K, x W_V before the convolution; undefined until the first
// piece, which starts them at zeros (the left padding).
struct ConvTails {
    Tensor q, k, v;
};

// x W_Q, x W_K, x W_V for x (B, n, d) -> three (B, n, d), each convolved over
// time when cfg.conv = K > 0 (see self_attention): over x alone (zero left
// padding) when tails is nullptr, else continuing a stream from *tails, which
// is advanced by the n rows.
std::array<Tensor, 3> attention_projections(const Tensor& x, const Tensor& W_Q, const Tensor& W_K, const Tensor& W_V,
                                            const AttentionConfig& cfg, const AttentionConvs& conv,
                                            ConvTails* tails = nullptr);

// Causal multi-head self-attention over [P ; x] (docs/math.md §2, mixer `attn`):
//   q = x W_Q, k = [P ; x] W_K, v = [P ; x] W_V   (row vectors, W stored (d_in, d_out))
//   per head: RoPE on q and k, then attention(q, k, v, causal, w, N_p)
//   out = concat_heads(·) W_O; the outputs of the persistent rows are never computed.
// RoPE positions [choice]: [P ; x] is one sequence, P at positions 0..N_p−1
// and x_t at N_p + t, so a window's relative offsets are those of x itself.
// With cfg.conv = K > 0 the projections of x are convolved over x's time
// before the heads are split (zero left padding at x_0; P's keys and values are not
// convolved: P is a set of slots, not a stretch of text):
//   q_t = Σ_j conv.q[:, j] ⊙ (x W_Q)_{t−K+1+j}, likewise k_t, v_t.
// x (B, T, d); W_* (d, d); persistent (N_p, d), or (B, N_p, d) for a
// prefix of its own per sequence (MAL, miras/hybrid.h), or undefined when
// cfg.n_persistent = 0 -> (B, T, d).
Tensor self_attention(const Tensor& x, const Tensor& W_Q, const Tensor& W_K, const Tensor& W_V, const Tensor& W_O,
                      const Tensor& persistent, const AttentionConfig& cfg, const AttentionConvs& conv = {});

// The stream of self_attention (see Mixer: forward_stream): what the next
// pieces need of the past, per head and already rotated by RoPE.
//   k, v: (B, H, n_past, d_h), the keys and values of the last n_past tokens
//         of x (undefined while n_past = 0). With a window w > 0 only the last
//         w − 1 are kept (no later query can see an older one), so the state
//         stays O(B · d · (N_p + w)) however long the sequence; with w = 0 all.
//   prefix_k, prefix_v: (B, H, N_p, d_h), the keys and values of the
//         persistent tokens at positions 0..N_p−1, computed from the first
//         piece's weights and prefix (undefined when N_p = 0 or before it).
//   pos:  tokens of x read so far; the next one sits at position N_p + pos.
//   tails: the convolutions' past (cfg.conv > 0, see ConvTails).
struct AttentionState : MixerState {
    int64_t batch = 0;
    int64_t pos = 0;
    Tensor k, v, prefix_k, prefix_v;
    ConvTails tails;
    int64_t n_past() const { return k.defined() ? k.size(2) : 0; }
};

// The persistent tokens' keys and values per head, (B, H, N_p, d_h) each,
// the keys RoPE'd at positions 0 … N_p − 1 (where [P ; x] puts them):
// persistent (N_p, d), shared by the batch, or (B, N_p, d) per sequence.
// What a stream keeps of the prefix (here, and MAC's in miras/).
std::pair<Tensor, Tensor> persistent_heads(const Tensor& persistent, const Tensor& W_K, const Tensor& W_V,
                                           const AttentionConfig& cfg, int64_t batch);

// The next piece x (B, n, d), n >= 1, of the sequence `state` follows ->
// (B, n, d): self_attention of the whole sequence so far, restricted to these
// n rows (to rounding), whatever the earlier cuts. Same arguments as
// self_attention; `persistent` must be the same on every call (only the
// first piece's is read). Advances `state` by n tokens.
Tensor self_attention_stream(const Tensor& x, const Tensor& W_Q, const Tensor& W_K, const Tensor& W_V,
                             const Tensor& W_O, const Tensor& persistent, const AttentionConfig& cfg,
                             AttentionState& state, const AttentionConvs& conv = {});

// Forward FLOPs per token of self_attention with cfg over T tokens: 8d²
// (projections) + 4 d · n̄ (scores and weighted values, n̄ =
// attended_keys_per_query) + 4 N_p d² / T (the prefix's keys and values,
// once per sequence).
double self_attention_flops_per_token(const AttentionConfig& cfg, int64_t seq_len);

// The module form of self_attention.
// Parameters: "W_Q", "W_K", "W_V", "W_O" (d, d), "persistent" (N_p, d) if N_p > 0,
// "conv_q", "conv_k", "conv_v" (d, K) if conv = K > 0.
// Init: W_* ~ N(0, 1/d) (unit-variance inputs keep unit variance); P ~ N(0, 1),
// the scale of the RMS-normalised tokens it sits next to; the convolutions
// as the memory layer's, N(0, 0.3²) plus 1 on the last tap (near the
// identity, so the first steps see the plain attention).
class Attention : public Mixer {
public:
    Attention(const AttentionConfig& cfg, Generator& gen);
    Tensor forward(const Tensor& x) override {  // (B, T, d) -> (B, T, d)
        return self_attention(x, W_Q_, W_K_, W_V_, W_O_, persistent_, cfg_, convs_);
    }
    // self_attention_flops_per_token(config(), seq_len).
    double forward_flops_per_token(int64_t seq_len) const override;
    // Streaming (Mixer): an AttentionState for `batch` rows, and
    // self_attention_stream with this module's weights. The persistent keys
    // are taken from the weights at the first piece.
    std::unique_ptr<MixerState> begin_stream(int64_t batch) const override;
    Tensor forward_stream(const Tensor& x, MixerState& state) override;
    const AttentionConfig& config() const { return cfg_; }

    const Tensor& W_Q() const { return W_Q_; }
    const Tensor& W_K() const { return W_K_; }
    const Tensor& W_V() const { return W_V_; }
    const Tensor& W_O() const { return W_O_; }
    const Tensor& persistent() const { return persistent_; }  // undefined when N_p = 0
    const AttentionConvs& convs() const { return convs_; }    // undefined when conv = 0

private:
    AttentionConfig cfg_;
    Tensor W_Q_, W_K_, W_V_, W_O_, persistent_;
    AttentionConvs convs_;
};

}  // namespace miras
