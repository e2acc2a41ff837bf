// The depthwise convolution kernels (tensor/conv.cpp, their loops in
// tensor/conv_loops.h) and their autograd ops (autograd/ops_conv.cpp): values
// of both kernels in both directions against a plain loop and against the
// old shifted-narrow formula, strided inputs, f32 against f64, the adjoint
// identities the backward formulas rest on, gradcheck and gradgradcheck, and
// the error messages.
#include <boost/test/unit_test.hpp>

#include <vector>

#include "nn/functional.h"
#include "op_test_util.h"

using namespace miras;
using namespace miras::test;

namespace {

// Time offset of tap j (x is read at t + offset), written out independently
// of the kernel's helper.
int64_t src_of(int64_t t, int64_t j, int64_t K, bool anticausal) { return anticausal ? t + K - 1 - j : t - K + 1 + j; }

// out[n, t, c] = Σ_j w[c, j] x[n, src, c] over x viewed as (N, T, C).
std::vector<double> ref_conv(const Tensor& x, const Tensor& w, bool anticausal) {
    const int64_t T = x.size(-2), C = x.size(-1), N = x.numel() / (T * C), K = w.size(1);
    std::vector<double> xv = x.to_vector(), wv = w.to_vector(), out(xv.size(), 0.0);
    for (int64_t n = 0; n < N; ++n)
        for (int64_t t = 0; t < T; ++t)
            for (int64_t c = 0; c < C; ++c) {
                double s = 0;
                for (int64_t j = 0; j < K; ++j) {
                    int64_t u = src_of(t, j, K, anticausal);
                    if (u >= 0 && u < T) s += wv[(size_t)(c * K + j)] * xv[(size_t)((n * T + u) * C + c)];
                }
                out[(size_t)((n * T + t) * C + c)] = s;
            }
    return out;
}

// dw[c, j] = Σ_{n, t} g[n, t, c] x[n, src, c]
std::vector<double> ref_weight(const Tensor& x, const Tensor& g, int64_t K, bool anticausal) {
    const int64_t T = x.size(-2), C = x.size(-1), N = x.numel() / (T * C);
    std::vector<double> xv = x.to_vector(), gv = g.to_vector(), out((size_t)(C * K), 0.0);
    for (int64_t n = 0; n < N; ++n)
        for (int64_t t = 0; t < T; ++t)
            for (int64_t c = 0; c < C; ++c)
                for (int64_t j = 0; j < K; ++j) {
                    int64_t u = src_of(t, j, K, anticausal);
                    if (u >= 0 && u < T)
                        out[(size_t)(c * K + j)] += gv[(size_t)((n * T + t) * C + c)] * xv[(size_t)((n * T + u) * C + c)];
                }
    return out;
}

// The formula causal_depthwise_conv1d used before the fused kernel: pad time
// with K − 1 zeros (left when causal, right when anticausal, where tap j then
// reads padded[t + K − 1 − j]) and add one shifted narrow per tap.
Tensor old_formula(const Tensor& x, const Tensor& w, bool anticausal) {
    const int64_t td = x.dim() - 2, T = x.size(-2), K = w.size(1);
    Shape pad = x.shape();
    pad[(size_t)td] = K - 1;
    Tensor xp = K == 1 ? x : anticausal ? cat({x, zeros(pad, x.dtype())}, td) : cat({zeros(pad, x.dtype()), x}, td);
    Tensor out;
    for (int64_t j = 0; j < K; ++j) {
        Tensor term = mul(narrow(xp, td, anticausal ? K - 1 - j : j, T), select(w, 1, j));
        out = out.defined() ? add(out, term) : term;
    }
    return out;
}

// <a, b> over all elements
double dot(const Tensor& a, const Tensor& b) {
    std::vector<double> av = a.to_vector(), bv = b.to_vector();
    double s = 0;
    for (size_t i = 0; i < av.size(); ++i) s += av[i] * bv[i];
    return s;
}

struct Geometry { Shape x; int64_t K; };
// Batched, 4-D, K = 1 (no padding), T < K (every output sees padding), T = 1,
// and wider ones for the kernels' blocking: K = 5, 6, 7 (taps go four at a
// time) and C = 16, 37 (channels go sixteen at a time, then a tail).
const Geometry kGeoms[] = {{{2, 5, 3}, 3},  {{2, 2, 4, 3}, 2}, {{2, 5, 3}, 1},  {{1, 2, 3}, 4},
                           {{3, 1, 2}, 3},  {{7, 2}, 3},       {{2, 9, 37}, 6}, {{1, 8, 16}, 5},
                           {{1, 3, 20}, 7}};

}  // namespace

BOOST_AUTO_TEST_SUITE(conv)

