#pragma once
// Reverse-mode differentiation of a recorded graph.
#include <optional>

#include "autograd/node.h"

namespace miras {

// Options of grad(), set by name:
//   grad({loss}, params, {}, {.create_graph = true, .allow_unused = true})
struct GradOptions {
    // Record the backward formulas, so the result can be differentiated again.
    bool create_graph = false;
    // Keep the graph's saved values for another pass. Unset: = create_graph
    // (a graph you may differentiate again usually reaches back into this one).
    std::optional<bool> retain_graph = std::nullopt;
    // An input the outputs do not depend on gets an undefined tensor (or
    // zeros, with materialize_grads) instead of an error.
    bool allow_unused = false;
    // Undefined results become zeros of the input's shape and dtype
    // (implies allow_unused), as PyTorch's materialize_grads.
    bool materialize_grads = false;
};

// d(outputs)/d(inputs) contracted with grad_outputs (an undefined entry, or
// none at all: ones, for one-element outputs only). Functional: writes no
// .grad.
TensorList grad(const TensorList& outputs, const TensorList& inputs, const TensorList& grad_outputs = {},
                const GradOptions& options = {});

// Options of backward().
struct BackwardOptions {
    bool create_graph = false;  // record the backward formulas (a differentiable .grad)
    bool retain_graph = false;  // keep the graph for another pass (implied by create_graph)
};

// Accumulates d(output)/d(leaf), contracted with grad_output (undefined: ones,
// for a one-element output), into grad_of(leaf) for every leaf that requires
// grad: the outer-loop API.
void backward(const Tensor& output, const Tensor& grad_output = Tensor(), const BackwardOptions& options = {});

}  // namespace miras
