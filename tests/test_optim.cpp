// nn/optim.h: SGD with momentum and AdamW against hand-computed steps, the
// weight-decay rule, zero_grad and untouched parameters, clip_grad_norm, the
// warm-up + cosine schedule, state export/import (round trip reproduces the
// next steps; strict errors), and a tiny end-to-end fit with AdamW.
#include <boost/test/unit_test.hpp>

#include "op_test_util.h"

#include <cmath>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "nn/layers.h"
#include "nn/loss.h"
#include "nn/optim.h"

using namespace miras;

namespace {

Tensor param(const std::vector<double>& v, const Shape& s, DType dt = DType::f64) {
    return set_requires_grad(from_vector(v, s, dt));
}
void give_grad(const Tensor& p, const std::vector<double>& g) { set_grad(p, from_vector(g, p.shape(), p.dtype())); }

void check_close(const Tensor& got, const std::vector<double>& want, double tol) {
    std::vector<double> v = got.to_vector();
    BOOST_REQUIRE_EQUAL(v.size(), want.size());
    for (size_t i = 0; i < v.size(); ++i)
        BOOST_TEST(std::abs(v[i] - want[i]) <= tol, "element " << i << ": " << v[i] << " != " << want[i]);
}

using miras::test::has;  // what() contains every piece (tests/op_test_util.h)

}  // namespace

BOOST_AUTO_TEST_SUITE(optim)

// ---- SGD

BOOST_AUTO_TEST_CASE(sgd_momentum_two_steps) {
    for (DType dt : {DType::f32, DType::f64}) {
        Tensor p = param({1, 2}, {2}, dt);
        SGD opt({{"p", p}}, {.lr = 0.1, .momentum = 0.9});
        // b1 = g1 = (0.5, −1);           p1 = p0 − 0.1 b1 = (0.95, 2.1)
        give_grad(p, {0.5, -1});
        opt.step();
        check_close(p, {0.95, 2.1}, 1e-6);
        // b2 = 0.9 b1 + g2 = (0.55, −0.7); p2 = p1 − 0.1 b2 = (0.895, 2.17)
        give_grad(p, {0.1, 0.2});
        opt.step();
        check_close(p, {0.895, 2.17}, dt == DType::f32 ? 1e-6 : 1e-15);
        BOOST_TEST(opt.steps() == 2);
        check_close(opt.state_dict().at("sgd.momentum.p"), {0.55, -0.7}, 1e-6);
    }
}

BOOST_AUTO_TEST_CASE(sgd_plain) {
    Tensor p = param({1, -1}, {2});
    SGD opt({{"p", p}}, {.lr = 0.5});
    give_grad(p, {2, 4});
    opt.step();
    check_close(p, {0, -3}, 0);
    auto st = opt.state_dict();
    BOOST_TEST(st.size() == 1u);  // only the step count: no buffers without momentum
    BOOST_TEST(st.at("sgd.step").item() == 1.0);
}

// ---- AdamW

