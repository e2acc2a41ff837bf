#pragma once
// The model skeleton of docs/math.md §2, shared by every architecture:
//   token embedding → N blocks → RMSNorm → output head (tied or untied) → logits,
// a block being Llama style, h = x + Mixer(RMSNorm(x)), out = h + SwiGLU(RMSNorm(h)).
// The mixer is pluggable: attention gives the baseline Transformer, the
// memory layers of miras/ give LMM / MAG / MAL / MAC.
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "nn/attention.h"
#include "nn/layers.h"

namespace miras {

struct TransformerConfig {
    int64_t vocab_size = 256;  // bytes by default
    int64_t d_model = 64;
    int64_t n_heads = 4;
    int64_t n_layers = 2;
    int64_t mlp_hidden = 0;    // SwiGLU hidden width; 0: 8d/3 rounded up to a multiple of 8 (Llama)
    int64_t window = 0;        // attention mixers: sliding window (0: full causal)
    int64_t n_persistent = 0;  // attention mixers: persistent tokens N_p
    int64_t attn_block = kAttentionBlock;
    int64_t attn_conv = 0;     // attention mixers: taps of the conv on q, k, v (AttentionConfig::conv; 0: none)
    double rope_base = kRopeBase;
    bool tie_embeddings = true;
    double norm_eps = 1e-6;
    DType dtype = DType::f32;
    uint64_t seed = 0;

    int64_t mlp_hidden_or_default() const { return mlp_hidden > 0 ? mlp_hidden : (8 * d_model / 3 + 7) / 8 * 8; }
};

// Builds the mixer of layer `layer` (0-based). It must map (B, T, d_model) to
// (B, T, d_model) in the config's dtype and draw its initial values from its
// own seeded Generator.
using MixerFactory = std::function<std::shared_ptr<Mixer>(int layer)>;

// The attention mixers of the baseline: Attention(d, H, window, N_p, RoPE)
// from cfg, layer l initialised from Generator(seed, l), independent of the
// order in which layers are built.
MixerFactory attention_mixers(const TransformerConfig& cfg);
// What those mixers are built from: the attention settings of cfg, and the
// seed of layer l's attention weights (also used by the hybrids that hold an
// attention, miras/hybrid.h).
AttentionConfig attention_config(const TransformerConfig& cfg);
uint64_t attention_seed(uint64_t model_seed, int layer);

// Llama-style pre-norm block (docs/math.md §2):
//   h = x + Mixer(RMSNorm_1(x));  out = h + SwiGLU(RMSNorm_2(h)).
// Parameters: "norm1.weight", "mixer.*", "norm2.weight", "mlp.W_gate",
// "mlp.W_up", "mlp.W_down".
class Block : public Module {
public:
    Block(int64_t d, int64_t mlp_hidden, std::shared_ptr<Mixer> mixer, Generator& gen, DType dt = DType::f32,
          double norm_eps = 1e-6);
    Tensor forward(const Tensor& x);  // (B, T, d) -> (B, T, d)
    // The next piece (B, n, d) of a sequence whose mixer state is `state`
    // (from mixer().begin_stream): forward() of the whole sequence restricted
    // to these n rows, since the norms and the MLP act on each token alone.
    Tensor forward_stream(const Tensor& x, MixerState& state);
    Mixer& mixer() const { return *mixer_; }
    const RMSNorm& norm1() const { return *norm1_; }  // the mixer's input is norm1().forward(x)
    const SwiGLU& mlp() const { return *mlp_; }

private:
    Tensor around_mixer(const Tensor& x, const Tensor& y);  // x + y, then the MLP half

    std::shared_ptr<RMSNorm> norm1_;
    std::shared_ptr<Mixer> mixer_;
    std::shared_ptr<RMSNorm> norm2_;
    std::shared_ptr<SwiGLU> mlp_;
};

// Where a sequence read in pieces is (Transformer::forward_stream): one
// mixer state per block, the batch it was begun for and the tokens read.
struct TransformerStream {
    int64_t batch = 0;
    int64_t pos = 0;
    std::vector<std::unique_ptr<MixerState>> blocks;
};

// Parameters: "embed.weight" (V, d), "blocks.<l>.*", "norm.weight" (d), and
// "head.weight" (d, V) only when untied (tied: logits = h embed.weightᵀ).
class Transformer : public Module {
public:
    // An empty factory means attention_mixers(cfg).
    explicit Transformer(const TransformerConfig& cfg, const MixerFactory& mixers = {});

    Tensor forward(const IndexTensor& tokens);  // ids (B, T) -> logits (B, T, V)
    Tensor hidden(const IndexTensor& tokens);   // ids (B, T) -> final-norm output (B, T, d)

    // Streaming: for pieces t_1, t_2, … of ids (B, T) along T,
    //     s = begin_stream(B);  forward_stream(t_1, s), forward_stream(t_2, s), …
    // gives forward(ids) piece by piece (to rounding), whatever the cut, down
    // to one token per call, each call costing only its own tokens against the
    // state (generation without re-running a window).
    // can_stream: whether every block's mixer can (Mixer::begin_stream).
    // begin_stream throws std::logic_error naming the first block whose mixer
    // cannot; callers that have another way check can_stream() first.
    bool can_stream() const;
    TransformerStream begin_stream(int64_t batch) const;
    // ids (B, n), n >= 1, B as begun -> logits (B, n, V); advances `stream` by n.
    // Wrong ids are refused before any block runs; an exception from inside
    // a block leaves the stream partly advanced: begin a new one.
    Tensor forward_stream(const IndexTensor& tokens, TransformerStream& stream);

    // Forward FLOPs per token at sequence length T: matmuls only (2 per
    // multiply-add); norms, softmax, activations, RoPE and the embedding
    // lookup are O(d) per token and left out:
    //   Σ_l mixer_l.forward_flops_per_token(T)  +  L · 6 d h  (SwiGLU)  +  2 d V  (head)
    // For attention (see Attention): 8d² + 4d·n̄(T, w, N_p) + 4 N_p d² / T.
    double forward_flops_per_token(int64_t seq_len) const;

    const TransformerConfig& config() const { return cfg_; }
    const std::vector<std::shared_ptr<Block>>& blocks() const { return blocks_; }
    const Embedding& embed() const { return *embed_; }

private:
    Tensor logits(const Tensor& h);  // final-norm output (B, T, d) -> logits (B, T, V)

    TransformerConfig cfg_;
    std::shared_ptr<Embedding> embed_;
    std::vector<std::shared_ptr<Block>> blocks_;
    std::shared_ptr<RMSNorm> norm_;
    std::shared_ptr<Linear> head_;  // null when tied
};

std::shared_ptr<Transformer> make_transformer(const TransformerConfig& cfg, const MixerFactory& mixers = {});

}  // namespace miras
