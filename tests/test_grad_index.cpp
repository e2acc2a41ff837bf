// Gradients (gradcheck + gradgradcheck, f64) of joining, indexing and
// scan ops, with repeated indices (gradients accumulate) and reversed scans.
// Forward values of the raw kernels are in test_indexing_raw.cpp.
#include <boost/test/unit_test.hpp>

#include "op_test_util.h"

using namespace miras;
using namespace miras::test;

BOOST_AUTO_TEST_SUITE(grad_index)

BOOST_AUTO_TEST_CASE(cat_stack_split) {
    Generator g(1);
    Tensor a = rn({2, 3}, g), b = rn({2, 1}, g), c = rn({2, 2}, g);
    auto sq = [](const Tensor& t) { return mul(t, t); };
    check_grads("cat dim 1", [sq](const TensorList& x) { return TensorList{sq(cat({x[0], x[1], x[2]}, 1))}; }, {a, b, c});
    check_grads("cat dim -1 repeated input", [sq](const TensorList& x) { return TensorList{sq(cat({x[0], x[1], x[0]}, -1))}; },
                {a, b});
    Tensor d = rn({1, 3}, g);
    check_grads("cat dim 0", [sq](const TensorList& x) { return TensorList{sq(cat({x[0], x[1]}, 0))}; }, {a, d});
    Tensor e = rn({2, 3}, g);
    for (int64_t dim : {0, 1, 2, -1})
        check_grads("stack", [sq, dim](const TensorList& x) { return TensorList{sq(stack({x[0], x[1]}, dim))}; }, {a, e});
    // split: several outputs, each checked
    check_grads("split", [sq](const TensorList& x) {
        TensorList parts = split(sq(x[0]), {1, 0, 2}, 1), r;
        for (auto& p : parts) r.push_back(mul(p, 2.0));
        return r;
    }, {a});
    // cat with an input that needs no gradient
    Tensor k = randn({2, 2}, g, DType::f64);
    TensorList gs = grad({sum(mul(cat({a, k}, 1), T({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {2, 5})))}, {a});
    check_values(gs[0], {2, 3}, {1, 2, 3, 6, 7, 8});
    BOOST_CHECK_EXCEPTION(stack({}, 0), std::invalid_argument, has({"stack", "empty"}));
    BOOST_CHECK_EXCEPTION(split(a, {1, 1}, 1), std::invalid_argument, has({"split", "sum to 2", "(2, 3)"}));
}

BOOST_AUTO_TEST_CASE(index_select_index_add_embedding) {
    Generator g(2);
    Tensor x = rn({4, 3}, g);
    IndexTensor rep({5}, {2, 0, 2, 3, 2});  // repeated rows: gradients accumulate
    check_grads("index_select dim 0", fn1([rep](const Tensor& t) { return square(index_select(t, 0, rep)); }), {x});
    IndexTensor cols({4}, {1, 1, 0, 2});
    check_grads("index_select dim -1", fn1([cols](const Tensor& t) { return square(index_select(t, -1, cols)); }), {x});
    Tensor src = rn({5, 3}, g);
    check_grads("index_add", fn1([rep](const Tensor& s) { return square(index_add({4, 3}, 0, rep, s)); }), {src});
    IndexTensor ids({2, 3}, {3, 0, 3, 1, 1, 2});
    check_grads("embedding", fn1([ids](const Tensor& t) { return square(embedding(t, ids)); }), {x});
    // hand value: row 2 is picked three times
    TensorList gs = grad({sum(index_select(x, 0, rep))}, {x});
    check_values(gs[0], {4, 3}, {1, 1, 1, 0, 0, 0, 3, 3, 3, 1, 1, 1});
    Tensor e = embedding(x, ids);
    BOOST_TEST(e.shape() == (Shape{2, 3, 3}));
    gs = grad({sum(e)}, {x});
    check_values(gs[0], {4, 3}, {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2});
    BOOST_CHECK_EXCEPTION(embedding(zeros({3}), ids), std::invalid_argument, has({"embedding", "(3,)"}));
}

BOOST_AUTO_TEST_CASE(gather_scatter_add) {
    Generator g(3);
    Tensor x = rn({3, 4}, g);
    IndexTensor idx({3, 2}, {0, 3, 3, 3, 1, 0});  // row 1 gathers column 3 twice
    check_grads("gather dim 1", fn1([idx](const Tensor& t) { return square(gather(t, 1, idx)); }), {x});
    IndexTensor idx0({2, 4}, {2, 0, 1, 2, 2, 2, 0, 1});
    check_grads("gather dim 0", fn1([idx0](const Tensor& t) { return square(gather(t, 0, idx0)); }), {x});
    Tensor src = rn({3, 2}, g);
    check_grads("scatter_add", fn1([idx](const Tensor& s) { return square(scatter_add({3, 4}, 1, idx, s)); }), {src});
    TensorList gs = grad({sum(gather(x, 1, idx))}, {x});
    check_values(gs[0], {3, 4}, {1, 0, 0, 1, 0, 0, 0, 2, 1, 1, 0, 0});
    // scatter_add may read only the leading part of a larger src (as PyTorch);
    // the rest of src gets a zero gradient of src's own shape
    Tensor big = rn({3, 3}, g);
    Tensor out = scatter_add({3, 4}, 1, idx, big);
    BOOST_TEST(out.shape() == (Shape{3, 4}));
    gs = grad({sum(mul(out, reshape(arange(1, 13, 1, DType::f64), {3, 4})))}, {big});
    check_values(gs[0], {3, 3}, {1, 4, 0, 8, 8, 0, 10, 9, 0});
    check_grads("scatter_add larger src", fn1([idx](const Tensor& s) { return square(scatter_add({3, 4}, 1, idx, s)); }), {big});
}

BOOST_AUTO_TEST_CASE(scans_and_triangles) {
    Generator g(4);
    Tensor x = rn({2, 3, 2}, g), p = ru({2, 3, 2}, g, 0.5, 1.5);
    for (int64_t dim : {0, 1, -1})
        for (bool rev : {false, true}) {
            BOOST_TEST_CONTEXT("dim " << dim << " reverse " << rev) {
                check_grads("cumsum", fn1([dim, rev](const Tensor& t) { return square(cumsum(t, dim, rev)); }), {x});
                check_grads("cumprod", fn1([dim, rev](const Tensor& t) { return cumprod(t, dim, rev); }), {p});
                // negative entries are fine as long as none is zero
                check_grads("cumprod of signed", fn1([dim, rev](const Tensor& t) { return cumprod(t, dim, rev); }), {x});
            }
        }
    Tensor m = rn({2, 3, 4}, g);
    for (int64_t k : {-1, 0, 2}) {
        check_grads("tril", fn1([k](const Tensor& t) { return square(tril(t, k)); }), {m});
        check_grads("triu", fn1([k](const Tensor& t) { return square(triu(t, k)); }), {m});
    }
    // hand values
    Tensor v = leaf(T({2, 3, 4}, {3}));
    check_values(grad({sum(cumsum(v, 0))}, {v})[0], {3}, {3, 2, 1});
    check_values(grad({sum(cumsum(v, 0, true))}, {v})[0], {3}, {1, 2, 3});
    // cumprod = (2, 6, 24): d/dv0 = 1 + 3 + 12, d/dv1 = 2 + 8, d/dv2 = 6
    check_values(grad({sum(cumprod(v, 0))}, {v})[0], {3}, {16, 10, 6});
    Tensor s = leaf(ones({2, 3}, DType::f64));
    check_values(grad({sum(tril(s))}, {s})[0], {2, 3}, {1, 0, 0, 1, 1, 0});
    check_values(grad({sum(triu(s, 1))}, {s})[0], {2, 3}, {0, 1, 1, 0, 0, 1});
}

BOOST_AUTO_TEST_CASE(cumprod_backward_refuses_zeros) {
    Tensor x = leaf(T({2, 0, 3, 1}, {2, 2}));
    Tensor y = cumprod(x, 1);
    check_values(y, {2, 2}, {2, 0, 3, 3});
    BOOST_CHECK_EXCEPTION(grad({sum(y)}, {x}), std::runtime_error, has({"cumprod", "zeros", "(2, 2)"}));
    // forward alone is fine, and no-zero inputs still differentiate
    Tensor z = leaf(T({2, -1, 3, 1}, {2, 2}));
    check_values(grad({sum(cumprod(z, 1))}, {z})[0], {2, 2}, {0, 2, 2, 3});
}

BOOST_AUTO_TEST_SUITE_END()
