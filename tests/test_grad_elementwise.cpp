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

// The fused activation derivatives out = g f'(a), with the formula written
// out in elementary ops and the range of a to test on (y of sigmoid in (0, 1),
// of tanh in (-1, 1); x of silu and gelu over ±4).
struct FusedCase {
    const char* name;
    Tensor (*op)(const Tensor&, const Tensor&);
    raw::Binary kind;
    Tensor (*by_hand)(const Tensor&, const Tensor&);
    double lo, hi;
};
const FusedCase kFused[] = {
    {"sigmoid_backward", miras::sigmoid_backward, raw::Binary::sigmoid_backward,
     [](const Tensor& y, const Tensor& g) { return g * y * (1.0 - y); }, 0.02, 0.98},
    {"tanh_backward", miras::tanh_backward, raw::Binary::tanh_backward,
     [](const Tensor& y, const Tensor& g) { return g * (1.0 - y * y); }, -0.98, 0.98},
    {"silu_backward", miras::silu_backward, raw::Binary::silu_backward,
     [](const Tensor& x, const Tensor& g) {
         Tensor s = sigmoid(x);
         return g * s * (1.0 + x * (1.0 - s));
     }, -4, 4},
    {"gelu_backward", miras::gelu_backward, raw::Binary::gelu_backward,
     [](const Tensor& x, const Tensor& g) {  // ½ (1 + t) + ½ x (1 − t²) c (1 + 3k x²)
         const double c = std::sqrt(2 / M_PI), k = 0.044715;
         Tensor t = tanh(c * (x + k * x * x * x));
         return g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3 * k * x * x));
     }, -4, 4},
};

// Fixed points spread over [lo, hi] (both signs where the range has them)
// followed by random ones: an f64 leaf of shape (2, 6).
Tensor fused_input(const FusedCase& c, Generator& g) {
    std::vector<double> v;
    for (double f : {0.0, 0.1, 0.3, 0.45, 0.6, 0.8}) v.push_back(c.lo + f * (c.hi - c.lo));
    for (double r : rand({6}, g, DType::f64, c.lo, c.hi).to_vector()) v.push_back(r);
    return leaf(T(v, {2, 6}));
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
    Tensor g0 = grad({sum(y)}, {p}, {}, {.allow_unused = true})[0];
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
    BOOST_TEST(!grad({sum(w)}, {c2}, {}, {.allow_unused = true})[0].defined());
}

