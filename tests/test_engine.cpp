// The engine's contract (autograd/engine.h, node.h, grad_mode.h, gradcheck.h):
// grad() semantics against hand-derived gradients, backward() accumulation,
// the error messages a user sees, grad-mode guards, and a gradcheck that
// catches a deliberately wrong backward formula.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"

using namespace miras;

namespace {

Tensor F(const std::vector<double>& v, const Shape& s) { return from_vector(v, s, DType::f64); }
Tensor leaf(const std::vector<double>& v, const Shape& s) { return set_requires_grad(F(v, s)); }

void check_close(const Tensor& got, const std::vector<double>& want, double tol = 1e-12) {
    BOOST_REQUIRE(got.defined());
    std::vector<double> v = got.to_vector();
    BOOST_REQUIRE_EQUAL(v.size(), want.size());
    for (size_t i = 0; i < v.size(); ++i)
        BOOST_TEST(std::abs(v[i] - want[i]) <= tol * std::max(1.0, std::abs(want[i])),
                   "element " << i << ": " << v[i] << " != " << want[i]);
}

// Runs f, expecting an exception of type E whose message contains every
// fragment in `parts`.
template <class E, class Fn> void check_throws(Fn f, const std::vector<std::string>& parts) {
    try {
        f();
    } catch (const E& e) {
        std::string msg = e.what();
        for (const auto& p : parts) BOOST_TEST(msg.find(p) != std::string::npos, "'" << p << "' not in: " << msg);
        return;
    }
    BOOST_ERROR("no exception thrown (expected one mentioning '" << parts.front() << "')");
}

// exp with a backward that counts its calls: shows how often the engine
// visits a node.
Tensor counting_exp(const Tensor& x, int& calls) {
    Tensor out = raw::unary(raw::Unary::exp, x);
    record("counting_exp", {x}, {out}, [&calls](Node& self, const TensorList& g) -> TensorList {
        ++calls;
        return {mul(g[0], self.output(0))};
    }, true);
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(engine)

BOOST_AUTO_TEST_CASE(multiple_outputs_with_grad_outputs) {
    // y1 = x ⊙ x (3,), y2 = Σ x ⊙ w (scalar). With cotangents v1 and c:
    //   dx = 2 x ⊙ v1 + c w,   dw = c x
    Tensor x = leaf({1, -2, 3}, {3}), w = leaf({0.5, 4, -1}, {3});
    Tensor y1 = x * x, y2 = sum(x * w);
    Tensor v1 = F({1, 10, 100}, {3}), c = F({2}, {});
    TensorList g = grad({y1, y2}, {x, w}, {v1, c}, {.retain_graph = true});
    check_close(g[0], {2 * 1 * 1 + 2 * 0.5, 2 * -2 * 10 + 2 * 4, 2 * 3 * 100 + 2 * -1});
    check_close(g[1], {2 * 1, 2 * -2, 2 * 3});
    // An undefined entry in grad_outputs means the implicit 1 for a scalar.
    TensorList g2 = grad({y1, y2}, {w}, {v1, Tensor()});
    check_close(g2[0], {1, -2, 3});
    // Functional: nothing was written into .grad.
    BOOST_TEST(!grad_of(x).defined());
    BOOST_TEST(!grad_of(w).defined());
}

BOOST_AUTO_TEST_CASE(shared_subexpressions_are_summed_and_visited_once) {
    // x used twice by one op: d(x·x)/dx = 2x.
    Tensor x = leaf({1.5, -0.5}, {2});
    check_close(grad({sum(x * x)}, {x})[0], {3.0, -1.0});
    // h = exp(x) feeds three uses: y = Σ h·h + h. dy/dx = 2e^{2x} + e^x, and
    // the exp node must run once, after all three contributions arrived.
    int calls = 0;
    Tensor h = counting_exp(x, calls);
    Tensor y = sum(add(mul(h, h), h));
    TensorList g = grad({y}, {x});
    BOOST_TEST(calls == 1);
    std::vector<double> want;
    for (double v : {1.5, -0.5}) want.push_back(2 * std::exp(2 * v) + std::exp(v));
    check_close(g[0], want);
    // A diamond through two different ops joins again: a = 3x, b = x², y = Σ a b = Σ 3x³.
    Tensor x2 = leaf({2, -1}, {2});
    Tensor a = x2 * 3.0, b = square(x2);
    check_close(grad({sum(a * b)}, {x2})[0], {9 * 4, 9 * 1});
}

BOOST_AUTO_TEST_CASE(summed_contributions_never_write_into_shared_gradients) {
    // Without create_graph the engine sums a node's contributions in place
    // when it alone holds the buffer. add's backward hands one tensor to both
    // inputs: w reaches the buffers of p and q as views of one storage, and
    // each then receives a second term (5 and 7). Summing in place into
    // either buffer would change the other.
    //   y = Σ w ⊙ (p + q) + Σ 5p + Σ 7q,  p = 2x, q = 3z
    // Both orders of the terms, so either contribution may arrive first.
    for (bool create_graph : {false, true})
    for (bool shared_first : {false, true}) {
        Tensor x = leaf({1, 2}, {2}), z = leaf({3, 4}, {2});
        Tensor w = F({0.5, -1}, {2});
        Tensor p = x * 2.0, q = z * 3.0;
        Tensor shared = sum(mul(add(p, q), w)), own = add(sum(p * 5.0), sum(q * 7.0));
        Tensor y = shared_first ? add(shared, own) : add(own, shared);
        TensorList g = grad({y}, {x, z}, {}, {.create_graph = create_graph});
        check_close(g[0], {2 * (0.5 + 5), 2 * (-1 + 5)});
        check_close(g[1], {3 * (0.5 + 7), 3 * (-1 + 7)});
        BOOST_TEST(w.to_vector() == std::vector<double>({0.5, -1}));
    }
    // A weight used by many ops: its contributions are summed exactly.
    Tensor W = leaf({1, -1, 2, 0.5}, {2, 2});
    Tensor h = F({1, 2}, {2, 1}), acc = F({0, 0}, {2, 1});
    for (int t = 0; t < 5; ++t) acc = add(acc, matmul(W, h) * (double)(t + 1));
    check_close(grad({sum(acc)}, {W})[0], {15, 30, 15, 30});
}

BOOST_AUTO_TEST_CASE(allow_unused) {
    Tensor x = leaf({1, 2}, {2}), z = leaf({3}, {1});
    Tensor y = sum(x * 2.0);
    check_throws<std::invalid_argument>([&] { grad({y}, {x, z}, {}, {.retain_graph = true}); },
                                        {"input 1", "not used", "allow_unused"});
    TensorList g = grad({y}, {x, z}, {}, {.retain_graph = true, .allow_unused = true});
    check_close(g[0], {2, 2});
    BOOST_TEST(!g[1].defined());
    // materialize_grads: zeros of the unused input's shape and dtype instead.
    Tensor z32 = set_requires_grad(zeros({2, 3}, DType::f32));
    g = grad({y}, {x, z32}, {}, {.materialize_grads = true});
    check_close(g[0], {2, 2});
    BOOST_REQUIRE(g[1].defined());
    BOOST_TEST(g[1].shape() == Shape({2, 3}));
    BOOST_TEST((g[1].dtype() == DType::f32));
    BOOST_TEST(g[1].to_vector() == std::vector<double>(6, 0.0));
    BOOST_TEST(!requires_grad(g[1]));
}

BOOST_AUTO_TEST_CASE(non_leaf_input) {
    // y = Σ sin(h), h = x². dy/dh = cos h; dy/dx = 2x cos h.
    Tensor x = leaf({0.3, -1.2}, {2});
    Tensor h = x * x;
    Tensor y = sum(sin(h));
    TensorList g = grad({y}, {h, x}, {}, {.retain_graph = true});
    std::vector<double> hv = h.to_vector();
    check_close(g[0], {std::cos(hv[0]), std::cos(hv[1])});
    check_close(g[1], {2 * 0.3 * std::cos(hv[0]), 2 * -1.2 * std::cos(hv[1])});
    // Only the intermediate asked for: the nodes below it are not run (nor freed).
    TensorList gh = grad({y}, {h});
    check_close(gh[0], {std::cos(hv[0]), std::cos(hv[1])});
}

BOOST_AUTO_TEST_CASE(grad_walks_only_the_graph_above_its_inputs) {
    // An inner loop calls grad() on a graph that keeps growing; each call must
    // walk only what was recorded above its inputs (Node::topo_nr), not the
    // history below them. The walk stamps every node it visits with its id.
    Tensor x = leaf({0.4, -0.7}, {2});
    std::vector<Tensor> steps = {x};  // steps[i + 1] = sin(steps[i]) + x
    for (int i = 0; i < 50; ++i) steps.push_back(sin(steps.back()) + x);  // x is reached again from every step
    Tensor h = steps.back() * 2.0;
    Tensor y = sum(exp(h) + h);  // two paths from y down to h
    std::vector<double> hv = h.to_vector();
    const std::vector<double> dy_dh = {std::exp(hv[0]) + 1, std::exp(hv[1]) + 1};
    const uint64_t before = grad_fn(y)->walk_id;
    check_close(grad({y}, {h}, {}, {.retain_graph = true})[0], dy_dh);
    const uint64_t walk = grad_fn(y)->walk_id;
    BOOST_TEST(walk != before);               // y's node was visited by this walk
    BOOST_TEST(grad_fn(h)->walk_id == walk);  // so was the target's
    for (size_t i = 1; i < steps.size(); ++i) BOOST_TEST(grad_fn(steps[i])->walk_id != walk);  // the history was not

    // A target deep in the history: the walk goes down to it and no further,
    // and the gradient through the 40 steps above it is the chain rule's,
    // dy/ds_10 = dy/dh · 2 · Π_{i=10..49} cos(s_i).
    std::vector<double> want = {2 * dy_dh[0], 2 * dy_dh[1]};
    for (size_t i = 10; i < 50; ++i) {
        std::vector<double> s = steps[i].to_vector();
        for (size_t c = 0; c < 2; ++c) want[c] *= std::cos(s[c]);
    }
    check_close(grad({y}, {steps[10]})[0], want);
    const uint64_t deep = grad_fn(y)->walk_id;
    for (size_t i = 10; i < steps.size(); ++i) BOOST_TEST(grad_fn(steps[i])->walk_id == deep);
    for (size_t i = 1; i < 10; ++i) BOOST_TEST(grad_fn(steps[i])->walk_id != deep);
}

BOOST_AUTO_TEST_CASE(grad_with_respect_to_itself) {
    Tensor x = leaf({4}, {});
    check_close(grad({x}, {x})[0], {1});
    Tensor y = x * x;
    check_close(grad({y}, {y}, {}, {.retain_graph = true})[0], {1});
    // Non-scalar: the gradient is the cotangent itself.
    Tensor v = leaf({1, 2, 3}, {3});
    Tensor w = v * 2.0;
    check_close(grad({w}, {w}, {F({7, 8, 9}, {3})})[0], {7, 8, 9});
}

BOOST_AUTO_TEST_CASE(backward_accumulates_into_leaves) {
    Tensor x = leaf({1, 2}, {2}), w = leaf({3, -1}, {2});
    backward(sum(x * w));
    check_close(grad_of(x), {3, -1});
    check_close(grad_of(w), {1, 2});
    backward(sum(x * x));  // a second graph: adds 2x
    check_close(grad_of(x), {5, 3});
    check_close(grad_of(w), {1, 2});
    BOOST_TEST(!requires_grad(grad_of(x)));
    // Twice through one graph with retain_graph: twice the gradient.
    Tensor p = leaf({0.5}, {1});
    Tensor q = sum(exp(p));
    backward(q, {}, {.retain_graph = true});
    backward(q);
    check_close(grad_of(p), {2 * std::exp(0.5)});
    // A non-scalar output with an explicit grad_output.
    Tensor r = leaf({1, 2}, {2});
    backward(r * r, F({1, -1}, {2}));
    check_close(grad_of(r), {2, -4});
}

BOOST_AUTO_TEST_CASE(backward_create_graph_then_plain_backward) {
    // a + b hands the same gradient tensor (an expanded view of the seed) to
    // both leaves; each .grad must still be a tensor of its own, or the next
    // in-place accumulation writes into the other leaf's gradient.
    Tensor a = leaf({1, 2, 3}, {3}), b = leaf({4, 5, 6}, {3});
    Tensor y = sum(a + b);
    backward(y, {}, {.create_graph = true});
    BOOST_TEST(!grad_of(a).same_storage(grad_of(b)));
    backward(y);
    check_close(grad_of(a), {2, 2, 2});
    check_close(grad_of(b), {2, 2, 2});
    // With create_graph the accumulated gradient is differentiable:
    // d/dx (x³)' = 6x.
    Tensor x = leaf({2}, {1});
    backward(sum(x * x * x), {}, {.create_graph = true});
    BOOST_TEST(requires_grad(grad_of(x)));
    check_close(grad({sum(grad_of(x))}, {x})[0], {12});
}

BOOST_AUTO_TEST_CASE(create_graph_controls_result_graph) {
    Tensor x = leaf({0.7, 1.1}, {2});
    Tensor y = sum(x * x * x);
    TensorList g0 = grad({y}, {x}, {}, {.retain_graph = true});
    BOOST_TEST(!requires_grad(g0[0]));
    BOOST_TEST(!grad_fn(g0[0]));
    TensorList g1 = grad({y}, {x}, {}, {.create_graph = true});
    BOOST_TEST(requires_grad(g1[0]));
    BOOST_TEST(grad_fn(g1[0]) != nullptr);
    check_close(g1[0], {3 * 0.49, 3 * 1.21});
    // A user cotangent that requires grad is never returned attached when
    // create_graph is off.
    Tensor v = leaf({1, 1}, {2});
    Tensor w = x * 2.0;
    BOOST_TEST(!requires_grad(grad({w}, {w}, {v})[0]));
}

BOOST_AUTO_TEST_CASE(retain_graph) {
    Tensor x = leaf({0.2, -0.4}, {2});
    Tensor y = sum(tanh(x) * x);
    TensorList a = grad({y}, {x}, {}, {.retain_graph = true});
    TensorList b = grad({y}, {x}, {}, {.retain_graph = true});
    check_close(b[0], a[0].to_vector(), 0);
    grad({y}, {x});  // frees the graph
    check_throws<std::runtime_error>([&] { grad({y}, {x}); }, {"a second time", "retain_graph"});
    // create_graph retains by default.
    Tensor y2 = sum(tanh(x) * x);
    grad({y2}, {x}, {}, {.create_graph = true});
    BOOST_CHECK_NO_THROW(grad({y2}, {x}));
}

BOOST_AUTO_TEST_CASE(backward_twice_through_freed_graph) {
    Tensor x = leaf({1, 2}, {2});
    Tensor y = sum(exp(x) * x);
    backward(y);
    check_throws<std::runtime_error>([&] { backward(y); }, {"a second time", "retain_graph"});
}

BOOST_AUTO_TEST_CASE(in_place_modification_of_saved_tensor) {
    Tensor x = leaf({1, 2}, {2});
    Tensor w = F({3, 4}, {2});
    Tensor y = sum(mul(x, w));  // mul saves w for dx = g w
    raw::add_(w, F({1, 1}, {2}));
    check_throws<std::runtime_error>([&] { grad({y}, {x}); }, {"mul", "modified in place"});
    // The same through a view of the saved tensor: views share the counter.
    Tensor x2 = leaf({1, 2}, {2});
    Tensor y2 = sum(exp(x2));
    raw::fill_(raw::narrow(x2, 0, 0, 1), 5.0);
    check_throws<std::runtime_error>([&] { grad({y2}, {x2}); }, {"exp", "modified in place"});
    // Modifying after the backward ran is fine.
    Tensor x3 = leaf({1, 2}, {2});
    Tensor w3 = F({3, 4}, {2});
    Tensor g3 = grad({sum(mul(x3, w3))}, {x3})[0];
    raw::add_(w3, F({1, 1}, {2}));
    check_close(g3, {3, 4});
}

BOOST_AUTO_TEST_CASE(argument_errors) {
    Tensor x = leaf({1, 2}, {2});
    Tensor c = F({1, 2}, {2});
    check_throws<std::invalid_argument>([&] { grad({sum(c)}, {x}); }, {"output 0", "does not require grad"});
    check_throws<std::invalid_argument>([&] { backward(sum(c)); }, {"does not require grad"});
    check_throws<std::invalid_argument>([&] { grad({sum(x)}, {c}); }, {"input 0", "does not require grad"});
    check_throws<std::invalid_argument>([&] { grad({x * 2.0}, {x}); }, {"grad_output is needed", "(2,)"});
    check_throws<std::invalid_argument>([&] { backward(x * 2.0); }, {"grad_output is needed"});
    check_throws<std::invalid_argument>([&] { grad({x * 2.0}, {x}, {F({1, 2, 3}, {3})}); },
                                        {"grad_output 0", "(3,)", "(2,)"});
    check_throws<std::invalid_argument>([&] { grad({x * 2.0}, {x}, {from_vector({1, 2}, {2}, DType::f32)}); },
                                        {"grad_output 0", "f32", "f64"});
    check_throws<std::invalid_argument>([&] { grad({sum(x), sum(x)}, {x}, {Tensor()}); },
                                        {"2 outputs", "1 grad_outputs"});
    Tensor y = x * 2.0;
    check_throws<std::invalid_argument>([&] { set_requires_grad(y); }, {"leaf", "mul_scalar", "detach"});
    // detach() gives a leaf that can be marked.
    Tensor d = detach(y);
    BOOST_TEST(is_leaf(d));
    BOOST_TEST(!requires_grad(d));
    BOOST_CHECK_NO_THROW(set_requires_grad(d));
    BOOST_TEST(d.same_storage(y));
}

BOOST_AUTO_TEST_CASE(malformed_backward_formulas_are_reported) {
    Tensor x = leaf({1, 2}, {2});
    Tensor out = raw::clone(x);
    record("bad_count", {x}, {out}, [](Node&, const TensorList& g) -> TensorList { return {g[0], g[0]}; });
    check_throws<std::logic_error>([&] { grad({sum(out)}, {x}); }, {"bad_count", "2 gradients for 1 inputs"});
    Tensor out2 = raw::clone(x);
    record("bad_shape", {x}, {out2}, [](Node&, const TensorList& g) -> TensorList { return {sum(g[0])}; });
    check_throws<std::logic_error>([&] { grad({sum(out2)}, {x}); }, {"bad_shape", "()", "(2,)"});
    // Recording an input's own handle as the output would make a cycle.
    check_throws<std::logic_error>(
        [&] { record("self_loop", {x}, {x}, [](Node&, const TensorList& g) -> TensorList { return {g[0]}; }); },
        {"self_loop", "same tensor handle"});
}

BOOST_AUTO_TEST_CASE(grad_mode_guards) {
    Tensor x = leaf({1, 2}, {2});
    BOOST_TEST(grad_enabled());
    {
        NoGradGuard ng;
        BOOST_TEST(!grad_enabled());
        Tensor y = x * x;
        BOOST_TEST(!requires_grad(y));
        BOOST_TEST(!grad_fn(y));
        {
            EnableGradGuard eg;
            BOOST_TEST(grad_enabled());
            Tensor z = x * x;
            BOOST_TEST(requires_grad(z));
            BOOST_TEST(grad_fn(z) != nullptr);
            {
                NoGradGuard inner;
                BOOST_TEST(!grad_enabled());
            }
            BOOST_TEST(grad_enabled());
        }
        BOOST_TEST(!grad_enabled());
    }
    BOOST_TEST(grad_enabled());
    // Restored when the scope is left by an exception.
    try {
        NoGradGuard ng;
        throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
    }
    BOOST_TEST(grad_enabled());
    // ... including one thrown by a backward formula inside the engine,
    // which runs formulas with grad mode = create_graph.
    Tensor out = raw::clone(x);
    record("throwing", {x}, {out}, [](Node&, const TensorList&) -> TensorList {
        BOOST_TEST(!grad_enabled());
        throw std::runtime_error("formula failed");
    });
    BOOST_CHECK_THROW(grad({sum(out)}, {x}), std::runtime_error);
    BOOST_TEST(grad_enabled());
    {
        NoGradGuard ng;
        Tensor o2 = raw::clone(x);
        BOOST_TEST(!requires_grad(o2));
    }
    // Under NoGradGuard, grad(create_graph=true) still records the backward graph.
    Tensor y = sum(x * x * x);
    {
        NoGradGuard ng;
        TensorList g = grad({y}, {x}, {}, {.create_graph = true});
        BOOST_TEST(requires_grad(g[0]));
        BOOST_TEST(!grad_enabled());
    }
}

BOOST_AUTO_TEST_CASE(gradcheck_detects_wrong_backward) {
    // square with the factor 2 missing from its derivative.
    auto wrong_square = [](const Tensor& x) {
        Tensor out = raw::unary(raw::Unary::square, x);
        record("wrong_square", {x}, {out}, [x](Node&, const TensorList& g) -> TensorList { return {mul(g[0], x)}; });
        return out;
    };
    Generator gen(3);
    Tensor x = set_requires_grad(randn({2, 3}, gen, DType::f64));
    GradcheckResult bad = gradcheck([&](const TensorList& in) -> TensorList { return {wrong_square(in[0])}; }, {x});
    BOOST_TEST(!bad.ok);
    BOOST_TEST(!bool(bad));
    BOOST_TEST(bad.message.find("mismatch") != std::string::npos, bad.message);
    BOOST_TEST(bad.message.find("analytic") != std::string::npos, bad.message);
    // The correct op passes the same check.
    GradcheckResult good = gradcheck([](const TensorList& in) -> TensorList { return {square(in[0])}; }, {x});
    BOOST_TEST(good.ok, good.message);
    BOOST_TEST(gradgradcheck([](const TensorList& in) -> TensorList { return {square(in[0])}; }, {x}).ok);

    // Right first derivative built from a raw (non-differentiable) kernel:
    // gradcheck passes, gradgradcheck must not.
    auto raw_backward_square = [](const Tensor& x) {
        Tensor out = raw::unary(raw::Unary::square, x);
        record("raw_backward_square", {x}, {out}, [x](Node&, const TensorList& g) -> TensorList {
            return {mul(g[0], raw::binary_scalar(raw::Binary::mul, x, 2.0))};
        });
        return out;
    };
    TensorFn f = [&](const TensorList& in) -> TensorList { return {raw_backward_square(in[0])}; };
    BOOST_TEST(gradcheck(f, {x}).ok);
    GradcheckResult gg = gradgradcheck(f, {x});
    BOOST_TEST(!gg.ok);
    BOOST_TEST(gg.message.find("second derivative") != std::string::npos, gg.message);

    // A gradient w.r.t. the wrong one of two inputs, and an f32 input.
    auto swapped_mul = [](const Tensor& a, const Tensor& b) {
        Tensor out = raw::binary(raw::Binary::mul, a, b);
        record("swapped_mul", {a, b}, {out}, [a, b](Node&, const TensorList& g) -> TensorList {
            return {mul(g[0], a), mul(g[0], b)};
        });
        return out;
    };
    Tensor y = set_requires_grad(randn({2, 3}, gen, DType::f64));
    BOOST_TEST(!gradcheck([&](const TensorList& in) -> TensorList { return {swapped_mul(in[0], in[1])}; }, {x, y}).ok);
    Tensor x32 = set_requires_grad(randn({2}, gen, DType::f32));
    check_throws<std::invalid_argument>(
        [&] { gradcheck([](const TensorList& in) -> TensorList { return {square(in[0])}; }, {x32}); }, {"f64"});
}

BOOST_AUTO_TEST_SUITE_END()
