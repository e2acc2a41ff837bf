#pragma once
// Reverse-mode differentiation of a recorded graph.
#include "autograd/node.h"

namespace miras {

// d(outputs)/d(inputs) contracted with grad_outputs (defaults: ones for
// one-element outputs). Functional: writes no .grad. With create_graph the
// backward formulas are themselves recorded, so the result can be
// differentiated again; retain_graph (default: = create_graph) keeps the graph
// for another pass. allow_unused returns an undefined tensor for an input the
// outputs do not depend on, instead of throwing.
TensorList grad(const TensorList& outputs, const TensorList& inputs, const TensorList& grad_outputs = {},
                bool create_graph = false, int retain_graph = -1, bool allow_unused = false);

// Accumulates d(output)/d(leaf) into grad_of(leaf) for every leaf that
// requires grad: the outer-loop API.
void backward(const Tensor& output, const Tensor& grad_output = Tensor(), bool retain_graph = false,
              bool create_graph = false);

}  // namespace miras