BOOST_AUTO_TEST_CASE(raw_values_match_loop_and_old_formula) {
    Generator g(1);
    for (const Geometry& geo : kGeoms)
        for (bool anti : {false, true}) {
            BOOST_TEST_CONTEXT("x " << shape_str(geo.x) << " K " << geo.K << " anticausal " << anti) {
                const int64_t C = geo.x.back();
                Tensor x = randn(geo.x, g, DType::f64), w = randn({C, geo.K}, g, DType::f64);
                Tensor gr = randn(geo.x, g, DType::f64);
                Tensor y = raw::depthwise_conv1d(x, w, anti);
                check_values(y, geo.x, ref_conv(x, w, anti));
                check_values(y, geo.x, old_formula(x, w, anti).to_vector());
                check_values(raw::depthwise_conv1d_weight(x, gr, geo.K, anti), {C, geo.K}, ref_weight(x, gr, geo.K, anti));
            }
        }
}

BOOST_AUTO_TEST_CASE(causal_depthwise_conv1d_matches_old_formula_with_gradients) {
    Generator g(2);
    Tensor x = rn({2, 6, 3}, g), w = rn({3, 4}, g), b = rn({3}, g);
    Tensor y = causal_depthwise_conv1d(x, w, b);
    Tensor y_old = add(old_formula(x, w, false), b);
    check_values(y, y_old.shape(), y_old.to_vector());
    Tensor r = randn({2, 6, 3}, g, DType::f64);
    TensorList gn = grad({sum(mul(y, r))}, {x, w, b});
    TensorList go = grad({sum(mul(y_old, r))}, {x, w, b});
    for (size_t i = 0; i < gn.size(); ++i) check_values(gn[i], go[i].shape(), go[i].to_vector());
}

BOOST_AUTO_TEST_CASE(strided_inputs) {
    Generator g(3);
    Tensor x = randn({2, 3, 4}, g, DType::f64), gr = randn({2, 3, 4}, g, DType::f64);
    // w (4, K) as the transpose of a (K, 4) storage
    Tensor w = raw::transpose(randn({3, 4}, g, DType::f64), 0, 1);
    BOOST_TEST(!w.is_contiguous());
    std::vector<Tensor> xs = strided_copies(x), gs = strided_copies(gr);
    for (bool anti : {false, true}) {
        Tensor y = raw::depthwise_conv1d(x, raw::clone(w), anti);
        Tensor dw = raw::depthwise_conv1d_weight(x, gr, 3, anti);
        check_values(y, x.shape(), ref_conv(x, w, anti));
        for (size_t i = 0; i < xs.size(); ++i) {
            BOOST_TEST(!xs[i].is_contiguous());
            check_same(raw::depthwise_conv1d(xs[i], w, anti), y);
            check_same(raw::depthwise_conv1d_weight(xs[i], gs[i], 3, anti), dw);
            check_same(raw::depthwise_conv1d_weight(x, gs[i], 3, anti), dw);
        }
        // an expanded (stride-0) batch dim
        Tensor row = randn({1, 3, 4}, g, DType::f64);
        Tensor ex = raw::expand(row, {2, 3, 4});
        check_values(raw::depthwise_conv1d(ex, w, anti), ex.shape(), ref_conv(copy_of(ex), w, anti));
    }
}

BOOST_AUTO_TEST_CASE(f32_matches_f64) {
    Generator g(4);
    Tensor x = randn({3, 17, 37}, g, DType::f64), gr = randn({3, 17, 37}, g, DType::f64);
    Tensor w = randn({37, 4}, g, DType::f64);
    auto f32 = [](const Tensor& t) { return raw::to_dtype(t, DType::f32); };
    for (bool anti : {false, true}) {
        Tensor y = raw::depthwise_conv1d(f32(x), f32(w), anti);
        BOOST_TEST((y.dtype() == DType::f32));
        check_values(y, x.shape(), raw::depthwise_conv1d(x, w, anti).to_vector(), 1e-5);
        Tensor dw = raw::depthwise_conv1d_weight(f32(x), f32(gr), 4, anti);
        BOOST_TEST((dw.dtype() == DType::f32));
        check_values(dw, w.shape(), raw::depthwise_conv1d_weight(x, gr, 4, anti).to_vector(), 1e-5);
    }
}

// The identities behind the backward formulas, as inner products:
// <conv(x, w, d), g> = <x, conv(g, w, !d)> = <weight(x, g, K, d), w>.
BOOST_AUTO_TEST_CASE(adjoint_identities) {
    Generator g(5);
    for (const Geometry& geo : kGeoms)
        for (bool anti : {false, true}) {
            BOOST_TEST_CONTEXT("x " << shape_str(geo.x) << " K " << geo.K << " anticausal " << anti) {
                Tensor x = randn(geo.x, g, DType::f64), gr = randn(geo.x, g, DType::f64);
                Tensor w = randn({geo.x.back(), geo.K}, g, DType::f64);
                double a = dot(raw::depthwise_conv1d(x, w, anti), gr);
                BOOST_TEST(close(dot(x, raw::depthwise_conv1d(gr, w, !anti)), a, 1e-12));
                BOOST_TEST(close(dot(raw::depthwise_conv1d_weight(x, gr, geo.K, anti), w), a, 1e-12));
            }
        }
}

