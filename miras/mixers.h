#pragma once
// The token mixers of docs/math.md §2 built on the memory layer of docs/math.md §1: each maps
// (B, T, d) -> (B, T, d), causal along T, and sits in a Transformer block
// (nn/transformer.h) in place of attention.
//
//   lmm   o = Mem(x)                                   Titans' LMM alone (Moneta,
//                                                      Yaad, Memora by MemoryConfig)
//   mag   y = SWA(w)([P ; x]),  m = Mem([P ; x]),      memory as a gate (Titans MAG)
//         o = RMSNorm_a(y) ⊙ σ(RMSNorm_b(m))
//   mal   y = Mem([P ; x]),  o = SWA(w)(y)             memory as a layer (Titans MAL,
//                                                      Miras "-H" hybrids)
//   mac   per segment S of C tokens:                   memory as context (Titans MAC)
//         h = Mem_read(S) at the weights W(s−1),
//         y = attention over [P ; h ; S] at S (causal, full within the segment),
//         m = Mem(y) written on from W(s−1) (its end state is W(s)),
//         o = y ⊙ σ(m)
//
// P (N_p, d) is persistent memory: learned, input-independent tokens put in
// front of every sequence; the outputs at their positions are dropped. In
// `mag` both branches read the same P (the attention's "persistent"
// parameter). In `mal` the memory reads [P ; x] and the attention runs over
// all N_p + T of its outputs, the first N_p always visible ([choice], docs/math.md §2:
// "SWA sees the N_p persistent tokens"), with queries at the T positions of x.
// In `mac` the read h goes through the layer's own query projection and
// output stage (q of docs/math.md §1.1 on the segment's tokens, then §1.7's RMSNorm,
// gate and W_O), so h lives in the model's d-space next to S. The gate reads
// each token after its own write, m_t = Mem_{W_t}(q(y_t)) ([choice], docs/math.md §2: Titans
// Eq. 25 writes M_{W(s)}, the end-of-segment weights, for every token of the
// segment, which would let a token see the later tokens of its segment; W_t
// is W(s) at the segment's last token). RoPE positions in Ŝ are those of a
// full segment of C (h_j at N_p + j, S_j at N_p + C + j) also in a shorter
// last segment, so no output depends on the tokens after it.
//
// Streaming (begin_stream / forward_stream, nn/attention.h): each mixer reads
// a sequence in pieces of any lengths and gives forward's outputs. What the
// state carries:
//   lmm   the layer's MemoryState;
//   mag   the memory's MemoryState (the first piece feeds P first) and the
//         RoPE'd keys and values of P and of the last w − 1 tokens (all
//         with w = 0);
//   mal   the memory's MemoryState and the attention's keys and values of the
//         memory's outputs: those at P, then the last w − 1 (all with w = 0);
//   mac   the query projection's conv tail over x, the written memory's
//         MemoryState, a copy of it at the current segment's start (W(s−1),
//         for the reads), P's keys and values and those of the current
//         segment's h and S rows so far.
#include <memory>

#include "miras/layer.h"
#include "nn/attention.h"
#include "nn/layers.h"

