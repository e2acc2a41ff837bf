// Elementwise ops with NumPy broadcasting. The strided loop merges what it
// can and hands each run to the kernel loops (tensor/kernels.h), where each
// op is a small functor, switched on once per run, never per element.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "tensor/kernels.h"
#include "tensor/ops.h"
#include "tensor/strided_loop.h"

namespace miras::raw {
using detail::StridedLoop;
using detail::broadcast_strides;

namespace {

// The shape work is here; each contiguous or evenly strided run goes to the
// loops of tensor/kernels.h (vectorised, picked per CPU).
template <class T> void unary_run(Unary op, const Tensor& x, Tensor& out) {
    const kernels::Loops& K = kernels::loops();
    T* o = out.data<T>();
    const T* p = x.data<T>();
    if (x.is_contiguous()) {
        kernels::unary<T>(K, op, o, p, x.numel(), 1, 1);
        return;
    }
    StridedLoop<2> L(x.shape(), {contiguous_strides(x.shape()), x.strides()});
    L.run({0, 0}, [&](std::array<int64_t, 2> off, int64_t n, std::array<int64_t, 2> st) {
        kernels::unary<T>(K, op, o + off[0], p + off[1], n, st[0], st[1]);
    });
}

template <class T> void binary_run(Binary op, const Tensor& a, const Tensor& b, Tensor& out) {
    const kernels::Loops& K = kernels::loops();
    T* o = out.data<T>();
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    int64_t n = out.numel();
    // Fast paths: same-shape contiguous, and a scalar on either side.
    const bool a_full = a.is_contiguous() && a.numel() == n, b_full = b.is_contiguous() && b.numel() == n;
    if (a_full && b_full) return kernels::binary<T>(K, op, o, pa, pb, n, 1, 1, 1);
    if (a_full && b.numel() == 1) return kernels::binary<T>(K, op, o, pa, pb, n, 1, 1, 0);
    if (a.numel() == 1 && b_full) return kernels::binary<T>(K, op, o, pa, pb, n, 1, 0, 1);
    const Shape& os = out.shape();
    StridedLoop<3> L(os, {contiguous_strides(os), broadcast_strides(a.shape(), a.strides(), os),
                          broadcast_strides(b.shape(), b.strides(), os)});
    L.run({0, 0, 0}, [&](std::array<int64_t, 3> off, int64_t m, std::array<int64_t, 3> st) {
        kernels::binary<T>(K, op, o + off[0], pa + off[1], pb + off[2], m, st[0], st[1], st[2]);
    });
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
    if (a.dtype() != b.dtype())
        throw std::invalid_argument(std::string(op) + ": dtype mismatch, " + dtype_name(a.dtype()) + " " +
                                    shape_str(a.shape()) + " vs " + dtype_name(b.dtype()) + " " + shape_str(b.shape()));
}

const char* binary_name(Binary op) {
    static const char* const names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum",
                                        "eq", "ne", "lt", "le", "gt", "ge", "sigmoid_backward",
                                        "tanh_backward", "silu_backward", "gelu_backward"};
    static_assert(sizeof(names) / sizeof(names[0]) == (size_t)Binary::gelu_backward + 1);
    return names[(size_t)op];
}

}  // namespace

Tensor unary(Unary op, const Tensor& x) {
    Tensor out = Tensor::empty(x.shape(), x.dtype());
    dispatch(x.dtype(), [&]<class T>() { unary_run<T>(op, x, out); });
    return out;
}

Tensor binary(Binary op, const Tensor& a, const Tensor& b) {
    const char* name = binary_name(op);
    check_same_dtype(a, b, name);
    Tensor out = Tensor::empty(broadcast_shapes(a.shape(), b.shape(), name), a.dtype());
    dispatch(a.dtype(), [&]<class T>() { binary_run<T>(op, a, b, out); });
    return out;
}

