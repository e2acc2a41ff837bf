// The docs/math.md §2 mixers on the memory layer (miras/mixers.h): mag, mal and mac
// against their definitions written out from their parts, streaming in
// pieces against the whole forward, causality, the
// persistent tokens seen at every position whatever the window, the
// gradient of x and of every parameter against central differences (f64,
// second order through the memory), the model config, and errors.
#include <boost/test/unit_test.hpp>

#include <array>
#include <cmath>
#include <map>

#include "miras/mixers.h"
#include "miras/scan.h"
#include "op_test_util.h"
#include "train/model_config.h"
#include "train/trainer.h"

using namespace miras;
using namespace miras::test;

namespace {

constexpr int64_t kD = 8, kH = 2, kNp = 2;

AttentionConfig attn_cfg(int64_t window, int64_t Np, int64_t conv = 0) {
    AttentionConfig a;
    a.conv = conv;
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

// mac has no window (full attention within a segment of kSegment tokens).
constexpr int64_t kSegment = 3;
std::shared_ptr<Mixer> make(const std::string& kind, int64_t window, int64_t Np, const std::string& memory = "linear",
                            int64_t conv = 0, MacWrite write = MacWrite::attention) {
    Generator g(5);
    if (kind == "mag") return std::make_shared<MagMixer>(attn_cfg(window, Np, conv), g, mem_cfg(memory));
    if (kind == "mac")
        return std::make_shared<MacMixer>(attn_cfg(0, Np, conv), g, mem_cfg(memory), kSegment, ScanMode::chunked, write);
    return std::make_shared<MalMixer>(attn_cfg(window, Np, conv), g, mem_cfg(memory));
}

Tensor persistent_of(const std::string& kind, const std::shared_ptr<Mixer>& mix) {
    if (kind == "mag") return std::static_pointer_cast<MagMixer>(mix)->attention().persistent();
    if (kind == "mac") return std::static_pointer_cast<MacMixer>(mix)->attention().persistent();
    return std::static_pointer_cast<MalMixer>(mix)->persistent();
}

// RMSNorm over the last dim, written out: x / sqrt(mean(x²) + eps) ⊙ w.
Tensor rms_by_hand(const Tensor& x, const Tensor& w) {
    return mul(div(x, sqrt(add(mean(square(x), {-1}, true), 1e-6))), w);
}

// Rows [from, to) of (B, T, d) as a flat vector.
std::vector<double> rows(const Tensor& x, int64_t from, int64_t to) {
    return narrow(x, 1, from, to - from).to_vector();
}

// MAC's attention written out: keys and values over Ŝ = [P ; h ; S] at the
// RoPE positions of a full segment of C (P at 0 … N_p − 1, h_j at N_p + j,
// S_j at N_p + C + j, whatever n <= C), queries S_i at N_p + C + i; each key
// carries the token it belongs to (P: none, h_j and S_j: j), and query i sees
// a key iff that token is not after i. zS: S's q, k, v (by default S W_Q,
// S W_K, S W_V; the attention's conv makes them the convolved ones).
Tensor mac_attention_by_hand(const Attention& a, const Tensor& h, const Tensor& S, int64_t C,
                             std::array<Tensor, 3> zS = {}) {
    const int64_t B = S.size(0), n = S.size(1), Tk = kNp + 2 * n;
    if (!zS[0].defined()) zS = {matmul(S, a.W_Q()), matmul(S, a.W_K()), matmul(S, a.W_V())};
    Tensor P = expand(unsqueeze(a.persistent(), 0), {B, kNp, kD});
    std::vector<int64_t> pos_q, pos_k, token;
    for (int64_t i = 0; i < n; ++i) pos_q.push_back(kNp + C + i);
    for (int64_t j = 0; j < kNp + n; ++j) pos_k.push_back(j);
    for (int64_t j = 0; j < n; ++j) pos_k.push_back(kNp + C + j);
    for (int64_t j = 0; j < kNp; ++j) token.push_back(-1);
    for (int64_t r = 0; r < 2; ++r)
        for (int64_t j = 0; j < n; ++j) token.push_back(j);
    std::vector<bool> visible;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < Tk; ++j) visible.push_back(token[(size_t)j] <= i);
    Tensor q = rope(split_heads(zS[0], kH), pos_q);
    Tensor k = rope(split_heads(cat({matmul(P, a.W_K()), matmul(h, a.W_K()), zS[1]}, 1), kH), pos_k);
    Tensor v = split_heads(cat({matmul(P, a.W_V()), matmul(h, a.W_V()), zS[2]}, 1), kH);
    return matmul(merge_heads(attention_masked(q, k, v, visible)), a.W_O());
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

BOOST_AUTO_TEST_CASE(mac_is_its_definition) {
    // Per segment S (3 tokens; T = 8: segments 3, 3, 2, the last laid out as
    // the first 2 of a full segment): h = the read of the memory at the
    // weights left by the previous segments' writes, through the layer's
    // output stage; y = attention at S over [P ; h ; S]; the
    // memory then writes y, and o = y ⊙ σ(Mem(y)).
    Generator g(8);
    auto mix = std::make_shared<MacMixer>(attn_cfg(0, kNp), g, mem_cfg("mlp"), 3);
    const int64_t B = 2, T = 8;
    Tensor x = randn({B, T, kD}, g, DType::f64);
    MirasLayer& mem = mix->memory();
    const Attention& a = mix->attention();
    MemoryState reads = mem.initial_state(B), writes = mem.initial_state(B);
    Tensor q = mem.project(x, reads).q;  // (B, H, T, d_h): q of the inputs, one causal conv over x
    TensorList outs;
    for (int64_t t0 = 0; t0 < T; t0 += 3) {
        const int64_t n = std::min<int64_t>(3, T - t0);
        Tensor S = narrow(x, 1, t0, n);
        Tensor h = mem.output(S, memory_retrieve(mem.config(), narrow(q, 2, t0, n), writes));
        Tensor y = mac_attention_by_hand(a, h, S, 3);
        outs.push_back(mul(y, sigmoid(mem.forward(y, &writes))));
    }
    BOOST_TEST(max_abs_diff(mix->forward(x).to_vector(), cat(outs, 1).to_vector()) < 1e-12);
    // One segment: the read is at W(0) = φ(A_0) for every token, and the write
    // starts from A_0, i.e. the memory layer run on y alone.
    Generator g2(8);
    auto one = std::make_shared<MacMixer>(attn_cfg(0, kNp), g2, mem_cfg("mlp"), 64);
    Tensor x1 = narrow(x, 1, 0, 5);
    MemoryState fresh = one->memory().initial_state(B), reads1 = one->memory().initial_state(B);
    Tensor h = one->memory().output(x1, memory_retrieve(one->memory().config(), one->memory().project(x1, reads1).q, fresh));
    Tensor y = mac_attention_by_hand(one->attention(), h, x1, 64);
    Tensor want = mul(y, sigmoid(one->memory().forward(y)));
    BOOST_TEST(max_abs_diff(one->forward(x1).to_vector(), want.to_vector()) < 1e-12);
}

BOOST_AUTO_TEST_CASE(mac_with_attention_conv_or_input_write_is_its_definition) {
    // The attention's conv (3 taps) runs over x, across segment borders, and
    // gives S's queries, keys and values; the reads h and P are not convolved.
    // MacWrite::input: the memory writes S instead of y, and the gate reads it at S.
    for (const MacWrite write : {MacWrite::attention, MacWrite::input})
        for (const int64_t conv : {int64_t{0}, int64_t{3}}) {
            if (write == MacWrite::attention && conv == 0) continue;  // mac_is_its_definition
            BOOST_TEST_CONTEXT("write " << (write == MacWrite::input ? "input" : "attention") << ", conv " << conv) {
                Generator g(9);
                auto mix = std::make_shared<MacMixer>(attn_cfg(0, kNp, conv), g, mem_cfg("mlp"), 3, ScanMode::chunked,
                                                      write);
                BOOST_TEST((mix->write() == write));
                const int64_t B = 2, T = 8;
                Tensor x = randn({B, T, kD}, g, DType::f64);
                MirasLayer& mem = mix->memory();
                const Attention& a = mix->attention();
                auto project = [&](const Tensor& W, const Tensor& c) {
                    return conv > 0 ? conv_by_hand(matmul(x, W), c) : matmul(x, W);
                };
                const std::array<Tensor, 3> z = {project(a.W_Q(), a.convs().q), project(a.W_K(), a.convs().k),
                                                 project(a.W_V(), a.convs().v)};
                MemoryState reads = mem.initial_state(B), writes = mem.initial_state(B);
                Tensor q = mem.project(x, reads).q;
                TensorList outs;
                for (int64_t t0 = 0; t0 < T; t0 += 3) {
                    const int64_t n = std::min<int64_t>(3, T - t0);
                    Tensor S = narrow(x, 1, t0, n);
                    Tensor h = mem.output(S, memory_retrieve(mem.config(), narrow(q, 2, t0, n), writes));
                    Tensor y = mac_attention_by_hand(
                        a, h, S, 3, {narrow(z[0], 1, t0, n), narrow(z[1], 1, t0, n), narrow(z[2], 1, t0, n)});
                    outs.push_back(mul(y, sigmoid(mem.forward(write == MacWrite::input ? S : y, &writes))));
                }
                BOOST_TEST(max_abs_diff(mix->forward(x).to_vector(), cat(outs, 1).to_vector()) < 1e-12);
            }
        }
}

BOOST_AUTO_TEST_CASE(causal_and_persistent_tokens_seen_everywhere) {
    // mac: t0 = 5 is in the middle of its second segment (3 tokens), so a
    // later token of the same segment must not leak into t < t0 either.
    for (const std::string kind : {"mag", "mal", "mac"})
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
                Tensor P = persistent_of(kind, mix);
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
    // "mac+": mac with the attention's conv (2 taps) and the input written.
    for (const std::string kind : {"mag", "mal", "mac", "mac+"})
        for (const std::string memory : {"linear", "mlp"}) {
            auto mix = kind == "mac+" ? make("mac", 0, kNp, memory, 2, MacWrite::input) : make(kind, 2, kNp, memory);
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
    for (const std::string mixer : {"mag", "mal", "mac"}) {
        BOOST_TEST_CONTEXT(mixer) {
            RunConfig rc = default_run_config({"model.mixer=" + mixer, mixer == "mac" ? "model.segment=8" : "model.window=4",
                                               "model.n_persistent=2", "model.d=16", "model.heads=2",
                                               "memory.memory=mlp"});
            auto model = build_model(rc.model);
            std::map<std::string, Shape> p;
            for (auto& [n, t] : model->named_parameters()) p[n] = t.shape();
            const std::string P = mixer == "mal" ? "blocks.1.mixer.persistent" : "blocks.1.mixer.attn.persistent";
            BOOST_TEST((p.at(P) == Shape{2, 16}));
            BOOST_TEST(p.count("blocks.1.mixer.memory.W_Q") == 1u);
            BOOST_TEST(p.count("blocks.1.mixer.attn.conv_k") == 0u);  // model.attn_conv = 0
            const double f = model->forward_flops_per_token(32);
            BOOST_TEST(f > 0.0);
            // The same settings with lmm have no attention and fewer FLOPs.
            RunConfig lmm = default_run_config({"model.d=16", "model.heads=2", "memory.memory=mlp"});
            BOOST_TEST(build_model(lmm.model)->forward_flops_per_token(32) < f);
        }
    }
    // model.attn_conv gives every hybrid's attention its convolutions, and
    // model.mac_write reaches MAC.
    for (const std::string mixer : {"attn", "mag", "mal", "mac"}) {
        RunConfig rc = default_run_config({"model.mixer=" + mixer, "model.attn_conv=3", "model.d=16", "model.heads=2",
                                           "model.mac_write=input"});
        auto model = build_model(rc.model);
        std::map<std::string, Shape> p;
        for (auto& [n, t] : model->named_parameters()) p[n] = t.shape();
        const std::string at = mixer == "attn" ? "blocks.0.mixer.conv_v" : "blocks.0.mixer.attn.conv_v";
        BOOST_TEST_CONTEXT(mixer) { BOOST_TEST((p.count(at) == 1u && p.at(at) == Shape{16, 3})); }
        if (mixer == "mac") {
            auto* mac = dynamic_cast<MacMixer*>(&model->blocks()[0]->mixer());
            BOOST_REQUIRE(mac);
            BOOST_TEST((mac->write() == MacWrite::input));
        }
    }
    // lmm has no attention, so window and n_persistent are an error there.
    const std::string err = error_of([] { default_run_config({"model.mixer=lmm", "model.n_persistent=2"}); });
    BOOST_TEST(err.find("model.n_persistent") != std::string::npos, err);
    BOOST_TEST(err.find("\"mag\"") != std::string::npos, err);
    // mac's attention is full within a segment: a window is an error naming the key.
    const std::string err3 = error_of([] { default_run_config({"model.mixer=mac", "model.window=4"}); });
    BOOST_TEST(err3.find("'model.window' = 4") != std::string::npos, err3);
    BOOST_TEST(err3.find("model.segment") != std::string::npos, err3);
    BOOST_TEST(error_of([] { default_run_config({"model.segment=0"}); }).find("model.segment") != std::string::npos);
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
    err = error_of<std::invalid_argument>([&] { MalMixer(attn_cfg(0, -1), g, mem_cfg()); });
    BOOST_TEST(err.find("n_persistent must be >= 0, got -1") != std::string::npos, err);
    err = error_of<std::invalid_argument>([&] { MacMixer(attn_cfg(0, 0), g, mem_cfg(), 0); });
    BOOST_TEST(err.find("segment must be >= 1, got 0") != std::string::npos, err);
    err = error_of<std::invalid_argument>([&] { MacMixer(attn_cfg(2, 0), g, mem_cfg(), 4); });
    BOOST_TEST(err.find("window must be 0") != std::string::npos, err);
    auto mix = make("mal", 0, kNp);
    err = error_of<std::invalid_argument>([&] { mix->forward(randn({1, 3, 5}, g, DType::f64)); });
    BOOST_TEST(err.find("(1, 3, 5)") != std::string::npos, err);
}

namespace {

// x fed to a stream of mix in pieces of the given lengths (their sum is T),
// the outputs put back together along T.
Tensor streamed(Mixer& mix, const Tensor& x, const std::vector<int64_t>& pieces) {
    auto st = mix.begin_stream(x.size(0));
    BOOST_REQUIRE(st != nullptr);
    TensorList outs;
    int64_t t0 = 0;
    for (int64_t n : pieces) {
        Tensor o = mix.forward_stream(narrow(x, 1, t0, n), *st);
        BOOST_REQUIRE((o.shape() == Shape{x.size(0), n, kD}));
        outs.push_back(o);
        t0 += n;
    }
    BOOST_REQUIRE(t0 == x.size(1));
    return cat(outs, 1);
}

}  // namespace

BOOST_AUTO_TEST_CASE(streamed_in_pieces_is_the_whole_forward) {
    // T = 20 with the memory's chunks of 2 and mac's segments of 3: the cuts
    // end inside chunks and segments, one piece (2 + 5) spans two segment
    // boundaries, and the last segment is short (20 = 6 · 3 + 2). (Longer
    // sequences drift apart by more than 1e-10: the mlp memory amplifies
    // rounding, the layer itself fed a token at a time included.) mag and mal with a window of 3 (the kept keys are trimmed to the
    // last 2 tokens) and without one, with and without P.
    const int64_t B = 2, T = 20;
    const std::vector<std::vector<int64_t>> cuts = {
        std::vector<int64_t>(T, 1),                    // one token at a time
        {3, 1, 5, 2, 7, 1, 1},                         // uneven
        {2, 5, 1, 1, 9, 2},                            // 2..7 spans the segment starts 3 and 6
        {T - 1, 1},
        {T},
    };
    // conv: the attention's convolution (its tails carried across pieces);
    // input: mac writes its segments' inputs.
    struct Case { std::string kind; int64_t window, Np, conv = 0; bool input = false; };
    const std::vector<Case> cases = {{"lmm", 0, 0},    {"mag", 3, kNp}, {"mag", 0, 0},       {"mag", 1, kNp},
                                     {"mal", 3, kNp},  {"mal", 0, 0},   {"mal", 1, kNp},     {"mac", 0, kNp},
                                     {"mac", 0, 0},    {"mag", 3, kNp, 4}, {"mal", 3, kNp, 4}, {"mac", 0, kNp, 4},
                                     {"mac", 0, kNp, 4, true}};
    for (const Case& c : cases)
        for (const std::string memory : {"linear", "mlp"}) {
            auto mix = c.kind == "lmm" ? std::make_shared<MemoryMixer>(mem_cfg(memory))
                                       : make(c.kind, c.window, c.Np, memory, c.conv,
                                              c.input ? MacWrite::input : MacWrite::attention);
            Generator g(12);
            Tensor x = randn({B, T, kD}, g, DType::f64);
            const std::vector<double> whole = mix->forward(x).to_vector();
            for (size_t i = 0; i < cuts.size(); ++i)
                BOOST_TEST_CONTEXT(c.kind << " (window " << c.window << ", N_p " << c.Np << ", conv " << c.conv << (c.input ? ", input write" : "") << ") / " << memory
                                          << ", cut " << i) {
                    BOOST_TEST(max_abs_diff(streamed(*mix, x, cuts[i]).to_vector(), whole) < 1e-10);
                }
        }
}

BOOST_AUTO_TEST_CASE(gradients_flow_through_the_stream_across_pieces) {
    // The state carries the graph from piece to piece (it is not detached), so
    // a loss over the streamed outputs has the whole forward's gradients, for
    // x and every parameter: what training on a long sequence in pieces needs.
    const int64_t B = 2, T = 11;
    const std::vector<int64_t> cut = {3, 1, 4, 3};
    for (const std::string kind : {"lmm", "mag", "mal", "mac"}) {
        BOOST_TEST_CONTEXT(kind) {
            // The hybrids with the attention's conv: its tails carry the graph too.
            auto mix = kind == "lmm" ? std::make_shared<MemoryMixer>(mem_cfg("mlp")) : make(kind, 3, kNp, "mlp", 2);
            Generator g(15);
            Tensor x = set_requires_grad(randn({B, T, kD}, g, DType::f64));
            Tensor R = randn({B, T, kD}, g, DType::f64);
            TensorList wrt = {x};
            for (auto& [name, p] : mix->named_parameters()) wrt.push_back(p);
            TensorList whole = grad({sum(mul(mix->forward(x), R))}, wrt);
            TensorList piecewise = grad({sum(mul(streamed(*mix, x, cut), R))}, wrt);
            double worst = 0, largest = 0;
            for (size_t i = 0; i < wrt.size(); ++i) {
                worst = std::max(worst, max_abs_diff(piecewise[i].to_vector(), whole[i].to_vector()));
                for (double v : whole[i].to_vector()) largest = std::max(largest, std::abs(v));
            }
            BOOST_TEST(worst < 1e-10 * std::max(1.0, largest));
            BOOST_TEST(largest > 1e-3);  // the gradients are not all zero
        }
    }
}

BOOST_AUTO_TEST_CASE(mac_output_does_not_depend_on_the_length_after_it) {
    // forward of the first t tokens is the first t rows of forward of all T,
    // also when t ends inside a segment (the RoPE layout of a full segment):
    // what streaming a token at a time relies on.
    auto mix = make("mac", 0, kNp, "mlp");
    Generator g(13);
    const int64_t T = 8;
    Tensor x = randn({2, T, kD}, g, DType::f64);
    Tensor whole = mix->forward(x);
    for (int64_t t = 1; t < T; ++t)
        BOOST_TEST_CONTEXT("t = " << t) {
            BOOST_TEST(max_abs_diff(mix->forward(narrow(x, 1, 0, t)).to_vector(), rows(whole, 0, t)) < 1e-12);
        }
}

BOOST_AUTO_TEST_CASE(streams_are_independent_and_check_their_state) {
    // Two streams of one mixer do not share state; a state begun for another
    // batch, or by another kind of mixer, is a clear error.
    Generator g(14);
    Tensor x = randn({2, 6, kD}, g, DType::f64);
    for (const std::string kind : {"lmm", "mag", "mal", "mac"}) {
        BOOST_TEST_CONTEXT(kind) {
            auto mix = kind == "lmm" ? std::make_shared<MemoryMixer>(mem_cfg()) : make(kind, 2, kNp);
            auto a = mix->begin_stream(2), b = mix->begin_stream(2);
            Tensor oa = mix->forward_stream(narrow(x, 1, 0, 4), *a);
            Tensor ob = mix->forward_stream(narrow(x, 1, 0, 4), *b);  // b starts afresh
            BOOST_TEST(max_abs_diff(oa.to_vector(), ob.to_vector()) == 0.0);
            std::string err = error_of<std::invalid_argument>(
                [&] { mix->forward_stream(randn({3, 1, kD}, g, DType::f64), *a); });
            BOOST_TEST(err.find("batch of 2") != std::string::npos, err);
            BOOST_TEST(err.find("forward_stream") != std::string::npos, err);
            auto other = (kind == "lmm" ? make("mag", 0, 0) : std::make_shared<MemoryMixer>(mem_cfg()))->begin_stream(2);
            err = error_of<std::invalid_argument>([&] { mix->forward_stream(narrow(x, 1, 0, 1), *other); });
            BOOST_TEST(err.find("not begun by this kind of mixer") != std::string::npos, err);
            if (kind == "mag" || kind == "mal") {  // they share a state type, not a state
                auto twin = make(kind == "mag" ? "mal" : "mag", 2, kNp)->begin_stream(2);
                err = error_of<std::invalid_argument>([&] { mix->forward_stream(narrow(x, 1, 0, 1), *twin); });
                BOOST_TEST(err.find("not begun by this kind of mixer") != std::string::npos, err);
            }
            err = error_of<std::invalid_argument>([&] { mix->forward_stream(randn({2, 1, 5}, g, DType::f64), *a); });
            BOOST_TEST(err.find("(2, 1, 5)") != std::string::npos, err);
        }
    }
}

BOOST_AUTO_TEST_CASE(models_of_memory_mixers_stream_and_sample_as_a_whole) {
    // The whole path generation takes: build_model from a config, then
    // Transformer::forward_stream through blocks of each memory mixer. The
    // logits of a stream read in pieces equal one forward over all tokens,
    // and sampling through the stream draws what the windowed recompute draws
    // while everything fits in the window.
    const int64_t B = 2, T = 17, V = 64;  // the default MQAR vocabulary
    std::vector<int64_t> ids((size_t)(B * T));
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = (int64_t)((i * 7 + 3) % V);
    const IndexTensor tokens({B, T}, ids);
    for (const std::string mixer : {"lmm", "mag", "mal", "mac"}) {
        BOOST_TEST_CONTEXT(mixer) {
            std::vector<std::string> sets = {"model.mixer=" + mixer, "model.d=16", "model.heads=2",
                                             "model.dtype=\"f64\"",
                                             "memory.chunk=3", "memory.memory=mlp"};
            if (mixer == "mac") sets.push_back("model.segment=5");
            if (mixer == "mag" || mixer == "mal") sets.push_back("model.window=4");
            if (mixer != "lmm") sets.push_back("model.n_persistent=2");
            auto model = build_model(default_run_config(sets).model);
            BOOST_TEST(model->can_stream());
            const std::vector<double> whole = model->forward(tokens).to_vector();  // (B, T, V)
            for (const std::vector<int64_t>& cut : {std::vector<int64_t>(T, 1), std::vector<int64_t>{4, 1, 6, 2, 4}}) {
                TransformerStream st = model->begin_stream(B);
                std::vector<double> streamed;
                int64_t t0 = 0;
                for (int64_t n : cut) {
                    std::vector<int64_t> piece;
                    for (int64_t b = 0; b < B; ++b)
                        for (int64_t t = t0; t < t0 + n; ++t) piece.push_back(ids[(size_t)(b * T + t)]);
                    const std::vector<double> l = model->forward_stream(IndexTensor({B, n}, piece), st).to_vector();
                    // (B, n, V) -> rows t0 … t0 + n − 1 of each sequence
                    for (int64_t b = 0; b < B; ++b)
                        for (int64_t t = 0; t < n; ++t)
                            for (int64_t v = 0; v < V; ++v) {
                                const double want = whole[(size_t)((b * T + t0 + t) * V + v)];
                                const double got = l[(size_t)((b * n + t) * V + v)];
                                if (std::abs(got - want) > 1e-9) {
                                    BOOST_ERROR("row " << b << " token " << t0 + t << ": " << got << " vs " << want);
                                    return;
                                }
                            }
                    t0 += n;
                }
            }
            const std::vector<int64_t> prompt = {1, 5, 2};
            for (double temperature : {0.0, 1.0})
                BOOST_TEST((sample_tokens(*model, prompt, 10, temperature, 0, 3, 32) ==
                            sample_tokens(*model, prompt, 10, temperature, 0, 3, 32, {}, /*windowed=*/true)));
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
