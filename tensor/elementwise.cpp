// Elementwise kernels with NumPy broadcasting. Each op is a small functor;
// the enum is switched once per call (never per element) to pick a template
// instantiation, and the strided loop hands contiguous runs to a tight loop.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "tensor/ops.h"
#include "tensor/strided_loop.h"

namespace miras::raw {
using detail::StridedLoop;
using detail::broadcast_strides;

namespace {

// ---- unary functors
// Stable for any x and branch-free (one exp, a select): vectorises.
template <class T> T sigmoid_(T x) {
    T e = std::exp(-std::abs(x));
    T s = T(1) / (T(1) + e);
    return x >= T(0) ? s : e * s;
}
template <class T> T gelu_(T x) {  // tanh form
    const T c = T(0.7978845608028654);  // sqrt(2/pi)
    return T(0.5) * x * (T(1) + std::tanh(c * (x + T(0.044715) * x * x * x)));
}
template <class T> T gelu_grad_(T x) {  // ½ (1 + t) + ½ x (1 − t²) c (1 + 3k x²), t = tanh(c (x + k x³))
    const T c = T(0.7978845608028654), k = T(0.044715);
    T x2 = x * x;
    T t = std::tanh(c * x * (T(1) + k * x2));
    return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * c * (T(1) + T(3) * k * x2);
}
template <class T> T silu_grad_(T x) {  // s (1 + x (1 − s))
    T s = sigmoid_(x);
    return s * (T(1) + x * (T(1) - s));
}
template <class T> T softplus_(T x) { return x > T(20) ? x : std::log1p(std::exp(x)); }

#define UNARY_CASES(X)                                         \
    X(neg, -x)                                                 \
    X(exp, std::exp(x))                                        \
    X(log, std::log(x))                                        \
    X(sqrt, std::sqrt(x))                                      \
    X(rsqrt, T(1) / std::sqrt(x))                              \
    X(abs, std::abs(x))                                        \
    X(sign, T((x > T(0)) - (x < T(0))))                        \
    X(tanh, std::tanh(x))                                      \
    X(sigmoid, sigmoid_(x))                                    \
    X(silu, x * sigmoid_(x))                                   \
    X(gelu, gelu_(x))                                          \
    X(softplus, softplus_(x))                                  \
    X(relu, x > T(0) ? x : T(0))                               \
    X(square, x * x)                                           \
    X(reciprocal, T(1) / x)                                    \
    X(sin, std::sin(x))                                        \
    X(cos, std::cos(x))                                        \
    X(log1p, std::log1p(x))                                    \
    X(expm1, std::expm1(x))                                    \
    X(step, x > T(0) ? T(1) : T(0))

#define BINARY_CASES(X)                     \
    X(add, a + b)                           \
    X(sub, a - b)                           \
    X(mul, a * b)                           \
    X(div, a / b)                           \
    X(pow, std::pow(a, b))                  \
    X(maximum, a > b || a != a ? a : b)     \
    X(minimum, a < b || a != a ? a : b)     \
    X(eq, T(a == b))                        \
    X(ne, T(a != b))                        \
    X(lt, T(a < b))                         \
    X(le, T(a <= b))                        \
    X(gt, T(a > b))                         \
    X(ge, T(a >= b))                        \
    X(sigmoid_backward, b * a * (T(1) - a)) \
    X(tanh_backward, b * (T(1) - a * a))    \
    X(silu_backward, b * silu_grad_(a))     \
    X(gelu_backward, b * gelu_grad_(a))

#define DEFINE_UNARY(name, expr) \
    struct U_##name { template <class T> static T f(T x) { return expr; } };
UNARY_CASES(DEFINE_UNARY)
#define DEFINE_BINARY(name, expr) \
    struct B_##name { template <class T> static T f(T a, T b) { return expr; } };
BINARY_CASES(DEFINE_BINARY)

template <class Op, class T> void unary_run(const Tensor& x, Tensor& out) {
    T* o = out.data<T>();
    const T* p = x.data<T>();
    if (x.is_contiguous()) {
        for (int64_t i = 0, n = x.numel(); i < n; ++i) o[i] = Op::f(p[i]);
        return;
    }
    StridedLoop<2> L(x.shape(), {contiguous_strides(x.shape()), x.strides()});
    L.run({0, 0}, [&](std::array<int64_t, 2> off, int64_t n, std::array<int64_t, 2> st) {
        T* oo = o + off[0];
        const T* pp = p + off[1];
        for (int64_t i = 0; i < n; ++i) oo[i * st[0]] = Op::f(pp[i * st[1]]);
    });
}

template <class Op, class T> void binary_run(const Tensor& a, const Tensor& b, Tensor& out) {
    T* o = out.data<T>();
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    int64_t n = out.numel();
    // Fast paths: same-shape contiguous, and a scalar on either side.
    if (a.is_contiguous() && a.numel() == n) {
        if (b.is_contiguous() && b.numel() == n) {
            for (int64_t i = 0; i < n; ++i) o[i] = Op::f(pa[i], pb[i]);
            return;
        }
        if (b.numel() == 1) {
            T s = pb[0];
            for (int64_t i = 0; i < n; ++i) o[i] = Op::f(pa[i], s);
            return;
        }
    }
    if (a.numel() == 1 && b.is_contiguous() && b.numel() == n) {
        T s = pa[0];
        for (int64_t i = 0; i < n; ++i) o[i] = Op::f(s, pb[i]);
        return;
    }
    const Shape& os = out.shape();
    StridedLoop<3> L(os, {contiguous_strides(os), broadcast_strides(a.shape(), a.strides(), os),
                          broadcast_strides(b.shape(), b.strides(), os)});
    L.run({0, 0, 0}, [&](std::array<int64_t, 3> off, int64_t m, std::array<int64_t, 3> st) {
        T* oo = o + off[0];
        const T* aa = pa + off[1];
        const T* bb = pb + off[2];
        if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
            for (int64_t i = 0; i < m; ++i) oo[i] = Op::f(aa[i], bb[i]);
        } else {
            for (int64_t i = 0; i < m; ++i) oo[i * st[0]] = Op::f(aa[i * st[1]], bb[i * st[2]]);
        }
    });
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
    if (a.dtype() != b.dtype())
        throw std::invalid_argument(std::string(op) + ": dtype mismatch, " + dtype_name(a.dtype()) + " " +
                                    shape_str(a.shape()) + " vs " + dtype_name(b.dtype()) + " " + shape_str(b.shape()));
}

const char* binary_name(Binary op) {
    switch (op) {
#define NAME_CASE(name, expr) case Binary::name: return #name;
        BINARY_CASES(NAME_CASE)
#undef NAME_CASE
    }
    return "binary";
}

}  // namespace