BOOST_AUTO_TEST_CASE(comparisons_carry_no_gradient) {
    Tensor a = leaf(T({1, 2}, {2})), b = leaf(T({2, 1}, {2}));
    for (auto op : {miras::eq, miras::ne, miras::lt, miras::le, miras::gt, miras::ge}) {
        Tensor c = op(a, b);
        BOOST_TEST(!requires_grad(c));
        // used as a mask, only the other factor gets gradient
        TensorList gs = grad({sum(mul(c, a))}, {a, b}, {}, {.allow_unused = true});
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

// ---- fused activation derivatives

BOOST_AUTO_TEST_CASE(fused_activation_backward_grads) {
    Generator g(6);
    for (const auto& c : kFused) {
        BOOST_TEST_CONTEXT(c.name) {
            Tensor a = fused_input(c, g), gr = rn({2, 6}, g);
            check_grads(c.name, fn2(c.op), {a, gr});
            // one input a constant: only the other gradient is asked for
            Tensor ac = detach(a), gc = detach(gr);
            check_grads(std::string(c.name) + " w.r.t. a", fn1([&c, gc](const Tensor& t) { return c.op(t, gc); }), {a});
            check_grads(std::string(c.name) + " w.r.t. g", fn1([&c, ac](const Tensor& t) { return c.op(ac, t); }), {gr});
            // broadcasting either way: gradients summed back to each shape
            Tensor row = rn({6}, g);
            check_grads(std::string(c.name) + " g broadcast", fn2(c.op), {a, row});
            std::vector<double> av = a.to_vector();
            Tensor arow = leaf(T(std::vector<double>(av.begin(), av.begin() + 6), {6}));
            check_grads(std::string(c.name) + " a broadcast", fn2(c.op), {arow, gr});
        }
    }
}

BOOST_AUTO_TEST_CASE(fused_activation_backward_values) {
    Generator g(7);
    for (const auto& c : kFused) {
        BOOST_TEST_CONTEXT(c.name) {
            Tensor a = fused_input(c, g), gr = rn({2, 6}, g), row = rn({6}, g);
            check_same(c.op(a, gr), c.by_hand(a, gr), 1e-12);
            check_same(c.op(a, row), c.by_hand(a, row), 1e-12);
            check_same(raw::binary(c.kind, a, gr), c.by_hand(a, gr), 1e-12);
            BOOST_TEST(grad_fn(c.op(a, gr))->name == c.name);
            // shapes that do not broadcast: the op and both shapes in the message
            BOOST_CHECK_EXCEPTION(c.op(ones({2, 3}, DType::f64), ones({4}, DType::f64)), std::invalid_argument,
                                  has({c.name, "(2, 3)", "(4,)"}));
        }
    }
    // far tails: no overflow or NaN, same values as the formula
    Tensor x = T({-40, -20, -8, 8, 20, 40}, {6}), gr = T({1, -2, 0.5, 3, -1, 2}, {6});
    check_same(silu_backward(x, gr), kFused[2].by_hand(x, gr), 1e-12);
    check_same(gelu_backward(x, gr), kFused[3].by_hand(x, gr), 1e-12);
    Tensor y = T({1e-12, 1e-6, 0.5, 1 - 1e-6, 1}, {5}), gy = T({2, -1, 3, 1, 4}, {5});
    check_same(sigmoid_backward(y, gy), kFused[0].by_hand(y, gy), 1e-12);
}

BOOST_AUTO_TEST_CASE(fused_activation_backward_f32_matches_f64) {
    Generator g(8);
    for (const auto& c : kFused) {
        BOOST_TEST_CONTEXT(c.name) {
            // f32 inputs, and the same (rounded) values in f64 as the reference
            Tensor a32 = rand({4, 25}, g, DType::f32, c.lo, c.hi), g32 = randn({4, 25}, g, DType::f32);
            Tensor row32 = randn({25}, g, DType::f32);
            Tensor a64 = T(a32.to_vector(), {4, 25}), g64 = T(g32.to_vector(), {4, 25}), row64 = T(row32.to_vector(), {25});
            // contiguous, broadcast (strided loop) and scalar-gradient paths
            check_values(c.op(a32, g32), {4, 25}, c.op(a64, g64).to_vector(), tol_for(DType::f32));
            check_values(c.op(a32, row32), {4, 25}, c.op(a64, row64).to_vector(), tol_for(DType::f32));
            check_values(c.op(a32, scalar_tensor(1.5, DType::f32)), {4, 25},
                         c.op(a64, scalar_tensor(1.5, DType::f64)).to_vector(), tol_for(DType::f32));
        }
    }
}

// The activations' own backward is the fused op, and their first three
// derivatives through grad() are right: f' and f'' against closed forms, f'''
// against central differences of f'' (and gradcheck of the map x -> f''(x)).
BOOST_AUTO_TEST_CASE(activation_third_derivatives) {
    const double c = std::sqrt(2 / M_PI), k = 0.044715;
    auto sig = [](double x) { return 1 / (1 + std::exp(-x)); };
    struct Act {
        const char* name;
        Tensor (*op)(const Tensor&);
        std::function<double(double)> d1, d2;
    };
    const Act acts[] = {
        {"sigmoid", miras::sigmoid, [&](double x) { double s = sig(x); return s * (1 - s); },
         [&](double x) { double s = sig(x); return s * (1 - s) * (1 - 2 * s); }},
        {"tanh", miras::tanh, [](double x) { double t = std::tanh(x); return 1 - t * t; },
         [](double x) { double t = std::tanh(x); return -2 * t * (1 - t * t); }},
        // silu' = s (1 + x (1 − s)), silu'' = s (1 − s) (2 + x (1 − 2s))
        {"silu", miras::silu, [&](double x) { double s = sig(x); return s * (1 + x * (1 - s)); },
         [&](double x) { double s = sig(x); return s * (1 - s) * (2 + x * (1 - 2 * s)); }},
        // t = tanh u, u = c (x + k x³), u' = c (1 + 3k x²), u'' = 6ckx:
        // gelu' = ½ (1 + t) + ½ x (1 − t²) u', gelu'' = (1 − t²) u' + ½ x (1 − t²) (u'' − 2t u'²)
        {"gelu", miras::gelu,
         [&](double x) {
             double t = std::tanh(c * (x + k * x * x * x)), du = c * (1 + 3 * k * x * x);
             return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du;
         },
         [&](double x) {
             double t = std::tanh(c * (x + k * x * x * x)), du = c * (1 + 3 * k * x * x), ddu = 6 * c * k * x;
             return (1 - t * t) * du + 0.5 * x * (1 - t * t) * (ddu - 2 * t * du * du);
         }},
    };
    const std::vector<double> xs = {-3.9, -2.2, -0.7, -0.1, 0.0, 0.4, 1.3, 2.8, 4.0};
    const Shape shape = {(int64_t)xs.size()};
    for (const auto& a : acts) {
        BOOST_TEST_CONTEXT(a.name) {
            // g1 = f'(x), g2 = f''(x), g3 = f'''(x): Σ keeps each in its own slot
            auto derivs = [&](const std::vector<double>& at, bool third) {
                Tensor x = leaf(T(at, shape));
                Tensor g1 = grad({sum(a.op(x))}, {x}, {}, {.create_graph = true})[0];
                Tensor g2 = grad({sum(g1)}, {x}, {}, {.create_graph = true})[0];
                Tensor g3 = third ? grad({sum(g2)}, {x})[0] : Tensor();
                return TensorList{g1, g2, g3};
            };
            TensorList d = derivs(xs, true);
            BOOST_TEST(grad_fn(d[0])->name == std::string(a.name) + "_backward");
            std::vector<double> w1, w2, xp, xm;
            const double h = 1e-5;
            for (double x : xs) {
                w1.push_back(a.d1(x));
                w2.push_back(a.d2(x));
                xp.push_back(x + h);
                xm.push_back(x - h);
            }
            check_values(d[0], shape, w1, 1e-12);
            check_values(d[1], shape, w2, 1e-12);
            std::vector<double> fp = derivs(xp, false)[1].to_vector(), fm = derivs(xm, false)[1].to_vector(), w3;
            for (size_t i = 0; i < xs.size(); ++i) w3.push_back((fp[i] - fm[i]) / (2 * h));
            check_values(d[2], shape, w3, 1e-8);
            TensorFn second = [op = a.op](const TensorList& in) -> TensorList {
                Tensor g1 = grad({sum(op(in[0]))}, {in[0]}, {}, {.create_graph = true})[0];
                return {grad({sum(g1)}, {in[0]}, {}, {.create_graph = true})[0]};
            };
            GradcheckResult r = gradcheck(second, {leaf(T(xs, shape))});
            BOOST_TEST(r.ok, r.message);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
