// Graph lifetime: a graph is freed with the last tensor that reaches it, ops
// that save their output make no cycle, leaf accumulators go with the graph,
// and a chain of a million nodes is run and destroyed without recursion
// (under the default 8 MB stack, and under ASan, whose frames are larger).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "autograd/ops.h"

using namespace miras;

namespace {

Tensor F(const std::vector<double>& v, const Shape& s) { return from_vector(v, s, DType::f64); }
Tensor leaf(const std::vector<double>& v, const Shape& s) { return set_requires_grad(F(v, s)); }

// Every node reachable from t's grad_fn, weakly (iterative walk).
std::vector<std::weak_ptr<Node>> all_nodes(const Tensor& t) {
    std::vector<std::weak_ptr<Node>> out;
    std::vector<std::shared_ptr<Node>> stack = {grad_fn(t)};
    std::vector<Node*> seen;
    while (!stack.empty()) {
        std::shared_ptr<Node> n = stack.back();
        stack.pop_back();
        if (!n || std::find(seen.begin(), seen.end(), n.get()) != seen.end()) continue;
        seen.push_back(n.get());
        out.push_back(n);
        for (auto& e : n->next_edges) stack.push_back(e.node);
    }
    return out;
}

bool all_expired(const std::vector<std::weak_ptr<Node>>& ws) {
    for (auto& w : ws)
        if (!w.expired()) return false;
    return true;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(lifetime)

BOOST_AUTO_TEST_CASE(graph_freed_with_last_handle) {
    Tensor x = leaf({0.5, -1.0}, {2}), w = leaf({2.0, 3.0}, {2});
    std::vector<std::weak_ptr<Node>> nodes;
    std::weak_ptr<Node> top;
    {
        Tensor h = tanh(x * w);
        Tensor y = sum(h * h + x);
        nodes = all_nodes(y);
        top = grad_fn(y);
        BOOST_TEST(nodes.size() >= 6u);  // sum, add, mul, tanh, mul, two accumulators
        BOOST_TEST(!top.expired());
        {
            Tensor y_copy = y;  // a second handle keeps the graph
            y = Tensor();
            h = Tensor();
            BOOST_TEST(!top.expired());
        }
        BOOST_TEST(top.expired());
    }
    BOOST_TEST(all_expired(nodes));
    // The leaves themselves are untouched.
    BOOST_TEST(x.to_vector()[0] == 0.5);
    BOOST_TEST(!grad_of(x).defined());
}

BOOST_AUTO_TEST_CASE(graph_freed_after_backward) {
    Tensor x = leaf({0.5, -1.0}, {2});
    std::vector<std::weak_ptr<Node>> nodes;
    {
        Tensor y = sum(exp(x) * x);
        nodes = all_nodes(y);
        backward(y);
        // backward() without retain_graph drops the formulas; the nodes stay
        // while y can still reach them.
        BOOST_TEST(!all_expired(nodes));
        BOOST_TEST(!grad_fn(y)->fn);
    }
    BOOST_TEST(all_expired(nodes));
    BOOST_TEST(grad_of(x).defined());
}

BOOST_AUTO_TEST_CASE(saved_outputs_make_no_cycle) {
    // These ops keep their output's data for the backward formula and
    // re-attach it on use; holding the output itself would be a cycle.
    Generator gen(1);
    Tensor x = set_requires_grad(randn({2, 3}, gen, DType::f64, 0, 0.5));
    std::vector<std::pair<const char*, Tensor (*)(const Tensor&)>> ops = {
        {"exp", [](const Tensor& t) { return exp(t); }},
        {"tanh", [](const Tensor& t) { return tanh(t); }},
        {"sigmoid", [](const Tensor& t) { return sigmoid(t); }},
        {"sqrt", [](const Tensor& t) { return sqrt(exp(t)); }},
        {"softmax", [](const Tensor& t) { return softmax(t, -1); }},
        {"log_softmax", [](const Tensor& t) { return log_softmax(t, -1); }},
        {"logsumexp", [](const Tensor& t) { return logsumexp(t, 1); }},
    };
    for (auto& [name, op] : ops) {
        BOOST_TEST_CONTEXT(name) {
            std::weak_ptr<Node> node;
            {
                Tensor y = op(x);
                node = grad_fn(y);
                BOOST_REQUIRE(!node.expired());
                BOOST_TEST(node.lock()->saved_outputs.size() == 1u);
            }
            BOOST_TEST(node.expired());
            // A create_graph pass makes the gradient depend on the saved
            // output (re-attached to the node): the gradient keeps the node,
            // and dropping both frees it.
            {
                Tensor y = op(x);
                node = grad_fn(y);
                Tensor g = grad({sum(y * y)}, {x}, {}, {.create_graph = true})[0];
                y = Tensor();
                BOOST_TEST(!node.expired());
                g = Tensor();
            }
            BOOST_TEST(node.expired());
        }
    }
}

BOOST_AUTO_TEST_CASE(leaf_accumulator_freed_with_graph) {
    Tensor x = leaf({1.0, 2.0}, {2});
    std::weak_ptr<Node> acc;
    {
        Tensor y = sum(exp(x));
        acc = grad_fn(y)->next_edges[0].node->next_edges[0].node;  // sum -> exp -> AccumulateGrad
        BOOST_REQUIRE(!acc.expired());
        BOOST_TEST(acc.lock()->is_accumulator);
        // Two graphs over one leaf share its accumulator.
        Tensor z = sum(x * 2.0);
        BOOST_TEST(grad_fn(z)->next_edges[0].node->next_edges[0].node == acc.lock());
    }
    BOOST_TEST(acc.expired());
    // The accumulator holds its leaf weakly: a graph does not keep a leaf
    // alive unless a formula saved it (mul_scalar saves only the scalar).
    std::weak_ptr<TensorImpl> leaf_impl;
    Tensor y;
    {
        Tensor x2 = leaf({1.0}, {1});
        leaf_impl = x2.impl_shared();
        y = sum(x2 * 3.0);
    }
    BOOST_TEST(leaf_impl.expired());
    BOOST_CHECK_NO_THROW(backward(y));  // nobody to accumulate into: a no-op
}

BOOST_AUTO_TEST_CASE(backward_create_graph_cycle_is_broken_by_clearing_grad) {
    // backward(create_graph) stores a differentiable .grad whose graph
    // reaches back to the leaf (d(x³)/dx = 3x² saves x): leaf -> grad ->
    // graph -> leaf. As in PyTorch, this is a cycle until the gradient is
    // cleared; grad() (functional) has no such cycle.
    std::weak_ptr<TensorImpl> leaf_impl;
    std::vector<std::weak_ptr<Node>> grad_graph;
    {
        Tensor x = leaf({1.5}, {1});
        leaf_impl = x.impl_shared();
        backward(sum(x * x * x), {}, {.create_graph = true});
        grad_graph = all_nodes(grad_of(x));
        BOOST_TEST(!grad_graph.empty());
        set_grad(x, Tensor());
    }
    BOOST_TEST(leaf_impl.expired());
    BOOST_TEST(all_expired(grad_graph));
    // With grad(): no cycle, nothing to clear.
    std::vector<std::weak_ptr<Node>> g_graph;
    {
        Tensor x = leaf({1.5}, {1});
        leaf_impl = x.impl_shared();
        Tensor g = grad({sum(x * x * x)}, {x}, {}, {.create_graph = true})[0];
        g_graph = all_nodes(g);
    }
    BOOST_TEST(leaf_impl.expired());
    BOOST_TEST(all_expired(g_graph));
}

BOOST_AUTO_TEST_CASE(million_node_chain) {
    // y = x · (1 + 1e-6)^n for n = 10⁶: backward through every node, then
    // destruction, both without recursion.
    const int n = 1000000;
    const double c = 1 + 1e-6;
    Tensor x = leaf({1.0}, {});
    std::weak_ptr<Node> last, acc;
    {
        Tensor y = x;
        for (int i = 0; i < n; ++i) y = y * c;
        last = grad_fn(y);
        backward(y);
        double want = std::pow(c, n);
        BOOST_TEST(std::abs(grad_of(x).item() - want) <= 1e-9 * want);
        // Find the accumulator at the bottom without recursion.
        std::shared_ptr<Node> node = grad_fn(y);
        int depth = 0;
        while (!node->is_accumulator) {
            node = node->next_edges[0].node;
            ++depth;
        }
        BOOST_TEST(depth == n);
        acc = node;
        BOOST_TEST(!last.expired());
    }
    BOOST_TEST(last.expired());
    BOOST_TEST(acc.expired());
}

BOOST_AUTO_TEST_CASE(long_chain_with_captured_inputs_destroyed_unrun) {
    // Each mul captures both inputs (the previous link and a constant), so
    // destroying a node releases tensors that own the next node: the
    // destructor must not recurse through the captured handles either.
    const int n = 200000;
    Tensor x = leaf({1.0}, {});
    Tensor c = F({1.0}, {});
    std::weak_ptr<Node> last;
    {
        Tensor y = x;
        for (int i = 0; i < n; ++i) y = mul(y, c);
        last = grad_fn(y);
    }
    BOOST_TEST(last.expired());
}

BOOST_AUTO_TEST_SUITE_END()
