#pragma once
// The kinds of elementwise op, shared by the public raw API (tensor/ops.h) and
// the kernel loops (tensor/kernels.h). Only enums: the kernel translation
// units that are compiled for a specific instruction set include this and no
// other project header (see tensor/kernels.h for why).
namespace miras::raw {

enum class Unary {
    neg, exp, log, sqrt, rsqrt, abs, sign, tanh, sigmoid, silu, gelu, softplus, relu,
    square, reciprocal, sin, cos, log1p, expm1, step  // step(x) = x > 0 ? 1 : 0
};

enum class Binary {
    add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge,
    // Fused derivatives, (a, b) = (forward input x or output y, incoming gradient g):
    // one pass instead of the 3-10 ops of the written-out formula.
    sigmoid_backward,  // (y, g) -> g y (1 - y)
    tanh_backward,     // (y, g) -> g (1 - y²)
    silu_backward,     // (x, g) -> g s (1 + x (1 - s)), s = sigmoid(x)
    gelu_backward      // (x, g) -> g gelu'(x), tanh form
};

}  // namespace miras::raw
