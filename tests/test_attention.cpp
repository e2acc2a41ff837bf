// nn/rope.h and nn/attention.h: RoPE against its formula and its relative-
// position property; blocked attention (window, persistent prefix, ragged
// last block) against a naive loop over the full masked score matrix;
// causality and the window of the self-attention module; gradcheck and
// gradgradcheck in f64 of RoPE, attention (both paths) and the module.
#include <boost/test/unit_test.hpp>

#include "op_test_util.h"

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/attention.h"
#include "nn/rope.h"

using namespace miras;

using miras::test::conv_by_hand;
using miras::test::error_of;
using miras::test::max_abs_diff;

namespace {

Tensor var64(const Shape& s, Generator& g, double std = 1) { return set_requires_grad(randn(s, g, DType::f64, 0, std)); }

// gradcheck + gradgradcheck. f records its graph even where the checker
// evaluates it under NoGradGuard: gradgradcheck's finite differences
// evaluate a gradient of f, which needs f's graph.
void check_grads(const std::string& what, const TensorFn& f, const TensorList& inputs) {
    TensorFn fg = [f](const TensorList& a) {
        EnableGradGuard eg;
        return f(a);
    };
    GradcheckResult r1 = gradcheck(fg, inputs);
    BOOST_TEST(r1.ok, what << ": " << r1.message);
    GradcheckResult r2 = gradgradcheck(fg, inputs);
    BOOST_TEST(r2.ok, what << ": " << r2.message);
}

// The whole (Tq, Tk) score matrix per (batch, head), masked by the rule of
// attention() written out independently: query i sits at key index
// a = Tk − Tq + i and sees key j iff (!causal || j <= a) and
// (j < n_prefix || w == 0 || a − j < w). Plain loops, in double.
std::vector<double> naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, int64_t w,
                                    int64_t n_prefix) {
    const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), dk = q.size(3), Tk = k.size(2), dv = v.size(3);
    const std::vector<double> Q = q.to_vector(), K = k.to_vector(), V = v.to_vector();
    std::vector<double> out((size_t)(B * H * Tq * dv), 0.0);
    for (int64_t bh = 0; bh < B * H; ++bh)
        for (int64_t i = 0; i < Tq; ++i) {
            const int64_t a = Tk - Tq + i;
            std::vector<double> s((size_t)Tk, -std::numeric_limits<double>::infinity());
            double mx = -std::numeric_limits<double>::infinity();
            for (int64_t j = 0; j < Tk; ++j) {
                const bool vis = (!causal || j <= a) && (j < n_prefix || w == 0 || a - j < w);
                if (!vis) continue;
                double dot = 0;
                for (int64_t c = 0; c < dk; ++c) dot += Q[(size_t)((bh * Tq + i) * dk + c)] * K[(size_t)((bh * Tk + j) * dk + c)];
                s[(size_t)j] = dot / std::sqrt((double)dk);
                mx = std::max(mx, s[(size_t)j]);
            }
            double z = 0;
            for (int64_t j = 0; j < Tk; ++j) z += std::exp(s[(size_t)j] - mx);
            for (int64_t j = 0; j < Tk; ++j) {
                const double p = std::exp(s[(size_t)j] - mx) / z;
                for (int64_t c = 0; c < dv; ++c)
                    out[(size_t)((bh * Tq + i) * dv + c)] += p * V[(size_t)((bh * Tk + j) * dv + c)];
            }
        }
    return out;
}

struct Case {
    int64_t Tq, Tk, w, n_prefix, bq;
    bool causal;
    bool blocked;  // which path attention() must take
};

AttentionConfig small_cfg(int64_t d, int64_t H, int64_t w, int64_t Np, int64_t bq, DType dt = DType::f64) {
    AttentionConfig c;
    c.d_model = d;
    c.n_heads = H;
    c.window = w;
    c.n_persistent = Np;
    c.block_size = bq;
    c.dtype = dt;
    return c;
}

// Row-major flat index of x[b, t, :] in a (B, T, d) tensor.
size_t row_at(int64_t b, int64_t t, int64_t T, int64_t d) { return (size_t)((b * T + t) * d); }

}  // namespace

BOOST_AUTO_TEST_SUITE(attention_tests)

// ---------------------------------------------------------------- RoPE

