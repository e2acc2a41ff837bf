// The SPEC §2 mixers on the memory layer (miras/mixers.h): mag and mal
// against their definitions written out from their parts, causality, the
// persistent tokens seen at every position whatever the window, the
// gradient of x and of every parameter against central differences (f64,
// second order through the memory), the model config, and errors.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <map>

#include "miras/mixers.h"
#include "op_test_util.h"
#include "train/model_config.h"

using namespace miras;
using namespace miras::test;

namespace {

constexpr int64_t kD = 8, kH = 2, kNp = 2;

AttentionConfig attn_cfg(int64_t window, int64_t Np) {
    AttentionConfig a;
    a.d_model = kD;
    a.n_heads = kH;
    a.window = window;
    a.n_persistent = Np;
    a.block_size = 2;
    a.dtype = DType::f64;
    return a;
}

MemoryConfig mem_cfg(const std::string& memory = "linear") {
    MemoryConfig m;
    m.d = kD;
    m.heads = kH;
    m.memory = memory;
    m.expansion = 1;
    m.bias = "l2";
    m.retention = "l2";
    m.algorithm = "momentum";
    m.chunk = 2;
    m.dtype = DType::f64;
    m.seed = 11;
    return m;
}

std::shared_ptr<Mixer> make(const std::string& kind, int64_t window, int64_t Np, const std::string& memory = "linear") {
    Generator g(5);
    if (kind == "mag") return std::make_shared<MagMixer>(attn_cfg(window, Np), g, mem_cfg(memory));
    return std::make_shared<MalMixer>(attn_cfg(window, Np), g, mem_cfg(memory));
}

// RMSNorm over the last dim, written out: x / sqrt(mean(x²) + eps) ⊙ w.
Tensor rms_by_hand(const Tensor& x, const Tensor& w) {
    return mul(div(x, sqrt(add(mean(square(x), {-1}, true), 1e-6))), w);
}

// Rows [from, to) of (B, T, d) as a flat vector.
std::vector<double> rows(const Tensor& x, int64_t from, int64_t to) {
    return narrow(x, 1, from, to - from).to_vector();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(miras_mixers)

BOOST_AUTO_TEST_CASE(parameter_names_and_shapes) {
    auto mag = make("mag", 3, kNp), mal = make("mal", 3, kNp);
    std::map<std::string, Shape> mg, ml;
    for (auto& [n, t] : mag->named_parameters()) mg[n] = t.shape();
    for (auto& [n, t] : mal->named_parameters()) ml[n] = t.shape();
    for (const char* w : {"W_Q", "W_K", "W_V", "W_O"}) {
        BOOST_TEST((mg.at(std::string("attn.") + w) == Shape{kD, kD}));
        BOOST_TEST((ml.at(std::string("attn.") + w) == Shape{kD, kD}));
    }
    BOOST_TEST((mg.at("attn.persistent") == Shape{kNp, kD}));  // mag: P shared through the attention
    BOOST_TEST((ml.at("persistent") == Shape{kNp, kD}));       // mal: P is the mixer's
    BOOST_TEST(ml.count("attn.persistent") == 0u);
    BOOST_TEST((mg.at("norm_a.weight") == Shape{kD}));
    BOOST_TEST((mg.at("norm_b.weight") == Shape{kD}));
    BOOST_TEST(mg.count("memory.W_Q") == 1u);
    BOOST_TEST(ml.count("memory.W_Q") == 1u);
    // Without persistent tokens there is no P at all.
    BOOST_TEST(make("mag", 0, 0)->named_parameters().size() == mg.size() - 1);
    BOOST_TEST(make("mal", 0, 0)->named_parameters().size() == ml.size() - 1);
}

BOOST_AUTO_TEST_CASE(mag_is_its_definition) {
    // y = SWA(w)([P ; x]), m = Mem([P ; x]) without the P rows,
    // o = RMSNorm_a(y) ⊙ σ(RMSNorm_b(m)).
    Generator g(1);
    auto mix = std::make_shared<MagMixer>(attn_cfg(3, kNp), g, mem_cfg());
    const int64_t B = 2, T = 7;
    // Norm weights apart from their initial ones, so mixing them up shows.
    raw::copy_(mix->norm_a().weight(), randn({kD}, g, DType::f64));
    raw::copy_(mix->norm_b().weight(), randn({kD}, g, DType::f64));
    Tensor x = randn({B, T, kD}, g, DType::f64);
    const Attention& a = mix->attention();
    Tensor y = self_attention(x, a.W_Q(), a.W_K(), a.W_V(), a.W_O(), a.persistent(), a.config());
    Tensor h = cat({expand(unsqueeze(a.persistent(), 0), {B, kNp, kD}), x}, 1);
    Tensor m = narrow(mix->memory().forward(h), 1, kNp, T);
    Tensor want = mul(rms_by_hand(y, mix->norm_a().weight()), sigmoid(rms_by_hand(m, mix->norm_b().weight())));
    BOOST_TEST(max_abs_diff(mix->forward(x).to_vector(), want.to_vector()) < 1e-12);
}

BOOST_AUTO_TEST_CASE(mal_with_window_one_is_the_memory_then_the_value_path) {
    // A window of 1 and no P: each token attends only to itself (softmax over
    // one key is 1), so o = Mem(x) W_V W_O.
    Generator g(2);
    auto mix = std::make_shared<MalMixer>(attn_cfg(1, 0), g, mem_cfg());
    Tensor x = randn({2, 6, kD}, g, DType::f64);
    const Attention& a = mix->attention();
    Tensor want = matmul(matmul(mix->memory().forward(x), a.W_V()), a.W_O());
    BOOST_TEST(max_abs_diff(mix->forward(x).to_vector(), want.to_vector()) < 1e-12);
}

BOOST_AUTO_TEST_CASE(mal_attends_over_the_memory_outputs_at_p_and_x) {
    // With P: the attention's keys are the memory's outputs at all N_p + T
    // positions, its queries those at x's, the first N_p always visible.
    Generator g(3);
    auto mix = std::make_shared<MalMixer>(attn_cfg(2, kNp), g, mem_cfg());
    const int64_t B = 2, T = 6;
    Tensor x = randn({B, T, kD}, g, DType::f64);
    Tensor h = cat({expand(unsqueeze(mix->persistent(), 0), {B, kNp, kD}), x}, 1);
    Tensor y = mix->memory().forward(h);  // (B, N_p + T, d)
    const Attention& a = mix->attention();
    Tensor want = self_attention(narrow(y, 1, kNp, T), a.W_Q(), a.W_K(), a.W_V(), a.W_O(), narrow(y, 1, 0, kNp),
                                 mix->attention_config());
    BOOST_TEST(max_abs_diff(mix->forward(x).to_vector(), want.to_vector()) < 1e-12);
}

BOOST_AUTO_TEST_CASE(causal_and_persistent_tokens_seen_everywhere) {
    for (const std::string kind : {"mag", "mal"})
        for (const std::string memory : {"linear", "mlp"}) {
            BOOST_TEST_CONTEXT(kind << " / " << memory) {
                auto mix = make(kind, 2, kNp, memory);
                Generator g(4);
                const int64_t T = 9, t0 = 5;
                Tensor x = randn({2, T, kD}, g, DType::f64);
                Tensor x2 = raw::clone(x);
                x2.data<double>()[(size_t)(t0 * kD + 3)] += 0.5;  // sequence 0, token t0
                Tensor o = mix->forward(x), o2 = mix->forward(x2);
                BOOST_TEST(max_abs_diff(rows(o, 0, t0), rows(o2, 0, t0)) == 0.0);   // the past is untouched
                BOOST_TEST(max_abs_diff(rows(o, t0, T), rows(o2, t0, T)) > 1e-9);  // the future sees it
                // The last token, far outside a window of 2 from the start, still depends on P.
                Tensor P = kind == "mag" ? std::static_pointer_cast<MagMixer>(mix)->attention().persistent()
                                         : std::static_pointer_cast<MalMixer>(mix)->persistent();
                Tensor gP = grad({sum(narrow(mix->forward(x), 1, T - 1, 1))}, {P})[0];
                BOOST_TEST(std::sqrt(sum(square(gP)).item()) > 1e-6);
            }
        }
}

BOOST_AUTO_TEST_CASE(gradients_of_x_and_every_parameter_match_central_differences) {
    // Per tensor, <∇L, u> against (L(θ + εu) − L(θ − εu)) / 2ε along a random
    // direction u, so a wrong gradient in one parameter cannot hide behind
    // the others. The memory's parameters are reached through its inner
    // gradient steps (second order).
    for (const std::string kind : {"mag", "mal"})
        for (const std::string memory : {"linear", "mlp"}) {
            auto mix = make(kind, 2, kNp, memory);
            Generator g(6);
            Tensor x = set_requires_grad(randn({1, 5, kD}, g, DType::f64));
            Tensor R = randn({1, 5, kD}, g, DType::f64);
            auto named = mix->named_parameters();
            TensorList wrt = {x};
            for (auto& [n, t] : named) wrt.push_back(t);
            TensorList grads = grad({sum(mul(mix->forward(x), R))}, wrt);
            auto loss_at = [&](const Tensor& xv) {
                NoGradGuard ng;
                return sum(mul(mix->forward(xv), R)).item();
            };
            const double eps = 1e-6;
            for (size_t i = 0; i < wrt.size(); ++i) {
                const std::string name = i == 0 ? "x" : named[i - 1].first;
                BOOST_TEST_CONTEXT(kind << " / " << memory << ": " << name) {
                    Tensor u = randn(wrt[i].shape(), g, DType::f64);
                    const double analytic = sum(mul(grads[i], u)).item();
                    double numeric;
                    if (i == 0) {
                        numeric = (loss_at(raw::axpby(x, 1.0, u, eps)) - loss_at(raw::axpby(x, 1.0, u, -eps))) / (2 * eps);
                    } else {
                        std::map<std::string, Tensor> values;  // load_parameters takes them all
                        for (auto& [n, t] : named) values[n] = raw::clone(t);
                        const Tensor orig = values[name];
                        values[name] = raw::axpby(orig, 1.0, u, eps);
                        mix->load_parameters(values);
                        const double lp = loss_at(x);
                        values[name] = raw::axpby(orig, 1.0, u, -eps);
                        mix->load_parameters(values);
                        const double lm = loss_at(x);
                        values[name] = orig;
                        mix->load_parameters(values);
                        numeric = (lp - lm) / (2 * eps);
                    }
                    BOOST_TEST(std::abs(numeric - analytic) <= 1e-6 + 1e-4 * std::abs(numeric),
                               "numeric " << numeric << " vs analytic " << analytic);
                }
            }
        }
}

BOOST_AUTO_TEST_CASE(model_config_builds_each_mixer) {
    for (const std::string mixer : {"mag", "mal"}) {
        BOOST_TEST_CONTEXT(mixer) {
            RunConfig rc = default_run_config({"model.mixer=" + mixer, "model.window=4", "model.n_persistent=2",
                                               "model.d=16", "model.heads=2", "memory.memory=mlp"});
            auto model = build_model(rc.model);
            std::map<std::string, Shape> p;
            for (auto& [n, t] : model->named_parameters()) p[n] = t.shape();
            const std::string P = mixer == "mag" ? "blocks.1.mixer.attn.persistent" : "blocks.1.mixer.persistent";
            BOOST_TEST((p.at(P) == Shape{2, 16}));
            BOOST_TEST(p.count("blocks.1.mixer.memory.W_Q") == 1u);
            const double f = model->forward_flops_per_token(32);
            BOOST_TEST(f > 0.0);
            // The same settings with lmm have no attention and fewer FLOPs.
            RunConfig lmm = default_run_config({"model.d=16", "model.heads=2", "memory.memory=mlp"});
            BOOST_TEST(build_model(lmm.model)->forward_flops_per_token(32) < f);
        }
    }
    // lmm has no attention, so window and n_persistent are an error there.
    const std::string err = error_of([] { default_run_config({"model.mixer=lmm", "model.n_persistent=2"}); });
    BOOST_TEST(err.find("model.n_persistent") != std::string::npos, err);
    BOOST_TEST(err.find("\"mag\"") != std::string::npos, err);
    // [memory] rules apply to the hybrids too.
    const std::string err2 = error_of([] { default_run_config({"model.mixer=mal", "memory.fixed_gates.eta=0.5"}); });
    BOOST_TEST(err2.find("eta") != std::string::npos, err2);
}

BOOST_AUTO_TEST_CASE(errors_name_what_disagrees) {
    Generator g(7);
    MemoryConfig other = mem_cfg();
    other.heads = 4;
    std::string err = error_of<std::invalid_argument>([&] { MagMixer(attn_cfg(0, 0), g, other); });
    BOOST_TEST(err.find("heads 2") != std::string::npos, err);
    BOOST_TEST(err.find("heads 4") != std::string::npos, err);
    other = mem_cfg();
    other.dtype = DType::f32;
    err = error_of<std::invalid_argument>([&] { MalMixer(attn_cfg(0, 0), g, other); });
    BOOST_TEST(err.find("f32") != std::string::npos, err);
    auto mix = make("mal", 0, kNp);
    err = error_of<std::invalid_argument>([&] { mix->forward(randn({1, 3, 5}, g, DType::f64)); });
    BOOST_TEST(err.find("(1, 3, 5)") != std::string::npos, err);
}

BOOST_AUTO_TEST_SUITE_END()