Tensor unary(Unary op, const Tensor& x) {
    Tensor out = Tensor::empty(x.shape(), x.dtype());
    dispatch(x.dtype(), [&]<class T>() {
        switch (op) {
#define UCASE(name, expr) case Unary::name: unary_run<U_##name, T>(x, out); break;
            UNARY_CASES(UCASE)
#undef UCASE
        }
    });
    return out;
}

Tensor binary(Binary op, const Tensor& a, const Tensor& b) {
    const char* name = binary_name(op);
    check_same_dtype(a, b, name);
    Tensor out = Tensor::empty(broadcast_shapes(a.shape(), b.shape(), name), a.dtype());
    dispatch(a.dtype(), [&]<class T>() {
        switch (op) {
#define BCASE(name, expr) case Binary::name: binary_run<B_##name, T>(a, b, out); break;
            BINARY_CASES(BCASE)
#undef BCASE
        }
    });
    return out;
}

Tensor binary_scalar(Binary op, const Tensor& a, double s) { return binary(op, a, full({}, s, a.dtype())); }
Tensor scalar_binary(Binary op, double s, const Tensor& b) { return binary(op, full({}, s, b.dtype()), b); }

Tensor clamp(const Tensor& x, double lo, double hi) {
    if (lo > hi) throw std::invalid_argument("clamp: lo " + std::to_string(lo) + " > hi " + std::to_string(hi));
    return binary_scalar(Binary::minimum, binary_scalar(Binary::maximum, x, lo), hi);
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
    check_same_dtype(a, b, "where");
    check_same_dtype(cond, a, "where");
    Shape os = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
    Tensor out = Tensor::empty(os, a.dtype());
    dispatch(a.dtype(), [&]<class T>() {
        T* o = out.data<T>();
        const T *pc = cond.data<T>(), *pa = a.data<T>(), *pb = b.data<T>();
        StridedLoop<4> L(os, {contiguous_strides(os), broadcast_strides(cond.shape(), cond.strides(), os),
                              broadcast_strides(a.shape(), a.strides(), os),
                              broadcast_strides(b.shape(), b.strides(), os)});
        L.run({0, 0, 0, 0}, [&](std::array<int64_t, 4> off, int64_t m, std::array<int64_t, 4> st) {
            for (int64_t i = 0; i < m; ++i)
                o[off[0] + i * st[0]] = pc[off[1] + i * st[1]] != T(0) ? pa[off[2] + i * st[2]] : pb[off[3] + i * st[3]];
        });
    });
    return out;
}

