// The engine: an iterative, dependency-counted traversal (no recursion).
//  1. Walk the graph from the outputs with an explicit stack, in post-order
//     (children before parents), numbering every reachable node once.
//  2. Mark the nodes that lead to a wanted gradient ("needed"), and count for
//     every needed node how many needed parents feed it.
//  3. Run a node once all its gradient contributions have arrived (count 0),
//     summing contributions per output slot; pass the results along its edges.
// Per-node state lives in vectors indexed by the post-order number, so the
// only hashing is one lookup per edge while numbering.
#include "autograd/engine.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <unordered_map>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tensor/ops.h"

namespace miras {
namespace {

struct Task {
    // Targets of grad(): (node, slot) -> position in the result list.
    struct Target { Node* node; int slot; size_t pos; };
    std::vector<Target> targets;  // a list, not a map: few entries, no hashing
    bool accumulate = false;  // backward(): write leaves' .grad
    bool create_graph = false;
    bool retain_graph = false;
};

// Every node reachable from the roots, numbered in post-order, with its
// edges' children as numbers (CSR: children of node i are
// child[first[i] .. first[i + 1]), -1 for an edge without a node).
struct Graph {
    std::vector<Node*> nodes;
    std::vector<size_t> first{0};
    std::vector<int> child;
    uint64_t id = 0;  // this walk's stamp on the nodes it visited