BOOST_AUTO_TEST_CASE(rope_matches_rotate_half_formula) {
    // d_h = 4: pairs (0, 2) at θ_0 = 1 and (1, 3) at θ_1 = base^(−2/4) = 0.01.
    Generator g(1);
    Tensor x = randn({2, 3, 4}, g, DType::f64);  // (B, T, d_h)
    const std::vector<int64_t> pos = {5, 0, -3};
    const std::vector<double> xv = x.to_vector(), got = rope(x, pos).to_vector();
    const double theta[2] = {1.0, 0.01};
    for (int64_t b = 0; b < 2; ++b)
        for (int64_t t = 0; t < 3; ++t)
            for (int64_t i = 0; i < 2; ++i) {
                const double a = (double)pos[(size_t)t] * theta[i], c = std::cos(a), s = std::sin(a);
                const size_t r = (size_t)((b * 3 + t) * 4);
                const double x1 = xv[r + (size_t)i], x2 = xv[r + (size_t)i + 2];
                BOOST_TEST(std::abs(got[r + (size_t)i] - (x1 * c - x2 * s)) < 1e-14);
                BOOST_TEST(std::abs(got[r + (size_t)i + 2] - (x2 * c + x1 * s)) < 1e-14);
            }
    // Position 0 is the identity (row t = 1).
    for (int64_t c = 0; c < 4; ++c) BOOST_TEST(got[(size_t)(4 + c)] == xv[(size_t)(4 + c)]);
}

BOOST_AUTO_TEST_CASE(rope_scores_depend_on_relative_position_only) {
    // <rope(q, i), rope(k, j)> is a function of i − j: shifting every position
    // by 7 leaves all q·k scores unchanged, and rotations keep norms.
    Generator g(2);
    Tensor q = randn({2, 5, 8}, g, DType::f64), k = randn({2, 5, 8}, g, DType::f64);
    const std::vector<int64_t> p = {0, 1, 2, 3, 4}, p7 = {7, 8, 9, 10, 11}, rev = {4, 3, 2, 1, 0};
    auto scores = [](const Tensor& a, const Tensor& b) { return matmul(a, transpose(b, -1, -2)).to_vector(); };
    BOOST_TEST(max_abs_diff(scores(rope(q, p), rope(k, p)), scores(rope(q, p7), rope(k, p7))) < 1e-12);
    // ...but not a function of the absolute positions only: reversing them changes the scores.
    BOOST_TEST(max_abs_diff(scores(rope(q, p), rope(k, p)), scores(rope(q, rev), rope(k, rev))) > 1e-3);
    BOOST_TEST(max_abs_diff(sum(square(rope(q, p7)), {-1}).to_vector(), sum(square(q), {-1}).to_vector()) < 1e-12);
    BOOST_TEST(max_abs_diff(rope_from(q, 7).to_vector(), rope(q, p7).to_vector()) == 0.0);
}

BOOST_AUTO_TEST_CASE(rope_f32_matches_f64) {
    Generator g(3);
    Tensor x = randn({2, 2, 6, 8}, g, DType::f64);
    BOOST_TEST(max_abs_diff(rope_from(to_dtype(x, DType::f32), 100).to_vector(), rope_from(x, 100).to_vector()) < 1e-5);
}

BOOST_AUTO_TEST_CASE(rope_gradcheck) {
    Generator g(4);
    Tensor x = var64({2, 3, 4, 6}, g);  // (B, H, T, d_h)
    check_grads("rope", [](const TensorList& in) { return TensorList{rope(in[0], {3, 0, 11, -2})}; }, {x});
}

BOOST_AUTO_TEST_CASE(rope_errors) {
    Generator g(5);
    Tensor odd = randn({3, 5}, g, DType::f64), ok = randn({3, 4}, g, DType::f64);
    BOOST_TEST(error_of<std::invalid_argument>([&] { rope(odd, {0, 1, 2}); }).find("even") != std::string::npos);
    BOOST_TEST(error_of<std::invalid_argument>([&] { rope(ok, {0, 1}); }).find("2 positions") != std::string::npos);
    BOOST_TEST(error_of<std::invalid_argument>([&] { rope(randn({4}, g), {0}); }).find("(..., T, d_h)") != std::string::npos);
}

// ---------------------------------------------------------------- functional attention

