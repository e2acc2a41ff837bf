// nn/functional.h and nn/layers.h: every block gradchecked and gradgradchecked
// in f64 on tiny shapes; the convolution against a naive loop (including
// causality: the last tap is the current token, no future leaks); the norms,
// Linear and SwiGLU against naive formulas; seeded construction; nested
// module naming and load_parameters errors.
#include <boost/test/unit_test.hpp>

#include "op_test_util.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/functional.h"
#include "nn/layers.h"
#include "nn/module.h"

using namespace miras;

namespace {

const DType kDtypes[] = {DType::f32, DType::f64};

Tensor var64(const Shape& s, Generator& g, double std = 1) {
    return set_requires_grad(randn(s, g, DType::f64, 0, std));
}

// First- and second-order gradient checks of f at inputs (f64).
void check_grads(const TensorFn& f, const TensorList& inputs) {
    GradcheckResult r1 = gradcheck(f, inputs);
    BOOST_TEST(r1.ok, r1.message);
    GradcheckResult r2 = gradgradcheck(f, inputs);
    BOOST_TEST(r2.ok, r2.message);
}

void check_close(const Tensor& got, const std::vector<double>& want, double tol) {
    std::vector<double> v = got.to_vector();
    BOOST_REQUIRE_EQUAL(v.size(), want.size());
    for (size_t i = 0; i < v.size(); ++i)
        BOOST_TEST(std::abs(v[i] - want[i]) <= tol * std::max(1.0, std::abs(want[i])),
                   "element " << i << ": " << v[i] << " != " << want[i]);
}

double tol_for(DType dt) { return dt == DType::f32 ? 1e-5 : 1e-12; }

// Naive reference of docs/math.md §1.1: out[b,t,c] = Σ_j w[c,j] x[b, t−K+1+j, c] (+ bias[c]).
std::vector<double> naive_conv(const Tensor& x, const Tensor& w, const Tensor& bias) {
    const int64_t B = x.size(0), T = x.size(1), C = x.size(2), K = w.size(1);
    std::vector<double> xv = x.to_vector(), wv = w.to_vector(), bv = bias.defined() ? bias.to_vector() : std::vector<double>();
    std::vector<double> out((size_t)(B * T * C), 0.0);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
            for (int64_t c = 0; c < C; ++c) {
                double s = bv.empty() ? 0.0 : bv[(size_t)c];
                for (int64_t j = 0; j < K; ++j) {
                    int64_t src = t - K + 1 + j;
                    if (src >= 0) s += wv[(size_t)(c * K + j)] * xv[(size_t)((b * T + src) * C + c)];
                }
                out[(size_t)((b * T + t) * C + c)] = s;
            }
    return out;
}

using miras::test::has;  // what() contains every piece (tests/op_test_util.h)

// A pre-norm MLP block and a two-block stack, for parameter naming.
struct Block : Module {
    std::shared_ptr<RMSNorm> norm;
    std::shared_ptr<SwiGLU> mlp;
    Block(int64_t d, Generator& g) {
        norm = register_module("norm", std::make_shared<RMSNorm>(d, DType::f64));
        mlp = register_module("mlp", std::make_shared<SwiGLU>(d, 2 * d, g, DType::f64));
    }
    Tensor forward(const Tensor& x) const { return x + mlp->forward(norm->forward(x)); }
};

struct Stack : Module {
    std::shared_ptr<Embedding> embed;
    std::vector<std::shared_ptr<Block>> blocks;
    Stack(int64_t V, int64_t d, Generator& g) {
        embed = register_module("embed", std::make_shared<Embedding>(V, d, g, DType::f64));
        for (int i = 0; i < 2; ++i)
            blocks.push_back(register_module("blocks." + std::to_string(i), std::make_shared<Block>(d, g)));
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(nn_layers)

// ---- gradient checks (f64, tiny shapes)

BOOST_AUTO_TEST_CASE(linear_grads) {
    Generator g(1);
    check_grads([](const TensorList& a) { return TensorList{linear(a[0], a[1], a[2])}; },
                {var64({2, 3, 4}, g), var64({4, 3}, g), var64({3}, g)});
    check_grads([](const TensorList& a) { return TensorList{linear(a[0], a[1])}; }, {var64({3, 2}, g), var64({2, 2}, g)});
}

BOOST_AUTO_TEST_CASE(rms_norm_grads) {
    Generator g(2);
    check_grads([](const TensorList& a) { return TensorList{rms_norm(a[0], a[1], 1e-6)}; },
                {var64({2, 3, 4}, g), var64({4}, g)});
    check_grads([](const TensorList& a) { return TensorList{rms_norm(a[0], Tensor(), 1e-6)}; }, {var64({3, 4}, g)});
    check_grads([](const TensorList& a) { return TensorList{rms_norm_heads(a[0], a[1], 2, 1e-6)}; },
                {var64({2, 2, 6}, g), var64({6}, g)});
}

BOOST_AUTO_TEST_CASE(layer_norm_grads) {
    Generator g(3);
    check_grads([](const TensorList& a) { return TensorList{layer_norm(a[0], a[1], a[2], 1e-5)}; },
                {var64({2, 2, 4}, g), var64({4}, g), var64({4}, g)});
    check_grads([](const TensorList& a) { return TensorList{layer_norm(a[0], Tensor(), Tensor(), 1e-5)}; },
                {var64({3, 5}, g)});
}

BOOST_AUTO_TEST_CASE(l2_normalize_grads) {
    Generator g(4);
    check_grads([](const TensorList& a) { return TensorList{l2_normalize(a[0], 1e-6)}; }, {var64({3, 4}, g)});
}

BOOST_AUTO_TEST_CASE(conv_grads) {
    Generator g(5);
    check_grads([](const TensorList& a) { return TensorList{causal_depthwise_conv1d(a[0], a[1], a[2])}; },
                {var64({2, 5, 3}, g), var64({3, 4}, g), var64({3}, g)});
    check_grads([](const TensorList& a) { return TensorList{causal_depthwise_conv1d(a[0], a[1])}; },
                {var64({1, 3, 2}, g), var64({2, 1}, g)});  // K = 1: no padding
    check_grads([](const TensorList& a) { return TensorList{causal_depthwise_conv1d(a[0], a[1])}; },
                {var64({1, 2, 2}, g), var64({2, 4}, g)});  // K > T: all but the newest taps see padding
}

BOOST_AUTO_TEST_CASE(swiglu_grads) {
    Generator g(6);
    check_grads([](const TensorList& a) { return TensorList{swiglu(a[0], a[1], a[2], a[3])}; },
                {var64({2, 2, 3}, g), var64({3, 4}, g), var64({3, 4}, g), var64({4, 3}, g)});
}

BOOST_AUTO_TEST_CASE(embedding_grads) {
    Generator g(7);
    IndexTensor ids({2, 3}, {0, 3, 1, 3, 3, 2});  // repeated ids accumulate
    check_grads([ids](const TensorList& a) { return TensorList{embedding(a[0], ids)}; }, {var64({4, 2}, g)});
}

// ---- the causal depthwise convolution (docs/math.md §1.1)

BOOST_AUTO_TEST_CASE(conv_matches_naive_loop) {
    for (DType dt : kDtypes) {
        Generator g(10);
        for (bool with_bias : {false, true}) {
            CausalDepthwiseConv1d conv(3, g, dt, 4, with_bias);
            BOOST_TEST(conv.weight().shape() == (Shape{3, 4}));
            BOOST_TEST(conv.bias().defined() == with_bias);
            if (with_bias) raw::copy_(conv.bias(), randn({3}, g, dt));
            Tensor x = randn({2, 6, 3}, g, dt);
            Tensor y = conv.forward(x);
            BOOST_TEST(y.shape() == (Shape{2, 6, 3}));
            check_close(y, naive_conv(x, conv.weight(), conv.bias()), tol_for(dt));
        }
        Tensor x = randn({1, 5, 2}, g, dt), w = randn({2, 3}, g, dt);  // kernel 3
        check_close(causal_depthwise_conv1d(x, w), naive_conv(x, w, Tensor()), tol_for(dt));
    }
}

BOOST_AUTO_TEST_CASE(conv_last_tap_is_current_token) {
    Generator g(11);
    Tensor x = randn({2, 5, 3}, g, DType::f64);
    std::vector<double> xv = x.to_vector();
    // Only tap K−1 set: out[t] = w · x[t].
    Tensor w = from_vector({0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, -1}, {3, 4}, DType::f64);
    std::vector<double> want(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) want[i] = xv[i] * std::vector<double>{2, 3, -1}[i % 3];
    check_close(causal_depthwise_conv1d(x, w), want, 1e-15);
    // Only tap 0 set: out[t] = x[t − 3], zero for t < 3.
    Tensor w0 = from_vector({1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0}, {3, 4}, DType::f64);
    std::vector<double> y0 = causal_depthwise_conv1d(x, w0).to_vector();
    for (int64_t b = 0; b < 2; ++b)
        for (int64_t t = 0; t < 5; ++t)
            for (int64_t c = 0; c < 3; ++c) {
                double expect = t >= 3 ? xv[(size_t)((b * 5 + t - 3) * 3 + c)] : 0.0;
                BOOST_TEST(y0[(size_t)((b * 5 + t) * 3 + c)] == expect);
            }
}

BOOST_AUTO_TEST_CASE(conv_no_future_leak) {
    Generator g(12);
    const int64_t T = 6, C = 2;
    Tensor w = randn({C, 4}, g, DType::f64);
    Tensor x = randn({1, T, C}, g, DType::f64);
    std::vector<double> base = causal_depthwise_conv1d(x, w).to_vector();
    for (int64_t s = 0; s < T; ++s) {
        // Changing x[s] leaves out[t] for t < s exactly unchanged, and changes out[s].
        Tensor x2 = raw::clone(x);
        for (int64_t c = 0; c < C; ++c) x2.data<double>()[s * C + c] += 1.0;
        std::vector<double> y = causal_depthwise_conv1d(x2, w).to_vector();
        for (int64_t t = 0; t < T; ++t)
            for (int64_t c = 0; c < C; ++c) {
                size_t i = (size_t)(t * C + c);
                if (t < s) BOOST_TEST(y[i] == base[i], "out[" << t << "] changed when x[" << s << "] did");
                if (t == s) BOOST_TEST(y[i] != base[i]);
            }
    }
    // And through autograd: d out[t] / d x[t'] = 0 for t' > t.
    Tensor xv = set_requires_grad(raw::clone(x));
    for (int64_t t = 0; t < T; ++t) {
        Tensor y = causal_depthwise_conv1d(xv, w);
        Tensor gx = grad({sum(select(y, 1, t))}, {xv})[0];
        std::vector<double> gv = gx.to_vector();
        for (int64_t s = t + 1; s < T; ++s)
            for (int64_t c = 0; c < C; ++c) BOOST_TEST(gv[(size_t)(s * C + c)] == 0.0);
    }
}

BOOST_AUTO_TEST_CASE(conv_errors) {
    Generator g(13);
    Tensor x = randn({1, 4, 3}, g, DType::f64);
    BOOST_CHECK_EXCEPTION(causal_depthwise_conv1d(x, randn({2, 4}, g, DType::f64)), std::invalid_argument,
                          has({"causal_depthwise_conv1d", "(1, 4, 3)", "(2, 4)"}));
    BOOST_CHECK_EXCEPTION(causal_depthwise_conv1d(x, randn({3, 4}, g, DType::f32)), std::invalid_argument,
                          has({"causal_depthwise_conv1d", "f32"}));
    BOOST_CHECK_EXCEPTION(causal_depthwise_conv1d(x, randn({3, 4}, g, DType::f64), randn({4}, g, DType::f64)),
                          std::invalid_argument, has({"bias", "(4"}));
    BOOST_CHECK_THROW(CausalDepthwiseConv1d(3, g, DType::f64, 0), std::invalid_argument);
}

// ---- norms against naive formulas

BOOST_AUTO_TEST_CASE(rms_norm_matches_formula) {
    for (DType dt : kDtypes) {
        Generator g(20);
        RMSNorm norm(4, dt, 1e-6);
        BOOST_TEST(norm.weight().to_vector() == std::vector<double>(4, 1.0));
        raw::copy_(norm.weight(), from_vector({0.5, -1, 2, 1.5}, {4}, dt));
        Tensor x = randn({3, 4}, g, dt);
        std::vector<double> xv = x.to_vector(), w = {0.5, -1, 2, 1.5}, want(12);
        for (int r = 0; r < 3; ++r) {
            double ms = 0;
            for (int c = 0; c < 4; ++c) ms += xv[r * 4 + c] * xv[r * 4 + c] / 4;
            for (int c = 0; c < 4; ++c) want[r * 4 + c] = xv[r * 4 + c] / std::sqrt(ms + 1e-6) * w[c];
        }
        check_close(norm.forward(x), want, tol_for(dt));
    }
}

BOOST_AUTO_TEST_CASE(rms_norm_per_head_matches_formula) {
    Generator g(21);
    RMSNorm norm(6, DType::f64, 1e-6, 3);  // 3 heads of 2 channels
    raw::copy_(norm.weight(), from_vector({1, 2, 3, 4, 5, 6}, {6}, DType::f64));
    Tensor x = randn({2, 6}, g, DType::f64);
    std::vector<double> xv = x.to_vector(), want(12);
    for (int r = 0; r < 2; ++r)
        for (int h = 0; h < 3; ++h) {
            double a = xv[r * 6 + 2 * h], b = xv[r * 6 + 2 * h + 1], inv = 1 / std::sqrt((a * a + b * b) / 2 + 1e-6);
            want[r * 6 + 2 * h] = a * inv * (2 * h + 1);
            want[r * 6 + 2 * h + 1] = b * inv * (2 * h + 2);
        }
    check_close(norm.forward(x), want, 1e-12);
    BOOST_CHECK_EXCEPTION(RMSNorm(6, DType::f64, 1e-6, 4), std::invalid_argument, has({"RMSNorm", "n_heads"}));
}

BOOST_AUTO_TEST_CASE(layer_norm_matches_formula) {
    for (DType dt : kDtypes) {
        Generator g(22);
        for (bool affine : {false, true}) {
            LayerNorm ln(5, dt, affine, 1e-5);
            BOOST_TEST(ln.named_parameters().size() == (affine ? 2u : 0u));
            std::vector<double> w = {1, 1, 1, 1, 1}, b = {0, 0, 0, 0, 0};
            if (affine) {
                w = {0.5, 2, -1, 1, 3};
                b = {0.1, 0, -0.2, 1, 0.3};
                raw::copy_(ln.weight(), from_vector(w, {5}, dt));
                raw::copy_(ln.bias(), from_vector(b, {5}, dt));
            }
            Tensor x = randn({2, 5}, g, dt, 1.0, 2.0);
            std::vector<double> xv = x.to_vector(), want(10);
            for (int r = 0; r < 2; ++r) {
                double mu = 0, var = 0;
                for (int c = 0; c < 5; ++c) mu += xv[r * 5 + c] / 5;
                for (int c = 0; c < 5; ++c) var += (xv[r * 5 + c] - mu) * (xv[r * 5 + c] - mu) / 5;
                for (int c = 0; c < 5; ++c) want[r * 5 + c] = (xv[r * 5 + c] - mu) / std::sqrt(var + 1e-5) * w[c] + b[c];
            }
            check_close(ln.forward(x), want, tol_for(dt) * 10);
        }
    }
}

BOOST_AUTO_TEST_CASE(l2_normalize_matches_formula) {
    Tensor x = from_vector({3, 4, 0, 0}, {2, 2}, DType::f64);
    check_close(l2_normalize(x, 1e-6), {3 / std::sqrt(25 + 1e-6), 4 / std::sqrt(25 + 1e-6), 0, 0}, 1e-15);
}

// ---- Linear, Embedding, SwiGLU

BOOST_AUTO_TEST_CASE(linear_matches_formula) {
    for (DType dt : kDtypes) {
        Generator g(30);
        Linear lin(3, 2, g, dt, true);
        BOOST_TEST(lin.weight().shape() == (Shape{3, 2}));  // stored (d_in, d_out)
        BOOST_TEST((lin.weight().dtype() == dt));
        raw::copy_(lin.bias(), from_vector({0.5, -1}, {2}, dt));
        Tensor x = randn({2, 2, 3}, g, dt);
        std::vector<double> xv = x.to_vector(), W = lin.weight().to_vector(), want(8);
        for (int r = 0; r < 4; ++r)
            for (int o = 0; o < 2; ++o) {
                double s = o == 0 ? 0.5 : -1;
                for (int i = 0; i < 3; ++i) s += xv[r * 3 + i] * W[i * 2 + o];
                want[r * 2 + o] = s;
            }
        Tensor y = lin.forward(x);
        BOOST_TEST(y.shape() == (Shape{2, 2, 2}));
        check_close(y, want, tol_for(dt));
    }
    Generator g(31);
    Linear nob(3, 2, g);
    BOOST_TEST(!nob.bias().defined());
    BOOST_TEST(nob.named_parameters().size() == 1u);
    BOOST_CHECK_EXCEPTION(nob.forward(randn({2, 4}, g)), std::invalid_argument, has({"linear", "(2, 4)", "(3, 2)"}));
}

BOOST_AUTO_TEST_CASE(construction_is_seeded) {
    Generator a(42), b(42), c(43);
    Linear la(8, 8, a), lb(8, 8, b), lc(8, 8, c);
    BOOST_TEST(la.weight().to_vector() == lb.weight().to_vector());
    BOOST_TEST(la.weight().to_vector() != lc.weight().to_vector());
    // Default init scale: std 1/sqrt(d_in) (loose statistical check over 4096 draws).
    Generator d(5);
    Linear big(64, 64, d, DType::f64);
    double ss = 0;
    for (double v : big.weight().to_vector()) ss += v * v;
    BOOST_TEST(std::abs(std::sqrt(ss / 4096) - 1 / 8.0) < 0.01);
}

BOOST_AUTO_TEST_CASE(embedding_layer) {
    Generator g(32);
    Embedding emb(5, 3, g, DType::f64);
    IndexTensor ids({2, 2}, {4, 0, 4, 2});
    Tensor y = emb.forward(ids);
    BOOST_TEST(y.shape() == (Shape{2, 2, 3}));
    std::vector<double> W = emb.weight().to_vector(), yv = y.to_vector();
    for (int i = 0; i < 4; ++i)
        for (int k = 0; k < 3; ++k) BOOST_TEST(yv[(size_t)(i * 3 + k)] == W[(size_t)(ids.data[(size_t)i] * 3 + k)]);
    BOOST_CHECK_EXCEPTION(emb.forward(IndexTensor({1}, {5})), std::out_of_range, has({"Embedding", "5"}));
}

BOOST_AUTO_TEST_CASE(swiglu_matches_formula) {
    Generator g(33);
    SwiGLU mlp(2, 3, g, DType::f64);
    BOOST_TEST(mlp.W_gate().shape() == (Shape{2, 3}));
    BOOST_TEST(mlp.W_up().shape() == (Shape{2, 3}));
    BOOST_TEST(mlp.W_down().shape() == (Shape{3, 2}));
    Tensor x = randn({2, 2}, g, DType::f64);
    std::vector<double> xv = x.to_vector(), Wg = mlp.W_gate().to_vector(), Wu = mlp.W_up().to_vector(),
                        Wd = mlp.W_down().to_vector(), want(4, 0.0);
    for (int r = 0; r < 2; ++r) {
        double h[3];
        for (int j = 0; j < 3; ++j) {
            double a = xv[r * 2] * Wg[j] + xv[r * 2 + 1] * Wg[3 + j];
            double u = xv[r * 2] * Wu[j] + xv[r * 2 + 1] * Wu[3 + j];
            h[j] = a / (1 + std::exp(-a)) * u;
        }
        for (int o = 0; o < 2; ++o)
            for (int j = 0; j < 3; ++j) want[(size_t)(r * 2 + o)] += h[j] * Wd[(size_t)(j * 2 + o)];
    }
    check_close(mlp.forward(x), want, 1e-12);
}

// ---- modules: naming and loading

BOOST_AUTO_TEST_CASE(nested_parameter_names) {
    Generator g(40);
    Stack s(7, 4, g);
    std::vector<std::string> names;
    for (auto& [n, t] : s.named_parameters()) names.push_back(n);
    std::vector<std::string> want = {"embed.weight",        "blocks.0.norm.weight", "blocks.0.mlp.W_gate",
                                     "blocks.0.mlp.W_up",   "blocks.0.mlp.W_down",  "blocks.1.norm.weight",
                                     "blocks.1.mlp.W_gate", "blocks.1.mlp.W_up",    "blocks.1.mlp.W_down"};
    BOOST_TEST(names == want, boost::test_tools::per_element());
    BOOST_TEST(s.num_parameters() == 7 * 4 + 2 * (4 + 3 * 8 * 4));
    Block b(4, g);
    BOOST_TEST(b.named_parameters()[2].first == "mlp.W_up");
    for (auto& [n, t] : s.named_parameters()) BOOST_TEST(requires_grad(t), n);
}

BOOST_AUTO_TEST_CASE(load_parameters_roundtrip_and_errors) {
    Generator g1(41), g2(42);
    Block a(4, g1), b(4, g2);
    std::map<std::string, Tensor> values;
    for (auto& [n, t] : a.named_parameters()) values[n] = raw::clone(t);
    Tensor handle = b.mlp->W_up();  // loading writes in place: handles stay valid
    b.load_parameters(values);
    BOOST_TEST(handle.to_vector() == a.mlp->W_up().to_vector());
    Tensor x = randn({2, 4}, g1, DType::f64);
    BOOST_TEST(b.forward(x).to_vector() == a.forward(x).to_vector());

    auto missing = values;
    missing.erase("mlp.W_down");
    BOOST_CHECK_EXCEPTION(b.load_parameters(missing), std::invalid_argument, has({"missing", "mlp.W_down", "(8, 4)"}));
    auto extra = values;
    extra["mlp.W_extra"] = zeros({2}, DType::f64);
    BOOST_CHECK_EXCEPTION(b.load_parameters(extra), std::invalid_argument, has({"unexpected", "mlp.W_extra"}));
    // Many unexpected names: the first 20 listed, the rest counted.
    auto many = values;
    for (int i = 0; i < 100'000; ++i) many["x" + std::to_string(1'000'000 + i)] = zeros({1}, DType::f64);
    const std::string msg = miras::test::error_of<std::invalid_argument>([&] { b.load_parameters(many); });
    BOOST_TEST(msg.find("unexpected parameter 'x1000019' (1,)\n  ... and 99980 more unexpected") != std::string::npos, msg);
    BOOST_TEST(msg.find("x1000020") == std::string::npos);
    BOOST_TEST(msg.size() < 2000u);
    auto wrong = values;
    wrong["mlp.W_up"] = zeros({8, 4}, DType::f64);
    BOOST_CHECK_EXCEPTION(b.load_parameters(wrong), std::invalid_argument, has({"mlp.W_up", "(4, 8)", "(8, 4)"}));
    auto wrong_dt = values;
    wrong_dt["norm.weight"] = zeros({4}, DType::f32);
    BOOST_CHECK_EXCEPTION(b.load_parameters(wrong_dt), std::invalid_argument, has({"norm.weight", "f32"}));
    // A failed load writes nothing.
    auto bad = values;
    bad["mlp.W_up"] = zeros({4, 8}, DType::f64);
    bad.erase("mlp.W_down");
    std::vector<double> before = b.mlp->W_up().to_vector();
    BOOST_CHECK_THROW(b.load_parameters(bad), std::invalid_argument);
    BOOST_TEST(b.mlp->W_up().to_vector() == before);
}

BOOST_AUTO_TEST_CASE(layers_backprop_into_parameters) {
    // backward() through a small stack reaches every parameter with the right shape.
    Generator g(43);
    Block blk(4, g);
    Tensor x = randn({2, 3, 4}, g, DType::f64);
    backward(sum(square(blk.forward(x))));
    for (auto& [n, p] : blk.named_parameters()) {
        Tensor gp = grad_of(p);
        BOOST_REQUIRE_MESSAGE(gp.defined(), n);
        BOOST_TEST(gp.shape() == p.shape(), n);
    }
}

BOOST_AUTO_TEST_SUITE_END()
