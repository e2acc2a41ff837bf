// matmul against a naive triple loop: batch broadcasting, 1-D operands,
// transposed / narrowed / expanded views, empty dims; its gradients
// (gradcheck + gradgradcheck) for every case; shape errors.
#include <boost/test/unit_test.hpp>

#include <functional>

#include "op_test_util.h"

using namespace miras;
using namespace miras::test;

namespace {

// NumPy matmul by loops: 1-D operands promoted then squeezed, batch dims broadcast.
Tensor naive_matmul(const Tensor& a, const Tensor& b) {
    Shape as = a.shape(), bs = b.shape();
    if (as.size() == 1) as.insert(as.begin(), 1);
    if (bs.size() == 1) bs.push_back(1);
    int64_t n = as[as.size() - 2], k = as.back(), m = bs.back();
    Shape ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
    Shape batch = broadcast_shapes(ab, bb, "naive");
    std::vector<double> va = a.to_vector(), vb = b.to_vector(), out;
    for (int64_t bi = 0; bi < numel_of(batch); ++bi) {
        auto idx = unravel(bi, batch);
        int64_t oa = bcast_pos(idx, ab) * n * k, ob = bcast_pos(idx, bb) * k * m;
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < m; ++j) {
                double s = 0;
                for (int64_t l = 0; l < k; ++l) s += va[(size_t)(oa + i * k + l)] * vb[(size_t)(ob + l * m + j)];
                out.push_back(s);
            }
    }
    Shape os = batch;
    if (a.dim() > 1) os.push_back(n);
    if (b.dim() > 1) os.push_back(m);
    return from_vector(out, os, DType::f64);
}