BOOST_AUTO_TEST_CASE(adamw_two_steps_decay_on_matrix_only) {
    // lr 0.1, β = (0.9, 0.999), eps 1e-8, λ = 0.5. Step 1: m̂ = g, v̂ = g², so
    // the update is lr·g/(|g| + eps) ≈ ±0.1 (0 where g = 0), after the decay
    // p ← (1 − lr λ) p = 0.95 p on the matrix only. Step 2 values from the
    // formulas in nn/optim.h, evaluated independently in double precision:
    //   W[0]: m = 0.9·0.02 + 0.1·0.6 = 0.078, v = 0.999·4e-5 + 0.001·0.36 = 3.9996e-4,
    //         p = 0.95·0.85 − 0.1·(0.078/0.19)/(sqrt(3.9996e-4/0.001999) + 1e-8) = 0.71572189…
    Tensor W = param({1, -2, 0.5, 3}, {2, 2});
    Tensor b = param({0.3, -0.7}, {2});
    AdamW opt({{"W", W}, {"b", b}}, {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.5});
    BOOST_TEST(opt.decays(0));
    BOOST_TEST(!opt.decays(1));
    give_grad(W, {0.2, -0.4, 1.0, 0.0});
    give_grad(b, {1.5, -0.25});
    opt.step();
    check_close(W, {0.8500000049999997, -1.8000000024999998, 0.37500000099999997, 2.8499999999999996}, 1e-14);
    check_close(b, {0.20000000066666662, -0.6000000039999998}, 1e-14);
    give_grad(W, {0.6, 0.1, -1.0, 2.0});
    give_grad(b, {-0.5, 0.75});
    opt.step();
    check_close(W, {0.7157218949037804, -1.6630531868648288, 0.3615131587921052, 2.633086318169354}, 1e-13);
    check_close(b, {0.15997814382926218, -0.6494189864458513}, 1e-13);
    auto st = opt.state_dict();
    BOOST_TEST(st.at("adam.step").item() == 2.0);
    check_close(st.at("adam.m.W"), {0.078, 0.9 * -0.04 + 0.01, 0.9 * 0.1 - 0.1, 0.2}, 1e-15);
    check_close(st.at("adam.v.b"), {0.999 * 0.001 * 2.25 + 0.001 * 0.25, 0.999 * 0.001 * 0.0625 + 0.001 * 0.5625}, 1e-15);
}

BOOST_AUTO_TEST_CASE(adamw_f32_matches_f64) {
    Tensor W64 = param({1, -2, 0.5, 3}, {2, 2}), W32 = param({1, -2, 0.5, 3}, {2, 2}, DType::f32);
    AdamW a({{"W", W64}}, {.lr = 0.01}), b({{"W", W32}}, {.lr = 0.01});
    for (int s = 0; s < 3; ++s) {
        std::vector<double> g = {0.1 * s - 0.2, 0.3, -0.05 * s, 1.0};
        give_grad(W64, g);
        give_grad(W32, g);
        a.step();
        b.step();
    }
    BOOST_TEST((b.state_dict().at("adam.m.W").dtype() == DType::f32));
    check_close(W32, W64.to_vector(), 1e-6);
}

BOOST_AUTO_TEST_CASE(adamw_decay_rule_is_configurable) {
    Tensor W = param({1, 1, 1, 1}, {2, 2}), n = param({1, 1}, {2}), A0 = param(std::vector<double>(8, 1.0), {2, 2, 2});
    Tensor S = param(std::vector<double>(8, 1.0), {2, 2, 2}), A0_2 = param(std::vector<double>(8, 1.0), {2, 2, 2});
    AdamW def({{"W", W}, {"norm.weight", n}, {"blocks.0.mixer.A0", A0}, {"S", S}, {"mixer.A0_2", A0_2}});
    BOOST_TEST(def.decays(0));
    BOOST_TEST(!def.decays(1));
    BOOST_TEST(!def.decays(2));  // a memory's initial state
    BOOST_TEST(def.decays(3));   // ≥ 2 dims
    BOOST_TEST(!def.decays(4));
    AdamWOptions o;
    o.decay = [](const std::string& name, const Tensor& p) { return p.dim() >= 2 && name != "S"; };
    AdamW custom({{"W", W}, {"norm.weight", n}, {"S", S}}, o);
    BOOST_TEST(custom.decays(0));
    BOOST_TEST(!custom.decays(1));
    BOOST_TEST(!custom.decays(2));
    // With a zero gradient, only decayed parameters move: p ← (1 − lr λ) p.
    AdamW z({{"W", W}, {"norm.weight", n}}, {.lr = 0.1, .weight_decay = 0.5});
    give_grad(W, {0, 0, 0, 0});
    give_grad(n, {0, 0});
    z.step();
    check_close(W, {0.95, 0.95, 0.95, 0.95}, 1e-15);
    check_close(n, {1, 1}, 0);
}