Tensor binary_scalar(Binary op, const Tensor& a, double s) { return binary(op, a, full({}, s, a.dtype())); }
Tensor scalar_binary(Binary op, double s, const Tensor& b) { return binary(op, full({}, s, b.dtype()), b); }

Tensor clamp(const Tensor& x, double lo, double hi) {
    if (lo > hi) throw std::invalid_argument("clamp: lo " + std::to_string(lo) + " > hi " + std::to_string(hi));
    return binary_scalar(Binary::minimum, binary_scalar(Binary::maximum, x, lo), hi);
}

// Three operands broadcast together into a fresh contiguous result; `run`
// gets each run of the strided walk as (out, x, y, z pointers, n, strides).
template <class F>
Tensor ternary(const Tensor& x, const Tensor& y, const Tensor& z, const char* name, F&& run) {
    check_same_dtype(x, y, name);
    check_same_dtype(y, z, name);
    Shape os = broadcast_shapes(broadcast_shapes(x.shape(), y.shape(), name), z.shape(), name);
    Tensor out = Tensor::empty(os, x.dtype());
    dispatch(x.dtype(), [&]<class T>() {
        T* o = out.data<T>();
        const T *px = x.data<T>(), *py = y.data<T>(), *pz = z.data<T>();
        StridedLoop<4> L(os, {contiguous_strides(os), broadcast_strides(x.shape(), x.strides(), os),
                              broadcast_strides(y.shape(), y.strides(), os),
                              broadcast_strides(z.shape(), z.strides(), os)});
        L.run({0, 0, 0, 0}, [&](std::array<int64_t, 4> off, int64_t m, std::array<int64_t, 4> st) {
            run(o + off[0], px + off[1], py + off[2], pz + off[3], m, st);
        });
    });
    return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
    return ternary(cond, a, b, "where", []<class T>(T* o, const T* c, const T* x, const T* y, int64_t m, std::array<int64_t, 4> st) {
        for (int64_t i = 0; i < m; ++i) o[i * st[0]] = c[i * st[1]] != T(0) ? x[i * st[2]] : y[i * st[3]];
    });
}

Tensor addcmul(const Tensor& c, const Tensor& a, const Tensor& b) {
    const kernels::Loops& K = kernels::loops();
    return ternary(c, a, b, "addcmul", [&K]<class T>(T* o, const T* pc, const T* pa, const T* pb, int64_t m, std::array<int64_t, 4> st) {
        kernels::addcmul<T>(K, o, pc, pa, pb, m, st[0], st[1], st[2], st[3]);
    });
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
        // The vectorised add reads each element of dst before writing it, so
        // dst may be src itself, but not another view of src's storage.
        const bool aliased = dst.same_storage(src) && !(src.shape() == dst.shape() && src.strides() == dst.strides() &&
                                                        src.offset() == dst.offset());
        if (alpha == 1 && !aliased) {
            const kernels::Loops& K = kernels::loops();
            if (dst.is_contiguous() && src.is_contiguous() && src.numel() == dst.numel())
                return kernels::binary<T>(K, Binary::add, o, o, p, dst.numel(), 1, 1, 1);
            StridedLoop<2> L(dst.shape(), {dst.strides(), broadcast_strides(src.shape(), src.strides(), dst.shape())});
            L.run({0, 0}, [&](std::array<int64_t, 2> off, int64_t m, std::array<int64_t, 2> st) {
                kernels::binary<T>(K, Binary::add, o + off[0], o + off[0], p + off[1], m, st[0], st[0], st[1]);
            });
            return;
        }
        T al = (T)alpha;
        StridedLoop<2> L(dst.shape(), {dst.strides(), broadcast_strides(src.shape(), src.strides(), dst.shape())});
        L.run({0, 0}, [&](std::array<int64_t, 2> off, int64_t m, std::array<int64_t, 2> st) {
            for (int64_t i = 0; i < m; ++i) o[off[0] + i * st[0]] += al * p[off[1] + i * st[1]];
        });
    });
    dst.bump_version();
}

}  // namespace miras::raw