namespace miras {

// Forward FLOPs per token of the memory layer (matmuls only, 2 per
// multiply-add, d_h = d / H):
//   projections W_Q, W_K, W_V, W_G, W_O: 10 d²
//   per head and weight matrix (out × in): forward M_W(k) at the chunk
//   anchor, its backward for u_t (two more products) and the retrieval
//   M_W(q): about 4 · 2 · out · in.
double memory_flops_per_token(const MemoryConfig& cfg);

// lmm. Parameters: "memory.<MirasLayer names>".
class MemoryMixer : public Mixer {
public:
    MemoryMixer(const MemoryConfig& cfg, ScanMode scan = ScanMode::chunked);
    Tensor forward(const Tensor& x) override;  // (B, T, d) -> (B, T, d)
    // Streaming (Mixer::forward_stream): see "Streaming" above.
    std::unique_ptr<MixerState> begin_stream(int64_t batch) const override;
    Tensor forward_stream(const Tensor& x, MixerState& state) override;  // (B, n, d) -> (B, n, d)
    double forward_flops_per_token(int64_t seq_len) const override;
    MirasLayer& memory() const { return *memory_; }

private:
    std::shared_ptr<MirasLayer> memory_;
    ScanMode scan_;
};

// mag. attn.n_persistent is N_p; memory.d and memory.heads must equal the
// attention's d_model and n_heads, and the dtypes agree.
// Parameters: "attn.W_Q", "attn.W_K", "attn.W_V", "attn.W_O" (d, d),
// "attn.persistent" (N_p, d) if N_p > 0, "memory.*", "norm_a.weight",
// "norm_b.weight" (d, ones).
class MagMixer : public Mixer {
public:
    // The attention (and P) are drawn from attn_gen, the memory from memory.seed.
    MagMixer(const AttentionConfig& attn, Generator& attn_gen, const MemoryConfig& memory,
             ScanMode scan = ScanMode::chunked);
    Tensor forward(const Tensor& x) override;  // (B, T, d) -> (B, T, d)
    // Streaming (Mixer::forward_stream): see "Streaming" above.
    std::unique_ptr<MixerState> begin_stream(int64_t batch) const override;
    Tensor forward_stream(const Tensor& x, MixerState& state) override;  // (B, n, d) -> (B, n, d)
    // Attention's own count, plus the memory over N_p + T tokens.
    double forward_flops_per_token(int64_t seq_len) const override;
    Attention& attention() const { return *attn_; }
    MirasLayer& memory() const { return *memory_; }
    const RMSNorm& norm_a() const { return *norm_a_; }
    const RMSNorm& norm_b() const { return *norm_b_; }

private:
    std::shared_ptr<Attention> attn_;
    std::shared_ptr<MirasLayer> memory_;
    std::shared_ptr<RMSNorm> norm_a_, norm_b_;
    ScanMode scan_;
};

// mal. attn.n_persistent is N_p (P belongs to the mixer, not the attention).
// Parameters: "persistent" (N_p, d) if N_p > 0, "memory.*", "attn.W_Q",
// "attn.W_K", "attn.W_V", "attn.W_O" (d, d).
class MalMixer : public Mixer {
public:
    // P and the attention are drawn from attn_gen, the memory from memory.seed.
    MalMixer(const AttentionConfig& attn, Generator& attn_gen, const MemoryConfig& memory,
             ScanMode scan = ScanMode::chunked);
    Tensor forward(const Tensor& x) override;  // (B, T, d) -> (B, T, d)
    // Streaming (Mixer::forward_stream): see "Streaming" above.
    std::unique_ptr<MixerState> begin_stream(int64_t batch) const override;
    Tensor forward_stream(const Tensor& x, MixerState& state) override;  // (B, n, d) -> (B, n, d)
    double forward_flops_per_token(int64_t seq_len) const override;
    const Tensor& persistent() const { return persistent_; }  // undefined when N_p = 0
    Attention& attention() const { return *attn_; }           // its n_persistent is 0
    MirasLayer& memory() const { return *memory_; }
    // The attention settings of the forward: attention().config() with N_p.
    const AttentionConfig& attention_config() const { return cfg_; }

private:
    AttentionConfig cfg_;
    Tensor persistent_;
    std::shared_ptr<MirasLayer> memory_;
    std::shared_ptr<Attention> attn_;
    ScanMode scan_;
};

// What MAC writes into its memory (docs/math.md §2, MAC): the attention's
// outputs y of the segment, as Titans Eq. 24 does (`attention`, the
// default), or the segment's own inputs S (`input`) [option]: the memory then
// stores the tokens, as titans-lmm does, and the gate reads it at S after
// each write. docs/stability.md §7 has the measurements behind the option.
enum class MacWrite { attention, input };

// mac. attn.n_persistent is N_p (the attention's "persistent"); attn.window
// must be 0 (attention is full within a segment); segment C >= 1.
// Parameters: "attn.W_Q", "attn.W_K", "attn.W_V", "attn.W_O" (d, d),
// "attn.persistent" (N_p, d) if N_p > 0, "memory.*".
class MacMixer : public Mixer {
public:
    MacMixer(const AttentionConfig& attn, Generator& attn_gen, const MemoryConfig& memory, int64_t segment,
             ScanMode scan = ScanMode::chunked, MacWrite write = MacWrite::attention);
    Tensor forward(const Tensor& x) override;  // (B, T, d) -> (B, T, d)
    // Streaming (Mixer::forward_stream): see "Streaming" above.
    std::unique_ptr<MixerState> begin_stream(int64_t batch) const override;
    Tensor forward_stream(const Tensor& x, MixerState& state) override;  // (B, n, d) -> (B, n, d)
    // Approximate: attention over N_p + C + (C + 1)/2 keys on average, the
    // prefix's keys and values per segment, the memory read and write.
    double forward_flops_per_token(int64_t seq_len) const override;
    Attention& attention() const { return *attn_; }
    MirasLayer& memory() const { return *memory_; }
    int64_t segment() const { return segment_; }
    MacWrite write() const { return write_; }

private:
    std::shared_ptr<Attention> attn_;
    std::shared_ptr<MirasLayer> memory_;
    int64_t segment_;
    ScanMode scan_;
    MacWrite write_;
};

}  // namespace miras