BOOST_AUTO_TEST_CASE(zero_grad_and_params_without_grad) {
    Tensor a = param({1, 2}, {2}), b = param({3, 4}, {2});
    AdamW opt({{"a", a}, {"b", b}}, {.lr = 0.1});
    give_grad(a, {1, 1});
    opt.step();  // b has no gradient: left alone, state too
    check_close(b, {3, 4}, 0);
    check_close(opt.state_dict().at("adam.m.b"), {0, 0}, 0);
    BOOST_TEST(a.to_vector() != std::vector<double>({1, 2}));
    opt.zero_grad();
    BOOST_TEST(!grad_of(a).defined());
    BOOST_TEST(!grad_of(b).defined());
    std::vector<double> before = a.to_vector();
    opt.step();  // nothing has a gradient: nothing moves
    BOOST_TEST(a.to_vector() == before);
}

BOOST_AUTO_TEST_CASE(step_invalidates_graphs_recorded_before) {
    // The in-place update bumps the version: a graph that saved the old value refuses to run.
    Tensor p = param({1, 2}, {2});
    SGD opt({{"p", p}}, {.lr = 0.1});
    Tensor y = sum(mul(p, p));
    give_grad(p, {1, 1});
    opt.step();
    BOOST_CHECK_THROW(backward(y), std::exception);
}

BOOST_AUTO_TEST_CASE(optimizer_argument_errors) {
    Tensor p = param({1, 2}, {2});
    BOOST_CHECK_EXCEPTION(SGD({{"p", p}, {"p", param({1}, {1})}}), std::invalid_argument, has({"duplicate", "'p'"}));
    BOOST_CHECK_EXCEPTION(SGD({{"p", p}, {"q", p}}), std::invalid_argument, has({"'q'", "twice"}));
    BOOST_CHECK_EXCEPTION(SGD({{"x", from_vector({1}, {1})}}), std::invalid_argument, has({"'x'", "requires grad"}));
    BOOST_CHECK_EXCEPTION(AdamW({{"p", p}}, {.lr = -1}), std::invalid_argument, has({"adam", "learning rate"}));
    BOOST_CHECK_EXCEPTION(AdamW({{"p", p}}, {.beta1 = 1.0}), std::invalid_argument, has({"betas"}));
    BOOST_CHECK_EXCEPTION(SGD({{"p", p}}, {.momentum = 1.5}), std::invalid_argument, has({"momentum"}));
    SGD ok({{"p", p}});
    set_grad(p, from_vector({1, 2, 3}, {3}, DType::f64));
    BOOST_CHECK_EXCEPTION(ok.step(), std::logic_error, has({"gradient of 'p'", "(3"}));
}

// ---- state export / import

BOOST_AUTO_TEST_CASE(adamw_state_roundtrip_reproduces_next_steps) {
    Generator g(1);
    auto grads = [&](int s) { return std::vector<double>{std::sin(s + 1.0), std::cos(2.0 * s), 0.3 * s - 0.5, 1.0 / (s + 1)}; };
    Tensor W = param({1, -2, 0.5, 3}, {2, 2}), b = param({0.1, 0.2}, {2});
    AdamW a({{"W", W}, {"b", b}}, {.lr = 0.05, .weight_decay = 0.1});
    for (int s = 0; s < 3; ++s) {
        give_grad(W, grads(s));
        give_grad(b, {grads(s)[0], grads(s)[1]});
        a.step();
    }
    StateDict st = a.state_dict();
    BOOST_TEST(st.size() == 5u);
    BOOST_TEST(st.count("adam.m.W") == 1u);
    BOOST_TEST(st.count("adam.v.b") == 1u);
    // A fresh optimizer on copies of the parameters, loaded from the export.
    Tensor W2 = param(W.to_vector(), {2, 2}), b2 = param(b.to_vector(), {2});
    AdamW c({{"W", W2}, {"b", b2}}, {.lr = 0.05, .weight_decay = 0.1});
    c.load_state_dict(st);
    BOOST_TEST(c.steps() == 3);
    for (int s = 3; s < 5; ++s) {
        for (auto [p, q] : {std::pair{W, W2}, std::pair{b, b2}}) {
            std::vector<double> gv = grads(s);
            gv.resize((size_t)p.numel());
            give_grad(p, gv);
            give_grad(q, gv);
        }
        a.step();
        c.step();
        BOOST_TEST(W2.to_vector() == W.to_vector());  // bit-identical
        BOOST_TEST(b2.to_vector() == b.to_vector());
    }
    // The export was a snapshot: later steps did not change it.
    BOOST_TEST(st.at("adam.step").item() == 3.0);
    BOOST_TEST(st.at("adam.m.W").to_vector() != a.state_dict().at("adam.m.W").to_vector());
}

