// nn/loss.h: cross-entropy against a naive formula (with ignore_index, custom
// ignore values, the all-ignored batch), its gradient against softmax − onehot,
// gradcheck + gradgradcheck in f64 of both losses, accuracy by hand, errors.
#include <boost/test/unit_test.hpp>

#include "op_test_util.h"

#include <cmath>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/loss.h"

using namespace miras;

namespace {

const DType kDtypes[] = {DType::f32, DType::f64};

// First- and second-order gradient checks of f at inputs (f64).
void check_grads(const TensorFn& f, const TensorList& inputs) {
    GradcheckResult r1 = gradcheck(f, inputs);
    BOOST_TEST(r1.ok, r1.message);
    GradcheckResult r2 = gradgradcheck(f, inputs);
    BOOST_TEST(r2.ok, r2.message);
}

// Mean over counted rows of logsumexp(row) − row[target].
double naive_ce(const std::vector<double>& logits, const std::vector<int64_t>& targets, int64_t V, int64_t ignore) {
    double total = 0;
    int64_t n = 0;
    for (size_t i = 0; i < targets.size(); ++i) {
        if (targets[i] == ignore) continue;
        double mx = -INFINITY, s = 0;
        for (int64_t c = 0; c < V; ++c) mx = std::max(mx, logits[i * V + c]);
        for (int64_t c = 0; c < V; ++c) s += std::exp(logits[i * V + c] - mx);
        total += mx + std::log(s) - logits[i * V + (size_t)targets[i]];
        ++n;
    }
    return total / (double)n;
}

using miras::test::has;  // what() contains every piece (tests/op_test_util.h)

}  // namespace

BOOST_AUTO_TEST_SUITE(loss)

BOOST_AUTO_TEST_CASE(cross_entropy_matches_naive) {
    for (DType dt : kDtypes) {
        Generator g(1);
        Tensor logits = randn({2, 3, 5}, g, dt, 0, 3);
        std::vector<int64_t> t = {4, -100, 0, 2, -100, 1};
        auto r = cross_entropy(logits, IndexTensor({2, 3}, t));
        BOOST_TEST(r.count == 4);
        BOOST_TEST(r.loss.dim() == 0);
        BOOST_TEST((r.loss.dtype() == dt));
        double want = naive_ce(logits.to_vector(), t, 5, -100);
        BOOST_TEST(std::abs(r.loss.item() - want) <= (dt == DType::f32 ? 1e-5 : 1e-13) * std::abs(want));
    }
}

BOOST_AUTO_TEST_CASE(cross_entropy_hand_value) {
    // Uniform logits over V classes: loss = log V for every target.
    Tensor logits = zeros({3, 4}, DType::f64);
    auto r = cross_entropy(logits, IndexTensor({3}, {0, 3, 1}));
    BOOST_TEST(std::abs(r.loss.item() - std::log(4.0)) < 1e-15);
    // A huge margin does not overflow: −log softmax ≈ 0 for the right class, ≈ 1000 for the wrong one.
    Tensor big = from_vector({1000, 0, 0, 1000}, {2, 2}, DType::f32);
    BOOST_TEST(cross_entropy(big, IndexTensor({2}, {0, 1})).loss.item() < 1e-6);
    BOOST_TEST(std::abs(cross_entropy(big, IndexTensor({2}, {1, 0})).loss.item() - 1000) < 1e-3);
}

BOOST_AUTO_TEST_CASE(cross_entropy_custom_ignore_index) {
    Generator g(2);
    Tensor logits = randn({4, 3}, g, DType::f64);
    std::vector<int64_t> t = {2, 0, 2, 1};
    auto r = cross_entropy(logits, IndexTensor({4}, t), /*ignore_index=*/2);  // class 2 is padding here
    BOOST_TEST(r.count == 2);
    BOOST_TEST(std::abs(r.loss.item() - naive_ce(logits.to_vector(), t, 3, 2)) < 1e-13);
    // -100 is an ordinary (invalid) target once ignore_index is something else.
    BOOST_CHECK_EXCEPTION(cross_entropy(logits, IndexTensor({4}, {0, -100, 1, 1}), 2), std::out_of_range,
                          has({"cross_entropy", "-100", "position 1"}));
}

BOOST_AUTO_TEST_CASE(cross_entropy_gradient_is_softmax_minus_onehot) {
    Generator g(3);
    Tensor logits = set_requires_grad(randn({3, 4}, g, DType::f64));
    std::vector<int64_t> t = {1, -100, 3};
    Tensor gl = grad({cross_entropy(logits, IndexTensor({3}, t)).loss}, {logits})[0];
    std::vector<double> lv = logits.to_vector(), gv = gl.to_vector();
    for (int i = 0; i < 3; ++i) {
        double s = 0;
        for (int c = 0; c < 4; ++c) s += std::exp(lv[i * 4 + c]);
        for (int c = 0; c < 4; ++c) {
            double want = t[i] == -100 ? 0.0 : (std::exp(lv[i * 4 + c]) / s - (c == t[i])) / 2;  // 2 counted rows
            BOOST_TEST(std::abs(gv[i * 4 + c] - want) < 1e-14, "row " << i << " class " << c);
        }
    }
}