BOOST_AUTO_TEST_CASE(blocked_attention_matches_naive_masked_attention) {
    const std::vector<Case> cases = {
        {10, 12, 3, 2, 4, true, true},     // module layout (Tq = T, Tk = N_p + T), T not a multiple of the block
        {13, 13, 1, 0, 4, true, true},     // w = 1: each token sees only itself
        {16, 16, 4, 0, 4, true, true},     // T a multiple of the block
        {24, 24, 3, 3, 4, true, true},     // queries over the persistent rows too (MAC layout)
        {11, 11, 2, 0, 1, true, true},     // block of one query
        {1, 10, 3, 2, 64, true, true},     // one query, block larger than Tq
        {9, 12, 20, 3, 4, true, false},    // w >= T: plain causal attention
        {8, 8, 8, 0, 3, true, false},      // w = T exactly
        {7, 9, 0, 2, 3, true, false},      // full causal with a prefix
        {12, 12, 0, 0, 5, true, false},    // full causal, N_p = 0
        {5, 8, 0, 0, 4, false, false},     // non-causal
        {6, 6, 2, 0, 100, true, false},    // one block covers everything: dense is cheaper
    };
    Generator g(10);
    const int64_t B = 2, H = 2, dk = 4, dv = 3;
    for (const Case& c : cases) {
        BOOST_TEST_CONTEXT("Tq " << c.Tq << " Tk " << c.Tk << " w " << c.w << " N_p " << c.n_prefix << " bq " << c.bq
                                 << " causal " << c.causal) {
            Tensor q = randn({B, H, c.Tq, dk}, g, DType::f64), k = randn({B, H, c.Tk, dk}, g, DType::f64);
            Tensor v = randn({B, H, c.Tk, dv}, g, DType::f64);
            const int64_t scores = attention_score_count(c.Tq, c.Tk, c.causal, c.w, c.n_prefix, c.bq);
            BOOST_TEST((scores < c.Tq * c.Tk) == c.blocked);
            Tensor out = attention(q, k, v, c.causal, c.w, c.n_prefix, c.bq);
            BOOST_TEST(out.shape() == (Shape{B, H, c.Tq, dv}));
            const std::vector<double> want = naive_attention(q, k, v, c.causal, c.w, c.n_prefix);
            BOOST_TEST(max_abs_diff(out.to_vector(), want) < 1e-12);
            // f32 agrees with the f64 reference to f32 precision.
            Tensor o32 = attention(to_dtype(q, DType::f32), to_dtype(k, DType::f32), to_dtype(v, DType::f32), c.causal,
                                   c.w, c.n_prefix, c.bq);
            BOOST_TEST((o32.dtype() == DType::f32));
            BOOST_TEST(max_abs_diff(o32.to_vector(), want) < 1e-5);
        }
    }
}

BOOST_AUTO_TEST_CASE(windowed_cost_is_proportional_to_what_is_attended) {
    // T = 4096, w = 32, N_p = 4, blocks of 64: each query pays for at most
    // N_p + w + 2·64 keys, not T.
    const int64_t T = 4096, w = 32, Np = 4, bq = 64;
    const int64_t s = attention_score_count(T, Np + T, true, w, Np, bq);
    BOOST_TEST(s <= T * (Np + w + 2 * bq));
    BOOST_TEST(s * 20 < T * T);
    BOOST_TEST(attention_score_count(T, T, true, 0, 0, bq) == T * T);  // full causal: dense
    // The windowed path runs at that size (cheap enough for the test suite).
    Generator g(11);
    Tensor q = randn({1, 1, T, 4}, g), k = randn({1, 1, Np + T, 4}, g), v = randn({1, 1, Np + T, 4}, g);
    Tensor out = attention(q, k, v, true, w, Np, bq);
    BOOST_TEST(out.shape() == (Shape{1, 1, T, 4}));
    // Spot-check the last query against the naive rule on the slice it can see.
    Tensor kq = cat({narrow(k, 2, 0, Np), narrow(k, 2, Np + T - w, w)}, 2);
    Tensor vq = cat({narrow(v, 2, 0, Np), narrow(v, 2, Np + T - w, w)}, 2);
    const std::vector<double> want = naive_attention(narrow(q, 2, T - 1, 1), kq, vq, false, 0, 0);
    BOOST_TEST(max_abs_diff(narrow(out, 2, T - 1, 1).to_vector(), want) < 1e-5);
}

