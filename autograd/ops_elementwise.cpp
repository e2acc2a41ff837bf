// Elementwise ops: forward (raw kernel) and backward (differentiable ops)
// side by side. `g` is the gradient of the output; a formula that needs the
// output uses self.output(0), re-attached to this node so that it can be
// differentiated again.
#include <cmath>

#include "autograd/ops.h"

namespace miras {
using raw::Binary;
using raw::Unary;

namespace {
Tensor constant(double v, const Tensor& like) { return scalar_tensor(v, like.dtype()); }
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
    Tensor out = raw::binary(Binary::add, a, b);
    if (!should_record(a, b)) return out;
    record("add", {a, b}, {out}, [sa = a.shape(), sb = b.shape()](Node& n, const TensorList& g) -> TensorList {
        return {n.needs_input_grad(0) ? sum_to(g[0], sa) : Tensor(), n.needs_input_grad(1) ? sum_to(g[0], sb) : Tensor()};
    });
    return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
    Tensor out = raw::binary(Binary::sub, a, b);
    if (!should_record(a, b)) return out;
    record("sub", {a, b}, {out}, [sa = a.shape(), sb = b.shape()](Node& n, const TensorList& g) -> TensorList {
        return {n.needs_input_grad(0) ? sum_to(g[0], sa) : Tensor(),
                n.needs_input_grad(1) ? sum_to(neg(g[0]), sb) : Tensor()};
    });
    return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
    Tensor out = raw::binary(Binary::mul, a, b);
    if (!should_record(a, b)) return out;
    // A broadcast operand's gradient sum_to(g ⊙ other) is one fused pass.
    record("mul", {a, b}, {out}, [a, b](Node& n, const TensorList& g) -> TensorList {
        return {n.needs_input_grad(0) ? mul_sum_to(g[0], b, a.shape()) : Tensor(),
                n.needs_input_grad(1) ? mul_sum_to(g[0], a, b.shape()) : Tensor()};
    });
    return out;
}

// out = c + a ⊙ b: dc = g, da = g ⊙ b, db = g ⊙ a (each summed back to its shape).
Tensor addcmul(const Tensor& c, const Tensor& a, const Tensor& b) {
    Tensor out = raw::addcmul(c, a, b);
    if (!should_record(c, a, b)) return out;
    record("addcmul", {c, a, b}, {out}, [sc = c.shape(), a, b](Node& n, const TensorList& g) -> TensorList {
        return {n.needs_input_grad(0) ? sum_to(g[0], sc) : Tensor(),
                n.needs_input_grad(1) ? mul_sum_to(g[0], b, a.shape()) : Tensor(),
                n.needs_input_grad(2) ? mul_sum_to(g[0], a, b.shape()) : Tensor()};
    });
    return out;
}

// out = sum_to(x ⊙ y, shape). Its gradients are the same op on the expanded
// incoming gradient: d/dx = sum_to(expand(g) ⊙ y, x.shape), and alike for y.
Tensor mul_sum_to(const Tensor& x, const Tensor& y, const Shape& shape) {
    const Shape full = broadcast_shapes(x.shape(), y.shape(), "mul_sum_to");
    if (shape == full) return mul(x, y);  // nothing to sum
    Tensor out = raw::mul_sum_to(x, y, shape);
    if (!should_record(x, y)) return out;
    record("mul_sum_to", {x, y}, {out}, [x, y, full](Node& n, const TensorList& g) -> TensorList {
        Tensor ge = expand(g[0], full);
        return {n.needs_input_grad(0) ? mul_sum_to(ge, y, x.shape()) : Tensor(),
                n.needs_input_grad(1) ? mul_sum_to(ge, x, y.shape()) : Tensor()};
    });
    return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
    Tensor out = raw::binary(Binary::div, a, b);
    if (!should_record(a, b)) return out;
    record("div", {a, b}, {out}, [a, b](Node& n, const TensorList& g) -> TensorList {
        // d(a/b)/da = 1/b ; d(a/b)/db = -a/b²
        return {n.needs_input_grad(0) ? sum_to(div(g[0], b), a.shape()) : Tensor(),
                n.needs_input_grad(1) ? sum_to(neg(div(mul(g[0], a), mul(b, b))), b.shape()) : Tensor()};
    });
    return out;
}

Tensor pow(const Tensor& a, const Tensor& b) {
    Tensor out = raw::binary(Binary::pow, a, b);
    if (!should_record(a, b)) return out;
    record("pow", {a, b}, {out}, [a, b](Node& n, const TensorList& g) -> TensorList {
        // d(a^b)/da = b a^(b-1) ; d(a^b)/db = a^b log a  (a > 0)
        return {n.needs_input_grad(0) ? sum_to(mul(g[0], mul(b, pow(a, add(b, -1.0)))), a.shape()) : Tensor(),
                n.needs_input_grad(1) ? sum_to(mul(g[0], mul(n.output(0), log(a))), b.shape()) : Tensor()};
    }, true);
    return out;
}

Tensor pow(const Tensor& a, double p) {
    Tensor out = raw::binary_scalar(Binary::pow, a, p);
    if (!should_record(a)) return out;
    record("pow_scalar", {a}, {out}, [a, p](Node&, const TensorList& g) -> TensorList {
        if (p == 0) return {Tensor()};
        return {mul(g[0], mul(pow(a, p - 1), p))};
    });
    return out;
}

Tensor maximum(const Tensor& a, const Tensor& b) {
    Tensor out = raw::binary(Binary::maximum, a, b);
    if (!should_record(a, b)) return out;
    record("maximum", {a, b}, {out}, [a, b](Node&, const TensorList& g) -> TensorList {
        Tensor pick_a = raw::binary(Binary::ge, a, b);  // 0/1 mask, a constant
        return {sum_to(mul(g[0], pick_a), a.shape()), sum_to(mul(g[0], raw::scalar_binary(Binary::sub, 1, pick_a)), b.shape())};
    });
    return out;
}

Tensor minimum(const Tensor& a, const Tensor& b) {
    Tensor out = raw::binary(Binary::minimum, a, b);
    if (!should_record(a, b)) return out;
    record("minimum", {a, b}, {out}, [a, b](Node&, const TensorList& g) -> TensorList {
        Tensor pick_a = raw::binary(Binary::le, a, b);
        return {sum_to(mul(g[0], pick_a), a.shape()), sum_to(mul(g[0], raw::scalar_binary(Binary::sub, 1, pick_a)), b.shape())};
    });
    return out;
}

Tensor add(const Tensor& a, double s) {
    Tensor out = raw::binary_scalar(Binary::add, a, s);
    if (!should_record(a)) return out;
    record("add_scalar", {a}, {out}, [](Node&, const TensorList& g) -> TensorList { return {g[0]}; });
    return out;
}

Tensor mul(const Tensor& a, double s) {
    Tensor out = raw::binary_scalar(Binary::mul, a, s);
    if (!should_record(a)) return out;
    record("mul_scalar", {a}, {out}, [s](Node&, const TensorList& g) -> TensorList { return {mul(g[0], s)}; });
    return out;
}

// One-input ops: out = f(x), dx = g * f'(x), with f' written in ops. Ops
// whose derivative is written with their output (save = true) do not keep x.
#define UNARY_OP(fname, kind, save, ...)                                          \
    Tensor fname(const Tensor& x) {                                                   \
        Tensor out = raw::unary(Unary::kind, x);                                      \
        if (!should_record(x)) return out;                                            \
        record(#fname, {x}, {out}, [x = (save) ? Tensor() : x](Node& self, const TensorList& grads) -> TensorList { \
            const Tensor& g = grads[0];                                               \
            (void)self; (void)g;                                                      \
            return {__VA_ARGS__};                                                     \
        }, save);                                                                     \
        return out;                                                                   \
    }