BOOST_AUTO_TEST_CASE(sgd_state_roundtrip) {
    Tensor p = param({1, 2}, {2}), q = param({1, 2}, {2});
    SGD a({{"p", p}}, {.lr = 0.1, .momentum = 0.9});
    give_grad(p, {1, -1});
    a.step();
    SGD b({{"p", q}}, {.lr = 0.1, .momentum = 0.9});
    raw::copy_(q, p);
    b.load_state_dict(a.state_dict());
    give_grad(p, {0.5, 0.5});
    give_grad(q, {0.5, 0.5});
    a.step();
    b.step();
    BOOST_TEST(q.to_vector() == p.to_vector());
}

BOOST_AUTO_TEST_CASE(load_state_dict_errors) {
    Tensor W = param({1, 2, 3, 4}, {2, 2});
    AdamW opt({{"W", W}});
    StateDict good = opt.state_dict();
    auto missing = good;
    missing.erase("adam.v.W");
    BOOST_CHECK_EXCEPTION(opt.load_state_dict(missing), std::invalid_argument, has({"missing", "adam.v.W"}));
    auto extra = good;
    extra["adam.m.other"] = zeros({2}, DType::f64);
    BOOST_CHECK_EXCEPTION(opt.load_state_dict(extra), std::invalid_argument, has({"unexpected", "adam.m.other"}));
    auto shape = good;
    shape["adam.m.W"] = zeros({4}, DType::f64);
    BOOST_CHECK_EXCEPTION(opt.load_state_dict(shape), std::invalid_argument, has({"adam.m.W", "(2, 2)", "(4"}));
    auto dtype = good;
    dtype["adam.m.W"] = zeros({2, 2}, DType::f32);
    BOOST_CHECK_EXCEPTION(opt.load_state_dict(dtype), std::invalid_argument, has({"adam.m.W", "f32"}));
    auto step = good;
    step["adam.step"] = scalar_tensor(1.5, DType::f64);
    BOOST_CHECK_EXCEPTION(opt.load_state_dict(step), std::invalid_argument, has({"adam.step", "integer"}));
    // Far out of int64's range, NaN and negative steps are refused without
    // converting them (converting 1.7e243 to int64 is undefined; UBSan, as in
    // make SANITIZE=1 test, reports it).
    for (double s : {1.67667e243, std::nan(""), -1.0, 9.5e15}) {
        step["adam.step"] = scalar_tensor(s, DType::f64);
        BOOST_CHECK_EXCEPTION(opt.load_state_dict(step), std::invalid_argument,
                              has({"'adam.step' must be a non-negative integer"}));
    }
    BOOST_TEST(opt.state_dict().at("adam.step").item() == 0.0);
    // SGD state does not load into AdamW.
    SGD sgd({{"W", W}}, {.momentum = 0.9});
    BOOST_CHECK_EXCEPTION(opt.load_state_dict(sgd.state_dict()), std::invalid_argument, has({"sgd.momentum.W"}));
    // A failed load writes nothing.
    auto bad = good;
    bad["adam.m.W"] = full({2, 2}, 7.0, DType::f64);
    bad.erase("adam.v.W");
    BOOST_CHECK_THROW(opt.load_state_dict(bad), std::invalid_argument);
    BOOST_TEST(opt.state_dict().at("adam.m.W").to_vector() == std::vector<double>(4, 0.0));
}

