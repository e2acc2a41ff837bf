// Gradients of gradients: the third derivative of a scalar function through
// grad() three times, Hessian-vector products, and the meta-gradient through
// unrolled inner SGD steps on a linear associative memory (the Titans/Miras
// inner loop in miniature: W ← W − lr ∇_W ½‖W k − v‖²). All in f64 against
// closed forms or central differences.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"

using namespace miras;

namespace {

Tensor F(const std::vector<double>& v, const Shape& s) { return from_vector(v, s, DType::f64); }

void check_close(const Tensor& got, const std::vector<double>& want, double rtol, double atol = 0) {
    BOOST_REQUIRE(got.defined());
    std::vector<double> v = got.to_vector();
    BOOST_REQUIRE_EQUAL(v.size(), want.size());
    for (size_t i = 0; i < v.size(); ++i)
        BOOST_TEST(std::abs(v[i] - want[i]) <= atol + rtol * std::abs(want[i]),
                   "element " << i << ": " << v[i] << " != " << want[i]);
}

// One inner step of the linear memory (Miras with l2 bias, gd, no retention):
//   ℓ(W) = ½‖W k − v‖²,  W ← W − lr ∇_W ℓ = W − lr (W k − v) kᵀ.
// W (out, in), k (in,), v (out,), lr 0-d. The gradient is taken with
// create_graph so that the updated W stays a differentiable function of
// W, k, v and lr.
Tensor inner_step(const Tensor& W, const Tensor& k, const Tensor& v, const Tensor& lr) {
    Tensor err = sub(matmul(W, k), v);  // (out,)
    Tensor loss = mul(sum(square(err)), 0.5);
    Tensor g = grad({loss}, {W}, {}, {.create_graph = true})[0];  // (out, in)
    return sub(W, mul(lr, g));
}

// W0 (2, 3), K (3 steps, 3), V (3, 2), lr (), q (3,), y (2,) ->
// outer loss ½‖W_3 q − y‖² after three inner steps.
Tensor unrolled_outer_loss(const TensorList& in) {
    const Tensor &W0 = in[0], &K = in[1], &V = in[2], &lr = in[3], &q = in[4], &y = in[5];
    Tensor W = W0;
    for (int64_t t = 0; t < K.size(0); ++t) W = inner_step(W, select(K, 0, t), select(V, 0, t), lr);
    return mul(sum(square(sub(matmul(W, q), y))), 0.5);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(higher_order)

BOOST_AUTO_TEST_CASE(third_derivative_of_x3_sin_x) {
    // f = x³ sin x
    // f'   = 3x² s + x³ c
    // f''  = 6x s + 6x² c − x³ s
    // f''' = 6 s + 18x c − 9x² s − x³ c          (s = sin x, c = cos x)
    std::vector<double> xs = {-2.1, -0.7, 0.3, 1.0, 2.5};
    std::vector<double> d1, d2, d3;
    for (double x : xs) {
        double s = std::sin(x), c = std::cos(x);
        d1.push_back(3 * x * x * s + x * x * x * c);
        d2.push_back(6 * x * s + 6 * x * x * c - x * x * x * s);
        d3.push_back(6 * s + 18 * x * c - 9 * x * x * s - x * x * x * c);
    }
    // Two spellings of x³: the pow op and a product with x used three times.
    for (int form = 0; form < 2; ++form) {
        BOOST_TEST_CONTEXT("form " << form) {
            Tensor x = set_requires_grad(F(xs, {5}));
            Tensor cube = form == 0 ? pow(x, 3.0) : x * x * x;
            Tensor f = sum(cube * sin(x));  // elementwise: Σ keeps each derivative in its own slot
            Tensor g1 = grad({f}, {x}, {}, {.create_graph = true})[0];
            Tensor g2 = grad({sum(g1)}, {x}, {}, {.create_graph = true})[0];
            Tensor g3 = grad({sum(g2)}, {x})[0];
            check_close(g1, d1, 1e-12, 1e-12);
            check_close(g2, d2, 1e-12, 1e-12);
            check_close(g3, d3, 1e-12, 1e-12);
            BOOST_TEST(requires_grad(g2));
            BOOST_TEST(!requires_grad(g3));
        }
    }
    // And the second derivative map x -> f''(x) checked numerically (so the
    // third derivative is checked against finite differences too).
    Tensor x = set_requires_grad(F(xs, {5}));
    TensorFn second = [](const TensorList& in) -> TensorList {
        Tensor g1 = grad({sum(pow(in[0], 3.0) * sin(in[0]))}, {in[0]}, {}, {.create_graph = true})[0];
        return {grad({sum(g1)}, {in[0]}, {}, {.create_graph = true})[0]};
    };
    GradcheckResult r = gradcheck(second, {x});
    BOOST_TEST(r.ok, r.message);
}

BOOST_AUTO_TEST_CASE(hvp_quadratic_form) {
    // f(x) = xᵀ A x with A not symmetric: ∇f = (A + Aᵀ) x, H v = (A + Aᵀ) v.
    Generator gen(11);
    const int n = 4;
    Tensor A = randn({n, n}, gen, DType::f64);
    Tensor x = set_requires_grad(randn({n}, gen, DType::f64));
    Tensor v = randn({n}, gen, DType::f64);
    Tensor f = sum(x * matmul(A, x));
    Tensor g = grad({f}, {x}, {}, {.create_graph = true})[0];
    // retain_graph: g's graph runs through the forward graph, used again below.
    Tensor hv = grad({g}, {x}, {v}, {.retain_graph = true})[0];
    std::vector<double> a = A.to_vector(), xv = x.to_vector(), vv = v.to_vector(), want_g(n), want_hv(n);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            double s = a[i * n + j] + a[j * n + i];
            want_g[i] += s * xv[j];
            want_hv[i] += s * vv[j];
        }
    check_close(g, want_g, 1e-12, 1e-12);
    check_close(hv, want_hv, 1e-12, 1e-12);
    // The same product as the gradient of ⟨∇f, v⟩ (Pearlmutter's trick).
    Tensor hv2 = grad({sum(g * v)}, {x})[0];
    check_close(hv2, want_hv, 1e-12, 1e-12);
    // The Hessian of a quadratic is constant: the same at another x.
    Tensor x2 = set_requires_grad(randn({n}, gen, DType::f64));
    Tensor g2 = grad({sum(x2 * matmul(A, x2))}, {x2}, {}, {.create_graph = true})[0];
    check_close(grad({g2}, {x2}, {v})[0], want_hv, 1e-12, 1e-12);
    // Mixed second derivative: ∂/∂A ⟨∇_x f, v⟩ = v xᵀ + x vᵀ.
    Tensor A2 = set_requires_grad(raw::clone(A));
    Tensor x3 = set_requires_grad(raw::clone(x));
    Tensor g3 = grad({sum(x3 * matmul(A2, x3))}, {x3}, {}, {.create_graph = true})[0];
    Tensor dA = grad({sum(g3 * v)}, {A2})[0];
    std::vector<double> want_dA(n * n);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) want_dA[i * n + j] = vv[i] * xv[j] + xv[i] * vv[j];
    check_close(dA, want_dA, 1e-12, 1e-12);
}

