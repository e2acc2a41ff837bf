// Forward values of the reductions and the softmax family in f32 and f64:
// several dims with and without keepdim against naive loops, max() indices,
// numerical stability with large inputs, 0-d inputs and shape errors.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include "op_test_util.h"

using namespace miras;
using namespace miras::test;

namespace {

// Naive reduction of x over `dims` (empty = all) by fold(acc, v) from init.
template <class F>
std::vector<double> naive_reduce(const Tensor& x, std::vector<int64_t> dims, double init, F fold, Shape& kept) {
    int64_t nd = x.dim();
    std::vector<bool> red((size_t)nd, dims.empty());
    for (int64_t d : dims) red[(size_t)(d < 0 ? d + nd : d)] = true;
    kept = x.shape();
    for (int64_t d = 0; d < nd; ++d) if (red[(size_t)d]) kept[(size_t)d] = 1;
    std::vector<double> v = x.to_vector(), r((size_t)numel_of(kept), init);
    for (int64_t i = 0; i < x.numel(); ++i) {
        double& acc = r[(size_t)bcast_pos(unravel(i, x.shape()), kept)];
        acc = fold(acc, v[(size_t)i]);
    }
    return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(reduce_values)

BOOST_AUTO_TEST_CASE(reductions_over_dim_sets_match_naive) {
    Generator g(1);
    const std::vector<std::vector<int64_t>> dim_sets = {{}, {0}, {1}, {2}, {-1}, {0, 2}, {2, 0}, {1, 2}, {0, 1, 2}, {-3, -2}};
    for (DType dt : kDtypes) {
        Tensor x = randn({2, 3, 4}, g, dt);
        for (const auto& dims : dim_sets)
            for (bool keep : {false, true}) {
                BOOST_TEST_CONTEXT(dtype_name(dt) << " dims " << shape_str(dims) << " keepdim " << keep) {
                    Shape kept;
                    auto s = naive_reduce(x, dims, 0, [](double a, double v) { return a + v; }, kept);
                    auto mx = naive_reduce(x, dims, -INFINITY, [](double a, double v) { return std::max(a, v); }, kept);
                    auto mn = naive_reduce(x, dims, INFINITY, [](double a, double v) { return std::min(a, v); }, kept);
                    // without keepdim the reduced dims disappear
                    Shape out = kept;
                    if (!keep) {
                        out.clear();
                        std::vector<bool> red(3, dims.empty());
                        for (int64_t d : dims) red[(size_t)(d < 0 ? d + 3 : d)] = true;
                        for (int d = 0; d < 3; ++d) if (!red[d]) out.push_back(x.shape()[d]);
                    }
                    double count = 24.0 / (double)numel_of(kept);
                    std::vector<double> m = s;
                    for (double& v : m) v /= count;
                    check_values(sum(x, dims, keep), out, s, 4 * tol_for(dt));
                    check_values(raw::sum(x, dims, keep), out, s, 4 * tol_for(dt));
                    check_values(mean(x, dims, keep), out, m, 4 * tol_for(dt));
                    check_values(amax(x, dims, keep), out, mx, 0);
                    check_values(raw::amin(x, dims, keep), out, mn, 0);
                }
            }
    }
}

BOOST_AUTO_TEST_CASE(reduction_hand_values) {
    for (DType dt : kDtypes) {
        Tensor x = T({1, 5, 3, 4, 2, 6}, {2, 3}, dt);
        check_values(sum(x), {}, {21}, 0);
        check_values(sum(x, {0}), {3}, {5, 7, 9}, 0);
        check_values(sum(x, {1}, true), {2, 1}, {9, 12}, 0);
        check_values(mean(x, {1}), {2}, {3, 4}, 0);
        check_values(mean(x), {}, {3.5}, 0);
        check_values(amax(x, {0}), {3}, {4, 5, 6}, 0);
        check_values(raw::amin(x, {1}), {2}, {1, 2}, 0);
        MaxOut m = max(x, 1);
        check_values(m.values, {2}, {5, 6}, 0);
        BOOST_TEST(m.indices.shape == (Shape{2}));
        BOOST_TEST(m.indices.data == (std::vector<int64_t>{1, 2}));
        m = max(x, 0, true);
        check_values(m.values, {1, 3}, {4, 5, 6}, 0);
        BOOST_TEST(m.indices.shape == (Shape{1, 3}));
        BOOST_TEST(m.indices.data == (std::vector<int64_t>{1, 0, 1}));
        // ties: the first maximum wins
        MaxOut t = max(T({2, 7, 7, 1, 3, 3, 3, 0}, {2, 4}, dt), -1);
        BOOST_TEST(t.indices.data == (std::vector<int64_t>{1, 0}));
        raw::MaxResult r = raw::max_dim(T({3, 3, 1, 9, 9, 9}, {3, 2}, dt), 0);
        BOOST_TEST(r.indices.data == (std::vector<int64_t>{2, 1}));
        // sums of 0-size dims are 0; f32 sums accumulate in double
        check_values(sum(zeros({0, 3}, dt), {0}), {3}, {0, 0, 0}, 0);
        check_values(sum(full({3}, 1e8, dt)), {}, {3e8}, 0);
        // infinities and NaN propagate through amax
        check_values(amax(T({1, INFINITY, 2}, {3}, dt)), {}, {INFINITY});
        check_values(amax(T({1, NAN, 2}, {3}, dt)), {}, {NAN});
    }
    // a long f32 sum of a value that is not a power of two stays exact-ish
    Tensor big = full({100000}, 0.1, DType::f32);
    BOOST_TEST(std::abs(sum(big).item() - 100000 * (double)0.1f) < 1e-3);
}

BOOST_AUTO_TEST_CASE(softmax_family_values) {
    Generator g(2);
    for (DType dt : kDtypes) {
        Tensor x = randn({2, 3, 4}, g, dt);
        std::vector<double> v = x.to_vector();
        for (int64_t dim : {0, 1, 2, -1}) {
            BOOST_TEST_CONTEXT(dtype_name(dt) << " dim " << dim) {
                int64_t d = dim < 0 ? dim + 3 : dim;
                Shape kept = {2, 3, 4};
                kept[(size_t)d] = 1;
                std::vector<double> lse((size_t)numel_of(kept), 0.0);
                for (int64_t i = 0; i < 24; ++i) lse[(size_t)bcast_pos(unravel(i, {2, 3, 4}), kept)] += std::exp(v[(size_t)i]);
                for (double& s : lse) s = std::log(s);
                std::vector<double> sm, lsm;
                for (int64_t i = 0; i < 24; ++i) {
                    double l = lse[(size_t)bcast_pos(unravel(i, {2, 3, 4}), kept)];
                    sm.push_back(std::exp(v[(size_t)i] - l));
                    lsm.push_back(v[(size_t)i] - l);
                }
                Shape dropped;
                for (int k = 0; k < 3; ++k) if (k != d) dropped.push_back(kept[(size_t)k]);
                check_values(logsumexp(x, dim), dropped, lse, 4 * tol_for(dt));
                check_values(logsumexp(x, dim, true), kept, lse, 4 * tol_for(dt));
                check_values(softmax(x, dim), {2, 3, 4}, sm, 4 * tol_for(dt));
                check_values(log_softmax(x, dim), {2, 3, 4}, lsm, 4 * tol_for(dt));
                // rows of softmax sum to 1
                check_values(sum(softmax(x, dim), {dim}), dropped, std::vector<double>((size_t)numel_of(dropped), 1.0),
                             4 * tol_for(dt));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(softmax_family_is_stable_for_large_inputs) {
    const double l1 = std::log(1 + std::exp(-1.0) + std::exp(-2.0));
    for (DType dt : kDtypes) {
        double tol = 4 * tol_for(dt);
        for (double shift : {1000.0, -1000.0, 1e30}) {
            BOOST_TEST_CONTEXT(dtype_name(dt) << " shift " << shift) {
                if (dt == DType::f32 && shift == 1e30) continue;  // 1e30 + 1 == 1e30 in f32
                Tensor x = T({shift + 2, shift + 1, shift}, {1, 3}, dt);
                double e0 = 1 / (1 + std::exp(-1.0) + std::exp(-2.0));
                std::vector<double> sm = {e0, e0 * std::exp(-1.0), e0 * std::exp(-2.0)};
                if (shift == 1e30) sm = {1.0 / 3, 1.0 / 3, 1.0 / 3};  // the differences are below 1e30's ulp
                check_values(softmax(x, 1), {1, 3}, sm, tol);
                if (shift != 1e30) {
                    check_values(log_softmax(x, 1), {1, 3}, {-l1, -1 - l1, -2 - l1}, tol);
                    check_values(logsumexp(x, 1), {1}, {shift + 2 + l1}, tol);
                }
            }
        }
        // a row with -inf entries: they get probability 0, the rest is finite
        Tensor m = T({0, -INFINITY, 0, -INFINITY}, {4}, dt);
        check_values(softmax(m, 0), {4}, {0.5, 0, 0.5, 0}, tol);
        check_values(logsumexp(m, 0), {}, {std::log(2.0)}, tol);
        // a row of only -inf: logsumexp is -inf, not NaN
        check_values(logsumexp(T({-INFINITY, -INFINITY}, {2}, dt), 0), {}, {-INFINITY});
    }
}

BOOST_AUTO_TEST_CASE(zero_dim_inputs) {
    for (DType dt : kDtypes) {
        Tensor s = scalar_tensor(2.5, dt);
        check_values(sum(s), {}, {2.5}, 0);
        check_values(sum(s, {0}), {}, {2.5}, 0);
        check_values(mean(s), {}, {2.5}, 0);
        check_values(amax(s, {-1}, true), {}, {2.5}, 0);
        check_values(softmax(s, 0), {}, {1}, 0);
        check_values(log_softmax(s, 0), {}, {0}, 0);
        check_values(logsumexp(s, 0), {}, {2.5}, tol_for(dt));
        MaxOut m = max(s, 0);
        check_values(m.values, {}, {2.5}, 0);
        BOOST_TEST(m.indices.data == (std::vector<int64_t>{0}));
    }
}

BOOST_AUTO_TEST_CASE(reduction_errors_name_op_and_shape) {
    Tensor x = zeros({2, 3});
    BOOST_CHECK_EXCEPTION(sum(x, {2}), std::out_of_range, has({"sum", "dim 2", "2 dims"}));
    BOOST_CHECK_EXCEPTION(sum(x, {0, -2}), std::invalid_argument, has({"sum", "dim 0", "twice"}));
    BOOST_CHECK_EXCEPTION(mean(x, {-3}), std::out_of_range, has({"mean", "dim -3"}));
    BOOST_CHECK_EXCEPTION(amax(x, {5}), std::out_of_range, has({"amax", "dim 5"}));
    BOOST_CHECK_EXCEPTION(amax(zeros({2, 0}), {1}), std::invalid_argument, has({"amax", "empty", "(2, 0)"}));
    BOOST_CHECK_EXCEPTION(max(zeros({0, 2}), 0), std::invalid_argument, has({"max", "empty", "(0, 2)"}));
    BOOST_CHECK_EXCEPTION(max(x, 2), std::out_of_range, has({"max", "dim 2"}));
    BOOST_CHECK_EXCEPTION(softmax(x, 2), std::out_of_range, has({"softmax", "dim 2"}));
    BOOST_CHECK_EXCEPTION(log_softmax(x, -3), std::out_of_range, has({"log_softmax", "dim -3"}));
    BOOST_CHECK_EXCEPTION(logsumexp(x, 4), std::out_of_range, has({"logsumexp", "dim 4"}));
}

BOOST_AUTO_TEST_SUITE_END()
