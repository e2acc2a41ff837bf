// Existing models as settings of the memory layer (docs/math.md §3): with b = 1 and
// linear memory the scans must equal the textbook recurrences, written here
// independently as plain loops over doubles.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "miras/retention.h"
#include "miras/scan.h"

using namespace miras;

namespace {

constexpr int64_t B = 2, H = 2, T = 6, DH = 3;

// A d_h × d_h matrix of doubles, row-major: W[i][j] acts on column j (W k).
using Mat = std::vector<std::vector<double>>;
using Vec = std::vector<double>;

Mat zero_mat() { return Mat(DH, Vec(DH, 0.0)); }
Vec matvec(const Mat& W, const Vec& x) {
    Vec y(DH, 0.0);
    for (int i = 0; i < DH; ++i)
        for (int j = 0; j < DH; ++j) y[i] += W[i][j] * x[j];
    return y;
}

// Element (b, h, t, i) of a (B, H, T, DH) tensor's values.
struct Seq {
    std::vector<double> v;
    Vec at(int64_t b, int64_t h, int64_t t) const {
        Vec r(DH);
        for (int64_t i = 0; i < DH; ++i) r[i] = v[(size_t)(((b * H + h) * T + t) * DH + i)];
        return r;
    }
};
double gate_at(const Tensor& g, int64_t b, int64_t h, int64_t t) { return g.to_vector()[(size_t)((b * H + h) * T + t)]; }

// Random keys and queries of unit norm (as the layer's norm2 gives), values unnormalised.
MemoryInputs random_inputs(uint64_t seed) {
    Generator gen(seed);
    auto unit = [&](Tensor z) {
        Tensor n = raw::unary(raw::Unary::sqrt, raw::sum(raw::unary(raw::Unary::square, z), {-1}, true));
        return raw::binary(raw::Binary::div, z, n);
    };
    MemoryInputs in;
    in.q = unit(randn({B, H, T, DH}, gen, DType::f64));
    in.k = unit(randn({B, H, T, DH}, gen, DType::f64));
    in.v = randn({B, H, T, DH}, gen, DType::f64);
    in.theta = rand({B, H, T}, gen, DType::f64, 0.1, 0.5);
    in.eta = rand({B, H, T}, gen, DType::f64, 0.3, 0.9);
    in.alpha = rand({B, H, T}, gen, DType::f64, 0.05, 0.4);
    return in;
}

MemoryConfig linear_config(const std::string& bias, const std::string& retention, const std::string& algorithm) {
    MemoryConfig c;
    c.d = H * DH;
    c.heads = H;
    c.memory = "linear";
    c.bias = bias;
    c.retention = retention;
    c.algorithm = algorithm;
    c.chunk = 1;
    c.dtype = DType::f64;
    return c;
}

// Runs both scans from A_0 (empty = 0) and compares y with `expected`
// (b, h) -> the sequence of y_t of the textbook recurrence; also returns the
// final states for further checks.
void check_against(const MemoryConfig& cfg, const MemoryInputs& in, const std::vector<Tensor>& A0,
                   const std::function<std::vector<Vec>(int64_t, int64_t)>& expected, const std::string& label,
                   std::vector<MemoryState>* finals = nullptr) {
    for (bool chunked : {false, true}) {
        MemoryState st = initial_memory_state(cfg, A0, B, DType::f64);
        Tensor y = chunked ? memory_scan_chunked(cfg, in, st) : memory_scan_sequential(cfg, in, st);
        Seq ys{y.to_vector()};
        double err = 0;
        for (int64_t b = 0; b < B; ++b)
            for (int64_t h = 0; h < H; ++h) {
                std::vector<Vec> want = expected(b, h);
                for (int64_t t = 0; t < T; ++t) {
                    Vec got = ys.at(b, h, t);
                    for (int i = 0; i < DH; ++i) err = std::max(err, std::abs(got[i] - want[t][i]));
                }
            }
        BOOST_CHECK_MESSAGE(err <= 1e-12, label << (chunked ? " chunked" : " sequential") << ": max error " << err);
        if (finals) finals->push_back(st);
    }
}

Mat head_matrix(const Tensor& A0, int64_t h) {
    std::vector<double> v = A0.to_vector();
    Mat W = zero_mat();
    for (int i = 0; i < DH; ++i)
        for (int j = 0; j < DH; ++j) W[i][j] = v[(size_t)((h * DH + i) * DH + j)];
    return W;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(miras_classic)

// Linear attention: dot bias, no retention, θ = 1, A_0 = 0:
// W_t = W_{t−1} + v_t k_tᵀ, y_t = W_t q_t (causal, token t included).
BOOST_AUTO_TEST_CASE(linear_attention) {
    MemoryConfig cfg = linear_config("dot", "none", "gd");
    cfg.fixed_gates = {{"theta", 1.0}};
    cfg.fix_A0_zero = true;
    MemoryInputs in = random_inputs(1);
    in.theta = ones({B, H, T}, DType::f64);
    in.eta = in.alpha = Tensor();
    Seq q{in.q.to_vector()}, k{in.k.to_vector()}, v{in.v.to_vector()};
    auto expected = [&](int64_t b, int64_t h) {
        Mat W = zero_mat();
        std::vector<Vec> ys;
        for (int64_t t = 0; t < T; ++t) {
            Vec kt = k.at(b, h, t), vt = v.at(b, h, t);
            for (int i = 0; i < DH; ++i)
                for (int j = 0; j < DH; ++j) W[i][j] += vt[i] * kt[j];
            ys.push_back(matvec(W, q.at(b, h, t)));
        }
        return ys;
    };
    check_against(cfg, in, {}, expected, "linear attention b=1");
    // The dot bias's gradient does not depend on W: any chunk size gives the same.
    cfg.chunk = 4;
    check_against(cfg, in, {}, expected, "linear attention b=4");
}

// DeltaNet: ℓ2 bias, no retention, b = 1: W_t = W_{t−1} − θ_t (W_{t−1} k_t − v_t) k_tᵀ.
// Gated DeltaNet (ℓ2 retention): W_t = (1 − α_t) W_{t−1} − θ_t (W_{t−1} k_t − v_t) k_tᵀ
// (docs/math.md §3: the error uses the undecayed W_{t−1}).
BOOST_AUTO_TEST_CASE(deltanet_and_gated_deltanet) {
    for (bool gated : {false, true}) {
        MemoryConfig cfg = linear_config("l2", gated ? "l2" : "none", "gd");
        MemoryInputs in = random_inputs(2);
        in.eta = Tensor();
        if (!gated) in.alpha = Tensor();
        Generator gen(3);
        Tensor A0 = randn({H, DH, DH}, gen, DType::f64, 0, 0.5);
        Seq q{in.q.to_vector()}, k{in.k.to_vector()}, v{in.v.to_vector()};
        auto expected = [&](int64_t b, int64_t h) {
            Mat W = head_matrix(A0, h);
            std::vector<Vec> ys;
            for (int64_t t = 0; t < T; ++t) {
                Vec kt = k.at(b, h, t), vt = v.at(b, h, t), e = matvec(W, kt);
                for (int i = 0; i < DH; ++i) e[i] -= vt[i];
                double th = gate_at(in.theta, b, h, t), keep = gated ? 1 - gate_at(in.alpha, b, h, t) : 1.0;
                for (int i = 0; i < DH; ++i)
                    for (int j = 0; j < DH; ++j) W[i][j] = keep * W[i][j] - th * e[i] * kt[j];
                ys.push_back(matvec(W, q.at(b, h, t)));
            }
            return ys;
        };
        check_against(cfg, in, {A0}, expected, gated ? "gated deltanet" : "deltanet");
    }
}

// Titans' linear memory with momentum and forgetting, b = 1:
// S_t = η_t S_{t−1} − θ_t (W_{t−1} k_t − v_t) k_tᵀ,  W_t = (1 − α_t) W_{t−1} + S_t.
BOOST_AUTO_TEST_CASE(momentum_with_forgetting) {
    MemoryConfig cfg = linear_config("l2", "l2", "momentum");
    MemoryInputs in = random_inputs(4);
    Generator gen(5);
    Tensor A0 = randn({H, DH, DH}, gen, DType::f64, 0, 0.5);
    Seq q{in.q.to_vector()}, k{in.k.to_vector()}, v{in.v.to_vector()};
    auto expected = [&](int64_t b, int64_t h) {
        Mat W = head_matrix(A0, h), S = zero_mat();
        std::vector<Vec> ys;
        for (int64_t t = 0; t < T; ++t) {
            Vec kt = k.at(b, h, t), vt = v.at(b, h, t), e = matvec(W, kt);
            for (int i = 0; i < DH; ++i) e[i] -= vt[i];
            double th = gate_at(in.theta, b, h, t), et = gate_at(in.eta, b, h, t), keep = 1 - gate_at(in.alpha, b, h, t);
            for (int i = 0; i < DH; ++i)
                for (int j = 0; j < DH; ++j) {
                    S[i][j] = et * S[i][j] - th * e[i] * kt[j];
                    W[i][j] = keep * W[i][j] + S[i][j];
                }
            ys.push_back(matvec(W, q.at(b, h, t)));
        }
        return ys;
    };
    check_against(cfg, in, {A0}, expected, "momentum");
}

// Memora's KL retention in the paper's form (docs/math.md §1.6), b = 1:
// W_t = c · softmax_row((1 − α_t) log(W_{t−1}/c) − θ_t u_t), u_t = (W_{t−1} k_t − v_t) k_tᵀ,
// W_0 = c · softmax_row(A_0). Checks y_t and the final weights.
BOOST_AUTO_TEST_CASE(kl_retention_equals_softmax_form) {
    MemoryConfig cfg = linear_config("l2", "kl", "gd");
    cfg.kl_c = 2.0;
    MemoryInputs in = random_inputs(6);
    in.eta = Tensor();
    Generator gen(7);
    Tensor A0 = randn({H, DH, DH}, gen, DType::f64);
    Seq q{in.q.to_vector()}, k{in.k.to_vector()}, v{in.v.to_vector()};
    const double c = cfg.kl_c;
    auto softmax_rows = [&](Mat Z) {
        for (auto& row : Z) {
            double m = -INFINITY, s = 0;
            for (double z : row) m = std::max(m, z);
            for (double& z : row) s += (z = std::exp(z - m));
            for (double& z : row) z = c * z / s;
        }
        return Z;
    };
    std::vector<Mat> final_W((size_t)(B * H));
    auto expected = [&](int64_t b, int64_t h) {
        Mat W = softmax_rows(head_matrix(A0, h));
        std::vector<Vec> ys;
        for (int64_t t = 0; t < T; ++t) {
            Vec kt = k.at(b, h, t), vt = v.at(b, h, t), e = matvec(W, kt);
            for (int i = 0; i < DH; ++i) e[i] -= vt[i];
            double th = gate_at(in.theta, b, h, t), keep = 1 - gate_at(in.alpha, b, h, t);
            Mat Z = zero_mat();
            for (int i = 0; i < DH; ++i)
                for (int j = 0; j < DH; ++j) Z[i][j] = keep * std::log(W[i][j] / c) - th * e[i] * kt[j];
            W = softmax_rows(Z);
            ys.push_back(matvec(W, q.at(b, h, t)));
        }
        final_W[(size_t)(b * H + h)] = W;
        return ys;
    };
    std::vector<MemoryState> finals;
    check_against(cfg, in, {A0}, expected, "kl", &finals);
    for (const MemoryState& st : finals) {
        // A may drift by a constant per row; W = φ(A) may not.
        std::vector<double> W = retention("kl").phi(st.A[0], cfg).to_vector();
        double err = 0;
        for (int64_t bh = 0; bh < B * H; ++bh)
            for (int i = 0; i < DH; ++i)
                for (int j = 0; j < DH; ++j)
                    err = std::max(err, std::abs(W[(size_t)((bh * DH + i) * DH + j)] - final_W[(size_t)bh][i][j]));
        BOOST_CHECK_MESSAGE(err <= 1e-12, "kl final weights: max error " << err);
    }
}

BOOST_AUTO_TEST_SUITE_END()