UNARY_OP(neg, neg, false, neg(g))
UNARY_OP(exp, exp, true, mul(g, self.output(0)))
UNARY_OP(log, log, false, div(g, x))
UNARY_OP(sqrt, sqrt, true, div(mul(g, 0.5), self.output(0)))
UNARY_OP(rsqrt, rsqrt, true, mul(mul(g, pow(self.output(0), 3.0)), -0.5))
UNARY_OP(abs, abs, false, mul(g, sign(x)))
UNARY_OP(sign, sign, false, Tensor())
// tanh' = 1 − y², sigmoid' = y (1 − y), silu' = s (1 + x (1 − s)), gelu' below:
// each one fused kernel (one pass, not 3-10 ops), itself differentiable (below).
UNARY_OP(tanh, tanh, true, tanh_backward(self.output(0), g))
UNARY_OP(sigmoid, sigmoid, true, sigmoid_backward(self.output(0), g))
UNARY_OP(silu, silu, false, silu_backward(x, g))
UNARY_OP(gelu, gelu, false, gelu_backward(x, g))
UNARY_OP(softplus, softplus, false, mul(g, sigmoid(x)))
UNARY_OP(relu, relu, false, mul(g, raw::unary(Unary::step, x)))
UNARY_OP(square, square, false, mul(g, mul(x, 2.0)))
UNARY_OP(reciprocal, reciprocal, true, neg(mul(g, square(self.output(0)))))
UNARY_OP(sin, sin, false, mul(g, cos(x)))
UNARY_OP(cos, cos, false, neg(mul(g, sin(x))))
UNARY_OP(log1p, log1p, false, div(g, add(x, 1.0)))
UNARY_OP(expm1, expm1, true, mul(g, add(self.output(0), 1.0)))
#undef UNARY_OP

