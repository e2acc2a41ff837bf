#include "nn/transformer.h"

#include <stdexcept>
#include <string>

namespace miras {
namespace {

// splitmix64 finaliser: decorrelates the per-layer seeds derived from one model seed.
uint64_t mix_seed(uint64_t seed, uint64_t salt) {
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (salt + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

}  // namespace

AttentionConfig attention_config(const TransformerConfig& cfg) {
    AttentionConfig ac;
    ac.d_model = cfg.d_model;
    ac.n_heads = cfg.n_heads;
    ac.window = cfg.window;
    ac.n_persistent = cfg.n_persistent;
    ac.block_size = cfg.attn_block;
    ac.rope_base = cfg.rope_base;
    ac.conv = cfg.attn_conv;
    ac.dtype = cfg.dtype;
    return ac;
}

uint64_t attention_seed(uint64_t model_seed, int layer) { return mix_seed(model_seed, 1000 + (uint64_t)layer); }

MixerFactory attention_mixers(const TransformerConfig& cfg) {
    const AttentionConfig ac = attention_config(cfg);
    const uint64_t seed = cfg.seed;
    return [ac, seed](int layer) -> std::shared_ptr<Mixer> {
        Generator gen(attention_seed(seed, layer));
        return std::make_shared<Attention>(ac, gen);
    };
}

Block::Block(int64_t d, int64_t mlp_hidden, std::shared_ptr<Mixer> mixer, Generator& gen, DType dt,
             double norm_eps) {
    if (!mixer) throw std::invalid_argument("Block: the mixer is null");
    norm1_ = register_module("norm1", std::make_shared<RMSNorm>(d, dt, norm_eps));
    mixer_ = register_module("mixer", std::move(mixer));
    norm2_ = register_module("norm2", std::make_shared<RMSNorm>(d, dt, norm_eps));
    mlp_ = register_module("mlp", std::make_shared<SwiGLU>(d, mlp_hidden, gen, dt));
}

// docs/math.md §2: pre-norm residual block around the mixer's output y = Mixer(RMSNorm(x)).
Tensor Block::around_mixer(const Tensor& x, const Tensor& y) {
    // A wrong shape would otherwise broadcast silently in the residual sum.
    if (y.shape() != x.shape())
        throw std::logic_error("Block: the mixer mapped " + shape_str(x.shape()) + " to " + shape_str(y.shape()) +
                               "; it must keep the shape");
    Tensor h = x + y;                              // (B, T, d)
    return h + mlp_->forward(norm2_->forward(h));  // (B, T, d)
}

Tensor Block::forward(const Tensor& x) { return around_mixer(x, mixer_->forward(norm1_->forward(x))); }

Tensor Block::forward_stream(const Tensor& x, MixerState& state) {
    return around_mixer(x, mixer_->forward_stream(norm1_->forward(x), state));  // (B, n, d)
}

Transformer::Transformer(const TransformerConfig& cfg, const MixerFactory& mixers) : cfg_(cfg) {
    if (cfg.vocab_size < 1 || cfg.d_model < 1 || cfg.n_layers < 0 || cfg.n_heads < 1 || cfg.d_model % cfg.n_heads != 0)
        throw std::invalid_argument("Transformer: need vocab_size >= 1, d_model >= 1 divisible by n_heads, n_layers >= 0; got "
                                    "vocab_size " + std::to_string(cfg.vocab_size) + ", d_model " +
                                    std::to_string(cfg.d_model) + ", n_heads " + std::to_string(cfg.n_heads) +
                                    ", n_layers " + std::to_string(cfg.n_layers));
    const int64_t d = cfg.d_model, hidden = cfg.mlp_hidden_or_default();
    MixerFactory make_mixer = mixers ? mixers : attention_mixers(cfg);
    Generator gen(mix_seed(cfg.seed, 0));

    embed_ = register_module("embed", std::make_shared<Embedding>(cfg.vocab_size, d, gen, cfg.dtype));
    for (int64_t l = 0; l < cfg.n_layers; ++l) {
        std::shared_ptr<Mixer> mixer = make_mixer((int)l);
        if (!mixer) throw std::invalid_argument("Transformer: the mixer factory returned null for layer " + std::to_string(l));
        blocks_.push_back(register_module("blocks." + std::to_string(l),
                                          std::make_shared<Block>(d, hidden, mixer, gen, cfg.dtype, cfg.norm_eps)));
    }
    norm_ = register_module("norm", std::make_shared<RMSNorm>(d, cfg.dtype, cfg.norm_eps));
    if (!cfg.tie_embeddings) head_ = register_module("head", std::make_shared<Linear>(d, cfg.vocab_size, gen, cfg.dtype));
}

Tensor Transformer::hidden(const IndexTensor& tokens) {
    if (tokens.dim() != 2)
        throw std::invalid_argument("Transformer: token ids must be (B, T), got " + shape_str(tokens.shape));
    Tensor x = embed_->forward(tokens);  // (B, T, d)
    for (auto& b : blocks_) x = b->forward(x);
    return norm_->forward(x);  // (B, T, d)
}

Tensor Transformer::logits(const Tensor& h) {
    if (head_) return head_->forward(h);                  // (B, T, V)
    return matmul(h, transpose(embed_->weight(), 0, 1));  // tied: h Eᵀ, (B, T, V)
}

Tensor Transformer::forward(const IndexTensor& tokens) { return logits(hidden(tokens)); }

bool Transformer::can_stream() const {
    for (auto& b : blocks_)
        if (!b->mixer().begin_stream(1)) return false;
    return true;
}

TransformerStream Transformer::begin_stream(int64_t batch) const {
    if (batch < 1) throw std::invalid_argument("Transformer::begin_stream: batch must be >= 1, got " + std::to_string(batch));
    TransformerStream s;
    s.batch = batch;
    for (size_t l = 0; l < blocks_.size(); ++l) {
        std::unique_ptr<MixerState> st = blocks_[l]->mixer().begin_stream(batch);
        if (!st)
            throw std::logic_error("Transformer::begin_stream: the mixer of block " + std::to_string(l) +
                                   " cannot read a sequence in pieces");
        s.blocks.push_back(std::move(st));
    }
    return s;
}

Tensor Transformer::forward_stream(const IndexTensor& tokens, TransformerStream& stream) {
    if (tokens.dim() != 2 || tokens.shape[0] != stream.batch || tokens.shape[1] < 1)
        throw std::invalid_argument("Transformer::forward_stream: token ids must be (" + std::to_string(stream.batch) +
                                    ", n >= 1) for this stream, got " + shape_str(tokens.shape));
    if (stream.blocks.size() != blocks_.size())
        throw std::invalid_argument("Transformer::forward_stream: the stream holds " +
                                    std::to_string(stream.blocks.size()) + " block states, the model has " +
                                    std::to_string(blocks_.size()) + " blocks (begin it with this model)");
    Tensor x = embed_->forward(tokens);  // (B, n, d)
    for (size_t l = 0; l < blocks_.size(); ++l) x = blocks_[l]->forward_stream(x, *stream.blocks[l]);
    stream.pos += tokens.shape[1];
    return logits(norm_->forward(x));  // (B, n, V)
}

double Transformer::forward_flops_per_token(int64_t seq_len) const {
    const double d = (double)cfg_.d_model, h = (double)cfg_.mlp_hidden_or_default(), V = (double)cfg_.vocab_size;
    double f = 2 * d * V;
    for (auto& b : blocks_) f += b->mixer().forward_flops_per_token(seq_len) + 6 * d * h;
    return f;
}

std::shared_ptr<Transformer> make_transformer(const TransformerConfig& cfg, const MixerFactory& mixers) {
    return std::make_shared<Transformer>(cfg, mixers);
}

}  // namespace miras
