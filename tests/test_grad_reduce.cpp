// Gradients (gradcheck + gradgradcheck, f64) of the reductions and the
// softmax family over several dims with and without keepdim; where max() and
// amax() send their gradient (first argmax; ties shared); gradients at large
// inputs; 0-d inputs.
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "op_test_util.h"

using namespace miras;
using namespace miras::test;

namespace {

const std::vector<std::vector<int64_t>> kDimSets = {{}, {0}, {-1}, {1, 2}, {2, 0}};

// Distinct values (no ties, spacing 0.1) in random order: safe for max/amax.
Tensor distinct(const Shape& s, Generator& g) {
    int64_t n = numel_of(s);
    std::vector<double> v((size_t)n);
    for (int64_t i = 0; i < n; ++i) v[(size_t)i] = 0.1 * (double)i - 1;
    for (int64_t i = n - 1; i > 0; --i) std::swap(v[(size_t)i], v[g.below((uint64_t)i + 1)]);
    return leaf(T(v, s));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(grad_reduce)

BOOST_AUTO_TEST_CASE(sum_mean_amax_over_dim_sets) {
    Generator g(1);
    Tensor x = rn({2, 3, 2}, g), d = distinct({2, 3, 2}, g);
    for (const auto& dims : kDimSets)
        for (bool keep : {false, true}) {
            BOOST_TEST_CONTEXT("dims " << shape_str(dims) << " keepdim " << keep) {
                // squared inside, so the second derivative is not trivially zero
                check_grads("sum", fn1([dims, keep](const Tensor& t) { return sum(square(t), dims, keep); }), {x});
                check_grads("mean", fn1([dims, keep](const Tensor& t) { return mean(square(t), dims, keep); }), {x});
                check_grads("amax", fn1([dims, keep](const Tensor& t) { return amax(mul(t, t), dims, keep); }), {d});
            }
        }
    // mean's gradient is 1/count, summed back over the reduced dims
    TensorList gs = grad({sum(mean(x, {0, 2}))}, {x});
    check_values(gs[0], {2, 3, 2}, std::vector<double>(12, 0.25));
    gs = grad({sum(sum(x, {1}, true))}, {x});
    check_values(gs[0], {2, 3, 2}, std::vector<double>(12, 1.0));
}

BOOST_AUTO_TEST_CASE(max_values_and_gradients) {
    Generator g(2);
    Tensor d = distinct({3, 4}, g);
    for (int64_t dim : {0, 1, -1})
        for (bool keep : {false, true}) {
            check_grads("max values", fn1([dim, keep](const Tensor& t) { return max(mul(t, t), dim, keep).values; }), {d});
        }
    // the gradient goes to the first argmax only
    Tensor x = leaf(T({1, 3, 3, 2, 2, 1}, {2, 3}));
    MaxOut m = max(x, 1);
    BOOST_TEST(m.indices.data == (std::vector<int64_t>{1, 0}));
    TensorList gs = grad({sum(m.values)}, {x});
    check_values(gs[0], {2, 3}, {0, 1, 0, 1, 0, 0});
    // with keepdim and a weighted loss
    m = max(x, 0, true);
    gs = grad({sum(mul(m.values, T({10, 20, 30}, {1, 3})))}, {x});
    check_values(gs[0], {2, 3}, {0, 20, 30, 10, 0, 0});
}

BOOST_AUTO_TEST_CASE(amax_ties_share_the_gradient) {
    Tensor x = leaf(T({1, 3, 3, 2, 2, 1}, {2, 3}));
    TensorList gs = grad({sum(amax(x, {1}))}, {x});
    check_values(gs[0], {2, 3}, {0, 0.5, 0.5, 0.5, 0.5, 0});
    gs = grad({amax(x)}, {x});  // over everything: two tied 3s
    check_values(gs[0], {2, 3}, {0, 0.5, 0.5, 0, 0, 0});
    Tensor y = leaf(T({4, 4, 4}, {3}));
    gs = grad({mul(amax(y, {0}, true), 3.0)}, {y}, {T({1}, {1})});
    check_values(gs[0], {3}, {1, 1, 1});
}

BOOST_AUTO_TEST_CASE(softmax_family_over_dims) {
    Generator g(3);
    Tensor x = rn({2, 3, 2}, g);
    for (int64_t dim : {0, 1, 2, -1}) {
        BOOST_TEST_CONTEXT("dim " << dim) {
            check_grads("softmax", fn1([dim](const Tensor& t) { return softmax(t, dim); }), {x});
            check_grads("log_softmax", fn1([dim](const Tensor& t) { return log_softmax(t, dim); }), {x});
            check_grads("logsumexp", fn1([dim](const Tensor& t) { return logsumexp(t, dim); }), {x});
            check_grads("logsumexp keepdim", fn1([dim](const Tensor& t) { return logsumexp(t, dim, true); }), {x});
        }
    }
    // hand values: d lse / dx = softmax(x)
    Tensor v = leaf(T({0, std::log(3.0)}, {2}));
    check_values(grad({logsumexp(v, 0)}, {v})[0], {2}, {0.25, 0.75});
    // Σ softmax = 1, so a uniform cotangent gives a zero gradient
    check_values(grad({sum(softmax(v, 0))}, {v})[0], {2}, {0, 0});
    // log_softmax: dx = g - softmax Σg
    check_values(grad({sum(mul(log_softmax(v, 0), T({1, 0}, {2})))}, {v})[0], {2}, {0.75, -0.75});
}

BOOST_AUTO_TEST_CASE(gradients_stay_finite_for_large_inputs) {
    for (double shift : {1000.0, -1000.0}) {
        Tensor x = leaf(T({shift + 2, shift + 1, shift}, {3}));
        double e0 = 1 / (1 + std::exp(-1.0) + std::exp(-2.0));
        std::vector<double> sm = {e0, e0 * std::exp(-1.0), e0 * std::exp(-2.0)};
        check_values(grad({logsumexp(x, 0)}, {x})[0], {3}, sm, 1e-12);
        // d/dx of log_softmax(x)[0] = onehot(0) - softmax
        check_values(grad({sum(mul(log_softmax(x, 0), T({1, 0, 0}, {3})))}, {x})[0], {3},
                     {1 - sm[0], -sm[1], -sm[2]}, 1e-12);
        check_values(grad({sum(mul(softmax(x, 0), T({1, 0, 0}, {3})))}, {x})[0], {3},
                     {sm[0] * (1 - sm[0]), -sm[0] * sm[1], -sm[0] * sm[2]}, 1e-12);
        check_grads("logsumexp at " + std::to_string(shift), fn1([](const Tensor& t) { return logsumexp(t, 0); }), {x});
        check_grads("log_softmax at " + std::to_string(shift), fn1([](const Tensor& t) { return log_softmax(t, 0); }), {x});
    }
}

BOOST_AUTO_TEST_CASE(zero_dim_inputs) {
    Tensor s = leaf(T({0.7}, {}));
    check_grads("sum 0-d", fn1([](const Tensor& t) { return sum(square(t), {0}); }), {s});
    check_grads("mean 0-d", fn1([](const Tensor& t) { return mean(square(t)); }), {s});
    check_grads("amax 0-d", fn1([](const Tensor& t) { return amax(square(t), {0}); }), {s});
    check_grads("max 0-d", fn1([](const Tensor& t) { return max(square(t), 0).values; }), {s});
    check_grads("logsumexp 0-d", fn1([](const Tensor& t) { return logsumexp(square(t), 0); }), {s});
    check_grads("softmax 0-d", fn1([](const Tensor& t) { return mul(softmax(t, 0), t); }), {s});
    check_grads("log_softmax 0-d", fn1([](const Tensor& t) { return add(log_softmax(t, 0), t); }), {s});
    BOOST_TEST(grad({sum(s, {0})}, {s})[0].shape() == Shape{});
}

// mul_sum_to(x, y, shape) = sum_to(x ⊙ y, shape) in one pass: the backward
// of every broadcast multiply goes through it.
BOOST_AUTO_TEST_CASE(mul_sum_to_values_and_gradients) {
    Generator g(11);
    struct Case { Shape x, y, to; };
    const std::vector<Case> cases = {
        {{2, 3, 4}, {2, 3, 4}, {4}},           // leading dims summed (a bias gradient)
        {{2, 3, 4}, {2, 3, 4}, {2, 1, 1}},     // trailing dims: a dot product per row
        {{2, 3, 4}, {2, 1, 1}, {2, 1, 1}},     // a per-matrix scalar's gradient
        {{2, 3, 4}, {4}, {3, 1}},              // middle dim kept, y broadcast
        {{3, 1}, {1, 4}, {1, 4}},              // both broadcast
        {{2, 3, 4}, {2, 3, 4}, {}},            // everything summed
        {{2, 0, 4}, {2, 0, 4}, {4}},           // empty
    };
    for (const Case& c : cases) {
        BOOST_TEST_CONTEXT(shape_str(c.x) << " * " << shape_str(c.y) << " -> " << shape_str(c.to)) {
            Tensor x = rn(c.x, g), y = rn(c.y, g);
            check_same(mul_sum_to(x, y, c.to), sum_to(mul(x, y), c.to), 1e-12);
            // f32 against the f64 result
            Tensor x32 = to_dtype(detach(x), DType::f32), y32 = to_dtype(detach(y), DType::f32);
            check_same(to_dtype(raw::mul_sum_to(x32, y32, c.to), DType::f64), sum_to(mul(x, y), c.to), 1e-5);
            if (numel_of(c.x) > 0)
                check_grads("mul_sum_to", fn2([to = c.to](const Tensor& a, const Tensor& b) {
                                return square(mul_sum_to(a, b, to));
                            }), {x, y});
        }
    }
    // strided inputs: a transposed x, an expanded y
    Tensor base = rn({4, 3}, g), yb = rn({3, 1}, g);
    Tensor xt = transpose(base, 0, 1), ye = expand(yb, {3, 4});
    check_same(mul_sum_to(xt, ye, {3, 1}), sum_to(mul(xt, ye), {3, 1}), 1e-12);
    // mul's backward uses it when an operand is broadcast
    Tensor a = rn({2, 3, 4}, g), s = rn({2, 1, 1}, g);
    Tensor gs = grad({sum(mul(a, s))}, {s}, {}, {.create_graph = true})[0];
    BOOST_TEST(grad_fn(gs)->name == "mul_sum_to");
    check_same(gs, sum(a, {1, 2}, true), 1e-12);
    // errors name the shapes
    BOOST_CHECK_EXCEPTION(mul_sum_to(rn({2, 3}, g), to_dtype(rn({3}, g), DType::f32), {3}), std::invalid_argument,
                          has({"mul_sum_to", "dtype mismatch"}));
    BOOST_CHECK_EXCEPTION(mul_sum_to(rn({2, 3}, g), rn({3}, g), {4}), std::invalid_argument,
                          [](const std::invalid_argument& e) { return std::string(e.what()).find("(4,)") != std::string::npos; });
}

// addcmul(c, a, b) = c + a ⊙ b in one pass, with broadcasting.
BOOST_AUTO_TEST_CASE(addcmul_values_and_gradients) {
    Generator g(12);
    struct Case { Shape c, a, b; };
    const std::vector<Case> cases = {
        {{2, 3, 4}, {2, 3, 4}, {2, 3, 4}},
        {{2, 3, 4}, {2, 1, 1}, {2, 3, 4}},  // a per-matrix scalar times a matrix
        {{2, 3, 4}, {2, 3, 4}, {4}},
        {{3, 1}, {1, 4}, {3, 4}},            // c broadcast too
        {{}, {3}, {2, 1}},
    };
    for (const Case& cs : cases) {
        BOOST_TEST_CONTEXT(shape_str(cs.c) << " + " << shape_str(cs.a) << " * " << shape_str(cs.b)) {
            Tensor c = rn(cs.c, g), a = rn(cs.a, g), b = rn(cs.b, g);
            check_same(addcmul(c, a, b), add(c, mul(a, b)), 1e-12);
            Tensor c32 = to_dtype(detach(c), DType::f32), a32 = to_dtype(detach(a), DType::f32),
                   b32 = to_dtype(detach(b), DType::f32);
            check_same(to_dtype(raw::addcmul(c32, a32, b32), DType::f64), add(c, mul(a, b)), 1e-5);
            check_grads("addcmul", [](const TensorList& in) { return TensorList{square(addcmul(in[0], in[1], in[2]))}; }, {c, a, b});
        }
    }
    // a transposed operand
    Tensor m = rn({4, 3}, g), c = rn({3, 4}, g), s = rn({3, 1}, g);
    check_same(addcmul(c, s, transpose(m, 0, 1)), add(c, mul(s, transpose(m, 0, 1))), 1e-12);
    BOOST_CHECK_THROW(addcmul(rn({2}, g), rn({3}, g), rn({2}, g)), std::invalid_argument);
    BOOST_CHECK_EXCEPTION(addcmul(rn({2}, g), to_dtype(rn({2}, g), DType::f32), rn({2}, g)), std::invalid_argument,
                          has({"addcmul", "dtype mismatch"}));
}

BOOST_AUTO_TEST_SUITE_END()