BOOST_AUTO_TEST_CASE(hvp_mlp_against_finite_differences_of_gradients) {
    // loss(θ) = mean((tanh(X W1 + b1) W2 − Y)²), θ = (W1 (3,4), b1 (4,), W2 (4,2)),
    // X (5,3), Y (5,2). H v compared with (∇loss(θ + εv) − ∇loss(θ − εv)) / 2ε.
    Generator gen(5);
    Tensor X = randn({5, 3}, gen, DType::f64), Y = randn({5, 2}, gen, DType::f64);
    TensorList theta = {randn({3, 4}, gen, DType::f64, 0, 0.7), randn({4}, gen, DType::f64, 0, 0.3),
                        randn({4, 2}, gen, DType::f64, 0, 0.7)};
    TensorList dir = {randn({3, 4}, gen, DType::f64), randn({4}, gen, DType::f64), randn({4, 2}, gen, DType::f64)};
    auto loss = [&](const TensorList& p) {
        Tensor h = tanh(add(matmul(X, p[0]), p[1]));  // (5, 4)
        return mean(square(sub(matmul(h, p[2]), Y)));
    };
    auto gradient_at = [&](double eps, bool create_graph) {
        TensorList p;
        for (size_t i = 0; i < theta.size(); ++i)
            p.push_back(set_requires_grad(raw::axpby(theta[i], 1.0, dir[i], eps)));
        return std::make_pair(p, grad({loss(p)}, p, {}, {.create_graph = create_graph}));
    };
    auto [p, g] = gradient_at(0.0, true);
    TensorList hv = grad(g, p, dir);
    const double eps = 1e-5;
    TensorList gp = gradient_at(eps, false).second, gm = gradient_at(-eps, false).second;
    for (size_t i = 0; i < hv.size(); ++i) {
        BOOST_TEST_CONTEXT("parameter " << i) {
            std::vector<double> a = gp[i].to_vector(), b = gm[i].to_vector(), fd(a.size());
            for (size_t j = 0; j < a.size(); ++j) fd[j] = (a[j] - b[j]) / (2 * eps);
            check_close(hv[i], fd, 1e-6, 1e-8);
        }
    }
    // The full second derivative, also w.r.t. the data.
    TensorFn f = [&](const TensorList& in) -> TensorList {
        Tensor h = tanh(add(matmul(in[3], in[0]), in[1]));
        return {mean(square(sub(matmul(h, in[2]), Y)))};
    };
    TensorList args = {set_requires_grad(theta[0]), set_requires_grad(theta[1]), set_requires_grad(theta[2]),
                       set_requires_grad(X)};
    GradcheckResult r = gradgradcheck(f, args);
    BOOST_TEST(r.ok, r.message);
}

