#pragma once
// The graph. A Node is one recorded op: its backward formula, edges to the
// nodes that produced its inputs, and the shapes of its outputs. Edges point
// backwards only; a node never owns its outputs (it may keep their *data*,
// re-attached on use), so a graph has no reference cycles and is freed when
// the last tensor that reaches it goes.
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace miras {

struct Node;
using TensorList = std::vector<Tensor>;

// Where a gradient goes: input slot `input_nr` of `node` (the output index of
// the op that made the tensor). An edge with no node carries no gradient.
struct Edge {
    std::shared_ptr<Node> node;
    int input_nr = 0;
};

// backward(self, grads of the outputs) -> grads of the inputs, one per input
// (undefined where an input needs none). Written with differentiable ops.
using BackwardFn = std::function<TensorList(Node& self, const TensorList& grad_outputs)>;

struct Node : std::enable_shared_from_this<Node> {
    std::string name;
    std::vector<Edge> next_edges;                   // one per op input
    std::vector<std::pair<Shape, DType>> outputs;   // geometry per output
    BackwardFn fn;                                  // empty once released
    TensorList saved_outputs;                       // output data (no autograd) if the formula needs it
    // Storage versions of the inputs at record time: an in-place write after
    // that makes the saved values stale, and backward refuses to run.
    std::vector<std::pair<std::weak_ptr<Storage>, uint64_t>> saved_versions;
    std::weak_ptr<TensorImpl> leaf;                 // set only on AccumulateGrad nodes
    bool is_accumulator = false;
    // 1 + the largest topo_nr among the nodes it points to (0 for leaves'
    // accumulators): a node can only reach nodes with a smaller number, so
    // grad() never walks below the smallest number among its inputs.
    uint64_t topo_nr = 0;
    // Scratch of the engine's graph walk (which walk last visited this node,
    // and its number in that walk); single-threaded, like the engine.
    uint64_t walk_id = 0;
    int walk_index = -1;

    bool needs_input_grad(size_t i) const { return i < next_edges.size() && next_edges[i].node != nullptr; }
    // Output i re-attached to this node, so formulas that use the output
    // (exp, tanh, softmax, ...) stay differentiable.
    Tensor output(size_t i);
    void release();  // drop the formula and saved data (after a backward without retain_graph)
    ~Node();         // iterative: a chain of a million nodes is freed without recursion
};

// Per-tensor autograd data, stored in TensorImpl's opaque slot.
struct AutogradMeta : AutogradMetaBase {
    bool requires_grad = false;
    std::shared_ptr<Node> grad_fn;   // null for leaves
    int output_nr = 0;
    Tensor grad;                     // accumulated by backward() on leaves
    std::weak_ptr<Node> accumulator; // the leaf's AccumulateGrad node, while a graph holds it
};

AutogradMeta* autograd_meta(const Tensor& t);  // null if none
AutogradMeta& ensure_autograd_meta(const Tensor& t);

bool requires_grad(const Tensor& t);
// Marks a leaf as a variable to differentiate; returns t for chaining.
const Tensor& set_requires_grad(const Tensor& t, bool on = true);
bool is_leaf(const Tensor& t);
std::shared_ptr<Node> grad_fn(const Tensor& t);
// A new handle on the same data, cut from the graph.
Tensor detach(const Tensor& t);
// The .grad of a leaf (undefined if none accumulated yet).
Tensor grad_of(const Tensor& t);
void set_grad(const Tensor& t, const Tensor& g);
Edge gradient_edge(const Tensor& t);

// Records `outputs` as made by op `name` from `inputs` if grad mode is on and
// some input requires grad. With save_outputs the node keeps the outputs'
// data for Node::output(i).
void record(const char* name, const TensorList& inputs, const TensorList& outputs, BackwardFn fn,
            bool save_outputs = false);
bool any_requires_grad(const TensorList& ts);

// The cheap test ops make before building a backward closure: no allocation
// when grad mode is off or no input requires grad (the per-op overhead).
bool grad_enabled();
template <class... Ts> bool should_record(const Ts&... ts) {
    return grad_enabled() && ((ts.defined() && requires_grad(ts)) || ...);
}

}  // namespace miras