struct MM { Shape a, b; };
const MM kCases[] = {
    {{3, 4}, {4, 2}},       {{4}, {4, 2}},          {{3, 4}, {4}},          {{4}, {4}},
    {{2, 3, 4}, {4, 2}},    {{3, 4}, {2, 4, 2}},    {{2, 3, 4}, {2, 4, 2}}, {{2, 1, 3, 4}, {3, 4, 2}},
    {{1, 3, 4}, {2, 4, 2}}, {{2, 3, 4}, {4}},       {{4}, {2, 4, 3}},       {{1, 1}, {1, 5}},
    {{2, 2, 1, 3}, {1, 3, 2}},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(matmul_tests)

BOOST_AUTO_TEST_CASE(values_match_naive_loop) {
    Generator g(1);
    for (DType dt : kDtypes)
        for (const auto& c : kCases) {
            BOOST_TEST_CONTEXT(shape_str(c.a) << " @ " << shape_str(c.b) << " " << dtype_name(dt)) {
                Tensor a = randn(c.a, g, dt), b = randn(c.b, g, dt);
                Tensor want = naive_matmul(a, b);
                check_values(matmul(a, b), want.shape(), want.to_vector(), 8 * tol_for(dt));
                check_values(raw::matmul(a, b), want.shape(), want.to_vector(), 8 * tol_for(dt));
            }
        }
    // hand values
    check_values(matmul(T({1, 2, 3, 4}, {2, 2}), T({5, 6, 7, 8}, {2, 2})), {2, 2}, {19, 22, 43, 50});
    check_values(matmul(T({1, 2}, {2}), T({3, 4}, {2})), {}, {11});
}

BOOST_AUTO_TEST_CASE(strided_operands_match_contiguous) {
    Generator g(2);
    for (DType dt : kDtypes) {
        Tensor base_a = randn({4, 3}, g, dt), base_b = randn({2, 5, 4}, g, dt);
        std::vector<std::pair<Tensor, Tensor>> pairs = {
            {raw::transpose(base_a, 0, 1), randn({4, 2}, g, dt)},                          // Aᵀ (3, 4)
            {randn({3, 4}, g, dt), raw::transpose(raw::select(base_b, 0, 1), 0, 1)},        // Bᵀ (4, 5)
            {raw::transpose(base_a, 0, 1), raw::transpose(randn({2, 4}, g, dt), 0, 1)},     // both
            {raw::narrow(randn({3, 6}, g, dt), 1, 1, 4), raw::narrow(randn({4, 5}, g, dt), 1, 2, 2)},  // gaps
            {randn({2, 3, 4}, g, dt), raw::transpose(base_b, 1, 2)},                        // batched Bᵀ
            {raw::permute(randn({3, 2, 5}, g, dt), {1, 0, 2}), randn({5, 2}, g, dt)},       // permuted batch
            {raw::expand(randn({1, 3, 4}, g, dt), {2, 3, 4}), randn({2, 4, 2}, g, dt)},     // stride-0 batch
            {randn({2, 3, 4}, g, dt), raw::expand(randn({4, 1}, g, dt), {2, 4, 3})},        // broadcast column
            {raw::expand(randn({1, 4}, g, dt), {3, 4}), randn({4, 2}, g, dt)},              // broadcast rows
            {raw::narrow(randn({6}, g, dt), 0, 1, 4), raw::transpose(randn({3, 4}, g, dt), 0, 1)},  // 1-D view
        };
        for (size_t i = 0; i < pairs.size(); ++i) {
            BOOST_TEST_CONTEXT("pair " << i << " " << dtype_name(dt)) {
                auto [a, b] = pairs[i];
                Tensor want = matmul(copy_of(a), copy_of(b));
                check_values(matmul(a, b), want.shape(), want.to_vector(), 8 * tol_for(dt));
                Tensor nv = naive_matmul(a, b);
                check_values(matmul(a, b), nv.shape(), nv.to_vector(), 8 * tol_for(dt));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(empty_dims) {
    check_values(matmul(zeros({2, 0}), zeros({0, 3})), {2, 3}, {0, 0, 0, 0, 0, 0});
    check_values(matmul(zeros({0, 4}), zeros({4, 3})), {0, 3}, {});
    check_values(matmul(zeros({2, 0, 3, 4}), zeros({4, 5})), {2, 0, 3, 5}, {});
}

// The flop counter sees 2·n·k·m per product on every path: one GEMM with the
// batch folded into the rows, one GEMM per batch element, 1-D operands, f64,
// a copied operand, and nothing for an empty product.
BOOST_AUTO_TEST_CASE(flop_count_is_two_n_k_m_per_product) {
    Generator g(5);
    auto flops_of = [](const std::function<void()>& f) {
        uint64_t before = raw::matmul_flops();
        f();
        return raw::matmul_flops() - before;
    };
    BOOST_TEST(flops_of([&] { raw::matmul(randn({3, 4}, g), randn({4, 5}, g)); }) == 2u * 3 * 4 * 5);
    BOOST_TEST(flops_of([&] { raw::matmul(randn({2, 3, 4}, g), randn({4, 5}, g)); }) == 2u * 2 * 3 * 4 * 5);
    BOOST_TEST(flops_of([&] { raw::matmul(randn({2, 1, 3, 4}, g), randn({3, 4, 5}, g)); }) == 2u * 6 * 3 * 4 * 5);
    BOOST_TEST(flops_of([&] { raw::matmul(randn({4}, g, DType::f64), randn({4, 5}, g, DType::f64)); }) == 2u * 4 * 5);
    BOOST_TEST(flops_of([&] { raw::matmul(raw::expand(randn({1, 4}, g), {3, 4}), randn({4, 2}, g)); }) ==
               2u * 3 * 4 * 2);
    BOOST_TEST(flops_of([&] { raw::matmul(zeros({2, 0}), zeros({0, 3})); }) == 0u);
    // Differentiable matmul: forward, then backward's two products.
    Tensor a = set_requires_grad(randn({3, 4}, g)), b = set_requires_grad(randn({4, 5}, g));
    BOOST_TEST(flops_of([&] { grad({sum(matmul(a, b))}, {a, b}); }) == 3u * 2 * 3 * 4 * 5);
}

BOOST_AUTO_TEST_CASE(gradients) {
    Generator g(3);
    for (const auto& c : kCases) {
        BOOST_TEST_CONTEXT(shape_str(c.a) << " @ " << shape_str(c.b)) {
            Tensor a = rn(c.a, g), b = rn(c.b, g);
            // matmul is bilinear: square the result so the second derivative is not trivial
            check_grads("matmul", fn2([](const Tensor& x, const Tensor& y) { return square(matmul(x, y)); }), {a, b});
            // one operand constant
            Tensor bc = detach(b);
            check_grads("matmul a only", fn1([bc](const Tensor& x) { return matmul(x, bc); }), {a});
        }
    }
    // transposed views as operands, inside the function
    Tensor a = rn({4, 3}, g), b = rn({2, 4}, g);
    check_grads("Aᵀ Bᵀ", fn2([](const Tensor& x, const Tensor& y) {
                    return square(matmul(transpose(x, 0, 1), transpose(y, 0, 1)));
                }), {a, b});
    Tensor w = rn({4, 4}, g), x3 = rn({2, 3, 4}, g);
    check_grads("x W Wᵀ", fn2([](const Tensor& x, const Tensor& y) {
                    return matmul(matmul(x, y), transpose(y, 0, 1));
                }), {x3, w});
    // a non-contiguous batched input through the shared-weight path
    check_grads("xᵀ W shared", fn2([](const Tensor& x, const Tensor& y) {
                    return square(matmul(transpose(x, 0, 1), y));
                }), {rn({3, 2, 4}, g), rn({4, 2}, g)});
    // batched transposed operands, one broadcast over the batch
    check_grads("batched Aᵀ Bᵀ", fn2([](const Tensor& x, const Tensor& y) {
                    return square(matmul(transpose(x, -1, -2), transpose(y, -1, -2)));
                }), {rn({2, 4, 3}, g), rn({1, 5, 4}, g)});
    // A transposed weight gets a gradient in its own layout, so W's gradient
    // through transpose is contiguous (a unit-stride accumulation).
    {
        Tensor W = leaf(rn({5, 4}, g)), X = rn({2, 3, 4}, g), Y = rn({3, 4}, g);
        TensorList gw = grad({sum(square(matmul(X, transpose(W, 0, 1))))}, {W});
        BOOST_TEST(gw[0].is_contiguous());
        gw = grad({sum(square(matmul(Y, transpose(W, 0, 1))))}, {W});
        BOOST_TEST(gw[0].is_contiguous());
    }
    // hand values: d/dA Σ(A B) = 1 Bᵀ, d/dB = Aᵀ 1
    Tensor A = leaf(T({1, 2, 3, 4}, {2, 2})), B = leaf(T({5, 6, 7, 8}, {2, 2}));
    TensorList gs = grad({sum(matmul(A, B))}, {A, B});
    check_values(gs[0], {2, 2}, {11, 15, 11, 15});
    check_values(gs[1], {2, 2}, {4, 4, 6, 6});
    // broadcast batch: the gradient of the shared operand is summed over the batch
    Tensor Ab = leaf(T({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2}));
    gs = grad({sum(matmul(Ab, B))}, {B});
    check_values(gs[0], {2, 2}, {16, 16, 20, 20});
}

BOOST_AUTO_TEST_CASE(errors_name_op_and_shapes) {
    BOOST_CHECK_EXCEPTION(matmul(zeros({2, 3}), zeros({4, 5})), std::invalid_argument,
                          has({"matmul", "(2, 3)", "(4, 5)"}));
    BOOST_CHECK_EXCEPTION(matmul(zeros({3}), zeros({4})), std::invalid_argument, has({"matmul"}));
    BOOST_CHECK_EXCEPTION(matmul(zeros({2, 2, 3}), zeros({3, 3, 2})), std::invalid_argument,
                          has({"matmul", "(2,)", "(3,)"}));
    BOOST_CHECK_EXCEPTION(matmul(scalar_tensor(1), zeros({2})), std::invalid_argument, has({"matmul", "()", "(2,)"}));
    BOOST_CHECK_EXCEPTION(matmul(zeros({2, 2}), zeros({2, 2}, DType::f64)), std::invalid_argument,
                          has({"matmul", "f32", "f64"}));
}

BOOST_AUTO_TEST_SUITE_END()