BOOST_AUTO_TEST_CASE(conv_grads) {
    for (bool anti : {false, true})
        for (int64_t K : {3, 1, 4}) {
            Generator g(6);
            Shape xs = K == 4 ? Shape{2, 2, 3} : Shape{2, 5, 3};  // K = 4: T < K
            std::string what = "depthwise_conv1d K " + std::to_string(K) + (anti ? " anticausal" : " causal");
            auto f = [anti](const TensorList& a) { return TensorList{depthwise_conv1d(a[0], a[1], anti)}; };
            check_grads(what, f, {rn(xs, g), rn({3, K}, g)});
            // one input at a time: the other's gradient is skipped
            check_grads(what + " x only", f, {rn(xs, g), randn({3, K}, g, DType::f64)});
            check_grads(what + " w only", f, {randn(xs, g, DType::f64), rn({3, K}, g)});
        }
}

BOOST_AUTO_TEST_CASE(weight_grads) {
    for (bool anti : {false, true})
        for (int64_t K : {3, 1, 4}) {
            Generator g(7);
            Shape xs = K == 4 ? Shape{2, 2, 3} : Shape{2, 5, 3};
            std::string what = "depthwise_conv1d_weight K " + std::to_string(K) + (anti ? " anticausal" : " causal");
            auto f = [anti, K](const TensorList& a) { return TensorList{depthwise_conv1d_weight(a[0], a[1], K, anti)}; };
            check_grads(what, f, {rn(xs, g), rn(xs, g)});
            check_grads(what + " x only", f, {rn(xs, g), randn(xs, g, DType::f64)});
            check_grads(what + " g only", f, {randn(xs, g, DType::f64), rn(xs, g)});
        }
}

// The layer's function with a squared output, so its second derivative is not
// zero and gradgradcheck runs through both ops' backward formulas and the bias.
BOOST_AUTO_TEST_CASE(grad_of_grad_through_the_layer_conv) {
    Generator g(8);
    auto f = [](const TensorList& a) {
        Tensor y = causal_depthwise_conv1d(a[0], a[1], a[2]);
        return TensorList{mul(y, y)};
    };
    check_grads("causal_depthwise_conv1d squared", f, {rn({2, 4, 3}, g), rn({3, 3}, g), rn({3}, g)});
}

BOOST_AUTO_TEST_CASE(errors) {
    Generator g(9);
    Tensor x = randn({1, 4, 3}, g, DType::f64);
    BOOST_CHECK_EXCEPTION(raw::depthwise_conv1d(x, randn({2, 4}, g, DType::f64), false), std::invalid_argument,
                          has({"depthwise_conv1d", "(1, 4, 3)", "(2, 4)"}));
    BOOST_CHECK_EXCEPTION(depthwise_conv1d(x, randn({3}, g, DType::f64)), std::invalid_argument,
                          has({"depthwise_conv1d", "(1, 4, 3)", "(3,)"}));
    BOOST_CHECK_EXCEPTION(depthwise_conv1d(x, zeros({3, 0}, DType::f64)), std::invalid_argument,
                          has({"depthwise_conv1d", "(3, 0)", "K >= 1"}));
    BOOST_CHECK_EXCEPTION(depthwise_conv1d(randn({3}, g, DType::f64), randn({3, 2}, g, DType::f64)),
                          std::invalid_argument, has({"depthwise_conv1d", "(3,)", "at least 2 dims"}));
    BOOST_CHECK_EXCEPTION(depthwise_conv1d(x, randn({3, 2}, g, DType::f32)), std::invalid_argument,
                          has({"depthwise_conv1d", "f64", "f32"}));
    Tensor gr = randn({1, 4, 3}, g, DType::f64);
    BOOST_CHECK_EXCEPTION(depthwise_conv1d_weight(x, randn({1, 5, 3}, g, DType::f64), 2), std::invalid_argument,
                          has({"depthwise_conv1d_weight", "(1, 4, 3)", "(1, 5, 3)"}));
    BOOST_CHECK_EXCEPTION(depthwise_conv1d_weight(x, randn({1, 4, 3}, g, DType::f32), 2), std::invalid_argument,
                          has({"depthwise_conv1d_weight", "f64", "f32"}));
    BOOST_CHECK_EXCEPTION(depthwise_conv1d_weight(x, gr, 0), std::invalid_argument,
                          has({"depthwise_conv1d_weight", "K = 0"}));
    BOOST_CHECK_EXCEPTION(depthwise_conv1d_weight(randn({4}, g, DType::f64), randn({4}, g, DType::f64), 2),
                          std::invalid_argument, has({"depthwise_conv1d_weight", "(4,)", "at least 2 dims"}));
}

BOOST_AUTO_TEST_SUITE_END()