BOOST_AUTO_TEST_CASE(cross_entropy_ignored_rows_may_hold_non_finite_logits) {
    // A row nobody scores (a padding tail) may have inf or NaN logits; the
    // loss and the counted rows' gradients are those of the counted rows alone.
    for (DType dt : kDtypes) {
        Generator g(5);
        Tensor clean = randn({4, 3}, g, dt);
        std::vector<double> v = clean.to_vector();
        v[3] = NAN;                                  // row 1
        v[9] = INFINITY, v[10] = -INFINITY;          // row 3
        Tensor dirty = set_requires_grad(from_vector(v, {4, 3}, dt));
        const std::vector<int64_t> t = {2, -100, 0, -100};
        auto r = cross_entropy(dirty, IndexTensor({4}, t));
        BOOST_TEST(r.count == 2);
        const double want = naive_ce(clean.to_vector(), t, 3, -100);
        BOOST_TEST(std::abs(r.loss.item() - want) <= (dt == DType::f32 ? 1e-6 : 1e-14) * std::abs(want));
        std::vector<double> gd = grad({r.loss}, {dirty})[0].to_vector();  // rows 0 and 2 are counted
        for (int c = 0; c < 3; ++c) {
            BOOST_TEST(std::isfinite(gd[c]), "row 0 class " << c);
            BOOST_TEST(std::isfinite(gd[6 + c]), "row 2 class " << c);
        }
    }
}

BOOST_AUTO_TEST_CASE(cross_entropy_all_ignored_is_zero) {
    for (DType dt : kDtypes) {
        Generator g(4);
        Tensor logits = set_requires_grad(randn({2, 3}, g, dt));
        auto r = cross_entropy(logits, IndexTensor({2}, {-100, -100}));
        BOOST_TEST(r.count == 0);
        BOOST_TEST(r.loss.item() == 0.0);  // exact, not NaN
        BOOST_TEST(!std::signbit(r.loss.item()));  // +0: printed as 0, not -0
        backward(r.loss);
        for (double v : grad_of(logits).to_vector()) BOOST_TEST(v == 0.0);
    }
    // No targets at all behaves the same.
    auto e = cross_entropy(zeros({0, 3}, DType::f64), IndexTensor({0}, {}));
    BOOST_TEST(e.count == 0);
    BOOST_TEST(e.loss.item() == 0.0);
}

BOOST_AUTO_TEST_CASE(cross_entropy_grads) {
    Generator g(5);
    IndexTensor t({2, 3}, {0, -100, 3, 2, 2, 1});
    check_grads([t](const TensorList& a) { return TensorList{cross_entropy(a[0], t).loss}; },
                {set_requires_grad(randn({2, 3, 4}, g, DType::f64))});
}

BOOST_AUTO_TEST_CASE(cross_entropy_errors) {
    Tensor logits = zeros({2, 3});
    BOOST_CHECK_EXCEPTION(cross_entropy(logits, IndexTensor({3}, {0, 1, 2})), std::invalid_argument,
                          has({"cross_entropy", "(2, 3)", "(3"}));
    BOOST_CHECK_EXCEPTION(cross_entropy(logits, IndexTensor({2}, {0, 3})), std::out_of_range,
                          has({"cross_entropy", "target 3", "position 1"}));
    BOOST_CHECK_EXCEPTION(cross_entropy(logits, IndexTensor({2}, {-1, 0})), std::out_of_range,
                          has({"target -1", "position 0"}));
    BOOST_CHECK_THROW(cross_entropy(scalar_tensor(1.0), IndexTensor({}, {0})), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(accuracy_by_hand) {
    Tensor logits = from_vector({0.1, 0.9, 0.0,    // argmax 1
                                 2.0, 1.0, 3.0,    // argmax 2
                                 5.0, 5.0, 1.0,    // tie: first max, 0
                                 0.0, 0.0, 9.0},   // argmax 2 (ignored)
                                {2, 2, 3}, DType::f32);
    Accuracy a = accuracy(logits, IndexTensor({2, 2}, {1, 0, 0, -100}));
    BOOST_TEST(a.count == 3);
    BOOST_TEST(a.correct == 2);
    BOOST_TEST(std::abs(a.value() - 2.0 / 3.0) < 1e-15);
    BOOST_TEST(accuracy(logits, IndexTensor({2, 2}, {-100, -100, -100, -100})).value() == 0.0);
    BOOST_CHECK_THROW(accuracy(logits, IndexTensor({4}, {0, 0, 0, 0})), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(mse_values_and_grads) {
    Tensor a = from_vector({1, 2, 3, 4}, {2, 2}, DType::f64), b = from_vector({0, 2, 5, 1}, {2, 2}, DType::f64);
    BOOST_TEST(mse(a, b).item() == (1.0 + 0.0 + 4.0 + 9.0) / 4);
    BOOST_TEST(mse(to_dtype(a, DType::f32), to_dtype(b, DType::f32)).item() == 3.5);
    Generator g(6);
    check_grads([](const TensorList& x) { return TensorList{mse(x[0], x[1])}; },
                {set_requires_grad(randn({2, 3}, g, DType::f64)), set_requires_grad(randn({2, 3}, g, DType::f64))});
    BOOST_CHECK_EXCEPTION(mse(a, zeros({2}, DType::f64)), std::invalid_argument, has({"mse", "(2, 2)"}));
}

BOOST_AUTO_TEST_SUITE_END()
