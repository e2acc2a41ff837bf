// gradcheck and gradgradcheck (f64) of every elementwise
// differentiable op, away from kinks: relu/abs/clamp/maximum away from 0 and
// ties, log/sqrt/pow on positive inputs. Plus the checks themselves: a wrong
// first or second derivative must be caught.
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "op_test_util.h"

using namespace miras;
using namespace miras::test;

namespace {

// Values in ±[0.2, 1.5]: no element within 0.2 of the kinks at 0.
Tensor away_from_zero(const Shape& s, Generator& g) {
    Tensor m = rand(s, g, DType::f64, 0.2, 1.5);
    Tensor sg = raw::unary(raw::Unary::sign, randn(s, g, DType::f64));
    return leaf(raw::binary(raw::Binary::mul, m, sg));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(grad_elementwise)

BOOST_AUTO_TEST_CASE(checks_catch_wrong_gradients) {
    Generator g(1);
    Tensor x = rn({3}, g);
    // first derivative off by a factor: d(x²) = 3x
    auto wrong_first = fn1([](const Tensor& t) {
        Tensor out = raw::unary(raw::Unary::square, t);
        record("bad_square", {t}, {out}, [t](Node&, const TensorList& gr) -> TensorList { return {mul(gr[0], mul(t, 3.0))}; });
        return out;
    });
    BOOST_TEST(!gradcheck(wrong_first, {x}).ok);
    // right first derivative written with a raw kernel: not differentiable again
    auto raw_backward = fn1([](const Tensor& t) {
        Tensor out = raw::unary(raw::Unary::square, t);
        record("raw_square", {t}, {out}, [t](Node&, const TensorList& gr) -> TensorList {
            return {raw::binary(raw::Binary::mul, gr[0], raw::binary_scalar(raw::Binary::mul, t, 2.0))};
        });
        return out;
    });
    BOOST_TEST(gradcheck(raw_backward, {x}).ok);
    GradcheckResult r = gradgradcheck(raw_backward, {x});
    BOOST_TEST(!r.ok);
    BOOST_TEST(r.message.find("gradgradcheck") != std::string::npos);
    // and the real op passes both
    BOOST_TEST(gradcheck(fn1([](const Tensor& t) { return square(t); }), {x}).ok);
    BOOST_TEST(gradgradcheck(fn1([](const Tensor& t) { return square(t); }), {x}).ok);
}

BOOST_AUTO_TEST_CASE(unary_ops) {
    Generator g(2);
    struct Case { const char* name; Tensor (*op)(const Tensor&); int domain; };  // 0 any, 1 positive, 2 away from 0
    const Case cases[] = {
        {"neg", miras::neg, 0},        {"exp", miras::exp, 0},         {"log", miras::log, 1},
        {"sqrt", miras::sqrt, 1},      {"rsqrt", miras::rsqrt, 1},     {"abs", miras::abs, 2},
        {"tanh", miras::tanh, 0},      {"sigmoid", miras::sigmoid, 0}, {"silu", miras::silu, 0},
        {"gelu", miras::gelu, 0},      {"softplus", miras::softplus, 0}, {"relu", miras::relu, 2},
        {"square", miras::square, 0},  {"reciprocal", miras::reciprocal, 2}, {"sin", miras::sin, 0},
        {"cos", miras::cos, 0},        {"log1p", miras::log1p, 1},     {"expm1", miras::expm1, 0},
    };
    for (const auto& c : cases) {
        Tensor x = c.domain == 0 ? rn({2, 3}, g) : c.domain == 1 ? ru({2, 3}, g, 0.3, 2.5) : away_from_zero({2, 3}, g);
        check_grads(c.name, fn1(c.op), {x});
        // through a composition, so the second derivative multiplies a non-constant g
        check_grads(std::string(c.name) + " of 2x", fn1([op = c.op](const Tensor& t) { return mul(op(mul(t, 2.0)), t); }), {x});
    }
    // sign has no gradient: the engine sees none, whatever the input
    Tensor x = away_from_zero({4}, g);
    Tensor y = sign(x);
    TensorList gs = grad({sum(mul(y, x))}, {x});
    check_values(gs[0], {4}, y.to_vector());
    // softplus in its linear tail (x > 20) and sigmoid far out keep exact gradients
    check_grads("softplus tail", fn1([](const Tensor& t) { return softplus(t); }), {leaf(T({-25, 19.5, 21, 30}, {4}))});
    check_grads("sigmoid tails", fn1([](const Tensor& t) { return sigmoid(t); }), {leaf(T({-30, -8, 8, 30}, {4}))});
}

BOOST_AUTO_TEST_CASE(unary_gradient_values) {
    // hand-computed derivatives at chosen points
    Tensor x = leaf(T({0.0, 1.0, -2.0}, {3}));
    auto d = [&](Tensor (*op)(const Tensor&)) { return grad({sum(op(x))}, {x})[0]; };
    check_values(d(miras::sigmoid), {3}, {0.25, std::exp(-1.0) / std::pow(1 + std::exp(-1.0), 2),
                                          std::exp(2.0) / std::pow(1 + std::exp(2.0), 2)});
    check_values(d(miras::tanh), {3}, {1, 1 - std::pow(std::tanh(1.0), 2), 1 - std::pow(std::tanh(2.0), 2)});
    check_values(d(miras::square), {3}, {0, 2, -4});
    check_values(d(miras::exp), {3}, {1, M_E, std::exp(-2.0)});
    check_values(d(miras::relu), {3}, {0, 1, 0});  // 0 at the kink
    check_values(d(miras::abs), {3}, {0, 1, -1});  // 0 at the kink
    check_values(d(miras::silu), {3}, {0.5, 1 / (1 + std::exp(-1.0)) * (1 + 1 * (1 - 1 / (1 + std::exp(-1.0)))),
                                       1 / (1 + std::exp(2.0)) * (1 - 2 * (1 - 1 / (1 + std::exp(2.0))))});
    // tanh-form derivative evaluated in Python, cross-checked by central differences
    check_values(d(miras::gelu), {3}, {0.5, 1.0829640838457826, -0.08609925662361825}, 1e-12);
}

BOOST_AUTO_TEST_CASE(binary_ops) {
    Generator g(3);
    Tensor a = rn({2, 3}, g), b = ru({2, 3}, g, 0.5, 2), p = ru({2, 3}, g, 0.5, 2);
    check_grads("add", fn2([](const Tensor& x, const Tensor& y) { return add(x, y); }), {a, b});
    check_grads("sub", fn2([](const Tensor& x, const Tensor& y) { return sub(x, y); }), {a, b});
    check_grads("mul", fn2([](const Tensor& x, const Tensor& y) { return mul(x, y); }), {a, b});
    check_grads("div", fn2([](const Tensor& x, const Tensor& y) { return div(x, y); }), {a, b});
    check_grads("pow", fn2([](const Tensor& x, const Tensor& y) { return pow(x, y); }), {p, a});
    // same tensor on both sides: the two contributions add up
    check_grads("mul(x, x)", fn1([](const Tensor& x) { return mul(x, x); }), {a});
    check_grads("div(x, x*x)", fn1([](const Tensor& x) { return div(x, add(mul(x, x), 1.0)); }), {a});
    // ties excluded: b2 = a + offsets of magnitude >= 0.2
    Tensor b2 = leaf(add(detach(a), detach(away_from_zero({2, 3}, g))));
    check_grads("maximum", fn2([](const Tensor& x, const Tensor& y) { return maximum(mul(x, x), mul(y, y)); }), {a, b2});
    check_grads("minimum", fn2([](const Tensor& x, const Tensor& y) { return minimum(mul(x, x), mul(y, y)); }), {a, b2});
    // one side only requires grad
    Tensor c = randn({2, 3}, g, DType::f64);
    check_grads("mul with constant", fn1([c](const Tensor& x) { return mul(c, x); }), {a});
    check_grads("div by variable", fn1([c](const Tensor& y) { return div(c, y); }), {b});
}

BOOST_AUTO_TEST_CASE(maximum_minimum_ties_go_to_a) {
    Tensor a = leaf(T({1, 2, 3}, {3})), b = leaf(T({1, 5, 0}, {3}));
    TensorList gs = grad({sum(maximum(a, b))}, {a, b});
    check_values(gs[0], {3}, {1, 0, 1});
    check_values(gs[1], {3}, {0, 1, 0});
    gs = grad({sum(minimum(a, b))}, {a, b});
    check_values(gs[0], {3}, {1, 1, 0});
    check_values(gs[1], {3}, {0, 0, 1});
}

BOOST_AUTO_TEST_CASE(scalar_ops_and_operators) {
    Generator g(4);
    Tensor a = rn({3, 2}, g), p = ru({3, 2}, g, 0.5, 2), b = ru({3, 2}, g, 0.5, 2);
    check_grads("add scalar", fn1([](const Tensor& x) { return add(x, 2.5); }), {a});
    check_grads("mul scalar", fn1([](const Tensor& x) { return mul(x, -1.5); }), {a});
    for (double e : {2.0, 3.0, 0.5, -1.5, 1.0}) check_grads("pow scalar", fn1([e](const Tensor& x) { return pow(x, e); }), {p});
    // pow(x, 0) = 1: a zero gradient (or none at all)
    Tensor y = pow(p, 0.0);
    check_values(y, {3, 2}, {1, 1, 1, 1, 1, 1});
    Tensor g0 = grad({sum(y)}, {p}, {}, false, -1, true)[0];
    if (g0.defined()) check_values(g0, {3, 2}, {0, 0, 0, 0, 0, 0});
    check_grads("pow(x, 2) on negatives", fn1([](const Tensor& x) { return pow(x, 2.0); }), {a});
    check_grads("operators", fn2([](const Tensor& x, const Tensor& z) {
                    return ((x + z) * (x - z) / z + 2.0 * x - x / 3.0 + 1.0 / z - (1.0 - x) + (-x) * 0.5) + (x + 1.0) -
                           (z - 2.0);
                }), {a, b});
}

BOOST_AUTO_TEST_CASE(clamp_and_where) {
    Generator g(5);
    // inputs at least 0.1 away from the bounds
    Tensor x = leaf(T({-2, -0.6, -0.2, 0.3, 0.45, 1.7}, {2, 3}));
    check_grads("clamp", fn1([](const Tensor& t) { return clamp(mul(t, t), 0.1, 1.0); }), {x});
    check_grads("clamp of x", fn1([](const Tensor& t) { return mul(clamp(t, -0.5, 0.4), t); }), {x});
    TensorList gs = grad({sum(clamp(x, -0.5, 0.4))}, {x});
    check_values(gs[0], {2, 3}, {0, 0, 1, 1, 0, 0});
    // the bounds themselves are inside (gradient 1)
    Tensor e = leaf(T({-0.5, 0.4}, {2}));
    check_values(grad({sum(clamp(e, -0.5, 0.4))}, {e})[0], {2}, {1, 1});

    Tensor a = rn({2, 3}, g), b = rn({3}, g);
    Tensor cond = T({1, 0, 0, 1, 1, 0}, {2, 3});
    check_grads("where", fn2([cond](const Tensor& u, const Tensor& v) { return where(cond, mul(u, u), mul(v, u)); }), {a, b});
    gs = grad({sum(where(cond, a, b))}, {a, b});
    check_values(gs[0], {2, 3}, {1, 0, 0, 1, 1, 0});
    check_values(gs[1], {3}, {0, 1, 2});  // summed over the broadcast rows
    // a condition that requires grad carries none (it is detached)
    Tensor c2 = leaf(T({1, 0, 1}, {3}));
    Tensor w = where(c2, b, mul(b, 2.0));
    BOOST_TEST(!grad({sum(w)}, {c2}, {}, false, -1, true)[0].defined());
}

BOOST_AUTO_TEST_CASE(comparisons_carry_no_gradient) {
    Tensor a = leaf(T({1, 2}, {2})), b = leaf(T({2, 1}, {2}));
    for (auto op : {miras::eq, miras::ne, miras::lt, miras::le, miras::gt, miras::ge}) {
        Tensor c = op(a, b);
        BOOST_TEST(!requires_grad(c));
        // used as a mask, only the other factor gets gradient
        TensorList gs = grad({sum(mul(c, a))}, {a, b}, {}, false, -1, true);
        check_values(gs[0], {2}, c.to_vector());
        BOOST_TEST(!gs[1].defined());
    }
}

BOOST_AUTO_TEST_CASE(shared_subexpressions_add_up) {
    // y = eˣ used three times: z = y² + y + cos y, dz/dx = (2y + 1 - sin y) eˣ
    Tensor x = leaf(T({0.5, -1}, {2}));
    auto f = [](const Tensor& t) {
        Tensor y = exp(t);
        return add(mul(y, y), add(y, cos(y)));
    };
    std::vector<double> want;
    for (double v : {0.5, -1.0}) want.push_back(2 * std::exp(2 * v) + std::exp(v) - std::sin(std::exp(v)) * std::exp(v));
    check_values(grad({sum(f(x))}, {x})[0], {2}, want);
    check_grads("diamond", fn1(f), {x});
}

BOOST_AUTO_TEST_CASE(no_grad_mode_records_nothing) {
    Tensor a = leaf(T({1, 2}, {2}));
    {
        NoGradGuard ng;
        Tensor y = exp(mul(a, a));
        BOOST_TEST(!requires_grad(y));
        BOOST_TEST(!grad_fn(y));
    }
    Tensor y = exp(mul(a, a));
    BOOST_TEST(requires_grad(y));
    BOOST_TEST(grad_fn(y)->name == "exp");
}

BOOST_AUTO_TEST_SUITE_END()
