// NumPy broadcasting over a table of shape pairs (equal shapes, size-1 dims,
// 0-d, leading dims, zero-size): every binary kernel against a naive loop in
// f32 and f64, and every differentiable binary op's gradients against the
// naive sum over the broadcast positions (the classic bug is a gradient left
// at the output's shape, or averaged instead of summed).
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "op_test_util.h"

using namespace miras;
using namespace miras::test;

namespace {

struct Pair { Shape a, b; };

const Pair kPairs[] = {
    {{2, 3}, {2, 3}},       {{2, 3}, {3}},       {{2, 3}, {2, 1}},     {{2, 1}, {1, 3}},
    {{}, {2, 3}},           {{2, 3}, {}},        {{}, {}},             {{4, 1, 3}, {2, 1}},
    {{1}, {3}},             {{2, 1, 3}, {2, 4, 1}}, {{3}, {2, 4, 3}},  {{1, 1}, {3}},
    {{2, 3, 1}, {1}},       {{1, 3}, {1, 1}},    {{0, 3}, {3}},        {{2, 1, 1, 2}, {3, 1}},
};

// a op b for one element, in double; `mode` picks the domain of the inputs.
struct BinCase {
    const char* name;
    raw::Binary kind;
    double (*f)(double, double);
};

const BinCase kBin[] = {
    {"add", raw::Binary::add, [](double a, double b) { return a + b; }},
    {"sub", raw::Binary::sub, [](double a, double b) { return a - b; }},
    {"mul", raw::Binary::mul, [](double a, double b) { return a * b; }},
    {"div", raw::Binary::div, [](double a, double b) { return a / b; }},
    {"pow", raw::Binary::pow, [](double a, double b) { return std::pow(a, b); }},
    {"maximum", raw::Binary::maximum, [](double a, double b) { return std::max(a, b); }},
    {"minimum", raw::Binary::minimum, [](double a, double b) { return std::min(a, b); }},
    {"eq", raw::Binary::eq, [](double a, double b) { return double(a == b); }},
    {"ne", raw::Binary::ne, [](double a, double b) { return double(a != b); }},
    {"lt", raw::Binary::lt, [](double a, double b) { return double(a < b); }},
    {"le", raw::Binary::le, [](double a, double b) { return double(a <= b); }},
    {"gt", raw::Binary::gt, [](double a, double b) { return double(a > b); }},
    {"ge", raw::Binary::ge, [](double a, double b) { return double(a >= b); }},
};

// out[i] = f(a[bcast(i)], b[bcast(i)]) over the broadcast shape.
template <class F>
std::vector<double> naive(const Tensor& a, const Tensor& b, const Shape& out, F f) {
    std::vector<double> va = a.to_vector(), vb = b.to_vector(), r;
    for (int64_t i = 0; i < numel_of(out); ++i) {
        auto idx = unravel(i, out);
        r.push_back(f(va[bcast_pos(idx, a.shape())], vb[bcast_pos(idx, b.shape())]));
    }
    return r;
}

// Σ over the output positions that read input element p (of shape `in`) of h(i).
template <class H>
std::vector<double> naive_sum_back(const Shape& in, const Shape& out, H h) {
    std::vector<double> r((size_t)numel_of(in), 0.0);
    for (int64_t i = 0; i < numel_of(out); ++i) r[bcast_pos(unravel(i, out), in)] += h(i, unravel(i, out));
    return r;
}

// Positive a and b (pow, div) with a few shared values so that the
// comparison ops see ties too.
std::pair<Tensor, Tensor> operands(const Pair& p, DType dt, Generator& g) {
    Tensor a = rand(p.a, g, DType::f64, 0.5, 2), b = rand(p.b, g, DType::f64, 0.5, 2);
    std::vector<double> va = a.to_vector(), vb = b.to_vector();
    if (!va.empty() && !vb.empty()) vb[0] = va[0];  // a tie at the first broadcast position
    return {to_dtype(a, dt), from_vector(vb, p.b, dt)};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(broadcast)

BOOST_AUTO_TEST_CASE(shapes_broadcast_by_numpy_rules) {
    BOOST_TEST(broadcast_shapes({2, 1, 3}, {4, 1}, "t") == (Shape{2, 4, 3}));
    BOOST_TEST(broadcast_shapes({}, {3}, "t") == (Shape{3}));
    BOOST_TEST(broadcast_shapes({0, 1}, {1, 5}, "t") == (Shape{0, 5}));
    BOOST_CHECK_EXCEPTION(broadcast_shapes({2, 3}, {4}, "myop"), std::invalid_argument,
                          has({"myop: shapes (2, 3) and (4,) cannot be broadcast together"}));
    BOOST_CHECK_EXCEPTION(add(ones({2, 3}), ones({3, 2})), std::invalid_argument, has({"add", "(2, 3)", "(3, 2)"}));
    BOOST_CHECK_EXCEPTION(mul(ones({2, 3}), ones({2})), std::invalid_argument, has({"mul", "(2, 3)", "(2,)"}));
    BOOST_CHECK_EXCEPTION(where(ones({2}), ones({3}), ones({2})), std::invalid_argument, has({"where", "(3,)"}));
    BOOST_CHECK_EXCEPTION(raw::axpby(ones({2}), 1, ones({3}), 1), std::invalid_argument, has({"axpby", "(3,)"}));
}

BOOST_AUTO_TEST_CASE(binary_values_match_naive_loop) {
    Generator g(1);
    for (DType dt : kDtypes)
        for (const auto& p : kPairs) {
            auto [a, b] = operands(p, dt, g);
            Shape out = broadcast_shapes(p.a, p.b, "test");
            for (const auto& c : kBin) {
                BOOST_TEST_CONTEXT(c.name << " " << shape_str(p.a) << " with " << shape_str(p.b) << " "
                                          << dtype_name(dt)) {
                    check_values(raw::binary(c.kind, a, b), out, naive(a, b, out, c.f), tol_for(dt));
                    // the same with the operands swapped
                    check_values(raw::binary(c.kind, b, a), out, naive(b, a, out, c.f), tol_for(dt));
                }
            }
            // three-way broadcasting of where and the fused axpby
            Tensor cond = raw::binary(raw::Binary::gt, a, b);
            BOOST_TEST_CONTEXT("where/axpby " << shape_str(p.a) << " with " << shape_str(p.b)) {
                std::vector<double> vc = naive(a, b, out, [](double x, double y) { return double(x > y); });
                std::vector<double> w = naive(a, b, out, [](double x, double y) { return x - y; });
                std::vector<double> want_w(w.size());
                for (size_t i = 0; i < w.size(); ++i) want_w[i] = vc[i] != 0 ? w[i] : 7.0;
                check_values(raw::where(cond, raw::binary(raw::Binary::sub, a, b), scalar_tensor(7, dt)), out,
                             want_w, tol_for(dt));
                check_values(raw::axpby(raw::expand(a, out), 2, b, -0.5), out,
                             naive(a, b, out, [](double x, double y) { return 2 * x - 0.5 * y; }), tol_for(dt));
            }
        }
}

// loss = Σ op(a, b) ⊙ w: the gradient of each input is the naive sum over
// its broadcast positions, and has the input's own shape.
BOOST_AUTO_TEST_CASE(binary_gradients_are_summed_to_input_shape) {
    Generator g(2);
    using D = std::pair<double, double>;
    struct GradCase {
        const char* name;
        Tensor (*op)(const Tensor&, const Tensor&);
        D (*d)(double, double);  // (∂/∂a, ∂/∂b)
    };
    const GradCase cases[] = {
        {"add", miras::add, [](double, double) { return D{1, 1}; }},
        {"sub", miras::sub, [](double, double) { return D{1, -1}; }},
        {"mul", miras::mul, [](double a, double b) { return D{b, a}; }},
        {"div", miras::div, [](double a, double b) { return D{1 / b, -a / (b * b)}; }},
        {"pow", miras::pow, [](double a, double b) { return D{b * std::pow(a, b - 1), std::pow(a, b) * std::log(a)}; }},
        {"maximum", miras::maximum, [](double a, double b) { return D{a >= b, a < b}; }},
        {"minimum", miras::minimum, [](double a, double b) { return D{a <= b, a > b}; }},
    };
    for (const auto& p : kPairs) {
        Shape out = broadcast_shapes(p.a, p.b, "test");
        Tensor a = ru(p.a, g, 0.5, 2), b = ru(p.b, g, 0.5, 2), w = randn(out, g, DType::f64);
        std::vector<double> va = a.to_vector(), vb = b.to_vector(), vw = w.to_vector();
        for (const auto& c : cases) {
            BOOST_TEST_CONTEXT(c.name << " " << shape_str(p.a) << " with " << shape_str(p.b)) {
                Tensor loss = sum(mul(c.op(a, b), w));
                TensorList gs = grad({loss}, {a, b});
                auto da = [&](int64_t i, const std::vector<int64_t>& idx) {
                    return vw[i] * c.d(va[bcast_pos(idx, p.a)], vb[bcast_pos(idx, p.b)]).first;
                };
                auto db = [&](int64_t i, const std::vector<int64_t>& idx) {
                    return vw[i] * c.d(va[bcast_pos(idx, p.a)], vb[bcast_pos(idx, p.b)]).second;
                };
                check_values(gs[0], p.a, naive_sum_back(p.a, out, da), 1e-12);
                check_values(gs[1], p.b, naive_sum_back(p.b, out, db), 1e-12);
            }
        }
        // backward() accumulates into .grad with the leaf's shape, twice = double
        Tensor a2 = ru(p.a, g, 0.5, 2), b2 = ru(p.b, g, 0.5, 2);
        backward(sum(mul(a2, b2)));
        backward(sum(mul(a2, b2)));
        BOOST_TEST(grad_of(a2).shape() == p.a);
        BOOST_TEST(grad_of(b2).shape() == p.b);
        std::vector<double> want_b = naive_sum_back(p.b, out, [&](int64_t, const std::vector<int64_t>& idx) {
            return 2 * a2.to_vector()[bcast_pos(idx, p.a)];
        });
        check_values(grad_of(b2), p.b, want_b, 1e-12);
    }
}

// gradcheck + gradgradcheck on every pair: the second derivatives of the
// broadcasting ops are broadcasts too, and must be summed back as well.
BOOST_AUTO_TEST_CASE(binary_gradcheck_every_pair) {
    Generator g(3);
    for (const auto& p : kPairs) {
        if (numel_of(p.a) == 0) continue;
        BOOST_TEST_CONTEXT(shape_str(p.a) << " with " << shape_str(p.b)) {
            Tensor a = ru(p.a, g, 0.5, 2), b = ru(p.b, g, 0.5, 2);
            check_grads("add/sub/mul/div", fn2([](const Tensor& x, const Tensor& y) {
                            return sub(add(mul(x, y), div(x, y)), add(y, x));
                        }), {a, b});
            check_grads("pow", fn2([](const Tensor& x, const Tensor& y) { return pow(x, y); }), {a, b});
            // ties are excluded: b is shifted away from a
            Tensor c = leaf(add(detach(b), 3.0));
            check_grads("maximum/minimum", fn2([](const Tensor& x, const Tensor& y) {
                            return add(maximum(mul(x, x), y), minimum(x, mul(y, 0.1)));
                        }), {a, c});
            Tensor cond = raw::binary(raw::Binary::gt, raw::expand(detach(a), broadcast_shapes(p.a, p.b, "t")),
                                      scalar_tensor(1.2, DType::f64));
            check_grads("where", fn2([cond](const Tensor& x, const Tensor& y) {
                            return where(cond, mul(x, y), square(y));
                        }), {a, b});
        }
    }
}

// Reductions with keepdim give size-1 dims that broadcast back over the
// input: x - mean(x, dims, keepdim) and x / sum(x, dims, keepdim).
BOOST_AUTO_TEST_CASE(keepdim_reductions_broadcast_back) {
    Generator g(4);
    Tensor x = ru({2, 3, 2}, g, 0.5, 2);
    std::vector<double> vx = x.to_vector();
    const std::vector<std::vector<int64_t>> dim_sets = {{0}, {1}, {-1}, {0, 2}, {}};
    for (const auto& dims : dim_sets) {
        BOOST_TEST_CONTEXT("dims " << shape_str(dims)) {
            Tensor m = mean(x, dims, true);
            Shape ms = {2, 3, 2};
            std::vector<bool> red(3, dims.empty());
            for (int64_t d : dims) red[(size_t)(d < 0 ? d + 3 : d)] = true;
            for (int d = 0; d < 3; ++d) if (red[d]) ms[d] = 1;
            BOOST_TEST(m.shape() == ms);
            // naive centred values
            std::vector<double> sums((size_t)numel_of(ms), 0.0);
            for (int64_t i = 0; i < 12; ++i) sums[bcast_pos(unravel(i, {2, 3, 2}), ms)] += vx[i];
            double count = 12.0 / (double)numel_of(ms);
            std::vector<double> want;
            for (int64_t i = 0; i < 12; ++i) want.push_back(vx[i] - sums[bcast_pos(unravel(i, {2, 3, 2}), ms)] / count);
            check_values(sub(x, m), {2, 3, 2}, want, 1e-12);
            check_grads("x - mean(x, keepdim)", fn1([dims](const Tensor& t) { return sub(t, mean(t, dims, true)); }), {x});
            check_grads("x / sum(x, keepdim)", fn1([dims](const Tensor& t) { return div(t, sum(t, dims, true)); }), {x});
            check_grads("x * amax(x, keepdim)", fn1([dims](const Tensor& t) { return mul(t, amax(t, dims, true)); }), {x});
        }
    }
    // without keepdim the reduced dims are gone; unsqueeze restores broadcasting
    Tensor s = sum(x, {1});
    BOOST_TEST(s.shape() == (Shape{2, 2}));
    check_grads("x * unsqueeze(sum(x, 1))", fn1([](const Tensor& t) { return mul(t, unsqueeze(sum(t, {1}), 1)); }), {x});
}

// The differentiable sum_to undoes broadcasting; its errors name both shapes.
BOOST_AUTO_TEST_CASE(sum_to_values_and_grads) {
    Generator g(5);
    Tensor x = T({1, 2, 3, 4, 5, 6}, {2, 3});
    check_values(sum_to(x, {3}), {3}, {5, 7, 9});
    check_values(sum_to(x, {2, 1}), {2, 1}, {6, 15});
    check_values(sum_to(x, {1, 3}), {1, 3}, {5, 7, 9});
    check_values(sum_to(x, {}), {}, {21});
    check_values(sum_to(x, {2, 3}), {2, 3}, {1, 2, 3, 4, 5, 6});
    check_values(raw::sum_to(T({1, 2, 3}, {1, 3}), {3}), {3}, {1, 2, 3});
    check_values(raw::sum_to(raw::expand(T({1, 2}, {2, 1}), {2, 2, 3}), {2, 1}), {2, 1}, {6, 12});
    check_grads("sum_to (2, 1)", fn1([](const Tensor& t) { return sum_to(t, {2, 1}); }), {rn({2, 3}, g)});
    check_grads("sum_to (1, 3, 1)", fn1([](const Tensor& t) { return sum_to(t, {3, 1}); }), {rn({2, 3, 2}, g)});
    check_grads("sum_to ()", fn1([](const Tensor& t) { return sum_to(square(t), {}); }), {rn({2, 2}, g)});
    BOOST_CHECK_EXCEPTION(sum_to(x, {2}), std::invalid_argument, has({"sum_to", "(2,)", "(2, 3)"}));
    BOOST_CHECK_EXCEPTION(sum_to(x, {4, 2, 3}), std::invalid_argument, has({"sum_to", "(4, 2, 3)", "(2, 3)"}));
}

BOOST_AUTO_TEST_SUITE_END()
