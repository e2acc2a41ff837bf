// nn/transformer.h: logits shapes, parameter names and count (tied and
// untied, with persistent tokens), seeding, a plugged-in mixer, causality of
// the whole model, the FLOPs formula, the outer gradient of every parameter
// against a finite difference along a random direction (f64), and a short
// AdamW run that learns to copy a sequence.
#include <boost/test/unit_test.hpp>

#include "op_test_util.h"
#include "prev_token_mixer.h"

#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nn/loss.h"
#include "nn/optim.h"
#include "nn/transformer.h"

using namespace miras;
using miras::test::PrevTokenMixer;

using miras::test::error_of;

namespace {

IndexTensor random_tokens(int64_t B, int64_t T, int64_t V, Generator& g) {
    std::vector<int64_t> ids((size_t)(B * T));
    for (auto& i : ids) i = (int64_t)g.below((uint64_t)V);
    return IndexTensor({B, T}, ids);
}

TransformerConfig tiny(int64_t V = 11, int64_t d = 8, int64_t L = 2) {
    TransformerConfig c;
    c.vocab_size = V;
    c.d_model = d;
    c.n_heads = 2;
    c.n_layers = L;
    c.mlp_hidden = 12;
    c.dtype = DType::f64;
    c.seed = 3;
    return c;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(transformer_tests)

BOOST_AUTO_TEST_CASE(parameter_names_count_and_shapes) {
    TransformerConfig c = tiny();
    c.n_persistent = 2;
    c.window = 3;
    c.tie_embeddings = false;
    auto m = make_transformer(c);
    std::vector<std::string> want = {"embed.weight"};
    for (int l = 0; l < 2; ++l)
        for (const char* n : {"norm1.weight", "mixer.W_Q", "mixer.W_K", "mixer.W_V", "mixer.W_O", "mixer.persistent",
                              "norm2.weight", "mlp.W_gate", "mlp.W_up", "mlp.W_down"})
            want.push_back("blocks." + std::to_string(l) + "." + n);
    want.push_back("norm.weight");
    want.push_back("head.weight");
    auto named = m->named_parameters();
    BOOST_REQUIRE_EQUAL(named.size(), want.size());
    std::map<std::string, Shape> shape_of;
    for (size_t i = 0; i < want.size(); ++i) {
        BOOST_TEST(named[i].first == want[i]);
        shape_of[named[i].first] = named[i].second.shape();
    }
    const int64_t V = 11, d = 8, h = 12, Np = 2;
    BOOST_TEST(shape_of["embed.weight"] == (Shape{V, d}));
    BOOST_TEST(shape_of["head.weight"] == (Shape{d, V}));
    BOOST_TEST(shape_of["blocks.1.mixer.persistent"] == (Shape{Np, d}));
    BOOST_TEST(shape_of["blocks.0.mlp.W_down"] == (Shape{h, d}));
    BOOST_TEST(m->num_parameters() == V * d + 2 * (d + 4 * d * d + Np * d + d + 3 * d * h) + d + d * V);

    Generator g(1);
    Tensor logits = m->forward(random_tokens(3, 5, V, g));
    BOOST_TEST(logits.shape() == (Shape{3, 5, V}));
    BOOST_TEST((logits.dtype() == DType::f64));
    BOOST_TEST(m->hidden(random_tokens(3, 5, V, g)).shape() == (Shape{3, 5, d}));

    // Tied: no head parameter, logits = hidden · embedᵀ.
    auto tied = make_transformer(tiny());
    BOOST_TEST(tied->named_parameters().back().first == "norm.weight");
    IndexTensor ids = random_tokens(2, 4, V, g);
    Tensor want_logits = matmul(tied->hidden(ids), transpose(tied->embed().weight(), 0, 1));
    std::vector<double> a = tied->forward(ids).to_vector(), b = want_logits.to_vector();
    for (size_t i = 0; i < a.size(); ++i) BOOST_TEST(std::abs(a[i] - b[i]) < 1e-12);
    BOOST_TEST(tiny().mlp_hidden_or_default() == 12);
    TransformerConfig dflt;
    dflt.d_model = 64;
    BOOST_TEST(dflt.mlp_hidden_or_default() == 176);  // 8·64/3 = 170.67 -> 176
}

BOOST_AUTO_TEST_CASE(same_seed_same_model_other_seed_other_model) {
    auto a = make_transformer(tiny()), b = make_transformer(tiny());
    TransformerConfig c = tiny();
    c.seed = 4;
    auto other = make_transformer(c);
    auto pa = a->named_parameters(), pb = b->named_parameters(), po = other->named_parameters();
    bool all_equal = true, any_differs = false;
    for (size_t i = 0; i < pa.size(); ++i) {
        all_equal = all_equal && pa[i].second.to_vector() == pb[i].second.to_vector();
        if (pa[i].first.find("norm") == std::string::npos)  // norms start at ones
            any_differs = any_differs || pa[i].second.to_vector() != po[i].second.to_vector();
    }
    BOOST_TEST(all_equal);
    BOOST_TEST(any_differs);
    // The layers' attention weights differ from each other.
    BOOST_TEST(pa[2].first == "blocks.0.mixer.W_Q");
    BOOST_TEST(pa[11].first == "blocks.1.mixer.W_Q");
    BOOST_TEST(pa[2].second.to_vector() != pa[11].second.to_vector());
}

BOOST_AUTO_TEST_CASE(plugged_in_mixer) {
    std::vector<int> called;
    TransformerConfig c = tiny();
    auto m = make_transformer(c, [&](int layer) -> std::shared_ptr<Mixer> {
        called.push_back(layer);
        return std::make_shared<PrevTokenMixer>(c.d_model, 100 + (uint64_t)layer);
    });
    BOOST_TEST(called == (std::vector<int>{0, 1}));
    auto named = m->named_parameters();
    BOOST_TEST(named[2].first == "blocks.0.mixer.W");
    Generator g(2);
    BOOST_TEST(m->forward(random_tokens(2, 6, c.vocab_size, g)).shape() == (Shape{2, 6, c.vocab_size}));
    // FLOPs: the mixer's own count + SwiGLU + head.
    BOOST_TEST(std::abs(m->forward_flops_per_token(6) - (2 * (2.0 * 64 + 6 * 8 * 12) + 2 * 8 * 11)) < 1e-9);
    BOOST_TEST(error_of<std::invalid_argument>([&] {
        make_transformer(c, [](int) { return std::shared_ptr<Mixer>(); });
    }).find("null for layer 0") != std::string::npos);
    // A mixer that changes the shape is refused (it would broadcast in the residual sum).
    class Squash : public Mixer {
    public:
        Tensor forward(const Tensor& x) override { return sum(x, {1}, true); }  // (B, 1, d)
        double forward_flops_per_token(int64_t) const override { return 0; }
    };
    auto bad = make_transformer(c, [](int) { return std::make_shared<Squash>(); });
    BOOST_TEST(error_of<std::logic_error>([&] { bad->forward(random_tokens(1, 3, c.vocab_size, g)); }).find("must keep the shape") !=
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(flops_formula) {
    TransformerConfig c = tiny(16, 8, 2);
    auto m = make_transformer(c);
    // Per layer: attention 8·8² + 4·8·2.5 (T = 4: (T + 1)/2 keys on average) = 592,
    // SwiGLU 6·8·12 = 576; head 2·8·16 = 256.
    BOOST_TEST(std::abs(m->forward_flops_per_token(4) - (2 * (592 + 576) + 256)) < 1e-9);
}

BOOST_AUTO_TEST_CASE(whole_model_is_causal) {
    TransformerConfig c = tiny();
    c.n_persistent = 2;
    c.window = 4;
    c.attn_block = 2;
    auto m = make_transformer(c);
    Generator g(5);
    const int64_t B = 2, T = 9, V = c.vocab_size;
    IndexTensor ids = random_tokens(B, T, V, g);
    const std::vector<double> base = m->forward(ids).to_vector();
    const int64_t s = 5;
    IndexTensor changed = ids;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = s; t < T; ++t) changed.data[(size_t)(b * T + t)] = (ids.data[(size_t)(b * T + t)] + 1) % V;
    const std::vector<double> out = m->forward(changed).to_vector();
    double before = 0, after = 0;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
            for (int64_t v = 0; v < V; ++v) {
                const size_t i = (size_t)((b * T + t) * V + v);
                (t < s ? before : after) = std::max(t < s ? before : after, std::abs(out[i] - base[i]));
            }
    BOOST_TEST(before < 1e-12);
    BOOST_TEST(after > 1e-6);
}

BOOST_AUTO_TEST_CASE(gradient_of_every_parameter_matches_finite_difference) {
    // <∇L, u> against (L(θ + εu) − L(θ − εu)) / 2ε along a random direction u
    // over all parameters (JAX's cheap check), windowed with persistent tokens.
    TransformerConfig c = tiny();
    c.n_persistent = 2;
    c.window = 3;
    c.attn_block = 2;
    c.tie_embeddings = false;
    auto m = make_transformer(c);
    Generator g(6);
    IndexTensor ids = random_tokens(2, 7, c.vocab_size, g), targets = random_tokens(2, 7, c.vocab_size, g);
    auto named = m->named_parameters();
    TensorList params = m->parameters();
    TensorList grads = grad({cross_entropy(m->forward(ids), targets).loss}, params);
    std::map<std::string, Tensor> original, plus, minus;
    const double eps = 1e-6;
    double analytic = 0;
    for (size_t i = 0; i < named.size(); ++i) {
        Tensor u = randn(named[i].second.shape(), g, DType::f64);
        analytic += sum(grads[i] * u).item();
        BOOST_TEST_CONTEXT(named[i].first) { BOOST_TEST(sum(square(grads[i])).item() > 0.0); }
        original[named[i].first] = raw::clone(named[i].second);
        plus[named[i].first] = raw::axpby(named[i].second, 1.0, u, eps);
        minus[named[i].first] = raw::axpby(named[i].second, 1.0, u, -eps);
    }
    auto loss_at = [&](const std::map<std::string, Tensor>& p) {
        m->load_parameters(p);
        NoGradGuard ng;
        return cross_entropy(m->forward(ids), targets).loss.item();
    };
    const double numeric = (loss_at(plus) - loss_at(minus)) / (2 * eps);
    loss_at(original);
    BOOST_TEST(std::abs(numeric - analytic) <= 1e-5 + 1e-4 * std::abs(numeric),
               "numeric " << numeric << " vs analytic " << analytic);
}

BOOST_AUTO_TEST_CASE(learns_to_copy_with_adamw) {
    // Sequence: 8 random symbols, a separator, the same 8 symbols again. The
    // model sees the first 16 tokens and predicts the next one; the loss
    // counts only the copied half, which needs attention to look back 9
    // positions (chance level: log 14 ≈ 2.64 nats).
    const int64_t n = 8, T = 2 * n, B = 16, V = 16, sep = 1;
    TransformerConfig c;
    c.vocab_size = V;
    c.d_model = 32;
    c.n_heads = 2;
    c.n_layers = 2;
    c.mlp_hidden = 64;
    c.seed = 11;
    auto m = make_transformer(c);
    AdamWOptions ao;
    ao.lr = 1e-2;
    ao.weight_decay = 0.0;
    AdamW opt(m->named_parameters(), ao);
    Generator g(12);
    auto batch = [&](IndexTensor& in, IndexTensor& tg) {
        std::vector<int64_t> x((size_t)(B * T)), y((size_t)(B * T), kIgnoreIndex);
        for (int64_t b = 0; b < B; ++b) {
            std::vector<int64_t> s(2 * n + 1);
            for (int64_t i = 0; i < n; ++i) s[(size_t)i] = s[(size_t)(n + 1 + i)] = 2 + (int64_t)g.below(V - 2);
            s[(size_t)n] = sep;
            for (int64_t t = 0; t < T; ++t) {
                x[(size_t)(b * T + t)] = s[(size_t)t];
                if (t >= n) y[(size_t)(b * T + t)] = s[(size_t)(t + 1)];
            }
        }
        in = IndexTensor({B, T}, x);
        tg = IndexTensor({B, T}, y);
    };
    double first = 0, last = 0;
    Accuracy acc;
    const int steps = 150;
    for (int step = 0; step < steps; ++step) {
        IndexTensor in, tg;
        batch(in, tg);
        Tensor logits = m->forward(in);
        Tensor loss = cross_entropy(logits, tg).loss;
        if (step == 0) first = loss.item();
        if (step >= steps - 10) {
            last += loss.item() / 10;
            Accuracy a = accuracy(logits, tg);
            acc.correct += a.correct;
            acc.count += a.count;
        }
        opt.zero_grad();
        backward(loss);
        clip_grad_norm(m->parameters(), 1.0);
        opt.step();
    }
    BOOST_TEST_MESSAGE("copy task: loss " << first << " -> " << last << ", accuracy " << acc.value());
    BOOST_TEST(first > 2.0);
    BOOST_TEST(last < 0.3 * first);
    BOOST_TEST(acc.value() > 0.8);
}

BOOST_AUTO_TEST_CASE(errors) {
    TransformerConfig c = tiny();
    c.n_heads = 3;
    BOOST_TEST(error_of<std::invalid_argument>([&] { make_transformer(c); }).find("divisible by n_heads") != std::string::npos);
    auto m = make_transformer(tiny());
    BOOST_TEST(error_of<std::invalid_argument>([&] { m->forward(IndexTensor({4}, {1, 2, 3, 4})); }).find("(B, T)") != std::string::npos);
    BOOST_CHECK_THROW(m->forward(IndexTensor({1, 2}, {1, 11})), std::exception);  // id outside [0, V)
}

BOOST_AUTO_TEST_SUITE_END()
