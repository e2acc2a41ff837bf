// MirasLayer as a module: parameter names and layouts (shared with
// tests/torch_ref/miras_ref.py), initialisation, streaming, errors.
#include <boost/test/unit_test.hpp>

#include "op_test_util.h"

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "miras/bias.h"
#include "miras/layer.h"
#include "miras/retention.h"

using namespace miras;

using miras::test::error_of;
using miras::test::max_abs_diff;

namespace {

void check_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
    std::string msg = error_of(f);
    for (const auto& p : parts) BOOST_CHECK_MESSAGE(msg.find(p) != std::string::npos, "'" << p << "' not in: " << msg);
}

MemoryConfig base(const std::string& memory = "linear") {
    MemoryConfig c;
    c.d = 8;
    c.heads = 2;
    c.memory = memory;
    c.expansion = 2;
    c.theta_max = 0.5;
    c.dtype = DType::f64;
    return c;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(miras_layer)

// Names, order and shapes of miras_ref.param_names / init_params.
BOOST_AUTO_TEST_CASE(parameter_names_and_shapes) {
    MemoryConfig c = base("mlp");
    c.depth = 3;
    c.algorithm = "momentum";
    c.bias = "huber_mix";
    c.conv_bias = true;
    c.fixed_gates = {{"eta", 0.9}};
    MirasLayer layer(c);
    std::vector<std::pair<std::string, Shape>> want = {
        {"W_Q", {8, 8}},       {"W_K", {8, 8}},          {"W_V", {8, 8}},          {"W_G", {8, 8}},
        {"W_O", {8, 8}},       {"conv_q", {8, 4}},       {"conv_k", {8, 4}},       {"conv_v", {8, 4}},
        {"conv_q_b", {8}},     {"conv_k_b", {8}},        {"conv_v_b", {8}},        {"gate_theta_w", {8, 2}},
        {"gate_theta_b", {2}}, {"gate_alpha_w", {8, 2}}, {"gate_alpha_b", {2}},    {"gate_delta_w", {8, 2}},
        {"gate_delta_b", {2}}, {"A0_1", {2, 8, 4}},      {"A0_2", {2, 8, 8}},      {"A0_3", {2, 4, 8}},
        {"out_norm_w", {8}}};
    auto got = layer.named_parameters();
    BOOST_REQUIRE_EQUAL(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        BOOST_TEST(got[i].first == want[i].first);
        BOOST_TEST(shape_str(got[i].second.shape()) == shape_str(want[i].second));
        BOOST_TEST((got[i].second.dtype() == DType::f64));
    }

    // Linear attention: no A0, only the θ gate... fixed, so no gate at all.
    MemoryConfig la = base();
    la.bias = "dot";
    la.retention = "none";
    la.fixed_gates = {{"theta", 1.0}};
    la.fix_A0_zero = true;
    MirasLayer lin(la);
    std::vector<std::string> names;
    for (auto& [n, t] : lin.named_parameters()) names.push_back(n);
    std::vector<std::string> want_names = {"W_Q", "W_K", "W_V", "W_G", "W_O", "conv_q", "conv_k", "conv_v", "out_norm_w"};
    BOOST_TEST(names == want_names, boost::test_tools::per_element());
    BOOST_TEST(lin.A0().empty());

    MirasLayer one(base());
    BOOST_TEST(shape_str(one.param("A0").shape()) == "(2, 4, 4)");
    BOOST_CHECK_THROW(one.param("A0_1"), std::invalid_argument);
}

// docs/math.md §1.6: lq starts every matrix at ‖A_0‖_q = 1; elastic with std >= 3γ;
// the same seed gives the same parameters, another seed others.
BOOST_AUTO_TEST_CASE(initialisation) {
    MemoryConfig c = base("mlp");
    c.retention = "lq";
    c.q = 4;
    MirasLayer lq(c);
    for (const Tensor& a : lq.A0()) {
        std::vector<double> v = a.to_vector();
        const int64_t per = a.size(1) * a.size(2);
        for (int64_t h = 0; h < a.size(0); ++h) {
            double s = 0;
            for (int64_t i = 0; i < per; ++i) s += std::pow(std::abs(v[(size_t)(h * per + i)]), 4.0);
            BOOST_CHECK_CLOSE(std::pow(s, 0.25), 1.0, 1e-9);
        }
    }
    c.retention = "elastic";
    c.gamma = 0.5;  // larger than 1/sqrt(fan_in): the 3γ floor decides
    MirasLayer el(c);
    for (const Tensor& a : el.A0()) {
        std::vector<double> v = a.to_vector();
        double ss = 0;
        for (double x : v) ss += x * x;
        BOOST_TEST(std::sqrt(ss / (double)v.size()) > 0.8 * 3 * c.gamma);
    }
    MirasLayer el2(c);
    c.seed = 1;
    MirasLayer el3(c);
    BOOST_TEST(max_abs_diff(el.param("W_Q"), el2.param("W_Q")) == 0.0);
    BOOST_TEST(max_abs_diff(el.param("W_Q"), el3.param("W_Q")) > 0.0);
    // a0_scale multiplies A_0's draw (same seed), and nothing else.
    c = base("mlp");
    MirasLayer one(c);
    c.a0_scale = 3;
    MirasLayer three(c);
    for (size_t l = 0; l < one.A0().size(); ++l) {
        std::vector<double> a = one.A0()[l].to_vector(), b = three.A0()[l].to_vector();
        for (size_t i = 0; i < a.size(); ++i) BOOST_CHECK_SMALL(b[i] - 3 * a[i], 1e-12 * std::max(1.0, std::abs(b[i])));
    }
    BOOST_TEST(max_abs_diff(one.param("W_Q"), three.param("W_Q")) == 0.0);
}

// huber_mix's linear branch uses the configured ε: δ Σ_i sqrt(e_i² + ε);
// the quadratic branch does not depend on it.
BOOST_AUTO_TEST_CASE(huber_mix_linear_branch_uses_huber_eps) {
    MemoryConfig c = base();
    c.bias = "huber_mix";
    const std::vector<double> e = {0.3, -0.004, 0.0, 1.2};  // |e|₂ ≈ 1.24
    Tensor pred = from_vector(e, {1, 4}, DType::f64), v = zeros({1, 4}, DType::f64);
    for (double eps : {1e-6, 1e-2}) {
        c.huber_eps = eps;
        const double delta = 0.5;  // |e|₂ > δ: the linear branch
        double want = 0;
        for (double x : e) want += delta * std::sqrt(x * x + eps);
        Tensor got = bias_fn("huber_mix")(pred, v, full({1}, delta, DType::f64), c);
        BOOST_CHECK_CLOSE(got.item(), want, 1e-10);
        // inside the threshold: ½|e|², whatever ε
        Tensor quad = bias_fn("huber_mix")(pred, v, full({1}, 2.0, DType::f64), c);
        BOOST_CHECK_CLOSE(quad.item(), 0.5 * (0.09 + 0.000016 + 1.44), 1e-10);
    }
    c.huber_eps = 0;
    BOOST_CHECK_THROW(c.validate(), std::invalid_argument);
}

// gate_init: each learned gate starts at the value asked for (its bias is
// drawn around the inverse of the gate's map), and nothing else moves.
BOOST_AUTO_TEST_CASE(gate_init_sets_the_initial_gate_values) {
    MemoryConfig c = base("linear");
    c.algorithm = "momentum";
    c.bias = "huber_mix";
    c.theta_max = 0.5;
    MirasLayer plain(c);
    c.gate_init = {{"theta", 0.05}, {"eta", 0.3}, {"alpha", 0.002}, {"delta", 2.0}};
    MirasLayer set(c);
    auto sigmoid = [](double z) { return 1 / (1 + std::exp(-z)); };
    // The bias is N(0, 0.1²) + centre: the same draw, shifted by the centre.
    auto shift = [&](const std::string& g) {
        std::vector<double> a = plain.param("gate_" + g + "_b").to_vector(), b = set.param("gate_" + g + "_b").to_vector();
        for (size_t i = 1; i < a.size(); ++i) BOOST_CHECK_SMALL((b[i] - a[i]) - (b[0] - a[0]), 1e-12);
        return b[0] - a[0];  // new centre − old centre
    };
    BOOST_CHECK_CLOSE(0.5 * sigmoid(0 + shift("theta")), 0.05, 1e-9);
    BOOST_CHECK_CLOSE(sigmoid(1 + shift("eta")), 0.3, 1e-9);
    BOOST_CHECK_CLOSE(sigmoid(-2 + shift("alpha")), 0.002, 1e-9);
    BOOST_CHECK_CLOSE(std::log1p(std::exp(0 + shift("delta"))), 2.0, 1e-9);
    BOOST_TEST(max_abs_diff(plain.param("W_Q"), set.param("W_Q")) == 0.0);
    BOOST_TEST(max_abs_diff(plain.param("A0"), set.param("A0")) == 0.0);
    BOOST_TEST(max_abs_diff(plain.param("gate_alpha_w"), set.param("gate_alpha_w")) == 0.0);
}

// A stream fed in pieces of arbitrary lengths (ending inside chunks) gives the
// whole sequence's outputs and, through the carried state, its gradients.
BOOST_AUTO_TEST_CASE(streaming_pieces_equal_whole) {
    std::vector<MemoryConfig> cfgs;
    {
        MemoryConfig c = base();
        c.chunk = 4;
        cfgs.push_back(c);
        c = base("mlp");
        c.chunk = 4;
        c.retention = "kl";
        c.algorithm = "momentum";
        c.conv_bias = true;
        cfgs.push_back(c);
        c = base("mlp");
        c.chunk = 3;
        c.bias = "huber_mix";
        c.retention = "elastic";
        cfgs.push_back(c);
    }
    const std::vector<int64_t> pieces = {3, 1, 5, 2, 1};  // T = 12, boundaries mid-chunk
    for (const MemoryConfig& c : cfgs)
        for (ScanMode mode : {ScanMode::chunked, ScanMode::sequential}) {
            MirasLayer layer(c);
            Generator gen(9);
            Tensor x = randn({2, 12, c.d}, gen, DType::f64), R = randn({2, 12, c.d}, gen, DType::f64);
            Tensor whole = layer.forward(x, nullptr, mode);
            TensorList g_whole = grad({sum(mul(whole, R))}, layer.parameters());

            MemoryState st;
            TensorList outs;
            int64_t start = 0;
            for (int64_t n : pieces) {
                outs.push_back(layer.forward(narrow(x, 1, start, n), &st, mode));
                BOOST_TEST(st.offset == (start + n) % c.chunk);
                start += n;
            }
            BOOST_TEST(st.position == 12);
            Tensor streamed = cat(outs, 1);
            BOOST_CHECK_SMALL(max_abs_diff(streamed, whole), 1e-12);
            TensorList g_stream = grad({sum(mul(streamed, R))}, layer.parameters());
            for (size_t i = 0; i < g_whole.size(); ++i) BOOST_CHECK_SMALL(max_abs_diff(g_stream[i], g_whole[i]), 1e-10);
        }
}

// Both scans leave the same state; a detached state continues identically.
BOOST_AUTO_TEST_CASE(project_queries_is_q_of_project) {
    // The same q as project(), piece by piece, advancing only the q conv tail.
    MirasLayer layer(base());
    Generator g(41);
    Tensor x = randn({2, 7, layer.config().d}, g, DType::f64);
    MemoryState all = layer.initial_state(2), part = layer.initial_state(2);
    const Tensor want = layer.project(x, all).q;
    Tensor q1 = layer.project_queries(narrow(x, 1, 0, 4), part), q2 = layer.project_queries(narrow(x, 1, 4, 3), part);
    BOOST_TEST(max_abs_diff(cat({q1, q2}, 2).to_vector(), want.to_vector()) < 1e-12);
    BOOST_TEST(max_abs_diff(part.conv_q.to_vector(), all.conv_q.to_vector()) < 1e-12);
    const MemoryState fresh = layer.initial_state(2);
    BOOST_TEST(max_abs_diff(part.conv_k.to_vector(), fresh.conv_k.to_vector()) == 0.0);  // untouched
    MemoryState empty;
    check_error([&] { layer.project_queries(x, empty); }, {"project_queries", "initial_state"});
}

BOOST_AUTO_TEST_CASE(state_after_both_scans_and_detach) {
    MemoryConfig c = base("mlp");
    c.chunk = 4;
    c.algorithm = "momentum";
    MirasLayer layer(c);
    Generator gen(2);
    Tensor x = randn({1, 6, c.d}, gen, DType::f64), x2 = randn({1, 5, c.d}, gen, DType::f64);
    MemoryState a, b;
    layer.forward(x, &a, ScanMode::chunked);
    layer.forward(x, &b, ScanMode::sequential);
    BOOST_TEST(a.offset == 2);
    BOOST_TEST(b.offset == 2);
    BOOST_REQUIRE_EQUAL(a.A.size(), 2u);
    for (size_t l = 0; l < a.A.size(); ++l) {
        BOOST_CHECK_SMALL(max_abs_diff(a.A[l], b.A[l]), 1e-12);
        BOOST_CHECK_SMALL(max_abs_diff(a.S[l], b.S[l]), 1e-12);
        BOOST_CHECK_SMALL(max_abs_diff(a.anchor[l], b.anchor[l]), 1e-12);
    }
    MemoryState d = a;
    d.detach();
    BOOST_TEST(!requires_grad(d.A[0]));
    BOOST_TEST(requires_grad(a.A[0]));
    Tensor o1 = layer.forward(x2, &a), o2 = layer.forward(x2, &d);
    BOOST_CHECK_SMALL(max_abs_diff(o1, o2), 1e-14);
}

// f32 runs (the training dtype) and agrees with itself across the two scans
// on a short sequence (docs/math.md §4: compare f32 on short sequences).
BOOST_AUTO_TEST_CASE(f32_chunked_matches_sequential) {
    MemoryConfig c = base();
    c.dtype = DType::f32;
    c.chunk = 4;
    c.algorithm = "momentum";
    MirasLayer layer(c);
    Generator gen(4);
    Tensor x = randn({2, 10, c.d}, gen, DType::f32);
    Tensor a = layer.forward(x, nullptr, ScanMode::chunked), b = layer.forward(x, nullptr, ScanMode::sequential);
    BOOST_TEST((a.dtype() == DType::f32));
    BOOST_CHECK_SMALL(max_abs_diff(a, b), 1e-5);
}

BOOST_AUTO_TEST_CASE(bad_configs_are_clear_errors) {
    auto with = [](const std::function<void(MemoryConfig&)>& edit) {
        MemoryConfig c = base();
        edit(c);
        return [c] { c.validate(); };
    };
    check_error(with([](MemoryConfig& c) { c.bias = "l3"; }), {"unknown attentional bias 'l3'", "huber_mix"});
    check_error(with([](MemoryConfig& c) { c.retention = "l1"; }), {"unknown retention 'l1'", "elastic"});
    check_error(with([](MemoryConfig& c) { c.memory = "transformer"; }), {"unknown memory architecture 'transformer'", "mlp"});
    check_error(with([](MemoryConfig& c) { c.algorithm = "adam"; }), {"algorithm", "'adam'"});
    check_error(with([](MemoryConfig& c) { c.retention = "lq"; c.q = 1.5; }), {"q must be >= 2", "1.5"});
    check_error(with([](MemoryConfig& c) { c.bias = "lp"; c.p = 1; }), {"p must be > 1"});
    check_error(with([](MemoryConfig& c) { c.chunk = 0; }), {"chunk", ">= 1", "got 0"});
    check_error(with([](MemoryConfig& c) { c.memory = "mlp"; c.depth = 1; }), {"depth must be >= 2", "got 1"});
    check_error(with([](MemoryConfig& c) { c.memory = "mlp"; c.expansion = 0; }), {"expansion must be >= 1", "got 0"});
    check_error(with([](MemoryConfig& c) { c.d = 10; c.heads = 4; }), {"d = 10", "divisible by heads = 4"});
    check_error(with([](MemoryConfig& c) { c.retention = "elastic"; c.gamma = -0.1; }), {"gamma must be >= 0"});
    check_error(with([](MemoryConfig& c) { c.retention = "kl"; c.kl_c = 0; }), {"kl_c must be > 0"});
    check_error(with([](MemoryConfig& c) { c.theta_max = 0; }), {"theta_max"});
    check_error(with([](MemoryConfig& c) { c.a0_scale = 0; }), {"a0_scale"});
    check_error(with([](MemoryConfig& c) { c.bias = "huber"; c.huber_delta = 0; }), {"huber_delta must be > 0"});
    check_error(with([](MemoryConfig& c) { c.fixed_gates = {{"beta", 1.0}}; }), {"unknown gate 'beta'"});
    check_error(with([](MemoryConfig& c) { c.fixed_gates = {{"alpha", 1.5}}; }), {"fixed_gates.alpha", "[0, 1]"});
    check_error(with([](MemoryConfig& c) { c.gate_init = {{"alpha", 1.0}}; }), {"gate_init.alpha", "(0, 1)", "got 1"});
    check_error(with([](MemoryConfig& c) { c.gate_init = {{"theta", 0.5}}; }), {"gate_init.theta", "theta_max = 0.5"});
    check_error(with([](MemoryConfig& c) { c.gate_init = {{"gamma", 0.5}}; }), {"unknown gate 'gamma'"});
    check_error(with([](MemoryConfig& c) { c.gate_init = {{"eta", 0.5}}; }), {"gate_init.eta", "does not use the gate"});
    check_error(with([](MemoryConfig& c) { c.fixed_gates = {{"alpha", 0.1}}; c.gate_init = {{"alpha", 0.1}}; }),
                {"gate_init.alpha", "fixed_gates.alpha"});
    // A constant for a gate the config never reads.
    check_error(with([](MemoryConfig& c) { c.algorithm = "gd"; c.fixed_gates = {{"eta", 0.9}}; }),
                {"fixed_gates.eta", "does not use it", "momentum"});
    check_error(with([](MemoryConfig& c) { c.bias = "l2"; c.fixed_gates = {{"delta", 1.0}}; }),
                {"fixed_gates.delta", "huber_mix"});
    check_error(with([](MemoryConfig& c) { c.retention = "none"; c.fixed_gates = {{"alpha", 0.1}}; }),
                {"fixed_gates.alpha", "forget gate"});
    // The layer constructor validates too.
    MemoryConfig bad = base();
    bad.bias = "nope";
    check_error([&] { MirasLayer l(bad); }, {"unknown attentional bias 'nope'"});
}

BOOST_AUTO_TEST_CASE(bad_inputs_are_clear_errors) {
    MirasLayer layer(base());
    Generator gen(1);
    check_error([&] { layer.forward(randn({2, 5, 6}, gen, DType::f64)); }, {"MirasLayer::forward", "(2, 5, 6)", "d=8"});
    check_error([&] { layer.forward(randn({2, 5, 8}, gen, DType::f32)); }, {"x is f32", "layer is f64"});
    MemoryState st;
    layer.forward(randn({2, 5, 8}, gen, DType::f64), &st);
    check_error([&] { layer.forward(randn({3, 5, 8}, gen, DType::f64), &st); }, {"batch of 2", "x has 3"});

    // The scans check their inputs against the config.
    MemoryConfig c = base();
    c.algorithm = "momentum";
    MemoryState s2 = initial_memory_state(c, {}, 1, DType::f64);
    MemoryInputs in;
    in.q = in.k = in.v = randn({1, 2, 3, 4}, gen, DType::f64);
    in.theta = in.alpha = full({1, 2, 3}, 0.1, DType::f64);
    check_error([&] { memory_scan_chunked(c, in, s2); }, {"memory_scan_chunked", "gate eta"});
    in.eta = full({1, 2, 4}, 0.1, DType::f64);
    check_error([&] { memory_scan_sequential(c, in, s2); }, {"memory_scan_sequential", "gate eta", "(1, 2, 3)"});
    in.eta = full({1, 2, 3}, 0.1, DType::f64);
    in.q = randn({1, 2, 3, 5}, gen, DType::f64);
    check_error([&] { memory_scan_chunked(c, in, s2); }, {"q must be", "d_h=4"});
}

// An architecture that applies a weight twice breaks the rank-1 gradient
// factorisation: the scans refuse it instead of computing something else.
BOOST_AUTO_TEST_CASE(architecture_contract_is_checked) {
    struct Twice : MemoryArch {
        std::vector<std::pair<int64_t, int64_t>> weight_shapes(int64_t dh) const override { return {{dh, dh}}; }
        Tensor forward(const Tensor& k, const LinearFn& lin) const override { return lin(0, lin(0, k)); }
    };
    register_memory_arch("test_twice", [](const MemoryConfig&) { return std::make_shared<Twice>(); });
    MemoryConfig c = base();
    c.memory = "test_twice";
    MirasLayer layer(c);
    Generator gen(1);
    check_error([&] { layer.forward(randn({1, 3, 8}, gen, DType::f64)); }, {"weight matrix 0", "2 times"});
}

BOOST_AUTO_TEST_SUITE_END()