// ---- fused activation derivatives: out = g f'(a), a = the output y or the
// input x of the activation. d/dg = gg f'(a) is the same fused op on the
// incoming gradient gg; d/da = gg g d(f'(a))/da, written in ops (fused ones
// where they fit) so that a third derivative still works.
namespace {
using Fused = Tensor (*)(const Tensor&, const Tensor&);

// h · d(f'(a))/da for each activation.
// sigmoid, in y: d/dy [y (1 − y)] = 1 − 2y
Tensor sigmoid_dd(const Tensor& y, const Tensor& h) { return mul(h, add(mul(y, -2.0), 1.0)); }
// tanh, in y: d/dy [1 − y²] = −2y
Tensor tanh_dd(const Tensor& y, const Tensor& h) { return mul(h, mul(y, -2.0)); }
// silu'' = s (1 − s) (2 + x (1 − 2s)), s = sigmoid(x)
Tensor silu_dd(const Tensor& x, const Tensor& h) {
    Tensor s = sigmoid(x);
    return mul(sigmoid_backward(s, h), add(mul(x, add(mul(s, -2.0), 1.0)), 2.0));
}
// gelu = ½ x (1 + t), t = tanh u, u = c (x + k x³), u' = c (1 + 3k x²), u'' = 6ckx:
// gelu'  = ½ (1 + t) + ½ x (1 − t²) u'
// gelu'' = (1 − t²) u' + ½ x (1 − t²) (u'' − 2t u'²) = (1 − t²) (c (1 + 6k x²) − x t u'²)
Tensor gelu_dd(const Tensor& x, const Tensor& h) {
    const double c = 0.7978845608028654, k = 0.044715;
    Tensor x2 = square(x);
    Tensor t = tanh(mul(mul(x, add(mul(x2, k), 1.0)), c));
    Tensor du = mul(add(mul(x2, 3 * k), 1.0), c);
    Tensor rest = sub(mul(add(mul(x2, 6 * k), 1.0), c), mul(mul(x, t), square(du)));
    return mul(tanh_backward(t, h), rest);
}

Tensor fused_derivative(const char* name, Binary kind, Fused self, Fused dd, const Tensor& a, const Tensor& g) {
    Tensor out = raw::binary(kind, a, g);  // broadcasts; shape errors name the op
    if (!should_record(a, g)) return out;
    record(name, {a, g}, {out}, [a, g, self, dd](Node& n, const TensorList& gr) -> TensorList {
        return {n.needs_input_grad(0) ? sum_to(dd(a, mul(gr[0], g)), a.shape()) : Tensor(),
                n.needs_input_grad(1) ? sum_to(self(a, gr[0]), g.shape()) : Tensor()};
    });
    return out;
}
}  // namespace

Tensor sigmoid_backward(const Tensor& y, const Tensor& g) {
    return fused_derivative("sigmoid_backward", Binary::sigmoid_backward, sigmoid_backward, sigmoid_dd, y, g);
}
Tensor tanh_backward(const Tensor& y, const Tensor& g) {
    return fused_derivative("tanh_backward", Binary::tanh_backward, tanh_backward, tanh_dd, y, g);
}
Tensor silu_backward(const Tensor& x, const Tensor& g) {
    return fused_derivative("silu_backward", Binary::silu_backward, silu_backward, silu_dd, x, g);
}
Tensor gelu_backward(const Tensor& x, const Tensor& g) {
    return fused_derivative("gelu_backward", Binary::gelu_backward, gelu_backward, gelu_dd, x, g);
}

Tensor clamp(const Tensor& x, double lo, double hi) {
    Tensor out = raw::clamp(x, lo, hi);
    if (!should_record(x)) return out;
    record("clamp", {x}, {out}, [x, lo, hi](Node&, const TensorList& g) -> TensorList {
        Tensor inside = raw::binary(Binary::mul, raw::binary_scalar(Binary::ge, x, lo), raw::binary_scalar(Binary::le, x, hi));
        return {mul(g[0], inside)};
    });
    return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
    Tensor c = detach(cond);
    Tensor out = raw::where(c, a, b);
    if (!should_record(a, b)) return out;
    record("where", {a, b}, {out}, [c, sa = a.shape(), sb = b.shape()](Node& n, const TensorList& g) -> TensorList {
        Tensor zero = constant(0, g[0]);
        return {n.needs_input_grad(0) ? sum_to(where(c, g[0], zero), sa) : Tensor(),
                n.needs_input_grad(1) ? sum_to(where(c, zero, g[0]), sb) : Tensor()};
    });
    return out;
}

Tensor eq(const Tensor& a, const Tensor& b) { return raw::binary(Binary::eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return raw::binary(Binary::ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return raw::binary(Binary::lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return raw::binary(Binary::le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return raw::binary(Binary::gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return raw::binary(Binary::ge, a, b); }

}  // namespace miras
