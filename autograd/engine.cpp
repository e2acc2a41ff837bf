// The engine: an iterative, dependency-counted traversal (no recursion).
//  1. Walk the graph from the outputs with an explicit stack, in post-order,
//     and mark the nodes that lead to a wanted gradient ("needed").
//  2. Count, for every needed node, how many needed nodes feed it.
//  3. Run a node once all its gradient contributions have arrived, summing
//     contributions per input slot; pass the results along its edges.
#include "autograd/engine.h"

#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tensor/ops.h"

namespace miras {
namespace {

struct Task {
    // Targets of grad(): (node, slot) -> position in the result list.
    std::unordered_map<Node*, std::vector<std::pair<int, size_t>>> targets;
    bool accumulate = false;  // backward(): write leaves' .grad
    bool create_graph = false;
    bool retain_graph = false;
};

// Post-order walk from the roots; returns every reachable node once, children first.
std::vector<Node*> post_order(const std::vector<Node*>& roots) {
    std::vector<Node*> order;
    std::unordered_set<Node*> seen;
    std::vector<std::pair<Node*, size_t>> stack;  // (node, next edge to visit)
    for (Node* r : roots) {
        if (!seen.insert(r).second) continue;
        stack.push_back({r, 0});
        while (!stack.empty()) {
            auto& [n, i] = stack.back();
            if (i < n->next_edges.size()) {
                Node* c = n->next_edges[i++].node.get();
                if (c && seen.insert(c).second) stack.push_back({c, 0});
            } else {
                order.push_back(n);
                stack.pop_back();
            }
        }
    }
    return order;
}

void accumulate_leaf(Node& acc, const Tensor& g, bool create_graph) {
    std::shared_ptr<TensorImpl> impl = acc.leaf.lock();
    if (!impl) return;  // the leaf is gone; nobody can read its gradient
    Tensor leaf(impl);
    Tensor old = grad_of(leaf);
    if (create_graph) {
        set_grad(leaf, old.defined() ? add(old, g) : g);
    } else if (!old.defined()) {
        set_grad(leaf, raw::clone(g));  // own copy: g may alias other memory
    } else if (requires_grad(old)) {
        set_grad(leaf, raw::binary(raw::Binary::add, old, g));  // keep the old graph intact
    } else {
        raw::add_(old, g);
    }
}

TensorList run(const TensorList& outputs, const TensorList& grad_outputs, size_t n_inputs, Task& task,
               bool allow_unused) {
    if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
        throw std::invalid_argument("grad: " + std::to_string(outputs.size()) + " outputs but " +
                                    std::to_string(grad_outputs.size()) + " grad_outputs");
    // Seeds.
    std::unordered_map<Node*, TensorList> buffers;
    std::vector<Node*> roots;
    std::vector<std::shared_ptr<Node>> keep_alive;
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
        } else {
            if (out.numel() != 1)
                throw std::invalid_argument("grad: a grad_output is needed for output " + std::to_string(i) +
                                            " of shape " + shape_str(out.shape()) + " (implicit only for one element)");
            seed = ones(out.shape(), out.dtype());
        }
        auto& buf = buffers[e.node.get()];
        buf.resize(e.node->outputs.size());
        {
            GradModeGuard gm(task.create_graph);
            buf[e.input_nr] = buf[e.input_nr].defined() ? add(buf[e.input_nr], seed) : seed;
        }
        roots.push_back(e.node.get());
        keep_alive.push_back(e.node);
    }

