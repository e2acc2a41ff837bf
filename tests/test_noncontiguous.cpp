// Every elementwise, reduction and layout kernel gives on a non-contiguous
// input (transposed storage, a narrowed window with gaps and an offset, an
// expanded stride-0 view) what it gives on a contiguous copy. The indexing
// kernels are covered in test_indexing_raw.cpp, matmul in test_matmul.cpp.
#include <boost/test/unit_test.hpp>

#include "op_test_util.h"

using namespace miras;
using namespace miras::test;

namespace {

// (2, 3, 4) inputs with the same values in several layouts, the contiguous
// one first. Values in (0.5, 2) so that every unary op is defined.
std::vector<Tensor> layouts(DType dt, Generator& g) {
    Tensor x = rand({2, 3, 4}, g, dt, 0.5, 2);
    std::vector<Tensor> r = {x};
    for (const Tensor& s : strided_copies(x)) r.push_back(s);
    r.push_back(raw::expand(rand({1, 3, 1}, g, dt, 0.5, 2), {2, 3, 4}));  // stride 0 in dims 0 and 2
    r.push_back(raw::expand(rand({4}, g, dt, 0.5, 2), {2, 3, 4}));        // leading broadcast dims
    for (size_t i = 1; i < r.size(); ++i) BOOST_REQUIRE(!r[i].is_contiguous());
    return r;
}

// f on a strided input equals f on its contiguous copy (bit-equal unless tol).
void same_as_contiguous(const char* what, const Tensor& x, const std::function<Tensor(const Tensor&)>& f, double tol = 0) {
    BOOST_TEST_CONTEXT(what << " on strides " << shape_str(x.strides()) << " offset " << x.offset()) {
        check_same(f(x), f(copy_of(x)), tol);
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(noncontiguous)

BOOST_AUTO_TEST_CASE(elementwise_kernels) {
    Generator g(1);
    const raw::Unary unary[] = {raw::Unary::neg, raw::Unary::exp, raw::Unary::log, raw::Unary::sqrt, raw::Unary::rsqrt,
                                raw::Unary::abs, raw::Unary::sign, raw::Unary::tanh, raw::Unary::sigmoid,
                                raw::Unary::silu, raw::Unary::gelu, raw::Unary::softplus, raw::Unary::relu,
                                raw::Unary::square, raw::Unary::reciprocal, raw::Unary::sin, raw::Unary::cos,
                                raw::Unary::log1p, raw::Unary::expm1, raw::Unary::step};
    const raw::Binary binary[] = {raw::Binary::add, raw::Binary::sub, raw::Binary::mul, raw::Binary::div,
                                  raw::Binary::pow, raw::Binary::maximum, raw::Binary::minimum, raw::Binary::eq,
                                  raw::Binary::ne, raw::Binary::lt, raw::Binary::le, raw::Binary::gt, raw::Binary::ge};
    for (DType dt : kDtypes) {
        auto xs = layouts(dt, g);
        for (const Tensor& x : xs) {
            for (auto u : unary) same_as_contiguous("unary", x, [u](const Tensor& t) { return raw::unary(u, t); });
            for (const Tensor& y : xs)  // every pair of layouts, and a scalar and a row on the other side
                for (auto b : binary) {
                    check_same(raw::binary(b, x, y), raw::binary(b, copy_of(x), copy_of(y)));
                    same_as_contiguous("binary with scalar", x, [b](const Tensor& t) { return raw::binary_scalar(b, t, 1.1); });
                    same_as_contiguous("scalar with binary", x, [b](const Tensor& t) { return raw::scalar_binary(b, 1.1, t); });
                }
            Tensor row = raw::narrow(rand({8}, g, dt, 0.5, 2), 0, 2, 4);
            same_as_contiguous("binary with row", x, [row](const Tensor& t) { return raw::binary(raw::Binary::sub, t, row); });
            same_as_contiguous("clamp", x, [](const Tensor& t) { return raw::clamp(t, 0.8, 1.5); });
            same_as_contiguous("where", x, [&](const Tensor& t) {
                return raw::where(raw::binary_scalar(raw::Binary::gt, t, 1.2), t, xs[1]);
            });
            same_as_contiguous("where cond", x, [&](const Tensor& t) {
                return raw::where(raw::binary_scalar(raw::Binary::gt, xs[0], 1.2), t, scalar_tensor(0, dt));
            });
            same_as_contiguous("axpby", x, [&](const Tensor& t) { return raw::axpby(t, 2, xs[2], -1); });
            same_as_contiguous("axpby b", x, [&](const Tensor& t) { return raw::axpby(xs[0], 0.5, t, 3); });
            same_as_contiguous("clone", x, [](const Tensor& t) { return raw::clone(t); });
            same_as_contiguous("contiguous", x, [](const Tensor& t) { return raw::contiguous(t); });
            same_as_contiguous("to_dtype", x, [](const Tensor& t) {
                return raw::to_dtype(t, t.dtype() == DType::f32 ? DType::f64 : DType::f32);
            });
            same_as_contiguous("reshape", x, [](const Tensor& t) { return raw::contiguous(raw::reshape(t, {4, 6})); });
            // the differentiable entry points too
            same_as_contiguous("gelu", x, [](const Tensor& t) { return gelu(t); });
            same_as_contiguous("mul", x, [&](const Tensor& t) { return mul(t, xs[1]); });
        }
    }
}

BOOST_AUTO_TEST_CASE(in_place_into_strided_destinations) {
    Generator g(2);
    for (DType dt : kDtypes) {
        auto xs = layouts(dt, g);
        for (const Tensor& dst : strided_copies(zeros({2, 3, 4}, dt))) {  // the writable layouts
            Tensor src = rand({2, 3, 4}, g, dt);
            raw::copy_(dst, src);
            check_same(copy_of(dst), src);
            raw::add_(dst, xs[3], 2);  // an expanded source
            check_same(copy_of(dst), raw::axpby(src, 1, xs[3], 2), tol_for(dt));
            raw::fill_(dst, 3);
            check_values(dst, {2, 3, 4}, std::vector<double>(24, 3.0), 0);
        }
    }
}

BOOST_AUTO_TEST_CASE(reduction_kernels) {
    Generator g(3);
    const std::vector<std::vector<int64_t>> dim_sets = {{}, {0}, {1}, {2}, {0, 1}, {0, 2}, {1, 2}};
    for (DType dt : kDtypes) {
        // the leading-dims fast path of sum accumulates like the general one
        double tol = dt == DType::f32 ? 1e-6 : 1e-14;
        for (const Tensor& x : layouts(dt, g)) {
            for (const auto& dims : dim_sets)
                for (bool keep : {false, true}) {
                    same_as_contiguous("sum", x, [&](const Tensor& t) { return raw::sum(t, dims, keep); }, tol);
                    same_as_contiguous("amax", x, [&](const Tensor& t) { return raw::amax(t, dims, keep); });
                    same_as_contiguous("amin", x, [&](const Tensor& t) { return raw::amin(t, dims, keep); });
                    same_as_contiguous("mean", x, [&](const Tensor& t) { return mean(t, dims, keep); }, tol);
                }
            for (int64_t dim : {0, 1, 2}) {
                same_as_contiguous("max_dim", x, [&](const Tensor& t) { return raw::max_dim(t, dim).values; });
                BOOST_TEST(raw::max_dim(x, dim, true).indices.data == raw::max_dim(copy_of(x), dim, true).indices.data);
                same_as_contiguous("logsumexp", x, [&](const Tensor& t) { return raw::logsumexp(t, dim, true); });
                same_as_contiguous("softmax", x, [&](const Tensor& t) { return raw::softmax(t, dim); });
                same_as_contiguous("log_softmax", x, [&](const Tensor& t) { return raw::log_softmax(t, dim); });
            }
            same_as_contiguous("sum_to (3, 1)", x, [](const Tensor& t) { return raw::sum_to(t, {3, 1}); }, tol);
            same_as_contiguous("sum_to (4,)", x, [](const Tensor& t) { return raw::sum_to(t, {4}); }, tol);
            same_as_contiguous("sum_to (2, 1, 4)", x, [](const Tensor& t) { return raw::sum_to(t, {2, 1, 4}); }, tol);
        }
    }
}

BOOST_AUTO_TEST_CASE(f32_sums_accumulate_wide_on_every_path) {
    // 0.1f summed 10^5 times: float accumulation drifts by ~1e-3 relative,
    // double accumulation stays at the rounding of the result.
    Tensor x = full({100000, 2}, 0.1, DType::f32);
    double want = 100000 * (double)0.1f;
    for (const Tensor& s : {raw::sum(x, {0}), raw::sum(raw::transpose(x, 0, 1), {1}), raw::sum_to(x, {2}),
                            raw::sum(x, {0}, true)}) {
        std::vector<double> v = s.to_vector();
        BOOST_REQUIRE_EQUAL(v.size(), 2u);
        for (double e : v) BOOST_TEST(std::abs(e - want) <= 1e-6 * want, e << " vs " << want);
    }
}

BOOST_AUTO_TEST_CASE(strided_cotangents) {
    // grad_outputs given as views (transposed, expanded) give the same gradients
    Generator g(4);
    Tensor x = rn({3, 2}, g);
    Tensor gy = raw::transpose(randn({2, 3}, g, DType::f64), 0, 1);
    Tensor ge = raw::expand(randn({1, 2}, g, DType::f64), {3, 2});
    for (const Tensor& v : {gy, ge}) {
        auto f = [&](const Tensor& t) { return mul(sum_to(softmax(t, 0), {3, 2}), exp(t)); };
        Tensor a = grad({f(x)}, {x}, {v})[0], b = grad({f(x)}, {x}, {copy_of(v)})[0];
        check_same(a, b, 1e-15);
        Tensor c = grad({sum(x, {0})}, {x}, {raw::narrow(randn({4}, g, DType::f64), 0, 1, 2)})[0];
        BOOST_TEST(c.shape() == (Shape{3, 2}));
    }
}

BOOST_AUTO_TEST_SUITE_END()
