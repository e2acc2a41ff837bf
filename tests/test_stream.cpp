// Streaming forward (nn/attention.h: Mixer::forward_stream, nn/transformer.h:
// Transformer::forward_stream): reading a sequence in pieces gives forward()
// of the whole, piece by piece, for the attention mixer (with and without a
// window and persistent tokens, RoPE on) and for a Transformer of attention
// blocks, whatever the cut; a window keeps the cached keys bounded; a model
// with a mixer that cannot stream says so; sample_tokens through the stream
// draws the tokens of the windowed recompute. All in f64.
#include <boost/test/unit_test.hpp>

#include "op_test_util.h"
#include "prev_token_mixer.h"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/attention.h"
#include "nn/transformer.h"
#include "train/trainer.h"

using namespace miras;
using miras::test::PrevTokenMixer;

using miras::test::has;
using miras::test::max_abs_diff;

namespace {

AttentionConfig attn_cfg(int64_t w, int64_t Np, int64_t conv = 0) {
    AttentionConfig c;
    c.conv = conv;
    c.d_model = 8;
    c.n_heads = 2;
    c.window = w;
    c.n_persistent = Np;
    c.block_size = 2;  // small, so the whole forward takes the blocked path when windowed
    c.dtype = DType::f64;
    return c;
}

TransformerConfig tiny(int64_t w, int64_t Np) {
    TransformerConfig c;
    c.vocab_size = 11;
    c.d_model = 8;
    c.n_heads = 2;
    c.n_layers = 2;
    c.mlp_hidden = 12;
    c.window = w;
    c.n_persistent = Np;
    c.attn_block = 2;
    c.dtype = DType::f64;
    c.seed = 5;
    return c;
}

// Cuts of a length-13 sequence: one token at a time, uneven pieces, all at once.
std::vector<std::vector<int64_t>> cuts_of_13() {
    return {std::vector<int64_t>(13, 1), {3, 1, 5, 4}, {1, 7, 2, 1, 2}, {13}};
}

IndexTensor random_tokens(int64_t B, int64_t T, int64_t V, Generator& g) {
    std::vector<int64_t> ids((size_t)(B * T));
    for (auto& i : ids) i = (int64_t)g.below((uint64_t)V);
    return IndexTensor({B, T}, ids);
}

// Columns [t0, t0 + n) of ids (B, T).
IndexTensor columns(const IndexTensor& ids, int64_t t0, int64_t n) {
    const int64_t B = ids.shape[0], T = ids.shape[1];
    std::vector<int64_t> out;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = t0; t < t0 + n; ++t) out.push_back(ids.data[(size_t)(b * T + t)]);
    return IndexTensor({B, n}, out);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(stream_tests)

BOOST_AUTO_TEST_CASE(attention_stream_equals_forward_for_every_cut) {
    const int64_t B = 2, T = 13, d = 8;
    struct Setting {
        int64_t w, Np, conv = 0;
    };
    // conv 4: the convolutions' tails carry the last 3 inputs across cuts
    // (down to one token a piece), from zeros at the start.
    for (Setting s : {Setting{0, 0}, Setting{0, 2}, Setting{3, 0}, Setting{3, 2}, Setting{1, 0}, Setting{1, 3},
                      Setting{0, 2, 4}, Setting{3, 0, 4}, Setting{1, 3, 2}}) {
        Generator g(40 + (uint64_t)(s.w * 10 + s.Np));
        Attention a(attn_cfg(s.w, s.Np, s.conv), g);
        Tensor x = randn({B, T, d}, g, DType::f64);
        Tensor whole = a.forward(x);  // (B, T, d)
        for (const auto& cut : cuts_of_13()) {
            std::unique_ptr<MixerState> st = a.begin_stream(B);
            BOOST_REQUIRE(st);
            auto& as = dynamic_cast<AttentionState&>(*st);
            int64_t t0 = 0;
            for (int64_t n : cut) {
                Tensor y = a.forward_stream(narrow(x, 1, t0, n), *st);
                BOOST_TEST(y.shape() == (Shape{B, n, d}));
                BOOST_TEST(max_abs_diff(y, narrow(whole, 1, t0, n)) < 1e-12,
                           "w " << s.w << ", N_p " << s.Np << ", conv " << s.conv << ", piece at " << t0 << " of "
                                << n);
                t0 += n;
                BOOST_TEST(as.pos == t0);
                // The cache: all past tokens without a window, the last w − 1 with one.
                BOOST_TEST(as.n_past() == (s.w > 0 ? std::min(t0, s.w - 1) : t0));
                if (s.Np > 0) BOOST_TEST(as.prefix_k.size(2) == s.Np);
                if (s.conv > 0) BOOST_TEST(as.tails.k.shape() == (Shape{B, s.conv - 1, d}));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(windowed_attention_cache_stays_bounded_on_a_long_stream) {
    const int64_t B = 1, T = 70, d = 8, w = 4, Np = 2;
    Generator g(50);
    Attention a(attn_cfg(w, Np), g);
    Tensor x = randn({B, T, d}, g, DType::f64);
    Tensor whole = a.forward(x);
    std::unique_ptr<MixerState> st = a.begin_stream(B);
    auto& as = dynamic_cast<AttentionState&>(*st);
    double worst = 0;
    for (int64_t t0 = 0, n = 1; t0 < T; t0 += n, n = n % 5 + 1) {
        n = std::min(n, T - t0);
        worst = std::max(worst, max_abs_diff(a.forward_stream(narrow(x, 1, t0, n), *st), narrow(whole, 1, t0, n)));
        // Keys held: the persistent prefix and at most w − 1 past tokens.
        BOOST_TEST(as.n_past() + as.prefix_k.size(2) <= Np + w - 1);
        BOOST_TEST(as.k.size(2) == as.v.size(2));
    }
    BOOST_TEST(worst < 1e-12);
    BOOST_TEST(as.pos == T);
}

BOOST_AUTO_TEST_CASE(attention_stream_errors) {
    Generator g(51);
    Attention a(attn_cfg(0, 1), g);
    std::unique_ptr<MixerState> st = a.begin_stream(2);
    // Another batch than begun, an empty piece.
    BOOST_CHECK_THROW(a.forward_stream(randn({3, 1, 8}, g, DType::f64), *st), std::invalid_argument);
    BOOST_CHECK_THROW(a.forward_stream(randn({2, 0, 8}, g, DType::f64), *st), std::invalid_argument);
    BOOST_CHECK_THROW(a.begin_stream(0), std::invalid_argument);
    // A state some other mixer began.
    struct Foreign : MixerState {};
    Foreign f;
    BOOST_CHECK_THROW(a.forward_stream(randn({2, 1, 8}, g, DType::f64), f), std::invalid_argument);
    // A mixer without a stream: no state, and forward_stream throws.
    PrevTokenMixer p(8, 1);
    BOOST_TEST(!p.begin_stream(1));
    BOOST_CHECK_THROW(p.forward_stream(randn({1, 1, 8}, g, DType::f64), f), std::logic_error);
}

BOOST_AUTO_TEST_CASE(transformer_stream_logits_equal_forward_for_every_cut) {
    const int64_t B = 2, T = 13;
    struct Setting {
        int64_t w, Np;
    };
    for (Setting s : {Setting{0, 0}, Setting{0, 2}, Setting{3, 0}, Setting{3, 2}}) {
        TransformerConfig c = tiny(s.w, s.Np);
        for (bool tied : {true, false}) {
            c.tie_embeddings = tied;
            auto m = make_transformer(c);
            BOOST_TEST(m->can_stream());
            Generator g(60);
            IndexTensor ids = random_tokens(B, T, c.vocab_size, g);
            Tensor whole = m->forward(ids);  // (B, T, V)
            for (const auto& cut : cuts_of_13()) {
                TransformerStream st = m->begin_stream(B);
                BOOST_TEST(st.blocks.size() == 2u);
                int64_t t0 = 0;
                for (int64_t n : cut) {
                    Tensor logits = m->forward_stream(columns(ids, t0, n), st);
                    BOOST_TEST(logits.shape() == (Shape{B, n, c.vocab_size}));
                    BOOST_TEST(max_abs_diff(logits, narrow(whole, 1, t0, n)) < 1e-12,
                               "w " << s.w << ", N_p " << s.Np << ", tied " << tied << ", piece at " << t0);
                    t0 += n;
                    BOOST_TEST(st.pos == t0);
                    if (s.w > 0)
                        for (auto& b : st.blocks) BOOST_TEST(dynamic_cast<AttentionState&>(*b).n_past() <= s.w - 1);
                }
            }
            // Ids of another batch size than begun.
            TransformerStream st = m->begin_stream(B);
            BOOST_CHECK_THROW(m->forward_stream(columns(random_tokens(1, 2, c.vocab_size, g), 0, 1), st),
                              std::invalid_argument);
            // A stream begun by a model of another depth.
            TransformerConfig one = c;
            one.n_layers = 1;
            TransformerStream shallow = make_transformer(one)->begin_stream(B);
            BOOST_CHECK_EXCEPTION(m->forward_stream(columns(ids, 0, 1), shallow), std::invalid_argument,
                                  has({"1 block states", "2 blocks"}));
        }
    }
}

BOOST_AUTO_TEST_CASE(gradients_flow_through_the_transformer_stream) {
    // The kept keys and values stay on the graph from piece to piece, so the
    // gradient of a loss over streamed logits equals the whole forward's, for
    // every parameter (with a window, also through the trimmed cache).
    const int64_t B = 2, T = 13;
    for (int64_t w : {0, 3}) {
        auto m = make_transformer(tiny(w, 2));
        Generator g(61);
        IndexTensor ids = random_tokens(B, T, 11, g);
        Tensor R = randn({B, T, 11}, g, DType::f64);
        TensorList params;
        for (auto& [name, p] : m->named_parameters()) params.push_back(p);
        TensorList whole = grad({sum(mul(m->forward(ids), R))}, params);
        TransformerStream st = m->begin_stream(B);
        TensorList pieces;
        int64_t t0 = 0;
        for (int64_t n : {3, 1, 5, 4}) {
            pieces.push_back(m->forward_stream(columns(ids, t0, n), st));
            t0 += n;
        }
        TensorList streamed = grad({sum(mul(cat(pieces, 1), R))}, params);
        for (size_t i = 0; i < params.size(); ++i)
            BOOST_TEST(max_abs_diff(streamed[i], whole[i]) < 1e-12, "window " << w << ", parameter " << i);
    }
}

BOOST_AUTO_TEST_CASE(begin_stream_names_the_first_block_that_cannot_stream) {
    TransformerConfig c = tiny(0, 0);
    c.n_layers = 3;
    const MixerFactory attn = attention_mixers(c);
    auto m = make_transformer(c, [&](int layer) -> std::shared_ptr<Mixer> {
        if (layer == 0) return attn(layer);
        return std::make_shared<PrevTokenMixer>(c.d_model, 7 + (uint64_t)layer);
    });
    BOOST_TEST(!m->can_stream());
    BOOST_CHECK_EXCEPTION(m->begin_stream(1), std::logic_error, has({"block 1", "cannot"}));
    BOOST_TEST(make_transformer(c)->can_stream());
    // sample_tokens falls back to the windowed recompute for it.
    auto a = sample_tokens(*m, {1, 2}, 5, 0.0, 0, 0, 8), b = sample_tokens(*m, {1, 2}, 5, 0.0, 0, 0, 8, {}, true);
    BOOST_TEST((a == b));
    BOOST_TEST(a.size() == 5u);
}

namespace {
// Attention that records the longest piece it was streamed.
class PieceSpy : public Mixer {
public:
    PieceSpy(std::shared_ptr<Mixer> inner, int64_t* longest) : inner_(std::move(inner)), longest_(longest) {}
    Tensor forward(const Tensor& x) override { return inner_->forward(x); }
    double forward_flops_per_token(int64_t T) const override { return inner_->forward_flops_per_token(T); }
    std::unique_ptr<MixerState> begin_stream(int64_t batch) const override { return inner_->begin_stream(batch); }
    Tensor forward_stream(const Tensor& x, MixerState& state) override {
        *longest_ = std::max(*longest_, x.size(1));
        return inner_->forward_stream(x, state);
    }

private:
    std::shared_ptr<Mixer> inner_;
    int64_t* longest_;
};
}  // namespace

// Streamed sampling ran the whole prompt in one forward: with attention a
// 43 KB prompt asked for 27.8 GiB. It is read in pieces of at most `context`
// tokens, which draws the same tokens as reading it whole.
BOOST_AUTO_TEST_CASE(a_long_prompt_is_streamed_in_pieces_of_the_context) {
    TransformerConfig c = tiny(0, 0);
    c.vocab_size = 23;
    const MixerFactory attn = attention_mixers(c);
    int64_t longest = 0;
    auto m = make_transformer(c, [&](int layer) -> std::shared_ptr<Mixer> {
        return std::make_shared<PieceSpy>(attn(layer), &longest);
    });
    const std::vector<int64_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7};
    const std::vector<int64_t> pieces = sample_tokens(*m, prompt, 6, 0.0, 0, 0, 4);
    BOOST_TEST(longest == 4);
    longest = 0;
    const std::vector<int64_t> whole = sample_tokens(*m, prompt, 6, 0.0, 0, 0, 64);
    BOOST_TEST(longest == (int64_t)prompt.size());
    BOOST_TEST((pieces == whole));
}

BOOST_AUTO_TEST_CASE(sampling_through_the_stream_draws_the_windowed_tokens) {
    // While prompt + length <= context the windowed recompute sees the whole
    // sequence too: both must draw the same tokens.
    const std::vector<int64_t> prompt = {3, 1, 4, 1};
    for (int64_t w : {0, 3})
        for (int64_t Np : {0, 2}) {
            TransformerConfig c = tiny(w, Np);
            c.vocab_size = 23;
            auto m = make_transformer(c);
            for (double temperature : {0.0, 1.0}) {
                std::vector<int64_t> seen;
                auto streamed = sample_tokens(*m, prompt, 12, temperature, 0, 9, 16,
                                              [&](int64_t id) { seen.push_back(id); });
                auto windowed = sample_tokens(*m, prompt, 12, temperature, 0, 9, 16, {}, true);
                BOOST_TEST(streamed.size() == 12u);
                BOOST_TEST((streamed == windowed), "w " << w << ", N_p " << Np << ", temperature " << temperature);
                BOOST_TEST((seen == streamed));
            }
        }
    // Past the context the stream keeps the whole history while the windowed
    // recompute forgets it: for full attention the draws part. (Greedy, so
    // the difference is the model's view, not the random draws.)
    auto m = make_transformer(tiny(0, 0));
    const std::vector<int64_t> long_prompt = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
    BOOST_TEST((sample_tokens(*m, long_prompt, 12, 0.0, 0, 0, 2) !=
                sample_tokens(*m, long_prompt, 12, 0.0, 0, 0, 2, {}, true)));
    // The caller's train/eval mode comes back, in both modes of sampling.
    for (bool windowed : {false, true})
        for (bool training : {true, false}) {
            m->train(training);
            sample_tokens(*m, long_prompt, 2, 0.0, 0, 0, 4, {}, windowed);
            BOOST_TEST(m->is_training() == training);
        }
    // The stream does not depend on `context`.
    BOOST_TEST((sample_tokens(*m, long_prompt, 12, 0.0, 0, 0, 2) == sample_tokens(*m, long_prompt, 12, 0.0, 0, 0, 64)));
}

BOOST_AUTO_TEST_SUITE_END()