BOOST_AUTO_TEST_CASE(meta_gradient_through_unrolled_inner_sgd) {
    Generator gen(7);
    Tensor W0 = randn({2, 3}, gen, DType::f64, 0, 0.5);
    Tensor K = randn({3, 3}, gen, DType::f64, 0, 0.6);
    Tensor V = randn({3, 2}, gen, DType::f64);
    Tensor lr = F({0.4}, {});
    Tensor q = randn({3}, gen, DType::f64);
    Tensor y = randn({2}, gen, DType::f64);
    TensorList in = {W0, K, V, lr, q, y};
    for (auto& t : in) set_requires_grad(t);

    // The inner gradients themselves are graphs (create_graph), so the
    // updated memory is differentiable.
    Tensor W1 = inner_step(W0, select(K, 0, 0), select(V, 0, 0), lr);
    BOOST_TEST(requires_grad(W1));

    // Closed form of the outer gradient w.r.t. W0. With r = W3 q − y:
    //   W_{t+1} = W_t (I − lr k_t k_tᵀ) + lr v_t k_tᵀ,  ∂L/∂W_3 = r qᵀ,
    //   ∂L/∂W_t = ∂L/∂W_{t+1} (I − lr k_{t+1} k_{t+1}ᵀ)   (the factor is symmetric).
    std::vector<double> w = W0.to_vector(), k = K.to_vector(), vv = V.to_vector(), qv = q.to_vector(),
                        yv = y.to_vector();
    const double a = lr.item();
    auto step = [&](std::vector<double> M, int t) {  // M ← M − a (M k − v) kᵀ
        for (int i = 0; i < 2; ++i) {
            double e = -vv[t * 2 + i];
            for (int j = 0; j < 3; ++j) e += M[i * 3 + j] * k[t * 3 + j];
            for (int j = 0; j < 3; ++j) M[i * 3 + j] -= a * e * k[t * 3 + j];
        }
        return M;
    };
    std::vector<double> W3 = step(step(step(w, 0), 1), 2);
    std::vector<double> G(6);
    for (int i = 0; i < 2; ++i) {
        double r = -yv[i];
        for (int j = 0; j < 3; ++j) r += W3[i * 3 + j] * qv[j];
        for (int j = 0; j < 3; ++j) G[i * 3 + j] = r * qv[j];
    }
    for (int t = 2; t >= 0; --t) {  // G ← G (I − a k kᵀ)
        std::vector<double> Gk(2, 0.0);
        for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 3; ++j) Gk[i] += G[i * 3 + j] * k[t * 3 + j];
        for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 3; ++j) G[i * 3 + j] -= a * Gk[i] * k[t * 3 + j];
    }
    Tensor L = unrolled_outer_loss(in);
    double want_L = 0;
    for (int i = 0; i < 2; ++i) {
        double r = -yv[i];
        for (int j = 0; j < 3; ++j) r += W3[i * 3 + j] * qv[j];
        want_L += 0.5 * r * r;
    }
    BOOST_TEST(std::abs(L.item() - want_L) <= 1e-12 * std::max(1.0, want_L));
    TensorList outer = grad({L}, {W0, lr});
    check_close(outer[0], G, 1e-10, 1e-12);
    BOOST_TEST(std::isfinite(outer[1].item()));

    // The whole unrolled function against central differences: w.r.t. the
    // initial memory, the keys and values, the step size, query and target.
    TensorFn f = [](const TensorList& args) -> TensorList { return {unrolled_outer_loss(args)}; };
    GradcheckResult r = gradcheck(f, in);
    BOOST_TEST(r.ok, r.message);
    // One more order: the meta-gradient is itself differentiable.
    GradcheckResult rr = gradgradcheck(f, in);
    BOOST_TEST(rr.ok, rr.message);

    // Dropping create_graph in the inner loop (first-order approximation)
    // gives a different meta-gradient: the test above would notice.
    Tensor Wfo = W0;
    for (int64_t t = 0; t < 3; ++t) {
        Tensor kt = select(K, 0, t), vt = select(V, 0, t);
        Tensor g = grad({mul(sum(square(sub(matmul(Wfo, kt), vt))), 0.5)}, {Wfo})[0];
        Wfo = sub(Wfo, mul(lr, g));
    }
    Tensor Lfo = mul(sum(square(sub(matmul(Wfo, q), y))), 0.5);
    std::vector<double> gfo = grad({Lfo}, {W0})[0].to_vector();
    double diff = 0;
    for (size_t i = 0; i < G.size(); ++i) diff = std::max(diff, std::abs(gfo[i] - G[i]));
    BOOST_TEST(diff > 1e-3);
}

BOOST_AUTO_TEST_SUITE_END()