Tensor axpby(const Tensor& a, double alpha, const Tensor& b, double beta) {
    check_same_dtype(a, b, "axpby");
    Shape os = broadcast_shapes(a.shape(), b.shape(), "axpby");
    Tensor out = Tensor::empty(os, a.dtype());
    dispatch(a.dtype(), [&]<class T>() {
        T* o = out.data<T>();
        const T *pa = a.data<T>(), *pb = b.data<T>();
        T al = (T)alpha, be = (T)beta;
        StridedLoop<3> L(os, {contiguous_strides(os), broadcast_strides(a.shape(), a.strides(), os),
                              broadcast_strides(b.shape(), b.strides(), os)});
        L.run({0, 0, 0}, [&](std::array<int64_t, 3> off, int64_t m, std::array<int64_t, 3> st) {
            for (int64_t i = 0; i < m; ++i) o[off[0] + i * st[0]] = al * pa[off[1] + i * st[1]] + be * pb[off[2] + i * st[2]];
        });
    });
    return out;
}

// ---- in place
static void check_writable(const Tensor& dst, const char* op) {
    // Nothing to write in an empty tensor, whose strides may be 0 (zeros({2, 0})).
    if (dst.numel() == 0) return;
    for (size_t i = 0; i < dst.shape().size(); ++i)
        if (dst.strides()[i] == 0 && dst.shape()[i] > 1)
            throw std::invalid_argument(std::string(op) + ": cannot write into an expanded (broadcast) view of shape " +
                                        shape_str(dst.shape()));
}

void copy_(const Tensor& dst, const Tensor& src) {
    check_writable(dst, "copy_");
    Shape bs = broadcast_shapes(dst.shape(), src.shape(), "copy_");
    if (bs != dst.shape())
        throw std::invalid_argument("copy_: source " + shape_str(src.shape()) + " does not broadcast to destination " +
                                    shape_str(dst.shape()));
    dispatch(dst.dtype(), [&]<class D>() {
        dispatch(src.dtype(), [&]<class S>() {
            D* o = dst.data<D>();
            const S* p = src.data<S>();
            if (dst.is_contiguous() && src.is_contiguous() && src.shape() == dst.shape()) {  // clone()
                std::copy(p, p + dst.numel(), o);
                return;
            }
            StridedLoop<2> L(dst.shape(), {dst.strides(), broadcast_strides(src.shape(), src.strides(), dst.shape())});
            L.run({0, 0}, [&](std::array<int64_t, 2> off, int64_t m, std::array<int64_t, 2> st) {
                D* oo = o + off[0];
                const S* pp = p + off[1];
                if (st[0] == 1 && st[1] == 1)
                    for (int64_t i = 0; i < m; ++i) oo[i] = (D)pp[i];
                else
                    for (int64_t i = 0; i < m; ++i) oo[i * st[0]] = (D)pp[i * st[1]];
            });
        });
    });
    dst.bump_version();
}

void fill_(const Tensor& dst, double value) {
    check_writable(dst, "fill_");
    dispatch(dst.dtype(), [&]<class T>() {
        T* o = dst.data<T>();
        T v = (T)value;
        if (dst.is_contiguous()) {  // fresh tensors (zeros, ones, full): no loop set-up
            std::fill(o, o + dst.numel(), v);
            return;
        }
        StridedLoop<1> L(dst.shape(), {dst.strides()});
        L.run({0}, [&](std::array<int64_t, 1> off, int64_t m, std::array<int64_t, 1> st) {
            for (int64_t i = 0; i < m; ++i) o[off[0] + i * st[0]] = v;
        });
    });
    dst.bump_version();
}

void add_(const Tensor& dst, const Tensor& src, double alpha) {
    check_writable(dst, "add_");
    check_same_dtype(dst, src, "add_");
    if (broadcast_shapes(dst.shape(), src.shape(), "add_") != dst.shape())
        throw std::invalid_argument("add_: source " + shape_str(src.shape()) + " does not broadcast to destination " +
                                    shape_str(dst.shape()));
    dispatch(dst.dtype(), [&]<class T>() {
        T* o = dst.data<T>();
        const T* p = src.data<T>();
        T al = (T)alpha;
        StridedLoop<2> L(dst.shape(), {dst.strides(), broadcast_strides(src.shape(), src.strides(), dst.shape())});
        L.run({0, 0}, [&](std::array<int64_t, 2> off, int64_t m, std::array<int64_t, 2> st) {
            for (int64_t i = 0; i < m; ++i) o[off[0] + i * st[0]] += al * p[off[1] + i * st[1]];
        });
    });
    dst.bump_version();
}

}  // namespace miras::raw