    // 1. Which nodes lead to a wanted gradient.
    std::vector<Node*> order = post_order(roots);
    std::unordered_set<Node*> needed;
    for (Node* n : order) {  // children come first
        bool need = task.targets.count(n) || (task.accumulate && n->is_accumulator);
        for (auto& e : n->next_edges)
            if (e.node && needed.count(e.node.get())) need = true;
        if (need) needed.insert(n);
    }
    // 2. Dependency counts among needed nodes.
    std::unordered_map<Node*, int> deps;
    for (Node* n : order) {
        if (!needed.count(n)) continue;
        for (auto& e : n->next_edges)
            if (e.node && needed.count(e.node.get())) ++deps[e.node.get()];
    }
    // 3. Execute.
    TensorList results(n_inputs);
    std::vector<Node*> ready;
    for (Node* r : roots)
        if (needed.count(r) && deps[r] == 0 && std::find(ready.begin(), ready.end(), r) == ready.end())
            ready.push_back(r);
    while (!ready.empty()) {
        Node* n = ready.back();
        ready.pop_back();
        TensorList grads = std::move(buffers[n]);
        buffers.erase(n);
        grads.resize(n->outputs.size());
        for (size_t i = 0; i < grads.size(); ++i)
            if (!grads[i].defined()) grads[i] = zeros(n->outputs[i].first, n->outputs[i].second);
        if (auto it = task.targets.find(n); it != task.targets.end())
            for (auto [slot, pos] : it->second) results[pos] = grads[slot];
        if (n->is_accumulator) {
            if (task.accumulate) accumulate_leaf(*n, grads[0], task.create_graph);
            continue;
        }
        bool feeds = false;
        for (auto& e : n->next_edges)
            if (e.node && needed.count(e.node.get())) feeds = true;
        if (!feeds) continue;
        if (!n->fn)
            throw std::runtime_error("backward through " + n->name +
                                     " a second time: its saved values were freed by the first pass; use "
                                     "retain_graph=true on the first call");
        for (auto& [st, ver] : n->saved_versions) {
            auto s = st.lock();
            if (s && s->version != ver)
                throw std::runtime_error(n->name + ": a tensor it saved for the gradient was modified in place (version " +
                                         std::to_string(ver) + " -> " + std::to_string(s->version) + ")");
        }
        TensorList in_grads;
        {
            GradModeGuard gm(task.create_graph);
            in_grads = n->fn(*n, grads);
        }
        if (in_grads.size() != n->next_edges.size())
            throw std::logic_error(n->name + ": backward returned " + std::to_string(in_grads.size()) +
                                   " gradients for " + std::to_string(n->next_edges.size()) + " inputs");
        if (!task.retain_graph) n->release();
        for (size_t i = 0; i < in_grads.size(); ++i) {
            const Edge& e = n->next_edges[i];
            if (!e.node || !needed.count(e.node.get())) continue;
            Tensor& g = in_grads[i];
            if (g.defined()) {
                const Shape& want = e.node->outputs[e.input_nr].first;
                if (g.shape() != want)
                    throw std::logic_error(n->name + ": gradient for input " + std::to_string(i) + " has shape " +
                                           shape_str(g.shape()) + ", expected " + shape_str(want));
                auto& buf = buffers[e.node.get()];
                buf.resize(e.node->outputs.size());
                GradModeGuard gm(task.create_graph);
                buf[e.input_nr] = buf[e.input_nr].defined() ? add(buf[e.input_nr], g) : g;
            }
            if (--deps[e.node.get()] == 0) ready.push_back(e.node.get());
        }
    }
    if (!task.create_graph)
        for (auto& r : results)
            if (r.defined() && requires_grad(r)) r = detach(r);
    for (size_t i = 0; i < results.size(); ++i)
        if (!results[i].defined() && !task.accumulate && !allow_unused)
            throw std::invalid_argument("grad: input " + std::to_string(i) +
                                        " is not used by the outputs (pass allow_unused=true to get an undefined gradient)");
    return results;
}

}  // namespace

TensorList grad(const TensorList& outputs, const TensorList& inputs, const TensorList& grad_outputs, bool create_graph,
                int retain_graph, bool allow_unused) {
    Task task;
    task.create_graph = create_graph;
    task.retain_graph = retain_graph < 0 ? create_graph : retain_graph != 0;
    std::vector<std::shared_ptr<Node>> keep;  // accumulators created here must live through the run
    for (size_t i = 0; i < inputs.size(); ++i) {
        Edge e = gradient_edge(inputs[i]);
        if (!e.node)
            throw std::invalid_argument("grad: input " + std::to_string(i) + " of shape " + shape_str(inputs[i].shape()) +
                                        " does not require grad");
        task.targets[e.node.get()].push_back({e.input_nr, i});
        keep.push_back(e.node);
    }
    return run(outputs, grad_outputs, inputs.size(), task, allow_unused);
}

void backward(const Tensor& output, const Tensor& grad_output, bool retain_graph, bool create_graph) {
    Task task;
    task.accumulate = true;
    task.create_graph = create_graph;
    task.retain_graph = retain_graph || create_graph;
    run({output}, {grad_output}, 0, task, true);
}

}  // namespace miras