BOOST_AUTO_TEST_CASE(attention_gradcheck_blocked_and_dense) {
    Generator g(12);
    {
        // Blocked: Tq 5, Tk 6 (one prefix key), w 2, blocks of 2 (ragged last block).
        BOOST_REQUIRE(attention_score_count(5, 6, true, 2, 1, 2) < 5 * 6);
        Tensor q = var64({1, 2, 5, 2}, g), k = var64({1, 2, 6, 2}, g), v = var64({1, 2, 6, 2}, g);
        check_grads("attention blocked", [](const TensorList& x) { return TensorList{attention(x[0], x[1], x[2], true, 2, 1, 2)}; },
                    {q, k, v});
    }
    {
        // Dense: full causal with one prefix key.
        Tensor q = var64({1, 2, 4, 2}, g), k = var64({1, 2, 5, 2}, g), v = var64({1, 2, 5, 3}, g);
        check_grads("attention dense", [](const TensorList& x) { return TensorList{attention(x[0], x[1], x[2], true, 0, 1)}; },
                    {q, k, v});
    }
}

BOOST_AUTO_TEST_CASE(attention_errors) {
    Generator g(13);
    Tensor q = randn({1, 2, 5, 4}, g), k = randn({1, 2, 4, 4}, g), v = randn({1, 2, 4, 4}, g);
    BOOST_TEST(error_of<std::invalid_argument>([&] { attention(q, k, v); }).find("more queries than keys") != std::string::npos);
    BOOST_TEST(error_of<std::invalid_argument>([&] { attention(k, k, v, false, 2); }).find("causal") != std::string::npos);
    BOOST_TEST(error_of<std::invalid_argument>([&] { attention(k, k, v, true, 0, 5); }).find("n_persistent_prefix") != std::string::npos);
    BOOST_TEST(error_of<std::invalid_argument>([&] { attention(k, randn({1, 2, 4, 3}, g), v); }).find("(1, 2, 4, 3)") != std::string::npos);
    BOOST_TEST(error_of<std::invalid_argument>([&] { attention(k, k, to_dtype(v, DType::f64)); }).find("dtypes") != std::string::npos);
    BOOST_TEST(error_of<std::invalid_argument>([&] { attention(randn({2, 4}, g), k, v); }).find("(B, H, T, d)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(attention_masked_explicit_visibility) {
    // With the visibility of the causal / window / prefix rule it is
    // attention() itself; with any other it is the naive masked softmax.
    Generator g(14);
    const int64_t Tq = 4, Tk = 7, w = 2, Np = 2, off = Tk - Tq;
    Tensor q = randn({2, 2, Tq, 4}, g, DType::f64), k = randn({2, 2, Tk, 4}, g, DType::f64),
           v = randn({2, 2, Tk, 3}, g, DType::f64);
    std::vector<bool> rule, odd;
    for (int64_t i = 0; i < Tq; ++i)
        for (int64_t j = 0; j < Tk; ++j) {
            rule.push_back(j <= off + i && (j < Np || off + i - j < w));
            odd.push_back((i + j) % 2 == 0);  // a pattern no rule gives
        }
    BOOST_TEST(max_abs_diff(attention_masked(q, k, v, rule).to_vector(),
                            attention(q, k, v, true, w, Np).to_vector()) < 1e-12);
    // Naive: per row, softmax over the visible keys only.
    const std::vector<double> got = attention_masked(q, k, v, odd).to_vector();
    const std::vector<double> qv = q.to_vector(), kv = k.to_vector(), vv = v.to_vector();
    double worst = 0;
    for (int64_t bh = 0; bh < 4; ++bh)
        for (int64_t i = 0; i < Tq; ++i) {
            std::vector<double> e((size_t)Tk, 0.0);
            double z = 0;
            for (int64_t j = 0; j < Tk; ++j) {
                if (!odd[(size_t)(i * Tk + j)]) continue;
                double sdot = 0;
                for (int64_t c = 0; c < 4; ++c) sdot += qv[(size_t)((bh * Tq + i) * 4 + c)] * kv[(size_t)((bh * Tk + j) * 4 + c)];
                e[(size_t)j] = std::exp(sdot / 2.0);  // 1 / sqrt(d_k = 4)
                z += e[(size_t)j];
            }
            for (int64_t c = 0; c < 3; ++c) {
                double want = 0;
                for (int64_t j = 0; j < Tk; ++j) want += e[(size_t)j] / z * vv[(size_t)((bh * Tk + j) * 3 + c)];
                worst = std::max(worst, std::abs(got[(size_t)((bh * Tq + i) * 3 + c)] - want));
            }
        }
    BOOST_TEST(worst < 1e-12);
    check_grads("attention_masked", [odd](const TensorList& x) { return TensorList{attention_masked(x[0], x[1], x[2], odd)}; },
                {var64({1, 2, Tq, 4}, g), var64({1, 2, Tk, 4}, g), var64({1, 2, Tk, 3}, g)});
    // Errors: the mask's size, a query that sees nothing.
    BOOST_TEST(error_of<std::invalid_argument>([&] { attention_masked(q, k, v, std::vector<bool>(5, true)); })
                   .find("need Tq · Tk = 4 · 7") != std::string::npos);
    std::vector<bool> blind = rule;
    for (int64_t j = 0; j < Tk; ++j) blind[(size_t)(2 * Tk + j)] = false;
    BOOST_TEST(error_of<std::invalid_argument>([&] { attention_masked(q, k, v, blind); }).find("query 2 sees no key") !=
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(attended_keys_formula) {
    // T = 5, w = 2: keys 1, 2, 2, 2, 2 -> mean 1.8, plus 3 persistent.
    BOOST_TEST(std::abs(attended_keys_per_query(5, 2, 3) - 4.8) < 1e-12);
    BOOST_TEST(std::abs(attended_keys_per_query(4, 0, 0) - 2.5) < 1e-12);   // (T + 1) / 2
    BOOST_TEST(std::abs(attended_keys_per_query(4, 10, 0) - 2.5) < 1e-12);  // w >= T
}

// ---------------------------------------------------------------- the module

BOOST_AUTO_TEST_CASE(module_parameters_and_shapes) {
    Generator g(20);
    Attention a(small_cfg(8, 2, 3, 2, 4, DType::f32), g);
    auto named = a.named_parameters();
    BOOST_REQUIRE_EQUAL(named.size(), 5u);
    const char* names[] = {"W_Q", "W_K", "W_V", "W_O", "persistent"};
    for (size_t i = 0; i < 5; ++i) BOOST_TEST(named[i].first == names[i]);
    BOOST_TEST(a.persistent().shape() == (Shape{2, 8}));
    BOOST_TEST(a.num_parameters() == 4 * 64 + 16);
    Tensor y = a.forward(randn({3, 7, 8}, g));
    BOOST_TEST(y.shape() == (Shape{3, 7, 8}));
    BOOST_TEST((y.dtype() == DType::f32));
    Attention no_p(small_cfg(8, 2, 0, 0, 4), g);
    BOOST_TEST(no_p.named_parameters().size() == 4u);
    BOOST_TEST(!no_p.persistent().defined());
    // Same seed, same weights.
    Generator g1(7), g2(7);
    Attention a1(small_cfg(8, 2, 0, 1, 4), g1), a2(small_cfg(8, 2, 0, 1, 4), g2);
    BOOST_TEST(max_abs_diff(a1.W_O().to_vector(), a2.W_O().to_vector()) == 0.0);
    BOOST_TEST(max_abs_diff(a1.persistent().to_vector(), a2.persistent().to_vector()) == 0.0);
}

BOOST_AUTO_TEST_CASE(module_matches_its_definition) {
    // docs/math.md §2 written out: h = [P ; x]; q = x W_Q at RoPE positions N_p.., k =
    // h W_K at positions 0.. (P first), v = h W_V; naive masked attention per
    // head; concatenated heads times W_O.
    const int64_t B = 2, T = 11, d = 8, H = 2, w = 3, Np = 2;
    Generator g(26);
    Attention a(small_cfg(d, H, w, Np, 4), g);
    Tensor x = randn({B, T, d}, g, DType::f64);
    Tensor h = cat({expand(unsqueeze(a.persistent(), 0), {B, Np, d}), x}, 1);  // (B, N_p + T, d)
    std::vector<int64_t> pos_q, pos_k;
    for (int64_t t = 0; t < T; ++t) pos_q.push_back(Np + t);
    for (int64_t t = 0; t < Np + T; ++t) pos_k.push_back(t);
    Tensor q = rope(split_heads(matmul(x, a.W_Q()), H), pos_q);
    Tensor k = rope(split_heads(matmul(h, a.W_K()), H), pos_k);
    Tensor v = split_heads(matmul(h, a.W_V()), H);
    Tensor y = from_vector(naive_attention(q, k, v, true, w, Np), {B, H, T, d / H}, DType::f64);
    const std::vector<double> want = matmul(merge_heads(y), a.W_O()).to_vector();
    BOOST_TEST(max_abs_diff(a.forward(x).to_vector(), want) < 1e-12);
    // Without RoPE the layout of positions does not matter, and the output differs.
    AttentionConfig no_rope = a.config();
    no_rope.use_rope = false;
    Tensor plain = self_attention(x, a.W_Q(), a.W_K(), a.W_V(), a.W_O(), a.persistent(), no_rope);
    BOOST_TEST(max_abs_diff(plain.to_vector(), want) > 1e-6);
}

BOOST_AUTO_TEST_CASE(conv_is_its_definition) {
    // cfg.conv = K: x W_Q, x W_K, x W_V are convolved over x's time (zero
    // left padding) before the heads split; P's keys and values are not.
    const int64_t B = 2, T = 9, d = 8, H = 2, w = 4, Np = 2, K = 3;
    Generator g(32);
    AttentionConfig cfg = small_cfg(d, H, w, Np, 4);
    cfg.conv = K;
    Attention a(cfg, g);
    BOOST_TEST(a.named_parameters().size() == 8u);  // W_Q, W_K, W_V, W_O, persistent, conv_q, conv_k, conv_v
    for (const Tensor* c : {&a.convs().q, &a.convs().k, &a.convs().v}) BOOST_TEST(c->shape() == (Shape{d, K}));
    Tensor x = randn({B, T, d}, g, DType::f64);
    Tensor P = expand(unsqueeze(a.persistent(), 0), {B, Np, d});
    Tensor q = conv_by_hand(matmul(x, a.W_Q()), a.convs().q);
    Tensor k = cat({matmul(P, a.W_K()), conv_by_hand(matmul(x, a.W_K()), a.convs().k)}, 1);
    Tensor v = cat({matmul(P, a.W_V()), conv_by_hand(matmul(x, a.W_V()), a.convs().v)}, 1);
    std::vector<int64_t> pos_q, pos_k;
    for (int64_t t = 0; t < T; ++t) pos_q.push_back(Np + t);
    for (int64_t t = 0; t < Np + T; ++t) pos_k.push_back(t);
    Tensor qh = rope(split_heads(q, H), pos_q), kh = rope(split_heads(k, H), pos_k), vh = split_heads(v, H);
    Tensor y = from_vector(naive_attention(qh, kh, vh, true, w, Np), {B, H, T, d / H}, DType::f64);
    const std::vector<double> want = matmul(merge_heads(y), a.W_O()).to_vector();
    BOOST_TEST(max_abs_diff(a.forward(x).to_vector(), want) < 1e-12);
    // The convolution is not the identity: without it the output differs.
    AttentionConfig plain = cfg;
    plain.conv = 0;
    const std::vector<double> without =
        self_attention(x, a.W_Q(), a.W_K(), a.W_V(), a.W_O(), a.persistent(), plain).to_vector();
    BOOST_TEST(max_abs_diff(without, want) > 1e-6);
    // A model without the conv draws the weights it always drew.
    Generator g1(32), g2(32);
    Attention with(cfg, g1), none(small_cfg(d, H, w, Np, 4), g2);
    BOOST_TEST(max_abs_diff(with.W_O().to_vector(), none.W_O().to_vector()) == 0.0);
    BOOST_TEST(max_abs_diff(with.persistent().to_vector(), none.persistent().to_vector()) == 0.0);
}

BOOST_AUTO_TEST_CASE(conv_gradcheck_all_inputs) {
    // x, every projection, P and the three convolutions; windowed and blocked.
    Generator g(33);
    AttentionConfig cfg = small_cfg(4, 2, 2, 2, 2);
    cfg.conv = 2;
    TensorList in = {var64({1, 5, 4}, g), var64({4, 4}, g, 0.5), var64({4, 4}, g, 0.5), var64({4, 4}, g, 0.5),
                     var64({4, 4}, g, 0.5), var64({2, 4}, g),    var64({4, 2}, g),      var64({4, 2}, g),
                     var64({4, 2}, g)};
    check_grads("self_attention with conv", [cfg](const TensorList& x) {
        return TensorList{self_attention(x[0], x[1], x[2], x[3], x[4], x[5], cfg, AttentionConvs{x[6], x[7], x[8]})};
    }, in);
}

BOOST_AUTO_TEST_CASE(conv_errors_name_the_taps_and_shapes) {
    Generator g(34);
    AttentionConfig one = small_cfg(8, 2, 0, 0, 4);
    one.conv = 1;
    std::string err = error_of<std::invalid_argument>([&] { Attention(one, g); });
    BOOST_TEST(err.find("conv must be 0 (none) or 2") != std::string::npos, err);
    BOOST_TEST(err.find("got 1") != std::string::npos, err);
    AttentionConfig cfg = small_cfg(8, 2, 0, 0, 4);
    cfg.conv = 3;
    Attention a(cfg, g);
    Tensor x = randn({1, 4, 8}, g, DType::f64);
    // Weights missing, or of the wrong shape, or given without cfg.conv.
    err = error_of<std::invalid_argument>([&] { self_attention(x, a.W_Q(), a.W_K(), a.W_V(), a.W_O(), Tensor(), cfg); });
    BOOST_TEST(err.find("cfg.conv = 3 needs conv.q, conv.k, conv.v of shape (8, 3)") != std::string::npos, err);
    err = error_of<std::invalid_argument>([&] {
        self_attention(x, a.W_Q(), a.W_K(), a.W_V(), a.W_O(), Tensor(), cfg,
                       AttentionConvs{a.convs().q, a.convs().k, randn({8, 2}, g, DType::f64)});
    });
    BOOST_TEST(err.find("got (8, 2)") != std::string::npos, err);
    AttentionConfig none = cfg;
    none.conv = 0;
    err = error_of<std::invalid_argument>(
        [&] { self_attention(x, a.W_Q(), a.W_K(), a.W_V(), a.W_O(), Tensor(), none, a.convs()); });
    BOOST_TEST(err.find("needs no convolution weights") != std::string::npos, err);
}

BOOST_AUTO_TEST_CASE(per_sequence_prefix_equals_a_learned_prefix_per_row) {
    // persistent (B, N_p, d): sequence b attends over [P_b ; x_b], as if P_b
    // were the learned (N_p, d) prefix of a batch of one; wrong shapes name both forms.
    const int64_t B = 3, T = 6, d = 8, H = 2, w = 2, Np = 2;
    Generator g(27);
    Attention a(small_cfg(d, H, w, Np, 4), g);
    Tensor x = randn({B, T, d}, g, DType::f64), P = randn({B, Np, d}, g, DType::f64);
    const std::vector<double> all =
        self_attention(x, a.W_Q(), a.W_K(), a.W_V(), a.W_O(), P, a.config()).to_vector();
    for (int64_t b = 0; b < B; ++b) {
        Tensor one = self_attention(narrow(x, 0, b, 1), a.W_Q(), a.W_K(), a.W_V(), a.W_O(), select(P, 0, b),
                                    a.config());
        const std::vector<double> want = one.to_vector();
        std::vector<double> got(all.begin() + (long)(b * T * d), all.begin() + (long)((b + 1) * T * d));
        BOOST_TEST(max_abs_diff(got, want) < 1e-12);
    }
    const std::string err = error_of<std::invalid_argument>(
        [&] { self_attention(x, a.W_Q(), a.W_K(), a.W_V(), a.W_O(), randn({2, Np, d}, g, DType::f64), a.config()); });
    BOOST_TEST(err.find("(2, 8) or (3, 2, 8)") != std::string::npos, err);
    BOOST_TEST(err.find("got (2, 2, 8)") != std::string::npos, err);
}

BOOST_AUTO_TEST_CASE(module_window_of_one_without_persistent_is_the_value_path) {
    // Each token sees only itself: softmax over one key is 1, so out = x W_V W_O
    // whatever the queries, keys and RoPE do.
    Generator g(21);
    Attention a(small_cfg(8, 2, 1, 0, 4), g);
    Tensor x = randn({2, 9, 8}, g, DType::f64);
    BOOST_TEST(max_abs_diff(a.forward(x).to_vector(), matmul(matmul(x, a.W_V()), a.W_O()).to_vector()) < 1e-12);
}

BOOST_AUTO_TEST_CASE(module_is_causal_windowed_and_always_sees_persistent_tokens) {
    const int64_t B = 2, T = 12, d = 8, w = 3, Np = 2;
    Generator g(22);
    Attention a(small_cfg(d, 2, w, Np, 4), g);
    Tensor x = randn({B, T, d}, g, DType::f64);
    const std::vector<double> base = a.forward(x).to_vector();
    auto perturbed = [&](int64_t t) {
        Tensor x2 = raw::clone(x);
        std::vector<double> xv = x2.to_vector();
        for (int64_t b = 0; b < B; ++b)
            for (int64_t c = 0; c < d; ++c) xv[row_at(b, t, T, d) + (size_t)c] += 0.5;
        return a.forward(from_vector(xv, {B, T, d}, DType::f64)).to_vector();
    };
    auto row_diff = [&](const std::vector<double>& o, int64_t t) {
        double m = 0;
        for (int64_t b = 0; b < B; ++b)
            for (int64_t c = 0; c < d; ++c) m = std::max(m, std::abs(o[row_at(b, t, T, d) + (size_t)c] - base[row_at(b, t, T, d) + (size_t)c]));
        return m;
    };
    for (int64_t s : {0, 4, 7, 11}) {
        const std::vector<double> o = perturbed(s);
        for (int64_t t = 0; t < T; ++t) {
            BOOST_TEST_CONTEXT("changed token " << s << ", output " << t) {
                const bool sees = t >= s && t - s < w;  // causal, inside the window
                if (sees) BOOST_TEST(row_diff(o, t) > 1e-6);
                else BOOST_TEST(row_diff(o, t) < 1e-12);
            }
        }
    }
    // Every output depends on the persistent tokens, however far from the start.
    Tensor grad_p = grad({sum(narrow(a.forward(x), 1, T - 1, 1))}, {a.persistent()})[0];
    BOOST_TEST(std::sqrt(sum(square(grad_p)).item()) > 1e-6);
}

BOOST_AUTO_TEST_CASE(module_gradcheck_all_inputs) {
    // x and every parameter, windowed (w 2, blocks of 2, ragged) with 2 persistent tokens.
    Generator g(23);
    const AttentionConfig cfg = small_cfg(4, 2, 2, 2, 2);
    BOOST_REQUIRE(attention_score_count(5, 7, true, 2, 2, 2) < 5 * 7);  // the blocked path
    TensorList in = {var64({1, 5, 4}, g), var64({4, 4}, g, 0.5), var64({4, 4}, g, 0.5), var64({4, 4}, g, 0.5),
                     var64({4, 4}, g, 0.5), var64({2, 4}, g)};
    check_grads("self_attention", [cfg](const TensorList& x) {
        return TensorList{self_attention(x[0], x[1], x[2], x[3], x[4], x[5], cfg)};
    }, in);
}

BOOST_AUTO_TEST_CASE(module_errors) {
    Generator g(24);
    BOOST_TEST(error_of<std::invalid_argument>([&] { Attention(small_cfg(6, 4, 0, 0, 4), g); }).find("multiple of n_heads") != std::string::npos);
    BOOST_TEST(error_of<std::invalid_argument>([&] { Attention(small_cfg(6, 2, 0, 0, 4), g); }).find("even head width") != std::string::npos);
    Attention a(small_cfg(8, 2, 0, 1, 4), g);
    BOOST_TEST(error_of<std::invalid_argument>([&] { a.forward(randn({2, 3, 6}, g, DType::f64)); }).find("(2, 3, 6)") != std::string::npos);
    BOOST_TEST(error_of<std::invalid_argument>([&] {
        self_attention(randn({1, 3, 8}, g, DType::f64), a.W_Q(), a.W_K(), a.W_V(), a.W_O(), Tensor(), a.config());
    }).find("persistent") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(module_flops) {
    Generator g(25);
    Attention a(small_cfg(8, 2, 2, 3, 4), g);
    // T = 5: 8·64 + 4·8·(3 + 1.8) + 4·3·64/5
    BOOST_TEST(std::abs(a.forward_flops_per_token(5) - (512 + 32 * 4.8 + 768.0 / 5)) < 1e-9);
}

BOOST_AUTO_TEST_SUITE_END()
