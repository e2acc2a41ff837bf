// Raw joining / indexing / scan ops (tensor/indexing.cpp): hand-computed values
// in f32 and f64, strided inputs against contiguous copies, adjoint pairs
// (gather/scatter_add, index_select/index_add, cumsum/reverse cumsum) and
// error messages.
#include <boost/test/unit_test.hpp>

#include "op_test_util.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "tensor/ops.h"

using namespace miras;

namespace {

const DType kDtypes[] = {DType::f32, DType::f64};

Tensor T(const std::vector<double>& v, const Shape& s, DType dt) { return from_vector(v, s, dt); }

// A contiguous copy made without any op under test.
Tensor copy_of(const Tensor& x) { return from_vector(x.to_vector(), x.shape(), x.dtype()); }

void check_values(const Tensor& got, const Shape& shape, const std::vector<double>& want, double tol = 0) {
    BOOST_TEST_CONTEXT("got " << got.str()) {
        BOOST_TEST(got.shape() == shape, "shape " << shape_str(got.shape()) << " != " << shape_str(shape));
        BOOST_TEST(got.is_contiguous());
        std::vector<double> v = got.to_vector();
        BOOST_REQUIRE_EQUAL(v.size(), want.size());
        for (size_t i = 0; i < v.size(); ++i)
            BOOST_TEST(std::abs(v[i] - want[i]) <= tol, "element " << i << ": " << v[i] << " != " << want[i]);
    }
}

void check_same(const Tensor& a, const Tensor& b) {
    BOOST_TEST(a.shape() == b.shape(), shape_str(a.shape()) << " != " << shape_str(b.shape()));
    BOOST_TEST((a.dtype() == b.dtype()));
    std::vector<double> va = a.to_vector(), vb = b.to_vector();
    BOOST_REQUIRE_EQUAL(va.size(), vb.size());
    for (size_t i = 0; i < va.size(); ++i) BOOST_TEST(va[i] == vb[i], "element " << i);
}

double dot(const Tensor& a, const Tensor& b) {
    std::vector<double> va = a.to_vector(), vb = b.to_vector();
    BOOST_REQUIRE_EQUAL(va.size(), vb.size());
    double s = 0;
    for (size_t i = 0; i < va.size(); ++i) s += va[i] * vb[i];
    return s;
}

IndexTensor random_index(const Shape& s, int64_t n, Generator& g) {
    std::vector<int64_t> d((size_t)numel_of(s));
    for (auto& v : d) v = (int64_t)g.below((uint64_t)n);
    return IndexTensor(s, d);
}

using miras::test::has;  // what() contains every piece (tests/op_test_util.h)

// Two strided (2, 3, 4) views of a fresh tensor: a transposed one and a narrowed one.
std::vector<Tensor> strided_views(DType dt, Generator& g) {
    Tensor base = randn({4, 3, 6}, g, dt);
    Tensor tr = raw::transpose(raw::narrow(base, 2, 0, 2), 0, 2);  // (2, 3, 4), strides permuted
    Tensor nar = raw::narrow(raw::narrow(base, 0, 1, 2), 2, 1, 4);  // (2, 3, 4), offset and gaps
    BOOST_REQUIRE(!tr.is_contiguous());
    BOOST_REQUIRE(!nar.is_contiguous());
    return {tr, nar};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(indexing_raw)

// ---- hand-computed values

BOOST_AUTO_TEST_CASE(cat_values) {
    for (DType dt : kDtypes) {
        Tensor a = T({1, 2, 3, 4, 5, 6}, {2, 3}, dt);
        Tensor b = T({7, 8}, {2, 1}, dt);
        Tensor c = T({9, 9, 9}, {1, 3}, dt);
        check_values(raw::cat({a, b}, 1), {2, 4}, {1, 2, 3, 7, 4, 5, 6, 8});
        check_values(raw::cat({a, b}, -1), {2, 4}, {1, 2, 3, 7, 4, 5, 6, 8});
        check_values(raw::cat({a, c, a}, 0), {5, 3}, {1, 2, 3, 4, 5, 6, 9, 9, 9, 1, 2, 3, 4, 5, 6});
        Tensor out = raw::cat({a}, 0);  // one input: still a fresh copy
        BOOST_TEST(!out.same_storage(a));
        check_values(out, {2, 3}, {1, 2, 3, 4, 5, 6});
        check_values(raw::cat({a, T({}, {2, 0}, dt), b}, 1), {2, 4}, {1, 2, 3, 7, 4, 5, 6, 8});
        BOOST_TEST((raw::cat({a, c}, 0).dtype() == dt));
    }
}

BOOST_AUTO_TEST_CASE(stack_values) {
    for (DType dt : kDtypes) {
        Tensor a = T({1, 2}, {2}, dt), b = T({3, 4}, {2}, dt), c = T({5, 6}, {2}, dt);
        check_values(raw::stack({a, b, c}, 0), {3, 2}, {1, 2, 3, 4, 5, 6});
        check_values(raw::stack({a, b, c}, 1), {2, 3}, {1, 3, 5, 2, 4, 6});
        check_values(raw::stack({a, b, c}, -1), {2, 3}, {1, 3, 5, 2, 4, 6});
        Tensor m = T({1, 2, 3, 4}, {2, 2}, dt);
        check_values(raw::stack({m, m}, 1), {2, 2, 2}, {1, 2, 1, 2, 3, 4, 3, 4});
        check_values(raw::stack({scalar_tensor(7, dt), scalar_tensor(8, dt)}, 0), {2}, {7, 8});
    }
}

BOOST_AUTO_TEST_CASE(split_views) {
    for (DType dt : kDtypes) {
        Tensor x = T({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {2, 5}, dt);
        auto parts = raw::split(x, {2, 0, 3}, -1);
        BOOST_REQUIRE_EQUAL(parts.size(), 3u);
        for (const Tensor& p : parts) BOOST_TEST(p.same_storage(x));
        check_same(parts[0], T({0, 1, 5, 6}, {2, 2}, dt));
        BOOST_TEST((parts[1].shape() == Shape{2, 0}));
        check_same(parts[2], T({2, 3, 4, 7, 8, 9}, {2, 3}, dt));
        auto rows = raw::split(x, {1, 1}, 0);
        check_same(rows[1], T({5, 6, 7, 8, 9}, {1, 5}, dt));
    }
}

BOOST_AUTO_TEST_CASE(index_select_values) {
    for (DType dt : kDtypes) {
        Tensor x = T({1, 2, 3, 4, 5, 6}, {3, 2}, dt);
        check_values(raw::index_select(x, 0, IndexTensor({3}, {2, 0, 2})), {3, 2}, {5, 6, 1, 2, 5, 6});
        check_values(raw::index_select(x, 1, IndexTensor({1}, {1})), {3, 1}, {2, 4, 6});
        check_values(raw::index_select(x, -1, IndexTensor({3}, {1, 0, 1})), {3, 3}, {2, 1, 2, 4, 3, 4, 6, 5, 6});
        check_values(raw::index_select(x, 0, IndexTensor({0}, {})), {0, 2}, {});
        check_values(raw::index_select(x, 0, IndexTensor({}, {1})), {1, 2}, {3, 4});  // 0-d index: one row
    }
}

BOOST_AUTO_TEST_CASE(embedding_values) {
    for (DType dt : kDtypes) {
        Tensor table = T({10, 11, 20, 21, 30, 31}, {3, 2}, dt);
        check_values(raw::embedding(table, IndexTensor({2, 2}, {0, 2, 1, 1})), {2, 2, 2},
                     {10, 11, 30, 31, 20, 21, 20, 21});
        check_values(raw::embedding(table, IndexTensor({}, {2})), {2}, {30, 31});
        check_values(raw::embedding(table, IndexTensor({0}, {})), {0, 2}, {});
    }
}

BOOST_AUTO_TEST_CASE(gather_values) {
    for (DType dt : kDtypes) {
        Tensor x = T({1, 2, 3, 4, 5, 6}, {2, 3}, dt);
        check_values(raw::gather(x, 1, IndexTensor({2, 2}, {2, 0, 1, 1})), {2, 2}, {3, 1, 5, 5});
        check_values(raw::gather(x, 0, IndexTensor({1, 3}, {1, 0, 1})), {1, 3}, {4, 2, 6});
        check_values(raw::gather(x, -2, IndexTensor({3, 2}, {1, 0, 0, 0, 1, 1})), {3, 2}, {4, 2, 1, 2, 4, 5});
        // index smaller than x outside dim, and longer than x along dim
        check_values(raw::gather(x, 1, IndexTensor({1, 5}, {2, 2, 0, 1, 0})), {1, 5}, {3, 3, 1, 2, 1});
        check_values(raw::gather(scalar_tensor(4, dt), 0, IndexTensor({}, {0})), {}, {4});
    }
}

BOOST_AUTO_TEST_CASE(gather_3d_matches_loops) {
    Generator g(1);
    for (DType dt : kDtypes)
        for (int64_t dim = 0; dim < 3; ++dim) {
            Tensor x = randn({3, 4, 5}, g, dt);
            Shape is{2, 3, 4};
            is[dim] = 6;
            IndexTensor idx = random_index(is, x.shape()[dim], g);
            std::vector<double> xv = x.to_vector(), want;
            for (int64_t i = 0; i < is[0]; ++i)
                for (int64_t j = 0; j < is[1]; ++j)
                    for (int64_t k = 0; k < is[2]; ++k) {
                        int64_t q[3] = {i, j, k};
                        q[dim] = idx.data[(size_t)((i * is[1] + j) * is[2] + k)];
                        want.push_back(xv[(size_t)((q[0] * 4 + q[1]) * 5 + q[2])]);
                    }
            check_values(raw::gather(x, dim, idx), is, want);
        }
}

BOOST_AUTO_TEST_CASE(scatter_add_values) {
    for (DType dt : kDtypes) {
        Tensor src = T({1, 2, 3, 4}, {2, 2}, dt);
        // row 0: out[0][2] += 1, out[0][0] += 2; row 1: out[1][1] += 3 + 4
        check_values(raw::scatter_add({2, 3}, 1, IndexTensor({2, 2}, {2, 0, 1, 1}), src), {2, 3}, {2, 0, 1, 0, 7, 0});
        check_values(raw::scatter_add({3, 2}, 0, IndexTensor({2, 2}, {2, 2, 0, 2}), src), {3, 2}, {3, 0, 0, 0, 1, 6});
        // src larger than the index: only the index-shaped corner is used
        Tensor big = T({1, 2, 3, 4, 5, 6}, {2, 3}, dt);
        check_values(raw::scatter_add({1, 2}, -1, IndexTensor({1, 2}, {1, 1}), big), {1, 2}, {0, 3});
        BOOST_TEST((raw::scatter_add({2, 3}, 1, IndexTensor({2, 2}, {2, 0, 1, 1}), src).dtype() == dt));
        check_values(raw::scatter_add({}, 0, IndexTensor({}, {0}), scalar_tensor(5, dt)), {}, {5});
    }
}

BOOST_AUTO_TEST_CASE(index_add_values) {
    for (DType dt : kDtypes) {
        Tensor src = T({1, 2, 3, 4, 5, 6}, {3, 2}, dt);
        check_values(raw::index_add({3, 2}, 0, IndexTensor({3}, {2, 0, 2}), src), {3, 2}, {3, 4, 0, 0, 6, 8});
        check_values(raw::index_add({3, 3}, -1, IndexTensor({2}, {2, 2}), src), {3, 3}, {0, 0, 3, 0, 0, 7, 0, 0, 11});
        check_values(raw::index_add({2, 2}, 0, IndexTensor({0}, {}), T({}, {0, 2}, dt)), {2, 2}, {0, 0, 0, 0});
    }
}

BOOST_AUTO_TEST_CASE(cumsum_cumprod_values) {
    for (DType dt : kDtypes) {
        Tensor v = T({1, 2, 3, 4}, {4}, dt);
        check_values(raw::cumsum(v, 0), {4}, {1, 3, 6, 10});
        check_values(raw::cumsum(v, -1, true), {4}, {10, 9, 7, 4});
        check_values(raw::cumprod(v, 0), {4}, {1, 2, 6, 24});
        check_values(raw::cumprod(v, 0, true), {4}, {24, 24, 12, 4});
        Tensor m = T({1, 2, 3, 4, 5, 6}, {2, 3}, dt);
        check_values(raw::cumsum(m, 0), {2, 3}, {1, 2, 3, 5, 7, 9});
        check_values(raw::cumsum(m, 0, true), {2, 3}, {5, 7, 9, 4, 5, 6});
        check_values(raw::cumsum(m, 1), {2, 3}, {1, 3, 6, 4, 9, 15});
        check_values(raw::cumsum(m, 1, true), {2, 3}, {6, 5, 3, 15, 11, 6});
        check_values(raw::cumprod(m, 1), {2, 3}, {1, 2, 6, 4, 20, 120});
        check_values(raw::cumprod(m, -2, true), {2, 3}, {4, 10, 18, 4, 5, 6});
        check_values(raw::cumsum(scalar_tensor(3, dt), 0), {}, {3});
        check_values(raw::cumsum(T({}, {0, 3}, dt), 0), {0, 3}, {});
    }
}

BOOST_AUTO_TEST_CASE(cumsum_f32_accumulates_wide) {
    // 2^24 + 1 + 1 + ...: a float accumulator would stay at 2^24 forever.
    std::vector<double> v(9, 1.0);
    v[0] = 16777216.0;
    Tensor c = raw::cumsum(T(v, {9}, DType::f32), 0);
    BOOST_TEST(c.to_vector().back() == 16777224.0);
}

BOOST_AUTO_TEST_CASE(tril_triu_values) {
    for (DType dt : kDtypes) {
        Tensor x = T({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3}, dt);
        check_values(raw::tril(x), {3, 3}, {1, 0, 0, 4, 5, 0, 7, 8, 9});
        check_values(raw::tril(x, 1), {3, 3}, {1, 2, 0, 4, 5, 6, 7, 8, 9});
        check_values(raw::tril(x, -1), {3, 3}, {0, 0, 0, 4, 0, 0, 7, 8, 0});
        check_values(raw::triu(x), {3, 3}, {1, 2, 3, 0, 5, 6, 0, 0, 9});
        check_values(raw::triu(x, 1), {3, 3}, {0, 2, 3, 0, 0, 6, 0, 0, 0});
        check_values(raw::triu(x, -1), {3, 3}, {1, 2, 3, 4, 5, 6, 0, 8, 9});
        const int64_t big = std::numeric_limits<int64_t>::max();
        check_values(raw::tril(x, big), {3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
        check_values(raw::tril(x, -big), {3, 3}, {0, 0, 0, 0, 0, 0, 0, 0, 0});
        check_values(raw::triu(x, big), {3, 3}, {0, 0, 0, 0, 0, 0, 0, 0, 0});
        check_values(raw::triu(x, -big), {3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
        // batched and non-square: (2, 2, 3)
        Tensor b = T({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 2, 3}, dt);
        check_values(raw::tril(b), {2, 2, 3}, {1, 0, 0, 4, 5, 0, 7, 0, 0, 10, 11, 0});
        check_values(raw::triu(b, 1), {2, 2, 3}, {0, 2, 3, 0, 0, 6, 0, 8, 9, 0, 0, 12});
    }
}

BOOST_AUTO_TEST_CASE(one_hot_values) {
    for (DType dt : kDtypes) {
        Tensor h = raw::one_hot(IndexTensor({2}, {2, 0}), 3, dt);
        BOOST_TEST((h.dtype() == dt));
        check_values(h, {2, 3}, {0, 0, 1, 1, 0, 0});
        check_values(raw::one_hot(IndexTensor({2, 1}, {1, 1}), 2, dt), {2, 1, 2}, {0, 1, 0, 1});
        check_values(raw::one_hot(IndexTensor({}, {1}), 2, dt), {2}, {0, 1});
    }
}

// ---- strided inputs give the same results as contiguous copies

BOOST_AUTO_TEST_CASE(strided_inputs_match_contiguous) {
    Generator g(7);
    for (DType dt : kDtypes)
        for (const Tensor& v : strided_views(dt, g)) {
            Tensor c = copy_of(v);  // (2, 3, 4)
            BOOST_REQUIRE(c.is_contiguous());
            for (int64_t dim = -3; dim < 3; ++dim) {
                BOOST_TEST_CONTEXT("dim " << dim << " dtype " << dtype_name(dt)) {
                    check_same(raw::cat({v, c, v}, dim), raw::cat({c, c, c}, dim));
                    check_same(raw::stack({v, c}, dim), raw::stack({c, c}, dim));
                    int64_t n = v.shape()[(dim + 3) % 3];
                    IndexTensor sel({3}, {n - 1, 0, n - 1});
                    check_same(raw::index_select(v, dim, sel), raw::index_select(c, dim, sel));
                    Shape is = v.shape();
                    is[(dim + 3) % 3] = 5;
                    IndexTensor gi = random_index(is, n, g);
                    check_same(raw::gather(v, dim, gi), raw::gather(c, dim, gi));
                    Tensor big = randn({6, 6, 6}, g, dt);
                    Tensor src = raw::narrow(raw::narrow(raw::transpose(big, 0, 2), 0, 0, is[0]), 1, 0, is[1]);
                    src = raw::narrow(src, 2, 0, is[2]);
                    BOOST_REQUIRE(!src.is_contiguous());
                    check_same(raw::scatter_add(v.shape(), dim, gi, src),
                               raw::scatter_add(v.shape(), dim, gi, copy_of(src)));
                    check_same(raw::index_add(v.shape(), dim, IndexTensor({n}, std::vector<int64_t>(n, 0)), v),
                               raw::index_add(v.shape(), dim, IndexTensor({n}, std::vector<int64_t>(n, 0)), c));
                    for (bool rev : {false, true}) {
                        check_same(raw::cumsum(v, dim, rev), raw::cumsum(c, dim, rev));
                        check_same(raw::cumprod(v, dim, rev), raw::cumprod(c, dim, rev));
                    }
                }
            }
            for (int64_t k : {-2, 0, 1}) {
                check_same(raw::tril(v, k), raw::tril(c, k));
                check_same(raw::triu(v, k), raw::triu(c, k));
            }
            Tensor table = raw::select(v, 0, 1);  // (3, 4), strided
            IndexTensor ids({2, 2}, {2, 0, 1, 2});
            check_same(raw::embedding(table, ids), raw::embedding(copy_of(table), ids));
            check_same(raw::embedding(raw::transpose(table, 0, 1), ids),
                       raw::embedding(copy_of(raw::transpose(table, 0, 1)), ids));
        }
}

// ---- adjoint pairs: <A x, y> == <x, A^T y>

BOOST_AUTO_TEST_CASE(gather_scatter_add_adjoint) {
    Generator g(3);
    Shape xs{3, 4, 5};
    for (int64_t dim = -3; dim < 3; ++dim) {
        int64_t d = (dim + 3) % 3;
        for (Shape is : {Shape{3, 4, 5}, Shape{2, 4, 3}}) {
            is[d] = 7;  // indices repeat, so scatter_add must accumulate
            IndexTensor idx = random_index(is, xs[d], g);
            Tensor x = randn(xs, g, DType::f64), y = randn(is, g, DType::f64);
            double lhs = dot(raw::gather(x, dim, idx), y);
            double rhs = dot(x, raw::scatter_add(xs, dim, idx, y));
            BOOST_TEST(std::abs(lhs - rhs) <= 1e-12 * (1 + std::abs(lhs)), "dim " << dim << ": " << lhs << " vs " << rhs);
        }
    }
    // f32: same identity to single precision
    IndexTensor idx = random_index({3, 6, 5}, 4, g);
    Tensor x = randn(xs, g, DType::f32), y = randn({3, 6, 5}, g, DType::f32);
    double lhs = dot(raw::gather(x, 1, idx), y), rhs = dot(x, raw::scatter_add(xs, 1, idx, y));
    BOOST_TEST(std::abs(lhs - rhs) <= 1e-5 * (1 + std::abs(lhs)));
}

BOOST_AUTO_TEST_CASE(index_select_index_add_adjoint) {
    Generator g(4);
    Shape xs{3, 4, 5};
    for (DType dt : kDtypes)
        for (int64_t dim = -3; dim < 3; ++dim) {
            int64_t d = (dim + 3) % 3;
            IndexTensor idx = random_index({9}, xs[d], g);
            Shape ys = xs;
            ys[d] = 9;
            Tensor x = randn(xs, g, dt), y = randn(ys, g, dt);
            double lhs = dot(raw::index_select(x, dim, idx), y);
            double rhs = dot(x, raw::index_add(xs, dim, idx, y));
            double tol = dt == DType::f64 ? 1e-12 : 1e-5;
            BOOST_TEST(std::abs(lhs - rhs) <= tol * (1 + std::abs(lhs)), "dim " << dim << ": " << lhs << " vs " << rhs);
        }
}

BOOST_AUTO_TEST_CASE(embedding_is_index_select_rows) {
    Generator g(5);
    Tensor table = randn({6, 4}, g, DType::f64);
    IndexTensor ids = random_index({2, 5}, 6, g);
    Tensor e = raw::embedding(table, ids);
    Tensor s = raw::index_select(table, 0, IndexTensor({10}, ids.data));
    BOOST_TEST(e.to_vector() == s.to_vector());
    // adjoint of embedding = index_add of the rows
    Tensor y = randn({2, 5, 4}, g, DType::f64);
    double lhs = dot(e, y);
    double rhs = dot(table, raw::index_add({6, 4}, 0, IndexTensor({10}, ids.data), from_vector(y.to_vector(), {10, 4}, DType::f64)));
    BOOST_TEST(std::abs(lhs - rhs) <= 1e-12 * (1 + std::abs(lhs)));
}

BOOST_AUTO_TEST_CASE(cumsum_reverse_is_adjoint) {
    Generator g(6);
    for (int64_t dim = 0; dim < 3; ++dim) {
        Tensor x = randn({3, 4, 5}, g, DType::f64), y = randn({3, 4, 5}, g, DType::f64);
        double lhs = dot(raw::cumsum(x, dim), y), rhs = dot(x, raw::cumsum(y, dim, true));
        BOOST_TEST(std::abs(lhs - rhs) <= 1e-12 * (1 + std::abs(lhs)));
    }
}

// ---- errors name the op and what is wrong

BOOST_AUTO_TEST_CASE(errors) {
    Tensor a = zeros({2, 3}), b = zeros({2, 4}), a64 = zeros({2, 3}, DType::f64);
    BOOST_CHECK_EXCEPTION(raw::cat({}, 0), std::invalid_argument, has({"cat:", "non-empty"}));
    BOOST_CHECK_EXCEPTION(raw::cat({a, b}, 0), std::invalid_argument,
                          has({"cat: tensor 1 has shape (2, 4) but tensor 0 has (2, 3) outside dim 0"}));
    BOOST_CHECK_EXCEPTION(raw::cat({a, zeros({6})}, 0), std::invalid_argument, has({"cat: tensor 1", "(6,)", "(2, 3)"}));
    BOOST_CHECK_EXCEPTION(raw::cat({a, a64}, 0), std::invalid_argument, has({"cat: tensor 1", "f64", "f32"}));
    BOOST_CHECK_EXCEPTION(raw::cat({a, a}, 2), std::out_of_range, has({"cat:", "dim 2"}));
    BOOST_CHECK_EXCEPTION(raw::cat({scalar_tensor(1)}, 0), std::invalid_argument, has({"cat:", "zero-dimensional"}));
    BOOST_CHECK_EXCEPTION(raw::stack({}, 0), std::invalid_argument, has({"stack:", "non-empty"}));
    BOOST_CHECK_EXCEPTION(raw::stack({a, b}, 0), std::invalid_argument,
                          has({"stack: tensor 1 has shape (2, 4) but tensor 0 has (2, 3)"}));
    BOOST_CHECK_EXCEPTION(raw::stack({a, a64}, 0), std::invalid_argument, has({"stack:", "f64"}));
    BOOST_CHECK_EXCEPTION(raw::stack({a, a}, 3), std::out_of_range, has({"stack:", "dim 3"}));
    BOOST_CHECK_EXCEPTION(raw::split(a, {1, 1}, 1), std::invalid_argument, has({"split:", "(1, 1)", "sum to 2", "(2, 3)"}));
    BOOST_CHECK_EXCEPTION(raw::split(a, {4, -1}, 1), std::invalid_argument, has({"split:", "negative size -1"}));

    BOOST_CHECK_EXCEPTION(raw::index_select(a, 1, IndexTensor({2}, {0, 3})), std::out_of_range,
                          has({"index_select: index 3 at position 1 is out of range [0, 3)"}));
    BOOST_CHECK_EXCEPTION(raw::index_select(a, 0, IndexTensor({1}, {-1})), std::out_of_range,
                          has({"index_select:", "index -1"}));
    BOOST_CHECK_EXCEPTION(raw::index_select(a, 0, IndexTensor({1, 1}, {0})), std::invalid_argument,
                          has({"index_select:", "1-D", "(1, 1)"}));
    BOOST_CHECK_EXCEPTION(raw::index_select(a, -3, IndexTensor({1}, {0})), std::out_of_range,
                          has({"index_select:", "dim -3"}));
    BOOST_CHECK_EXCEPTION(raw::embedding(zeros({3}), IndexTensor({1}, {0})), std::invalid_argument,
                          has({"embedding:", "2-D", "(3,)"}));
    BOOST_CHECK_EXCEPTION(raw::embedding(a, IndexTensor({2}, {1, 2})), std::out_of_range,
                          has({"embedding: index 2 at position 1", "[0, 2)"}));

    BOOST_CHECK_EXCEPTION(raw::gather(a, 1, IndexTensor({2}, {0, 1})), std::invalid_argument,
                          has({"gather:", "index has 1 dims but input has 2", "(2,)", "(2, 3)"}));
    BOOST_CHECK_EXCEPTION(raw::gather(a, 1, IndexTensor({3, 1}, {0, 1, 2})), std::invalid_argument,
                          has({"gather:", "(3, 1)", "(2, 3)", "dim 0"}));
    BOOST_CHECK_EXCEPTION(raw::gather(a, 0, IndexTensor({1, 2}, {0, 2})), std::out_of_range,
                          has({"gather: index 2 at position 1 is out of range [0, 2)"}));
    BOOST_CHECK_EXCEPTION(raw::scatter_add({2, 3}, 1, IndexTensor({2, 2}, {0, 0, 0, 0}), zeros({2, 1})),
                          std::invalid_argument, has({"scatter_add:", "(2, 2)", "src shape (2, 1)"}));
    BOOST_CHECK_EXCEPTION(raw::scatter_add({2, 3}, 1, IndexTensor({2}, {0, 0}), zeros({2})), std::invalid_argument,
                          has({"scatter_add:", "index has 1 dims but output has 2"}));
    BOOST_CHECK_EXCEPTION(raw::scatter_add({2, 3}, 1, IndexTensor({1, 1}, {3}), zeros({1, 1})), std::out_of_range,
                          has({"scatter_add: index 3", "[0, 3)"}));
    BOOST_CHECK_EXCEPTION(raw::scatter_add({2, -3}, 1, IndexTensor({1, 1}, {0}), zeros({1, 1})),
                          std::invalid_argument, has({"scatter_add:", "negative", "(2, -3)"}));
    BOOST_CHECK_EXCEPTION(raw::index_add({3, 2}, 0, IndexTensor({2}, {0, 1}), zeros({3, 2})), std::invalid_argument,
                          has({"index_add: src has shape (3, 2)", "needs (2, 2)"}));
    BOOST_CHECK_EXCEPTION(raw::index_add({3, 2}, 0, IndexTensor({1}, {5}), zeros({1, 2})), std::out_of_range,
                          has({"index_add: index 5", "[0, 3)"}));

    BOOST_CHECK_EXCEPTION(raw::cumsum(a, 2), std::out_of_range, has({"cumsum:", "dim 2"}));
    BOOST_CHECK_EXCEPTION(raw::cumprod(a, -3), std::out_of_range, has({"cumprod:", "dim -3"}));
    BOOST_CHECK_EXCEPTION(raw::tril(zeros({3})), std::invalid_argument, has({"tril:", "at least 2 dims", "(3,)"}));
    BOOST_CHECK_EXCEPTION(raw::triu(scalar_tensor(1)), std::invalid_argument, has({"triu:", "()"}));
    BOOST_CHECK_EXCEPTION(raw::one_hot(IndexTensor({2}, {0, 3}), 3), std::out_of_range,
                          has({"one_hot: index 3 at position 1", "[0, 3)"}));
    BOOST_CHECK_EXCEPTION(raw::one_hot(IndexTensor({1}, {0}), -2), std::invalid_argument,
                          has({"one_hot:", "-2"}));
    IndexTensor broken({2}, {0, 1});
    broken.data.push_back(2);  // fields are public; the ops re-check them
    BOOST_CHECK_EXCEPTION(raw::gather(zeros({3}), 0, broken), std::invalid_argument,
                          has({"gather:", "(2,)", "holds 3 values"}));
}

BOOST_AUTO_TEST_SUITE_END()
