// The kernel loops of tensor/kernels.h: the vectorised f32 exp and tanh are
// accurate to a few units in the last place, with the right limits; the
// baseline and AVX2 builds give the same results for every op, contiguous,
// with a broadcast scalar on either side, and strided; the sums handle every
// tail length; the depthwise convolution's loops match a plain loop in both
// builds, and each other.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "tensor/kernels.h"
#include "tensor/random.h"

using namespace miras;
namespace K = miras::kernels;

namespace {

constexpr raw::Unary kUnary[] = {raw::Unary::neg,     raw::Unary::exp,   raw::Unary::log,  raw::Unary::sqrt,
                                 raw::Unary::rsqrt,   raw::Unary::abs,   raw::Unary::sign, raw::Unary::tanh,
                                 raw::Unary::sigmoid, raw::Unary::silu,  raw::Unary::gelu, raw::Unary::softplus,
                                 raw::Unary::relu,    raw::Unary::square, raw::Unary::reciprocal, raw::Unary::sin,
                                 raw::Unary::cos,     raw::Unary::log1p, raw::Unary::expm1, raw::Unary::step};
constexpr raw::Binary kBinary[] = {
    raw::Binary::add, raw::Binary::sub, raw::Binary::mul, raw::Binary::div, raw::Binary::pow, raw::Binary::maximum,
    raw::Binary::minimum, raw::Binary::eq, raw::Binary::ne, raw::Binary::lt, raw::Binary::le, raw::Binary::gt,
    raw::Binary::ge, raw::Binary::sigmoid_backward, raw::Binary::tanh_backward, raw::Binary::silu_backward,
    raw::Binary::gelu_backward};

// Runs a unary op through one build's f32 loop.
float f32_unary(const K::Loops& L, raw::Unary op, float x) {
    float out;
    L.unary_f32(op, &out, &x, 1, 1, 1);
    return out;
}

// |a - b| <= rel * |b| + abs_tol, NaN only against NaN.
bool close(double a, double b, double rel, double abs_tol) {
    if (std::isnan(b)) return std::isnan(a);
    if (std::isinf(b)) return a == b;
    return std::abs(a - b) <= rel * std::abs(b) + abs_tol;
}

std::vector<double> values(int64_t n, uint64_t seed, double lo, double hi) {
    Generator g(seed);
    std::vector<double> v((size_t)n);
    for (double& x : v) x = lo + (hi - lo) * g.uniform();
    return v;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(kernels)

BOOST_AUTO_TEST_CASE(f32_exp_and_tanh_are_accurate_in_every_build) {
    std::vector<const K::Loops*> builds = {&K::baseline_loops()};
    if (K::avx2_loops()) builds.push_back(K::avx2_loops());
    std::vector<double> xs = values(20000, 7, -90, 90);
    for (double x : values(20000, 8, -1, 1)) xs.push_back(x);
    for (double x : {0.0, -0.0, 1e-30, -1e-30, 0.625, -0.625, 88.3, 88.5, -87.3, -87.4, -104.0, 1e6, -1e6})
        xs.push_back(x);
    for (const K::Loops* L : builds) {
        BOOST_TEST_CONTEXT("build " << L->isa) {
            double worst_exp = 0, worst_tanh = 0;
            for (double xd : xs) {
                float x = (float)xd;
                double e = f32_unary(*L, raw::Unary::exp, x), e_ref = std::exp((double)x);
                if (e_ref > 1.2e-38 && e_ref < 3.4e38) worst_exp = std::max(worst_exp, std::abs(e - e_ref) / e_ref);
                else BOOST_TEST((e_ref <= 1.2e-38 ? e <= 1.2e-38 && e >= 0 : std::isinf(e)), "exp(" << x << ") = " << e);
                double t = f32_unary(*L, raw::Unary::tanh, x), t_ref = std::tanh((double)x);
                if (t_ref != 0) worst_tanh = std::max(worst_tanh, std::abs(t - t_ref) / std::abs(t_ref));
                else BOOST_TEST(t == 0.0);
            }
            // f32 rounding alone is 6e-8; a few ulp on top is what Cephes' forms give.
            BOOST_TEST(worst_exp < 3e-7, "worst relative error of exp " << worst_exp);
            BOOST_TEST(worst_tanh < 3e-7, "worst relative error of tanh " << worst_tanh);
            const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
            BOOST_TEST(std::isnan(f32_unary(*L, raw::Unary::exp, nan)));
            BOOST_TEST(std::isnan(f32_unary(*L, raw::Unary::tanh, nan)));
            BOOST_TEST(std::isnan(f32_unary(*L, raw::Unary::sigmoid, nan)));
            BOOST_TEST(f32_unary(*L, raw::Unary::exp, inf) == inf);
            BOOST_TEST(f32_unary(*L, raw::Unary::exp, -inf) == 0.0f);
            BOOST_TEST(f32_unary(*L, raw::Unary::tanh, inf) == 1.0f);
            BOOST_TEST(f32_unary(*L, raw::Unary::tanh, -inf) == -1.0f);
            BOOST_TEST(f32_unary(*L, raw::Unary::sigmoid, -200.0f) == 0.0f);
            BOOST_TEST(f32_unary(*L, raw::Unary::sigmoid, 200.0f) == 1.0f);
        }
    }
}

BOOST_AUTO_TEST_CASE(both_builds_agree_on_every_op_and_layout) {
    const K::Loops* v = K::avx2_loops();
    if (!v) {
        BOOST_TEST_MESSAGE("this CPU has no AVX2 + FMA: only the baseline build runs here");
        return;
    }
    const K::Loops& b = K::baseline_loops();
    const int64_t n = 37;  // not a multiple of any vector width
    // Positive inputs in (0.2, 3) keep log, sqrt, pow defined; x and y also
    // take the negative side for the others.
    std::vector<double> xa = values(3 * n, 1, -3, 3), ya = values(3 * n, 2, 0.2, 3);
    auto ok = [](double got, double want, bool f32) { return close(got, want, f32 ? 2e-6 : 1e-13, f32 ? 1e-7 : 1e-300); };
    auto run = [&]<class T>(const char* dt) {
        std::vector<T> x(xa.begin(), xa.end()), y(ya.begin(), ya.end());
        const bool f32 = sizeof(T) == 4;
        // (so, sa, sb): contiguous, scalar on the right, on the left, strided.
        const int64_t layouts[][3] = {{1, 1, 1}, {1, 1, 0}, {1, 0, 1}, {2, 3, 2}};
        for (raw::Unary op : kUnary) {
            const std::vector<T>& in = (op == raw::Unary::log || op == raw::Unary::sqrt || op == raw::Unary::rsqrt) ? y : x;
            for (int64_t s : {1, 3}) {
                std::vector<T> o1((size_t)(n * s)), o2((size_t)(n * s));
                K::unary<T>(b, op, o1.data(), in.data(), n, s, s);
                K::unary<T>(*v, op, o2.data(), in.data(), n, s, s);
                for (int64_t i = 0; i < n; ++i)
                    BOOST_TEST(ok(o2[(size_t)(i * s)], o1[(size_t)(i * s)], f32),
                               dt << " unary op " << (int)op << " stride " << s << " at " << i << ": " << o2[(size_t)(i * s)]
                                  << " vs " << o1[(size_t)(i * s)]);
            }
        }
        for (raw::Binary op : kBinary) {
            const std::vector<T>& a = op == raw::Binary::pow ? y : x;
            for (const auto& st : layouts) {
                std::vector<T> o1((size_t)(n * st[0])), o2((size_t)(n * st[0]));
                K::binary<T>(b, op, o1.data(), a.data(), y.data(), n, st[0], st[1], st[2]);
                K::binary<T>(*v, op, o2.data(), a.data(), y.data(), n, st[0], st[1], st[2]);
                for (int64_t i = 0; i < n; ++i) {
                    const size_t j = (size_t)(i * st[0]);
                    BOOST_TEST(ok(o2[j], o1[j], f32), dt << " binary op " << (int)op << " strides (" << st[0] << ","
                                                         << st[1] << "," << st[2] << ") at " << i << ": " << o2[j]
                                                         << " vs " << o1[j]);
                }
            }
        }
    };
    run.operator()<float>("f32");
    run.operator()<double>("f64");
}

BOOST_AUTO_TEST_CASE(sums_cover_every_tail_length) {
    std::vector<const K::Loops*> builds = {&K::baseline_loops()};
    if (K::avx2_loops()) builds.push_back(K::avx2_loops());
    for (const K::Loops* L : builds) {
        for (int64_t n = 0; n <= 40; ++n) {
            std::vector<double> v = values(n, (uint64_t)(100 + n), -1, 1);
            std::vector<float> vf(v.begin(), v.end());
            double want = 0, want_f = 0;
            for (int64_t i = 0; i < n; ++i) want += v[(size_t)i], want_f += (double)vf[(size_t)i];
            BOOST_TEST(std::abs(K::sum<double>(*L, v.data(), n) - want) < 1e-13, L->isa << " f64 n = " << n);
            BOOST_TEST(std::abs(K::sum<float>(*L, vf.data(), n) - want_f) < 1e-13, L->isa << " f32 n = " << n);
            std::vector<double> acc((size_t)n, 1.0);
            K::accumulate<float>(*L, acc.data(), vf.data(), n);
            for (int64_t i = 0; i < n; ++i) BOOST_TEST(acc[(size_t)i] == 1.0 + (double)vf[(size_t)i]);
            // mul_acc: a dot product (so = 0), contiguous and strided, and an axpy
            double dot = 0, dot_strided = 0;
            for (int64_t i = 0; i < n; ++i) dot += v[(size_t)i] * v[(size_t)(n - 1 - i)];
            for (int64_t i = 0; i < n / 2; ++i) dot_strided += v[(size_t)(2 * i)] * v[(size_t)i];
            std::vector<double> rev(v.rbegin(), v.rend());
            double d1 = 0.5, d2 = 0;
            K::mul_acc<double>(*L, &d1, v.data(), rev.data(), n, 0, 1, 1);
            K::mul_acc<double>(*L, &d2, v.data(), v.data(), n / 2, 0, 2, 1);
            BOOST_TEST(std::abs(d1 - 0.5 - dot) < 1e-13, L->isa << " dot n = " << n);
            BOOST_TEST(std::abs(d2 - dot_strided) < 1e-13, L->isa << " strided dot n = " << n);
            // addcmul: contiguous, a scalar a, a scalar b, strided
            const int64_t lay[][4] = {{1, 1, 1, 1}, {1, 1, 0, 1}, {1, 1, 1, 0}, {1, 0, 1, 1}};
            for (const auto& st : lay) {
                std::vector<double> o((size_t)n, 0.0);
                K::addcmul<double>(*L, o.data(), v.data(), rev.data(), v.data(), n, st[0], st[1], st[2], st[3]);
                for (int64_t i = 0; i < n; ++i)
                    BOOST_TEST(std::abs(o[(size_t)i] - (v[(size_t)(i * st[1])] + rev[(size_t)(i * st[2])] * v[(size_t)(i * st[3])])) <
                                   1e-15,
                               L->isa << " addcmul n = " << n);
            }
            std::vector<double> ax((size_t)n, 2.0);
            K::mul_acc<float>(*L, ax.data(), vf.data(), vf.data(), n, 1, 1, 1);
            for (int64_t i = 0; i < n; ++i)
                BOOST_TEST(ax[(size_t)i] == 2.0 + (double)vf[(size_t)i] * (double)vf[(size_t)i]);
        }
    }
}

// The depthwise convolution's loops (tensor/conv_loops.h), called directly:
// each build against a plain loop in double, within the rounding bound of
// its sums, and the two builds against each other. Channel counts that are
// not multiples of 4, 8 or 16 (the vector and block widths), K = 5, 6, 7, 9
// (taps go four at a time, then 1-3), T < K (every row reads padding), T = 1.
BOOST_AUTO_TEST_CASE(conv_loops_match_a_plain_loop_in_every_build) {
    std::vector<const K::Loops*> builds = {&K::baseline_loops()};
    if (K::avx2_loops()) builds.push_back(K::avx2_loops());
    struct Geo { int64_t n, T, C, K; };
    const Geo geos[] = {{1, 1, 1, 1},  {2, 5, 3, 3},  {1, 2, 7, 4},  {2, 13, 17, 5}, {1, 9, 37, 6},
                        {3, 8, 16, 7}, {1, 11, 33, 9}, {2, 6, 23, 1}, {1, 1, 19, 4}};
    auto run = [&]<class S>(const char* dt) {
        const double u = sizeof(S) == 4 ? 0x1p-24 : 0x1p-53;  // unit roundoff of S
        for (const Geo& q : geos)
            for (bool anti : {false, true}) {
                const int64_t N = q.n * q.T * q.C;
                const uint64_t seed = (uint64_t)(q.T * 1000 + q.C * 10 + q.K);
                std::vector<double> xd = values(N, seed, -1, 1), gd = values(N, seed + 1, -1, 1),
                                    wd = values(q.K * q.C, seed + 2, -1, 1);
                std::vector<S> x(xd.begin(), xd.end()), g(gd.begin(), gd.end()), wt(wd.begin(), wd.end());
                // The plain loop, in double from the S values; `mag` is Σ |term|
                // per output, what the rounding error of a sum scales with.
                const size_t nw = (size_t)(q.K * q.C);
                std::vector<double> want((size_t)N, 0.0), mag((size_t)N, 0.0), want_w(nw, 0.25), mag_w(nw, 0.0);
                for (int64_t b = 0; b < q.n; ++b)
                    for (int64_t t = 0; t < q.T; ++t)
                        for (int64_t c = 0; c < q.C; ++c)
                            for (int64_t j = 0; j < q.K; ++j) {
                                const int64_t s = anti ? t + q.K - 1 - j : t - (q.K - 1) + j;
                                if (s < 0 || s >= q.T) continue;
                                const size_t o = (size_t)((b * q.T + t) * q.C + c),
                                             i = (size_t)((b * q.T + s) * q.C + c), k = (size_t)(j * q.C + c);
                                const double tw = (double)wt[k] * (double)x[i], tg = (double)g[o] * (double)x[i];
                                want[o] += tw, mag[o] += std::abs(tw);
                                want_w[k] += tg, mag_w[k] += std::abs(tg);
                            }
                std::vector<std::vector<S>> outs;
                std::vector<std::vector<double>> accs;
                for (const K::Loops* L : builds) {
                    BOOST_TEST_CONTEXT(dt << " " << L->isa << " n " << q.n << " T " << q.T << " C " << q.C << " K "
                                          << q.K << " anticausal " << anti) {
                        // NaN, so an output the loop forgets to write shows
                        std::vector<S> out((size_t)N, std::numeric_limits<S>::quiet_NaN());
                        K::conv<S>(*L, out.data(), x.data(), wt.data(), q.n, q.T, q.C, q.K, anti);
                        for (int64_t i = 0; i < N; ++i)
                            BOOST_TEST(std::abs(out[(size_t)i] - want[(size_t)i]) <= (q.K + 1) * u * mag[(size_t)i],
                                       "out " << i << ": " << out[(size_t)i] << " vs " << want[(size_t)i]);
                        // the gradient adds to what acc holds; its sums are in double
                        std::vector<double> acc(nw, 0.25);
                        K::conv_weight<S>(*L, acc.data(), g.data(), x.data(), q.n, q.T, q.C, q.K, anti);
                        for (int64_t k = 0; k < q.K * q.C; ++k)
                            BOOST_TEST(std::abs(acc[(size_t)k] - want_w[(size_t)k]) <=
                                           (q.n * q.T + 1) * 0x1p-53 * (mag_w[(size_t)k] + 0.25),
                                       "acc " << k << ": " << acc[(size_t)k] << " vs " << want_w[(size_t)k]);
                        outs.push_back(out);
                        accs.push_back(acc);
                    }
                }
                if (builds.size() < 2) continue;
                // Baseline against AVX2. They differ only where FMA contracts
                // a multiply-add; an f32 weight gradient's products are exact
                // in double, so there the two are bit for bit the same.
                BOOST_TEST_CONTEXT(dt << " baseline vs avx2, n " << q.n << " T " << q.T << " C " << q.C << " K " << q.K
                                      << " anticausal " << anti) {
                    for (int64_t i = 0; i < N; ++i)
                        BOOST_TEST(std::abs(outs[1][(size_t)i] - outs[0][(size_t)i]) <=
                                       2 * (q.K + 1) * u * mag[(size_t)i],
                                   "out " << i << ": " << outs[1][(size_t)i] << " vs " << outs[0][(size_t)i]);
                    for (int64_t k = 0; k < q.K * q.C; ++k) {
                        const double d = std::abs(accs[1][(size_t)k] - accs[0][(size_t)k]);
                        if constexpr (sizeof(S) == 4)
                            BOOST_TEST(d == 0.0, "acc " << k << " differs by " << d);
                        else
                            BOOST_TEST(d <= 2 * (q.n * q.T + 1) * u * mag_w[(size_t)k], "acc " << k << " differs by " << d);
                    }
                }
            }
    };
    run.operator()<float>("f32");
    run.operator()<double>("f64");
}

BOOST_AUTO_TEST_CASE(kernel_build_from_the_environment) {
    const K::Loops& best = K::avx2_loops() ? *K::avx2_loops() : K::baseline_loops();
    std::string problem;
    BOOST_TEST(&K::choose_loops(nullptr, &problem) == &best);
    BOOST_TEST(&K::choose_loops("auto", &problem) == &best);
    BOOST_TEST(&K::choose_loops("baseline", &problem) == &K::baseline_loops());
    BOOST_TEST(problem.empty());
    BOOST_TEST(&K::choose_loops("sse9", &problem) == &best);
    BOOST_TEST(problem.find("MIRAS_KERNELS='sse9' is not one of auto, baseline, avx2") != std::string::npos, problem);
    problem.clear();
    BOOST_TEST(&K::choose_loops("avx2", &problem) == &best);
    BOOST_TEST(problem.empty() == (K::avx2_loops() != nullptr), problem);
}

BOOST_AUTO_TEST_SUITE_END()
