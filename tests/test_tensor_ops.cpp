// Forward values of the creation ops, the Generator, the elementwise kernels
// (raw and differentiable entry points), in-place ops and printing, in f32
// and f64. Reductions, views and matmul: test_reduce_values, test_views,
// test_matmul.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include "op_test_util.h"

using namespace miras;
using namespace miras::test;

namespace {

struct UnaryCase {
    const char* name;
    raw::Unary kind;
    Tensor (*op)(const Tensor&);
    double (*ref)(double);
    bool positive;  // domain (0, inf) only
};

double sigm(double x) { return 1 / (1 + std::exp(-x)); }

const UnaryCase kUnary[] = {
    {"neg", raw::Unary::neg, miras::neg, [](double x) { return -x; }, false},
    {"exp", raw::Unary::exp, miras::exp, [](double x) { return std::exp(x); }, false},
    {"log", raw::Unary::log, miras::log, [](double x) { return std::log(x); }, true},
    {"sqrt", raw::Unary::sqrt, miras::sqrt, [](double x) { return std::sqrt(x); }, true},
    {"rsqrt", raw::Unary::rsqrt, miras::rsqrt, [](double x) { return 1 / std::sqrt(x); }, true},
    {"abs", raw::Unary::abs, miras::abs, [](double x) { return std::fabs(x); }, false},
    {"sign", raw::Unary::sign, miras::sign, [](double x) { return double((x > 0) - (x < 0)); }, false},
    {"tanh", raw::Unary::tanh, miras::tanh, [](double x) { return std::tanh(x); }, false},
    {"sigmoid", raw::Unary::sigmoid, miras::sigmoid, sigm, false},
    {"silu", raw::Unary::silu, miras::silu, [](double x) { return x * sigm(x); }, false},
    {"gelu", raw::Unary::gelu, miras::gelu,
     [](double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }, false},
    {"softplus", raw::Unary::softplus, miras::softplus, [](double x) { return std::log(1 + std::exp(x)); }, false},
    {"relu", raw::Unary::relu, miras::relu, [](double x) { return x > 0 ? x : 0.0; }, false},
    {"square", raw::Unary::square, miras::square, [](double x) { return x * x; }, false},
    {"reciprocal", raw::Unary::reciprocal, miras::reciprocal, [](double x) { return 1 / x; }, false},
    {"sin", raw::Unary::sin, miras::sin, [](double x) { return std::sin(x); }, false},
    {"cos", raw::Unary::cos, miras::cos, [](double x) { return std::cos(x); }, false},
    {"log1p", raw::Unary::log1p, miras::log1p, [](double x) { return std::log(1 + x); }, true},
    {"expm1", raw::Unary::expm1, miras::expm1, [](double x) { return std::exp(x) - 1; }, false},
};

std::vector<double> map(const std::vector<double>& v, double (*f)(double)) {
    std::vector<double> r;
    for (double x : v) r.push_back(f(x));
    return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tensor_ops)

// ---- creation

BOOST_AUTO_TEST_CASE(creation_values) {
    for (DType dt : kDtypes) {
        check_values(zeros({2, 3}, dt), {2, 3}, {0, 0, 0, 0, 0, 0});
        check_values(ones({3}, dt), {3}, {1, 1, 1});
        check_values(full({2, 1}, -2.5, dt), {2, 1}, {-2.5, -2.5});
        Tensor s = scalar_tensor(4.25, dt);
        BOOST_TEST(s.dim() == 0);
        BOOST_TEST(s.item() == 4.25);
        check_values(arange(0, 5, 1, dt), {5}, {0, 1, 2, 3, 4});
        check_values(arange(1, 2, 0.25, dt), {4}, {1, 1.25, 1.5, 1.75});
        check_values(arange(3, 0, -1, dt), {3}, {3, 2, 1});
        check_values(arange(2, 2, 1, dt), {0}, {});
        check_values(from_vector({1, 2, 3, 4, 5, 6}, {3, 2}, dt), {3, 2}, {1, 2, 3, 4, 5, 6});
        Tensor x = full({2, 2}, 7, dt);
        BOOST_TEST((zeros_like(x).dtype() == dt));
        check_values(ones_like(x), {2, 2}, {1, 1, 1, 1});
        check_values(zeros({0, 3}, dt), {0, 3}, {});
        check_values(ones({2, 0}, dt), {2, 0}, {});  // contiguous strides (0, 1) of an empty tensor
        check_values(full({3, 0, 2}, 1, dt), {3, 0, 2}, {});
        BOOST_TEST((zeros({2}, dt).dtype() == dt));
        BOOST_TEST(zeros({2, 3}, dt).is_contiguous());
    }
    // f32 keeps what it can represent
    BOOST_TEST(from_vector({0.1}, {1}, DType::f32).to_vector()[0] == (double)0.1f);
    BOOST_CHECK_EXCEPTION(from_vector({1, 2, 3}, {2, 2}), std::invalid_argument,
                          has({"from_vector", "3 values", "(2, 2)"}));
    BOOST_CHECK_EXCEPTION(arange(0, 1, 0), std::invalid_argument, has({"arange", "step"}));
    BOOST_CHECK_EXCEPTION(zeros({2, -1}), std::invalid_argument, has({"negative", "(2, -1)"}));
}

BOOST_AUTO_TEST_CASE(generator_is_deterministic) {
    Generator g1(42), g2(42), g3(43);
    Tensor a = randn({64}, g1, DType::f64), b = randn({64}, g2, DType::f64), c = randn({64}, g3, DType::f64);
    check_same(a, b);
    BOOST_TEST(a.to_vector() != c.to_vector());
    check_same(rand({5, 7}, g1, DType::f64, -1, 3), rand({5, 7}, g2, DType::f64, -1, 3));
    // f32 and f64 draws from the same seed agree up to rounding
    Generator h1(7), h2(7);
    check_values(randn({16}, h1, DType::f32), {16}, randn({16}, h2, DType::f64).to_vector(), 1e-6);
    // state() / set_state() replays the stream, including a pending spare normal
    Generator g(5);
    g.normal();
    Generator::State st = g.state();
    double n1 = g.normal(), n2 = g.normal(), u = g.uniform();
    g.set_state(st);
    BOOST_TEST(g.normal() == n1);
    BOOST_TEST(g.normal() == n2);
    BOOST_TEST(g.uniform() == u);
    // seed_with restarts the stream
    Generator r(9);
    double first = r.uniform();
    r.uniform();
    r.seed_with(9);
    BOOST_TEST(r.uniform() == first);
}

BOOST_AUTO_TEST_CASE(generator_moments) {
    const int64_t n = 100000;
    Generator g(1234);
    auto moments = [](const Tensor& t, double& mean, double& var, double& lo, double& hi) {
        std::vector<double> v = t.to_vector();
        mean = 0, var = 0, lo = INFINITY, hi = -INFINITY;
        for (double x : v) mean += x, lo = std::min(lo, x), hi = std::max(hi, x);
        mean /= (double)v.size();
        for (double x : v) var += (x - mean) * (x - mean);
        var /= (double)v.size();
    };
    double m, v, lo, hi;
    // N(0, 1): the standard error of the mean is 1/sqrt(n) ~ 0.003
    moments(randn({n}, g, DType::f64), m, v, lo, hi);
    BOOST_TEST(std::abs(m) < 0.015);
    BOOST_TEST(std::abs(v - 1) < 0.02);
    moments(randn({n}, g, DType::f32, 3, 0.5), m, v, lo, hi);
    BOOST_TEST(std::abs(m - 3) < 0.01);
    BOOST_TEST(std::abs(v - 0.25) < 0.01);
    // U[0, 1): mean 1/2, variance 1/12
    moments(rand({n}, g, DType::f64), m, v, lo, hi);
    BOOST_TEST(std::abs(m - 0.5) < 0.005);
    BOOST_TEST(std::abs(v - 1.0 / 12) < 0.003);
    BOOST_TEST(lo >= 0);
    BOOST_TEST(hi < 1);
    moments(rand({n}, g, DType::f32, -2, 4), m, v, lo, hi);
    BOOST_TEST(std::abs(m - 1) < 0.03);
    BOOST_TEST(std::abs(v - 3) < 0.06);
    BOOST_TEST(lo >= -2);
    BOOST_TEST(hi <= 4);
    // below(n) covers [0, n)
    std::vector<int> seen(5, 0);
    for (int i = 0; i < 1000; ++i) seen[g.below(5)]++;
    for (int c : seen) BOOST_TEST((c > 150 && c < 250));
}

// ---- elementwise, every unary kernel through both entry points

BOOST_AUTO_TEST_CASE(unary_values) {
    const std::vector<double> any = {-2.5, -0.75, 0.3, 1.0, 3.2}, pos = {0.05, 0.5, 1.0, 2.0, 7.5};
    for (DType dt : kDtypes)
        for (const auto& c : kUnary) {
            BOOST_TEST_CONTEXT(c.name << " " << dtype_name(dt)) {
                const auto& in = c.positive ? pos : any;
                Tensor x = T(in, {5}, dt);
                check_values(raw::unary(c.kind, x), {5}, map(in, c.ref), 4 * tol_for(dt));
                Tensor y = c.op(x);
                check_values(y, {5}, map(in, c.ref), 4 * tol_for(dt));
                BOOST_TEST((y.dtype() == dt));
                // a 2-D and a 0-d input keep their shape
                check_values(c.op(T(in, {1, 5}, dt)), {1, 5}, map(in, c.ref), 4 * tol_for(dt));
                check_values(c.op(scalar_tensor(in[2], dt)), {}, {c.ref(in[2])}, 4 * tol_for(dt));
            }
        }
}

BOOST_AUTO_TEST_CASE(unary_hand_values_and_stability) {
    for (DType dt : kDtypes) {
        double tol = tol_for(dt);
        check_values(exp(T({0, 1}, {2}, dt)), {2}, {1, M_E}, tol);
        check_values(log(T({1, M_E}, {2}, dt)), {2}, {0, 1}, tol);
        check_values(sqrt(T({4, 0.25}, {2}, dt)), {2}, {2, 0.5}, tol);
        check_values(rsqrt(T({4, 0.25}, {2}, dt)), {2}, {0.5, 2}, tol);
        check_values(sigmoid(T({0}, {1}, dt)), {1}, {0.5}, tol);
        check_values(softplus(T({0}, {1}, dt)), {1}, {std::log(2.0)}, tol);
        check_values(silu(T({0, 1}, {2}, dt)), {2}, {0, 1 / (1 + std::exp(-1.0))}, tol);
        check_values(gelu(T({0, 1}, {2}, dt)), {2}, {0, 0.8411919906082768}, tol);
        check_values(relu(T({-1, 0, 2}, {3}, dt)), {3}, {0, 0, 2}, 0);
        check_values(sign(T({-3, 0, 2}, {3}, dt)), {3}, {-1, 0, 1}, 0);
        check_values(raw::unary(raw::Unary::step, T({-1, 0, 2}, {3}, dt)), {3}, {0, 0, 1}, 0);
        // no overflow in the saturated tails
        check_values(sigmoid(T({-800, 800}, {2}, dt)), {2}, {0, 1}, 0);
        check_values(softplus(T({-100, 100}, {2}, dt)), {2}, {std::exp(-100.0), 100}, tol);
        check_values(gelu(T({-30, 30}, {2}, dt)), {2}, {0, 30}, tol);
        check_values(tanh(T({-400, 400}, {2}, dt)), {2}, {-1, 1}, 0);
        // log1p / expm1 keep the small-argument digits
        check_values(log1p(T({1e-10}, {1}, dt)), {1}, {std::log1p(1e-10)}, tol);
        check_values(expm1(T({1e-10}, {1}, dt)), {1}, {std::expm1(1e-10)}, tol);
    }
}

BOOST_AUTO_TEST_CASE(binary_values) {
    for (DType dt : kDtypes) {
        double tol = tol_for(dt);
        Tensor a = T({1, -2, 3, 4}, {2, 2}, dt), b = T({2, 2, -1, 4}, {2, 2}, dt);
        check_values(add(a, b), {2, 2}, {3, 0, 2, 8}, 0);
        check_values(sub(a, b), {2, 2}, {-1, -4, 4, 0}, 0);
        check_values(mul(a, b), {2, 2}, {2, -4, -3, 16}, 0);
        check_values(div(a, b), {2, 2}, {0.5, -1, -3, 1}, 0);
        check_values(maximum(a, b), {2, 2}, {2, 2, 3, 4}, 0);
        check_values(minimum(a, b), {2, 2}, {1, -2, -1, 4}, 0);
        check_values(pow(T({2, 9, 0.5}, {3}, dt), T({3, 0.5, -1}, {3}, dt)), {3}, {8, 3, 2}, tol);
        check_values(pow(T({2, 4}, {2}, dt), 2.0), {2}, {4, 16}, tol);
        check_values(pow(T({4, 9}, {2}, dt), 0.5), {2}, {2, 3}, tol);
        check_values(add(a, 1.5), {2, 2}, {2.5, -0.5, 4.5, 5.5}, 0);
        check_values(mul(a, -2), {2, 2}, {-2, 4, -6, -8}, 0);
        check_values(eq(a, b), {2, 2}, {0, 0, 0, 1}, 0);
        check_values(ne(a, b), {2, 2}, {1, 1, 1, 0}, 0);
        check_values(lt(a, b), {2, 2}, {1, 1, 0, 0}, 0);
        check_values(le(a, b), {2, 2}, {1, 1, 0, 1}, 0);
        check_values(gt(a, b), {2, 2}, {0, 0, 1, 0}, 0);
        check_values(ge(a, b), {2, 2}, {0, 0, 1, 1}, 0);
        BOOST_TEST((eq(a, b).dtype() == dt));
        // operators
        check_values(a + b, {2, 2}, {3, 0, 2, 8}, 0);
        check_values(a - b, {2, 2}, {-1, -4, 4, 0}, 0);
        check_values(a * b, {2, 2}, {2, -4, -3, 16}, 0);
        check_values(a / b, {2, 2}, {0.5, -1, -3, 1}, 0);
        check_values(-a, {2, 2}, {-1, 2, -3, -4}, 0);
        check_values(a + 1.0, {2, 2}, {2, -1, 4, 5}, 0);
        check_values(1.0 + a, {2, 2}, {2, -1, 4, 5}, 0);
        check_values(a - 1.0, {2, 2}, {0, -3, 2, 3}, 0);
        check_values(1.0 - a, {2, 2}, {0, 3, -2, -3}, 0);
        check_values(a * 3.0, {2, 2}, {3, -6, 9, 12}, 0);
        check_values(3.0 * a, {2, 2}, {3, -6, 9, 12}, 0);
        check_values(a / 2.0, {2, 2}, {0.5, -1, 1.5, 2}, 0);
        check_values(2.0 / b, {2, 2}, {1, 1, -2, 0.5}, tol);
        // raw scalar forms
        check_values(raw::binary_scalar(raw::Binary::sub, a, 1), {2, 2}, {0, -3, 2, 3}, 0);
        check_values(raw::scalar_binary(raw::Binary::sub, 1, a), {2, 2}, {0, 3, -2, -3}, 0);
        check_values(raw::scalar_binary(raw::Binary::div, 1, b), {2, 2}, {0.5, 0.5, -1, 0.25}, 0);
    }
    // NaN propagates through maximum/minimum from either side
    Tensor n = T({NAN, 1}, {2}), o = T({0, NAN}, {2});
    check_values(maximum(n, o), {2}, {NAN, NAN});
    check_values(minimum(n, o), {2}, {NAN, NAN});
}

BOOST_AUTO_TEST_CASE(clamp_where_axpby_values) {
    for (DType dt : kDtypes) {
        Tensor x = T({-2, -0.5, 0, 0.5, 2}, {5}, dt);
        check_values(clamp(x, -1, 1), {5}, {-1, -0.5, 0, 0.5, 1}, 0);
        check_values(raw::clamp(x, 0, 0), {5}, {0, 0, 0, 0, 0}, 0);
        Tensor c = T({1, 0, 1, 0}, {2, 2}, dt), a = T({1, 2, 3, 4}, {2, 2}, dt), b = T({-1, -2}, {2}, dt);
        check_values(where(c, a, b), {2, 2}, {1, -2, 3, -2}, 0);
        check_values(raw::where(T({0, 1}, {2, 1}, dt), a, scalar_tensor(9, dt)), {2, 2}, {9, 9, 3, 4}, 0);
        check_values(raw::axpby(a, 2, b, -3), {2, 2}, {5, 10, 9, 14}, 0);
        check_values(raw::axpby(a, 0.5, scalar_tensor(1, dt), 1), {2, 2}, {1.5, 2, 2.5, 3}, 0);
    }
    BOOST_CHECK_EXCEPTION(clamp(ones({2}), 1, -1), std::invalid_argument, has({"clamp", "lo", "hi"}));
}

BOOST_AUTO_TEST_CASE(in_place_ops) {
    for (DType dt : kDtypes) {
        Tensor x = zeros({2, 3}, dt);
        uint64_t v0 = x.version();
        raw::fill_(x, 2);
        BOOST_TEST(x.version() > v0);
        check_values(x, {2, 3}, {2, 2, 2, 2, 2, 2}, 0);
        raw::add_(x, T({1, 2, 3}, {3}, dt), 2);  // broadcast source
        check_values(x, {2, 3}, {4, 6, 8, 4, 6, 8}, 0);
        raw::copy_(x, T({5, 6}, {2, 1}, dt));
        check_values(x, {2, 3}, {5, 5, 5, 6, 6, 6}, 0);
        // copy_ converts dtypes
        raw::copy_(x, T({1, 2, 3, 4, 5, 6}, {2, 3}, dt == DType::f32 ? DType::f64 : DType::f32));
        check_values(x, {2, 3}, {1, 2, 3, 4, 5, 6}, 0);
        raw::fill_(raw::narrow(x, 1, 1, 1), -1);  // fill_ through a strided view
        check_values(x, {2, 3}, {1, -1, 3, 4, -1, 6}, 0);
        raw::add_(raw::transpose(x, 0, 1), T({10, 20}, {2}, dt));  // add_ through a transposed view
        check_values(x, {2, 3}, {11, 9, 13, 24, 19, 26}, 0);
        raw::add_(x, T({1, 2, 3, 4, 5, 6}, {2, 3}, dt));  // contiguous, alpha 1: the vectorised kernel
        check_values(x, {2, 3}, {12, 11, 16, 28, 24, 32}, 0);
        raw::add_(x, x);  // dst is src
        check_values(x, {2, 3}, {24, 22, 32, 56, 48, 64}, 0);
    }
    Tensor x = zeros({2, 3}), e = raw::expand(zeros({1, 3}), {2, 3});
    BOOST_CHECK_EXCEPTION(raw::copy_(e, x), std::invalid_argument, has({"copy_", "expanded", "(2, 3)"}));
    BOOST_CHECK_EXCEPTION(raw::fill_(e, 1), std::invalid_argument, has({"fill_", "expanded"}));
    BOOST_CHECK_EXCEPTION(raw::add_(e, x), std::invalid_argument, has({"add_", "expanded"}));
    BOOST_CHECK_EXCEPTION(raw::copy_(x, zeros({3, 3})), std::invalid_argument, has({"copy_", "(3, 3)", "(2, 3)"}));
    BOOST_CHECK_EXCEPTION(raw::add_(zeros({3}), zeros({2, 3})), std::invalid_argument, has({"add_", "(2, 3)", "(3,)"}));
    BOOST_CHECK_EXCEPTION(raw::add_(x, zeros({2, 3}, DType::f64)), std::invalid_argument, has({"add_", "dtype", "f64"}));
}

BOOST_AUTO_TEST_CASE(dtype_conversion_and_access) {
    Tensor x = T({1.5, -2.25, 3}, {3}, DType::f64);
    Tensor y = to_dtype(x, DType::f32);
    BOOST_TEST((y.dtype() == DType::f32));
    check_values(y, {3}, {1.5, -2.25, 3}, 0);
    check_values(to_dtype(raw::transpose(T({1, 2, 3, 4}, {2, 2}), 0, 1), DType::f32), {2, 2}, {1, 3, 2, 4}, 0);
    BOOST_TEST(y.data<float>()[1] == -2.25f);
    BOOST_CHECK_EXCEPTION(y.data<double>(), std::invalid_argument, has({"data<T>()", "f32", "f64"}));
    BOOST_CHECK_EXCEPTION(x.item(), std::invalid_argument, has({"item", "(3,)", "3 elements"}));
    BOOST_CHECK_EXCEPTION(add(x, y), std::invalid_argument, has({"add", "dtype", "f64", "f32"}));
    BOOST_CHECK_EXCEPTION(Tensor().shape(), std::logic_error, has({"undefined"}));
    BOOST_TEST(T({5}, {1, 1}).item() == 5);
}

BOOST_AUTO_TEST_CASE(printing) {
    Tensor x = T({1, 2, 3, 4.5, -5, 6}, {2, 3}, DType::f32);
    BOOST_TEST(x.str() == "tensor([[1, 2, 3],\n        [4.5, -5, 6]], shape=(2, 3), dtype=f32)");
    // a strided view prints its own elements, in its own order
    BOOST_TEST(raw::transpose(x, 0, 1).str() ==
               "tensor([[1, 4.5],\n        [2, -5],\n        [3, 6]], shape=(3, 2), dtype=f32)");
    BOOST_TEST(scalar_tensor(0.25, DType::f64).str() == "tensor(0.25, shape=(), dtype=f64)");
    BOOST_TEST(T({1, 2}, {2}).str() == "tensor([1, 2], shape=(2,), dtype=f64)");
    BOOST_TEST(Tensor().str() == "Tensor(undefined)");
    std::ostringstream os;
    os << T({7}, {1});
    BOOST_TEST(os.str() == "tensor([7], shape=(1,), dtype=f64)");
    // more than 1000 elements: a summary, never the whole tensor
    std::string big = arange(0, 2000).str();
    BOOST_TEST(big.size() < 200u);
    BOOST_TEST(big.find("...") != std::string::npos);
    BOOST_TEST(big.find("1999") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