// A crafted checkpoint with a negative second moment resumed, and the next
// update, sqrt(v) of a negative, wrote NaN into every weight. Loaded state
// must be finite, and AdamW's v non-negative.
BOOST_AUTO_TEST_CASE(load_state_dict_refuses_impossible_values) {
    Tensor W = param({1, 2, 3, 4}, {2, 2});
    AdamW opt({{"W", W}});
    const StateDict good = opt.state_dict();
    auto negative = good;
    negative["adam.v.W"] = from_vector({0.5, -1e-3, 0, -2}, {2, 2}, DType::f64);
    BOOST_CHECK_EXCEPTION(opt.load_state_dict(negative), std::invalid_argument,
                          has({"'adam.v.W': 2 of 4 values are negative or not finite (the first, -0.001", "index 1"}));
    auto nan_m = good;
    nan_m["adam.m.W"] = from_vector({0, 0, std::nan(""), 0}, {2, 2}, DType::f64);
    BOOST_CHECK_EXCEPTION(opt.load_state_dict(nan_m), std::invalid_argument,
                          has({"'adam.m.W': 1 of 4 values are not finite", "index 2"}));
    auto inf_v = good;
    inf_v["adam.v.W"] = from_vector({0, HUGE_VAL, 0, 0}, {2, 2}, DType::f64);
    BOOST_CHECK_EXCEPTION(opt.load_state_dict(inf_v), std::invalid_argument, has({"'adam.v.W'", "not finite"}));
    auto negative_m = good;  // a first moment may be negative
    negative_m["adam.m.W"] = from_vector({-1, -2, 3, 4}, {2, 2}, DType::f64);
    BOOST_CHECK_NO_THROW(opt.load_state_dict(negative_m));
    BOOST_TEST(opt.state_dict().at("adam.v.W").to_vector() == std::vector<double>(4, 0.0));
    SGD sgd({{"W", W}}, {.momentum = 0.9});
    auto sgd_state = sgd.state_dict();
    sgd_state["sgd.momentum.W"] = from_vector({-1, -HUGE_VAL, 0, 0}, {2, 2}, DType::f64);
    BOOST_CHECK_EXCEPTION(sgd.load_state_dict(sgd_state), std::invalid_argument,
                          has({"'sgd.momentum.W': 1 of 4 values are not finite (the first, -inf"}));
}

// ---- clipping

BOOST_AUTO_TEST_CASE(clip_grad_norm_scales_globally) {
    Tensor a = param({0, 0}, {2}), b = param({0}, {1}), c = param({0}, {1});
    give_grad(a, {3, 4});
    give_grad(b, {12});  // c has none: skipped
    NamedTensors ps = {{"a", a}, {"b", b}, {"c", c}};
    double n = clip_grad_norm(ps, 6.5);
    BOOST_TEST(n == 13.0);
    double s = 6.5 / (13 + 1e-6);
    check_close(grad_of(a), {3 * s, 4 * s}, 1e-15);
    check_close(grad_of(b), {12 * s}, 1e-15);
    BOOST_TEST(!grad_of(c).defined());
    // Below the threshold: returned, gradients untouched.
    BOOST_TEST(std::abs(clip_grad_norm(ps, 100) - 6.5) < 1e-6);
    check_close(grad_of(a), {3 * s, 4 * s}, 0);
    // f32 gradients, and the TensorList overload.
    Tensor f = param({0, 0}, {2}, DType::f32);
    give_grad(f, {6, 8});
    BOOST_TEST(clip_grad_norm(TensorList{f}, 1.0) == 10.0);
    check_close(grad_of(f), {0.6, 0.8}, 1e-6);
    // Non-finite norm: reported, nothing scaled.
    give_grad(f, {INFINITY, 1});
    BOOST_TEST(std::isinf(clip_grad_norm(TensorList{f}, 1.0)));
    BOOST_TEST(grad_of(f).to_vector()[1] == 1.0);
    BOOST_CHECK_THROW(clip_grad_norm(ps, 0), std::invalid_argument);
}

