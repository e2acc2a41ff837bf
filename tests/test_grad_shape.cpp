// Gradients (gradcheck + gradgradcheck, f64) of the shape and view ops.
// Each function squares or weights its result so that the second derivative
// has something to check.
#include <boost/test/unit_test.hpp>

#include "op_test_util.h"

using namespace miras;
using namespace miras::test;

namespace {

// f(t) = op(t)² ⊙ (1 + position): non-symmetric, so a permuted gradient shows.
TensorFn weighted(std::function<Tensor(const Tensor&)> op) {
    return [op](const TensorList& x) {
        Tensor y = op(x[0]);
        Tensor w = add(reshape(arange(0, (double)y.numel(), 1, DType::f64), y.shape()), 1.0);
        return TensorList{mul(square(y), w)};
    };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(grad_shape)

BOOST_AUTO_TEST_CASE(view_ops) {
    Generator g(1);
    Tensor x = rn({2, 3, 2}, g);
    struct Case { const char* name; std::function<Tensor(const Tensor&)> op; };
    const Case cases[] = {
        {"reshape", [](const Tensor& t) { return reshape(t, {3, -1}); }},
        {"reshape of transposed", [](const Tensor& t) { return reshape(transpose(t, 0, 2), {12}); }},
        {"view", [](const Tensor& t) { return view(t, {6, 2}); }},
        {"flatten", [](const Tensor& t) { return flatten(t, 1); }},
        {"flatten all", [](const Tensor& t) { return flatten(t); }},
        {"permute", [](const Tensor& t) { return permute(t, {2, 0, 1}); }},
        {"permute negative", [](const Tensor& t) { return permute(t, {-1, -3, -2}); }},
        {"transpose", [](const Tensor& t) { return transpose(t, 0, 1); }},
        {"transpose negative", [](const Tensor& t) { return transpose(t, -1, 0); }},
        {"narrow", [](const Tensor& t) { return narrow(t, 1, 1, 2); }},
        {"narrow negative start", [](const Tensor& t) { return narrow(t, -2, -2, 1); }},
        {"select", [](const Tensor& t) { return select(t, 1, 2); }},
        {"select negative", [](const Tensor& t) { return select(t, -1, -1); }},
        {"expand", [](const Tensor& t) { return expand(narrow(t, 1, 0, 1), {2, 2, 4, 2}); }},
        {"squeeze", [](const Tensor& t) { return squeeze(narrow(t, 1, 1, 1), 1); }},
        {"unsqueeze", [](const Tensor& t) { return unsqueeze(t, -1); }},
        {"contiguous", [](const Tensor& t) { return contiguous(transpose(t, 0, 1)); }},
        {"clone", [](const Tensor& t) { return clone(t); }},
        {"to_dtype f64", [](const Tensor& t) { return to_dtype(t, DType::f64); }},
        {"narrow_scatter", [](const Tensor& t) { return narrow_scatter(t, {2, 5, 2}, 1, 1); }},
        {"chain", [](const Tensor& t) { return select(narrow(permute(t, {1, 2, 0}), 0, 1, 2), -1, 0); }},
    };
    for (const auto& c : cases) check_grads(c.name, weighted(c.op), {x});
}

BOOST_AUTO_TEST_CASE(gradient_values_land_in_place) {
    Tensor x = leaf(T({0, 1, 2, 3, 4, 5}, {2, 3}));
    Tensor w = T({1, 2, 3, 4, 5, 6}, {3, 2});
    // transpose: the gradient is the cotangent transposed back
    check_values(grad({sum(mul(transpose(x, 0, 1), w))}, {x})[0], {2, 3}, {1, 3, 5, 2, 4, 6});
    // narrow / select: zeros outside the window
    check_values(grad({sum(narrow(x, 1, 1, 2))}, {x})[0], {2, 3}, {0, 1, 1, 0, 1, 1});
    check_values(grad({sum(mul(select(x, 0, -1), T({7, 8, 9}, {3})))}, {x})[0], {2, 3}, {0, 0, 0, 7, 8, 9});
    // expand: summed over the repeats
    Tensor r = leaf(T({1, 2}, {2, 1}));
    check_values(grad({sum(expand(r, {3, 2, 4}))}, {r})[0], {2, 1}, {12, 12});
    // two overlapping narrows of the same tensor add up
    check_values(grad({add(sum(narrow(x, 1, 0, 2)), sum(narrow(x, 1, 1, 2)))}, {x})[0], {2, 3}, {1, 2, 1, 1, 2, 1});
    // to_dtype: an f32 detour gives an f64 gradient of the same shape
    Tensor g = grad({sum(to_dtype(mul(to_dtype(x, DType::f32), 2.0), DType::f64))}, {x})[0];
    BOOST_TEST((g.dtype() == DType::f64));
    check_values(g, {2, 3}, {2, 2, 2, 2, 2, 2});
    // the adjoint pair narrow / narrow_scatter: <narrow(x), y> = <x, narrow_scatter(y)>
    Tensor y = T({1, -1, 2, -2}, {2, 2});
    double lhs = sum(mul(narrow(x, 1, 1, 2), y)).item();
    double rhs = sum(mul(x, narrow_scatter(y, {2, 3}, 1, 1))).item();
    BOOST_TEST(lhs == rhs);
}

BOOST_AUTO_TEST_CASE(views_of_leaves_keep_the_leaf_shape_in_backward) {
    Tensor x = leaf(T({1, 2, 3, 4, 5, 6}, {2, 3}));
    backward(sum(square(reshape(transpose(x, 0, 1), {6}))));
    check_values(grad_of(x), {2, 3}, {2, 4, 6, 8, 10, 12});
    // gradients of in-place-unsafe uses: writing into a view of a saved input is caught
    Tensor a = leaf(T({1, 2, 3}, {3}));
    Tensor b = clone(a);
    Tensor y = mul(b, b);  // saves b
    raw::fill_(raw::narrow(b, 0, 0, 1), 5);
    BOOST_CHECK_EXCEPTION(grad({sum(y)}, {a}), std::runtime_error, has({"mul", "modified in place"}));
}

BOOST_AUTO_TEST_SUITE_END()
