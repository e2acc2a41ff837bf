#include "autograd/node.h"

#include <algorithm>
#include <stdexcept>

#include "autograd/grad_mode.h"
#include "tensor/ops.h"

namespace miras {

static thread_local bool g_grad_enabled = true;
bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

Tensor Node::output(size_t i) {
    if (i >= saved_outputs.size() || !saved_outputs[i].defined())
        throw std::logic_error(name + ": output " + std::to_string(i) +
                               " was not saved (freed by an earlier backward, or not recorded with save_outputs)");
    const Tensor& d = saved_outputs[i];
    Tensor t = Tensor::view_of(d, d.shape(), d.strides(), d.offset());
    auto& m = ensure_autograd_meta(t);
    m.requires_grad = true;
    m.grad_fn = shared_from_this();
    m.output_nr = (int)i;
    return t;
}

void Node::release() {
    fn = nullptr;
    saved_outputs.clear();
    saved_versions.clear();
}

namespace {
// The list of nodes waiting to be destroyed, owned by the outermost ~Node on
// this thread (null when no destructor is running). A plain pointer, not a
// thread_local vector: it has no destructor of its own, so graphs held by
// static objects can still be freed during program exit.
thread_local std::vector<std::shared_ptr<Node>>* t_pending = nullptr;
}  // namespace

Node::~Node() {
    // Deleting a node drops its edges, which may delete the next node, and so
    // on: recursion as deep as the graph. Instead the outermost destructor
    // takes the edges' owners into a list and drains it in a loop; nested
    // destructors only append to that list.
    std::vector<std::shared_ptr<Node>> local;
    bool outermost = t_pending == nullptr;
    if (outermost) t_pending = &local;
    for (auto& e : next_edges)
        if (e.node) t_pending->push_back(std::move(e.node));
    // The formula's captured tensors point at nodes that the list now holds,
    // so releasing them here cannot recurse either.
    fn = nullptr;
    saved_outputs.clear();
    if (!outermost) return;
    while (!local.empty()) {
        std::shared_ptr<Node> n = std::move(local.back());
        local.pop_back();
        n.reset();  // may run ~Node, which only appends to `local`
    }
    t_pending = nullptr;
}

AutogradMeta* autograd_meta(const Tensor& t) {
    return static_cast<AutogradMeta*>(t.impl().autograd.get());
}

AutogradMeta& ensure_autograd_meta(const Tensor& t) {
    auto& slot = t.impl().autograd;
    if (!slot) slot = std::make_unique<AutogradMeta>();
    return *static_cast<AutogradMeta*>(slot.get());
}

bool requires_grad(const Tensor& t) {
    auto* m = t.defined() ? autograd_meta(t) : nullptr;
    return m && m->requires_grad;
}

const Tensor& set_requires_grad(const Tensor& t, bool on) {
    auto* m = autograd_meta(t);
    if (m && m->grad_fn)
        throw std::invalid_argument("set_requires_grad: only leaf tensors can be marked; this tensor was made by " +
                                    m->grad_fn->name + " (use detach() first)");
    ensure_autograd_meta(t).requires_grad = on;
    return t;
}

bool is_leaf(const Tensor& t) {
    auto* m = autograd_meta(t);
    return !m || !m->grad_fn;
}

std::shared_ptr<Node> grad_fn(const Tensor& t) {
    auto* m = autograd_meta(t);
    return m ? m->grad_fn : nullptr;
}

Tensor detach(const Tensor& t) { return Tensor::view_of(t, t.shape(), t.strides(), t.offset()); }

Tensor grad_of(const Tensor& t) {
    auto* m = autograd_meta(t);
    return m ? m->grad : Tensor();
}

void set_grad(const Tensor& t, const Tensor& g) { ensure_autograd_meta(t).grad = g; }

Edge gradient_edge(const Tensor& t) {
    auto* m = autograd_meta(t);
    if (!m || !m->requires_grad) return {};
    if (m->grad_fn) return {m->grad_fn, m->output_nr};
    // A leaf: share one AccumulateGrad node among all graphs that use it.
    std::shared_ptr<Node> acc = m->accumulator.lock();
    if (!acc) {
        acc = std::make_shared<Node>();
        acc->name = "AccumulateGrad";
        acc->is_accumulator = true;
        acc->leaf = t.impl_shared();
        acc->outputs.push_back({t.shape(), t.dtype()});
        m->accumulator = acc;
    }
    return {acc, 0};
}

bool any_requires_grad(const TensorList& ts) {
    for (const auto& t : ts)
        if (t.defined() && requires_grad(t)) return true;
    return false;
}

void record(const char* name, const TensorList& inputs, const TensorList& outputs, BackwardFn fn, bool save_outputs) {
    if (!grad_enabled() || !any_requires_grad(inputs)) return;
    auto node = std::make_shared<Node>();
    node->name = name;
    node->fn = std::move(fn);
    node->next_edges.reserve(inputs.size());
    for (const auto& in : inputs) {
        node->next_edges.push_back(in.defined() ? gradient_edge(in) : Edge{});
        if (const auto& c = node->next_edges.back().node) node->topo_nr = std::max(node->topo_nr, c->topo_nr + 1);
        if (in.defined()) node->saved_versions.emplace_back(in.impl().storage, in.version());
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
        const Tensor& o = outputs[i];
        // An output that is an input's own handle would point at its own
        // node: a cycle that is never freed. Raw kernels always return fresh
        // handles (views get a new impl), so this is a bug in the caller.
        for (const auto& in : inputs)
            if (in.defined() && in.impl_ptr() == o.impl_ptr())
                throw std::logic_error(std::string(name) + ": output " + std::to_string(i) +
                                       " is the same tensor handle as an input; return a new handle (a view or copy)");
        node->outputs.push_back({o.shape(), o.dtype()});
        if (save_outputs) node->saved_outputs.push_back(detach(o));
        auto& m = ensure_autograd_meta(o);
        if (m.grad_fn)
            throw std::logic_error(std::string(name) + ": output already has a grad_fn (" + m.grad_fn->name + ")");
        m.requires_grad = true;
        m.grad_fn = node;
        m.output_nr = (int)i;
    }
    if (save_outputs)
        for (const auto& o : outputs) node->saved_versions.emplace_back(o.impl().storage, o.version());
}

}  // namespace miras