    int find(const Node* n) const { return n->walk_id == id ? n->walk_index : -1; }
};

// Nodes numbered below min_topo cannot reach any wanted gradient (see
// Node::topo_nr) and are not visited: a grad() taken inside a long loop costs
// the part of the graph above its inputs, not the whole history. Visited
// nodes are stamped with the walk's id (no hash map: this is most of the
// fixed cost of a small backward).
Graph number_graph(const std::vector<Node*>& roots, uint64_t min_topo) {
    static std::atomic<uint64_t> walks{0};
    Graph g;
    g.id = ++walks;
    struct Frame { Node* n; size_t next; };
    std::vector<Frame> stack;
    stack.reserve(16);
    auto visit = [&](Node* n) {
        if (n->walk_id == g.id) return;
        n->walk_id = g.id;
        n->walk_index = -1;  // on the stack; numbered when it finishes
        stack.push_back({n, 0});
    };
    for (Node* r : roots) {
        visit(r);
        while (!stack.empty()) {
            Frame& f = stack.back();
            if (f.next < f.n->next_edges.size()) {
                Node* c = f.n->next_edges[f.next++].node.get();
                if (c && c->topo_nr >= min_topo) visit(c);  // may reallocate `stack`: `f` is not used after this
                continue;
            }
            // A DAG: every child has finished before its parent, so has a number.
            f.n->walk_index = (int)g.nodes.size();
            g.nodes.push_back(f.n);
            for (const Edge& e : f.n->next_edges) g.child.push_back(e.node ? g.find(e.node.get()) : -1);
            g.first.push_back(g.child.size());
            stack.pop_back();
        }
    }
    return g;
}

// Whether the engine may add a contribution g into the buffer `buf` in place:
// nothing else holds buf or any view of its storage (a backward formula may
// pass one gradient to several inputs, e.g. add's {g, g}, or a view of it),
// it is a plain contiguous tensor outside any graph, and g has its shape.
// Without create_graph only: a recorded sum must stay an op of the graph.
// This is what keeps a node with many consumers (a weight read by every
// token, say) from allocating a new tensor per contribution.
bool owns_alone(const Tensor& buf, const Tensor& g) {
    return buf.impl_shared().use_count() == 1 && buf.impl().storage.use_count() == 1 && !buf.impl().autograd &&
           buf.is_contiguous() && buf.shape() == g.shape() && buf.dtype() == g.dtype();
}

// .grad += g for the leaf behind an AccumulateGrad node. The stored gradient
// is always a tensor of its own (never the incoming one, which may be an
// expanded view or shared with another leaf), so a later in-place
// accumulation cannot write through to anything else.
void accumulate_leaf(Node& acc, const Tensor& g, bool create_graph) {
    std::shared_ptr<TensorImpl> impl = acc.leaf.lock();
    if (!impl) return;  // the leaf is gone; nobody can read its gradient
    Tensor leaf(impl);
    Tensor old = grad_of(leaf);
    if (create_graph) {
        // Differentiable, so the gradient keeps its graph (clone records a node).
        set_grad(leaf, old.defined() ? add(old, g) : clone(g));
    } else if (!old.defined()) {
        set_grad(leaf, raw::clone(g));
    } else if (requires_grad(old)) {
        set_grad(leaf, raw::binary(raw::Binary::add, old, g));  // keep the old graph intact
    } else {
        raw::add_(old, g);
    }
}

void check_versions(const Node& n) {
    for (auto& [st, ver] : n.saved_versions) {
        auto s = st.lock();
        if (s && s->version != ver)
            throw std::runtime_error(n.name + ": a tensor it saved for the gradient was modified in place (version " +
                                     std::to_string(ver) + " -> " + std::to_string(s->version) +
                                     "); use an out-of-place op, or clone() before modifying");
    }
}

TensorList run(const TensorList& outputs, const TensorList& grad_outputs, size_t n_inputs, Task& task,
               bool allow_unused) {
    if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
        throw std::invalid_argument("grad: " + std::to_string(outputs.size()) + " outputs but " +
                                    std::to_string(grad_outputs.size()) + " grad_outputs");
    // Seeds: the gradient of each output, at its node's output slot.
    struct Seed { Edge edge; Tensor g; };
    std::vector<Seed> seeds;
    std::vector<Node*> roots;
    for (size_t i = 0; i < outputs.size(); ++i) {
        const Tensor& out = outputs[i];
        Edge e = gradient_edge(out);
        if (!e.node)
            throw std::invalid_argument("grad: output " + std::to_string(i) + " of shape " + shape_str(out.shape()) +
                                        " does not require grad and has no grad_fn");
        Tensor seed;
        if (!grad_outputs.empty() && grad_outputs[i].defined()) {
            seed = grad_outputs[i];
            if (seed.shape() != out.shape())
                throw std::invalid_argument("grad: grad_output " + std::to_string(i) + " has shape " +
                                            shape_str(seed.shape()) + " but the output has " + shape_str(out.shape()));
            if (seed.dtype() != out.dtype())
                throw std::invalid_argument(std::string("grad: grad_output ") + std::to_string(i) + " is " +
                                            dtype_name(seed.dtype()) + " but the output is " + dtype_name(out.dtype()));
        } else {
            if (out.numel() != 1)
                throw std::invalid_argument("grad: a grad_output is needed for output " + std::to_string(i) +
                                            " of shape " + shape_str(out.shape()) + " (implicit only for one element)");
            seed = ones(out.shape(), out.dtype());
        }
        roots.push_back(e.node.get());
        seeds.push_back({std::move(e), std::move(seed)});  // the edge keeps a fresh accumulator alive
    }

    // 1. Number the graph.
    uint64_t min_topo = 0;
    if (!task.accumulate && !task.targets.empty()) {
        min_topo = UINT64_MAX;
        for (const auto& t : task.targets) min_topo = std::min(min_topo, t.node->topo_nr);
    }
    Graph G = number_graph(roots, min_topo);
    const size_t N = G.nodes.size();

    // 2. Needed nodes (children come first in post-order) and dependency counts.
    // Per node: a grad() target, leads to a wanted gradient, needed parents still to run.
    struct NodeState { int deps = 0; bool target = false; bool needed = false; };
    std::vector<NodeState> st(N);
    for (const auto& t : task.targets)
        if (int i = G.find(t.node); i >= 0) st[i].target = 1;
    for (size_t i = 0; i < N; ++i) {
        bool need = st[i].target || (task.accumulate && G.nodes[i]->is_accumulator);
        for (size_t j = G.first[i]; j < G.first[i + 1] && !need; ++j)
            if (G.child[j] >= 0 && st[G.child[j]].needed) need = true;
        st[i].needed = need;
    }
    for (size_t i = 0; i < N; ++i)
        if (st[i].needed)
            for (size_t j = G.first[i]; j < G.first[i + 1]; ++j)
                if (G.child[j] >= 0 && st[G.child[j]].needed) ++st[G.child[j]].deps;

    // Gradient buffers, one slot per node output; contributions are summed,
    // in place where that cannot be seen (owns_alone), else into a new tensor.
    std::vector<TensorList> buffers(N);
    auto deposit = [&](int i, int slot, const Tensor& g) {
        TensorList& buf = buffers[i];
        buf.resize(G.nodes[i]->outputs.size());
        if (!buf[slot].defined()) {
            buf[slot] = g;
        } else if (!task.create_graph && owns_alone(buf[slot], g)) {
            raw::add_(buf[slot], g);
        } else {
            GradModeGuard gm(task.create_graph);
            buf[slot] = add(buf[slot], g);
        }
    };
    std::vector<int> ready;
    for (const Seed& s : seeds) {
        int i = G.find(s.edge.node.get());
        deposit(i, s.edge.input_nr, s.g);
        if (st[i].needed && st[i].deps == 0 && std::find(ready.begin(), ready.end(), i) == ready.end()) ready.push_back(i);
    }

    // 3. Execute.
    TensorList results(n_inputs);
    while (!ready.empty()) {
        int i = ready.back();
        ready.pop_back();
        Node* n = G.nodes[i];
        TensorList grads = std::move(buffers[i]);
        grads.resize(n->outputs.size());
        for (size_t k = 0; k < grads.size(); ++k)
            if (!grads[k].defined()) grads[k] = zeros(n->outputs[k].first, n->outputs[k].second);
        if (st[i].target)
            for (const auto& t : task.targets)
                if (t.node == n) results[t.pos] = grads[t.slot];
        if (n->is_accumulator) {
            if (task.accumulate) accumulate_leaf(*n, grads[0], task.create_graph);
            continue;
        }
        bool feeds = false;
        for (size_t j = G.first[i]; j < G.first[i + 1]; ++j)
            if (G.child[j] >= 0 && st[G.child[j]].needed) feeds = true;
        if (!feeds) continue;  // a target with nothing wanted below it
        if (!n->fn)
            throw std::runtime_error("backward through " + n->name +
                                     " a second time: its saved values were freed by the first pass; use "
                                     ".retain_graph = true on the first call");
        check_versions(*n);
        TensorList in_grads;
        {
            // The backward formula is made of ops: with create_graph they
            // record a graph of their own, which is what makes the result
            // differentiable again.
            GradModeGuard gm(task.create_graph);
            in_grads = n->fn(*n, grads);
        }
        if (in_grads.size() != n->next_edges.size())
            throw std::logic_error(n->name + ": backward returned " + std::to_string(in_grads.size()) +
                                   " gradients for " + std::to_string(n->next_edges.size()) + " inputs");
        if (!task.retain_graph) n->release();
        for (size_t k = 0; k < in_grads.size(); ++k) {
            int c = G.child[G.first[i] + k];
            if (c < 0 || !st[c].needed) continue;
            const Tensor& g = in_grads[k];
            if (g.defined()) {
                const Edge& e = n->next_edges[k];
                const auto& [want_shape, want_dtype] = e.node->outputs[e.input_nr];
                if (g.shape() != want_shape || g.dtype() != want_dtype)
                    throw std::logic_error(n->name + ": gradient for input " + std::to_string(k) + " is " +
                                           dtype_name(g.dtype()) + " " + shape_str(g.shape()) + ", expected " +
                                           dtype_name(want_dtype) + " " + shape_str(want_shape));
                deposit(c, e.input_nr, g);
            }
            if (--st[c].deps == 0) ready.push_back(c);
        }
    }
    if (!task.create_graph)
        for (auto& r : results)
            if (r.defined() && requires_grad(r)) r = detach(r);
    for (size_t i = 0; i < results.size(); ++i)
        if (!results[i].defined() && !task.accumulate && !allow_unused)
            throw std::invalid_argument("grad: input " + std::to_string(i) +
                                        " is not used by the outputs (pass .allow_unused = true for an undefined gradient, .materialize_grads = true for zeros)");
    return results;
}

}  // namespace

TensorList grad(const TensorList& outputs, const TensorList& inputs, const TensorList& grad_outputs,
                const GradOptions& options) {
    Task task;
    task.create_graph = options.create_graph;
    task.retain_graph = options.retain_graph.value_or(options.create_graph);
    std::vector<std::shared_ptr<Node>> keep;  // accumulators created here must live through the run
    for (size_t i = 0; i < inputs.size(); ++i) {
        Edge e = gradient_edge(inputs[i]);
        if (!e.node)
            throw std::invalid_argument("grad: input " + std::to_string(i) + " of shape " + shape_str(inputs[i].shape()) +
                                        " does not require grad");
        task.targets.push_back({e.node.get(), e.input_nr, i});
        keep.push_back(e.node);
    }
    TensorList results = run(outputs, grad_outputs, inputs.size(), task, options.allow_unused || options.materialize_grads);
    if (options.materialize_grads)
        for (size_t i = 0; i < results.size(); ++i)
            if (!results[i].defined()) results[i] = zeros_like(inputs[i]);
    return results;
}

void backward(const Tensor& output, const Tensor& grad_output, const BackwardOptions& options) {
    Task task;
    task.accumulate = true;
    task.create_graph = options.create_graph;
    task.retain_graph = options.retain_graph || options.create_graph;
    run({output}, {grad_output}, 0, task, true);
}

}  // namespace miras