// ---- schedule

BOOST_AUTO_TEST_CASE(warmup_cosine_schedule) {
    LrSchedule s{.warmup = 10, .total = 110, .base = 1.0, .min = 0.1};
    BOOST_TEST(s.at(0) == 0.1);                                   // (0 + 1) / 10
    BOOST_TEST(std::abs(s.at(4) - 0.5) < 1e-15);
    BOOST_TEST(s.at(9) == 1.0);                                   // end of warm-up
    BOOST_TEST(s.at(10) == 1.0);                                  // cosine starts at base
    BOOST_TEST(std::abs(s.at(60) - 0.55) < 1e-15);                // half way: (base + min) / 2
    BOOST_TEST(std::abs(s.at(35) - (0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi / 4)))) < 1e-15);
    BOOST_TEST(s.at(110) == 0.1);
    BOOST_TEST(s.at(100000) == 0.1);
    for (int64_t t = 10; t < 110; ++t) BOOST_TEST(s.at(t + 1) <= s.at(t));  // monotone after warm-up
    BOOST_TEST(lr_at(0, 0, 100, 0.5, 0.0) == 0.5);                // no warm-up
    BOOST_CHECK_THROW(lr_at(-1, 10, 100, 1, 0), std::invalid_argument);
    BOOST_CHECK_EXCEPTION(lr_at(0, 10, 5, 1, 0), std::invalid_argument, has({"lr_at", "warmup 10", "total 5"}));
}

// ---- end to end

BOOST_AUTO_TEST_CASE(mlp_learns_xor_with_adamw) {
    for (DType dt : {DType::f32, DType::f64}) {
        struct Net : Module {
            std::shared_ptr<Linear> l1, l2;
            Net(Generator& g, DType dt) {
                l1 = register_module("l1", std::make_shared<Linear>(2, 16, g, dt, true));
                l2 = register_module("l2", std::make_shared<Linear>(16, 1, g, dt, true));
            }
            Tensor forward(const Tensor& x) const { return l2->forward(tanh(l1->forward(x))); }
        };
        Generator g(7);
        Net net(g, dt);
        Tensor x = from_vector({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2}, dt), y = from_vector({0, 1, 1, 0}, {4, 1}, dt);
        AdamW opt(net.named_parameters(), {.lr = 0.05, .weight_decay = 0.0});
        LrSchedule sched{.warmup = 10, .total = 300, .base = 0.05, .min = 0.005};
        double first = 0, last = 0;
        for (int s = 0; s < 300; ++s) {
            opt.zero_grad();
            Tensor loss = mse(net.forward(x), y);
            if (s == 0) first = loss.item();
            last = loss.item();
            backward(loss);
            clip_grad_norm(net.named_parameters(), 10.0);
            opt.set_lr(sched.at(s));
            opt.step();
        }
        BOOST_TEST_MESSAGE("xor " << dtype_name(dt) << ": loss " << first << " -> " << last);
        BOOST_TEST(last < first / 10);
        std::vector<double> pred = net.forward(x).to_vector();
        for (int i = 0; i < 4; ++i) BOOST_TEST(std::abs(pred[(size_t)i] - y.to_vector()[(size_t)i]) < 0.25);
    }
}

BOOST_AUTO_TEST_SUITE_END()
