// Reductions. The reduced dims are moved last and the input made contiguous,
// so every reduction is a loop over rows: (kept, reduced) -> (kept). The
// common "sum over leading dims" (bias gradients, sum_to) has its own path
// that needs no copy.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "tensor/kernels.h"
#include "tensor/ops.h"
#include "tensor/strided_loop.h"

namespace miras::raw {
namespace {

struct Plan {
    std::vector<bool> reduced;  // per input dim
    Shape out_shape;            // keepdim applied
    Shape kept_shape;           // kept dims only
    int64_t rows = 1, cols = 1; // kept numel, reduced numel
};

Plan make_plan(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, const char* op) {
    Plan p;
    int64_t nd = x.dim();
    p.reduced.assign(nd, dims.empty());
    for (int64_t d : dims) {
        int64_t w = wrap_dim(d, nd, op);
        if (nd > 0 && p.reduced[w] && !dims.empty())
            throw std::invalid_argument(std::string(op) + ": dim " + std::to_string(w) + " listed twice");
        if (nd > 0) p.reduced[w] = true;
    }
    for (int64_t d = 0; d < nd; ++d) {
        if (p.reduced[d]) {
            p.cols *= x.shape()[d];
            if (keepdim) p.out_shape.push_back(1);
        } else {
            p.rows *= x.shape()[d];
            p.kept_shape.push_back(x.shape()[d]);
            p.out_shape.push_back(x.shape()[d]);
        }
    }
    return p;
}

// x permuted to (kept..., reduced...) and made contiguous: a (rows, cols) matrix.
Tensor as_rows(const Tensor& x, const Plan& p) {
    std::vector<int64_t> perm;
    for (int64_t d = 0; d < x.dim(); ++d) if (!p.reduced[d]) perm.push_back(d);
    for (int64_t d = 0; d < x.dim(); ++d) if (p.reduced[d]) perm.push_back(d);
    return contiguous(permute(x, perm));
}

// Row-wise reduction with accumulator type A (double for sums, for accuracy).
template <class T, class A, class Init, class Step, class Fin>
Tensor reduce_rows(const Tensor& x, const Plan& p, Init init, Step step, Fin fin) {
    Tensor out = Tensor::empty(p.out_shape, x.dtype());
    Tensor r = as_rows(x, p);
    const T* src = r.data<T>();
    T* o = out.data<T>();
    for (int64_t i = 0; i < p.rows; ++i) {
        A acc = init();
        const T* row = src + i * p.cols;
        for (int64_t j = 0; j < p.cols; ++j) acc = step(acc, row[j]);
        o[i] = fin(acc);
    }
    return out;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
    Plan p = make_plan(x, dims, keepdim, "sum");
    if (p.rows == 1 && x.is_contiguous()) {  // everything reduced (a loss): one pass, no permute
        Tensor out = Tensor::empty(p.out_shape, x.dtype());
        dispatch(x.dtype(), [&]<class T>() {
            out.data<T>()[0] = (T)kernels::sum<T>(kernels::loops(), x.data<T>(), p.cols);
        });
        return out;
    }
    // Leading dims reduced over a contiguous input: accumulate whole rows.
    int64_t lead = 0;
    while (lead < x.dim() && p.reduced[lead]) ++lead;
    bool leading_only = lead > 0 && x.is_contiguous();
    for (int64_t d = lead; d < x.dim(); ++d) if (p.reduced[d]) leading_only = false;
    if (leading_only && p.rows > 1) {
        Tensor out = Tensor::empty(p.out_shape, x.dtype());
        dispatch(x.dtype(), [&]<class T>() {
            // Accumulate in double like the general path: an f32 running sum
            // over 1e5 rows drifts by ~1e-4 relative.
            std::vector<double> acc((size_t)p.rows, 0.0);
            const T* src = x.data<T>();
            const kernels::Loops& K = kernels::loops();
            for (int64_t i = 0; i < p.cols; ++i) kernels::accumulate<T>(K, acc.data(), src + i * p.rows, p.rows);
            T* o = out.data<T>();
            for (int64_t j = 0; j < p.rows; ++j) o[j] = (T)acc[(size_t)j];
        });
        return out;
    }
    return dispatch(x.dtype(), [&]<class T>() {
        Tensor out = Tensor::empty(p.out_shape, x.dtype());
        Tensor r = as_rows(x, p);  // (rows, cols)
        const T* src = r.data<T>();
        T* o = out.data<T>();
        const kernels::Loops& K = kernels::loops();
        for (int64_t i = 0; i < p.rows; ++i) o[i] = (T)kernels::sum<T>(K, src + i * p.cols, p.cols);
        return out;
    });
}

Tensor amax(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
    Plan p = make_plan(x, dims, keepdim, "amax");
    if (p.cols == 0) throw std::invalid_argument("amax: reduction over an empty dimension of " + shape_str(x.shape()));
    return dispatch(x.dtype(), [&]<class T>() {
        return reduce_rows<T, T>(x, p, [] { return -std::numeric_limits<T>::infinity(); },
                                 [](T a, T v) { return v > a || v != v ? v : a; }, [](T a) { return a; });
    });
}

Tensor amin(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
    Plan p = make_plan(x, dims, keepdim, "amin");
    if (p.cols == 0) throw std::invalid_argument("amin: reduction over an empty dimension of " + shape_str(x.shape()));
    return dispatch(x.dtype(), [&]<class T>() {
        return reduce_rows<T, T>(x, p, [] { return std::numeric_limits<T>::infinity(); },
                                 [](T a, T v) { return v < a || v != v ? v : a; }, [](T a) { return a; });
    });
}

MaxResult max_dim(const Tensor& x, int64_t dim, bool keepdim) {
    Plan p = make_plan(x, {dim}, keepdim, "max_dim");
    if (p.cols == 0) throw std::invalid_argument("max_dim: reduction over an empty dimension of " + shape_str(x.shape()));
    MaxResult res;
    res.values = Tensor::empty(p.out_shape, x.dtype());
    res.indices.shape = p.out_shape;
    res.indices.data.resize((size_t)p.rows);
    dispatch(x.dtype(), [&]<class T>() {
        Tensor r = as_rows(x, p);
        const T* src = r.data<T>();
        T* o = res.values.data<T>();
        for (int64_t i = 0; i < p.rows; ++i) {
            const T* row = src + i * p.cols;
            int64_t best = 0;
            for (int64_t j = 1; j < p.cols; ++j)
                if (row[j] > row[best]) best = j;  // first maximum wins, as in NumPy argmax
            o[i] = row[best];
            res.indices.data[i] = best;
        }
    });
    return res;
}

// Softmax-family ops along one dim: run on rows with `dim` last, then put the
// dim back. `kind`: 0 logsumexp, 1 softmax, 2 log_softmax.
static Tensor softmax_family(const Tensor& x, int64_t dim, bool keepdim, int kind, const char* op) {
    dim = wrap_dim(dim, x.dim(), op);
    // A 0-d input is one row of one element (as in PyTorch).
    if (x.dim() == 0) return view(softmax_family(view(x, {1}), 0, keepdim, kind, op), {});
    Plan p = make_plan(x, {dim}, kind == 0 ? keepdim : true, op);
    Tensor r = as_rows(x, p);
    Tensor out = Tensor::empty(kind == 0 ? Shape{p.rows} : Shape{p.rows, p.cols}, x.dtype());
    dispatch(x.dtype(), [&]<class T>() {
        const T* src = r.data<T>();
        T* o = out.data<T>();
        for (int64_t i = 0; i < p.rows; ++i) {
            const T* row = src + i * p.cols;
            T m = -std::numeric_limits<T>::infinity();
            for (int64_t j = 0; j < p.cols; ++j) m = std::max(m, row[j]);
            if (!std::isfinite(m)) m = 0;  // all -inf rows: avoid inf - inf
            double s = 0;
            for (int64_t j = 0; j < p.cols; ++j) s += std::exp((double)(row[j] - m));
            T lse = (T)(std::log(s) + (double)m);
            if (kind == 0) {
                o[i] = lse;
            } else if (kind == 1) {
                T inv = (T)(1.0 / s);
                for (int64_t j = 0; j < p.cols; ++j) o[i * p.cols + j] = std::exp(row[j] - m) * inv;
            } else {
                // (x - m) - log s, not x - lse: lse rounded to T loses the
                // low digits of large inputs (f32 at |x| ~ 1e3 keeps ~1e-4).
                double ls = std::log(s);
                for (int64_t j = 0; j < p.cols; ++j) o[i * p.cols + j] = (T)((double)(row[j] - m) - ls);
            }
        }
    });
    if (kind == 0) return view(out, p.out_shape);
    // out is (kept..., n) in the permuted order: restore the original order.
    Shape perm_shape = p.kept_shape;
    perm_shape.push_back(x.shape()[dim]);
    Tensor o = view(out, perm_shape);
    if (dim == x.dim() - 1) return o;
    std::vector<int64_t> inv(x.dim());
    for (int64_t d = 0, k = 0; d < x.dim(); ++d) inv[d] = d == dim ? x.dim() - 1 : k++;
    return contiguous(permute(o, inv));
}

Tensor logsumexp(const Tensor& x, int64_t dim, bool keepdim) { return softmax_family(x, dim, keepdim, 0, "logsumexp"); }
Tensor softmax(const Tensor& x, int64_t dim) { return softmax_family(x, dim, true, 1, "softmax"); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_family(x, dim, true, 2, "log_softmax"); }

Tensor mul_sum_to(const Tensor& x, const Tensor& y, const Shape& shape) {
    if (x.dtype() != y.dtype())
        throw std::invalid_argument(std::string("mul_sum_to: dtype mismatch, ") + dtype_name(x.dtype()) + " " +
                                    shape_str(x.shape()) + " vs " + dtype_name(y.dtype()) + " " + shape_str(y.shape()));
    const Shape full = broadcast_shapes(x.shape(), y.shape(), "mul_sum_to");
    if (broadcast_shapes(shape, full, "mul_sum_to") != full)
        throw std::invalid_argument("mul_sum_to: shape " + shape_str(shape) + " does not broadcast to " + shape_str(full));
    // One walk over the product's shape; the accumulator (double, the size of
    // the result) has stride 0 along the summed dims, so a run along one of
    // them is a dot product and a run along a kept dim an axpy.
    std::vector<double> acc((size_t)numel_of(shape), 0.0);
    Tensor out = Tensor::empty(shape, x.dtype());
    dispatch(x.dtype(), [&]<class T>() {
        const kernels::Loops& K = kernels::loops();
        const T *px = x.data<T>(), *py = y.data<T>();
        detail::StridedLoop<3> L(full, {detail::broadcast_strides(shape, contiguous_strides(shape), full),
                                        detail::broadcast_strides(x.shape(), x.strides(), full),
                                        detail::broadcast_strides(y.shape(), y.strides(), full)});
        L.run({0, 0, 0}, [&](std::array<int64_t, 3> off, int64_t n, std::array<int64_t, 3> st) {
            kernels::mul_acc<T>(K, acc.data() + off[0], px + off[1], py + off[2], n, st[0], st[1], st[2]);
        });
        T* o = out.data<T>();
        for (size_t i = 0; i < acc.size(); ++i) o[i] = (T)acc[i];
    });
    return out;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
    if (x.shape() == shape) return Tensor::view_of(x, x.shape(), x.strides(), x.offset());
    if (broadcast_shapes(shape, x.shape(), "sum_to") != x.shape())
        throw std::invalid_argument("sum_to: shape " + shape_str(shape) + " does not broadcast to " + shape_str(x.shape()));
    size_t lead = x.shape().size() - shape.size();
    std::vector<int64_t> dims;
    for (size_t i = 0; i < x.shape().size(); ++i)
        if (i < lead || (shape[i - lead] == 1 && x.shape()[i] != 1)) dims.push_back((int64_t)i);
    if (dims.empty()) return view(contiguous(x), shape);
    return reshape(sum(x, dims, false), shape);
}

}  // namespace miras::raw
