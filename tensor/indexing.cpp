// Joining, indexing and scans: cat, stack, split, index_select, embedding,
// gather, scatter_add, index_add, cumsum, cumprod, tril, triu, one_hot.
//
// Every kernel makes its inputs contiguous first and then works on raw
// row-major memory. Around an axis `dim` a contiguous tensor is viewed as
// (outer, n, inner): outer = prod(shape[:dim]), n = shape[dim],
// inner = prod(shape[dim+1:]), so element [o, j, i] sits at (o * n + j) * inner + i.
// Outputs are fresh contiguous tensors (split alone returns views).
#include <algorithm>
#include <stdexcept>
#include <string>

#include "tensor/ops.h"

namespace miras::raw {

namespace {

struct Axis {
    int64_t outer = 1, n = 1, inner = 1;
};

// (outer, n, inner) of `shape` around `dim` (dim already wrapped; a 0-d shape
// is treated as (1,)).
Axis axis_of(const Shape& shape, int64_t dim) {
    Axis a;
    if (shape.empty()) return a;
    for (int64_t d = 0; d < dim; ++d) a.outer *= shape[d];
    a.n = shape[dim];
    for (size_t d = dim + 1; d < shape.size(); ++d) a.inner *= shape[d];
    return a;
}

std::string num(int64_t v) { return std::to_string(v); }

// IndexTensor's fields are public: make sure shape and data still agree.
void check_index(const IndexTensor& idx, const char* op) {
    if (numel_of(idx.shape) != idx.numel())
        throw std::invalid_argument(std::string(op) + ": index of shape " + shape_str(idx.shape) + " holds " +
                                    num(idx.numel()) + " values, expected " + num(numel_of(idx.shape)));
}

void check_out_shape(const Shape& shape, const char* op) {
    for (int64_t d : shape)
        if (d < 0) throw std::invalid_argument(std::string(op) + ": negative dimension in shape " + shape_str(shape));
}

// Calls f(p, oa, ob) once per row of `shape` along its last dim (rows in
// row-major order). p is the row's first flat position in a contiguous tensor
// of `shape`; oa and ob are the row start's offsets under strides sa and sb
// (which may differ from `shape`'s own: they address other, larger tensors).
// `shape` must have at least one dim. One small allocation per call.
template <class F>
void for_each_row(const Shape& shape, const Shape& sa, const Shape& sb, F&& f) {
    int64_t total = numel_of(shape);
    if (total == 0) return;
    int64_t nd = (int64_t)shape.size(), len = shape[nd - 1];
    std::vector<int64_t> ctr(nd, 0);
    int64_t oa = 0, ob = 0;
    for (int64_t p = 0; p < total; p += len) {
        f(p, oa, ob);
        for (int64_t d = nd - 2; d >= 0; --d) {  // odometer over all but the last dim
            if (++ctr[d] < shape[d]) {
                oa += sa[d];
                ob += sb[d];
                break;
            }
            oa -= (shape[d] - 1) * sa[d];
            ob -= (shape[d] - 1) * sb[d];
            ctr[d] = 0;
        }
    }
}

// out: (outer, sum(ns), inner) <- the inputs xs[t]: (outer, ns[t], inner), side by side.
template <class T>
void cat_kernel(const std::vector<Tensor>& xs, const std::vector<int64_t>& ns, int64_t outer, int64_t inner,
                T* out) {
    int64_t total = 0;
    for (int64_t n : ns) total += n;
    int64_t start = 0;
    for (size_t t = 0; t < xs.size(); ++t) {
        const T* src = xs[t].data<T>();
        int64_t block = ns[t] * inner;  // one contiguous run per outer index
        for (int64_t o = 0; o < outer; ++o)
            std::copy(src + o * block, src + (o + 1) * block, out + (o * total + start) * inner);
        start += ns[t];
    }
}

}  // namespace

// ---- joining

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
    if (xs.empty()) throw std::invalid_argument("cat: expected a non-empty list of tensors");
    const Tensor& x0 = xs[0];
    if (x0.dim() == 0) throw std::invalid_argument("cat: zero-dimensional tensor 0 cannot be concatenated");
    int64_t nd = x0.dim();
    dim = wrap_dim(dim, nd, "cat");
    Shape out_shape = x0.shape();
    out_shape[dim] = 0;
    std::vector<int64_t> ns(xs.size());
    for (size_t t = 0; t < xs.size(); ++t) {
        const Tensor& x = xs[t];
        if (x.dtype() != x0.dtype())
            throw std::invalid_argument("cat: tensor " + num(t) + " has dtype " + dtype_name(x.dtype()) +
                                        " but tensor 0 has " + dtype_name(x0.dtype()));
        if (x.dim() != nd)
            throw std::invalid_argument("cat: tensor " + num(t) + " has " + num(x.dim()) + " dims (shape " +
                                        shape_str(x.shape()) + ") but tensor 0 has " + num(nd) + " (shape " +
                                        shape_str(x0.shape()) + ")");
        bool ok = true;
        for (int64_t d = 0; ok && d < nd; ++d) ok = d == dim || x.shape()[d] == x0.shape()[d];
        if (!ok)
            throw std::invalid_argument("cat: tensor " + num(t) + " has shape " + shape_str(x.shape()) +
                                        " but tensor 0 has " + shape_str(x0.shape()) + " outside dim " + num(dim));
        ns[t] = x.shape()[dim];
        out_shape[dim] += ns[t];
    }
    std::vector<Tensor> cs;
    cs.reserve(xs.size());
    for (const Tensor& x : xs) cs.push_back(contiguous(x));
    Axis a = axis_of(out_shape, dim);
    Tensor out = Tensor::empty(out_shape, x0.dtype());
    dispatch(x0.dtype(), [&]<class T>() { cat_kernel<T>(cs, ns, a.outer, a.inner, out.data<T>()); });
    return out;
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
    if (xs.empty()) throw std::invalid_argument("stack: expected a non-empty list of tensors");
    const Tensor& x0 = xs[0];
    dim = wrap_dim(dim, x0.dim() + 1, "stack");
    for (size_t t = 1; t < xs.size(); ++t) {
        if (xs[t].dtype() != x0.dtype())
            throw std::invalid_argument("stack: tensor " + num(t) + " has dtype " + dtype_name(xs[t].dtype()) +
                                        " but tensor 0 has " + dtype_name(x0.dtype()));
        if (xs[t].shape() != x0.shape())
            throw std::invalid_argument("stack: tensor " + num(t) + " has shape " + shape_str(xs[t].shape()) +
                                        " but tensor 0 has " + shape_str(x0.shape()));
    }
    // out: (outer, K, inner) with each input an (outer, 1, inner) slab.
    Shape out_shape = x0.shape();
    out_shape.insert(out_shape.begin() + dim, (int64_t)xs.size());
    Axis a = axis_of(out_shape, dim);
    std::vector<Tensor> cs;
    cs.reserve(xs.size());
    for (const Tensor& x : xs) cs.push_back(contiguous(x));
    std::vector<int64_t> ns(xs.size(), 1);
    Tensor out = Tensor::empty(out_shape, x0.dtype());
    dispatch(x0.dtype(), [&]<class T>() { cat_kernel<T>(cs, ns, a.outer, a.inner, out.data<T>()); });
    return out;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
    if (x.dim() == 0) throw std::invalid_argument("split: cannot split a zero-dimensional tensor");
    dim = wrap_dim(dim, x.dim(), "split");
    int64_t total = 0;
    for (int64_t s : sizes) {
        if (s < 0) throw std::invalid_argument("split: negative size " + num(s) + " in sizes " + shape_str(sizes));
        total += s;
    }
    if (total != x.shape()[dim])
        throw std::invalid_argument("split: sizes " + shape_str(sizes) + " sum to " + num(total) + " but dim " +
                                    num(dim) + " of shape " + shape_str(x.shape()) + " has size " +
                                    num(x.shape()[dim]));
    std::vector<Tensor> parts;
    parts.reserve(sizes.size());
    int64_t start = 0;
    for (int64_t s : sizes) {
        parts.push_back(narrow(x, dim, start, s));
        start += s;
    }
    return parts;
}

// ---- indexing

Tensor index_select(const Tensor& x, int64_t dim, const IndexTensor& idx) {
    check_index(idx, "index_select");
    if (x.dim() == 0) throw std::invalid_argument("index_select: input must have at least one dim, got shape ()");
    dim = wrap_dim(dim, x.dim(), "index_select");
    if (idx.dim() > 1)
        throw std::invalid_argument("index_select: index must be 1-D, got shape " + shape_str(idx.shape));
    idx.check_range(x.shape()[dim], "index_select");
    // x: (outer, n, inner) -> out: (outer, m, inner), out[o, j, :] = x[o, idx[j], :]
    Tensor xc = contiguous(x);
    Axis a = axis_of(x.shape(), dim);
    int64_t m = idx.numel();
    Shape out_shape = x.shape();
    out_shape[dim] = m;
    Tensor out = Tensor::empty(out_shape, x.dtype());
    const int64_t* ip = idx.data.data();
    dispatch(x.dtype(), [&]<class T>() {
        const T* src = xc.data<T>();
        T* dst = out.data<T>();
        for (int64_t o = 0; o < a.outer; ++o)
            for (int64_t j = 0; j < m; ++j) {
                const T* row = src + (o * a.n + ip[j]) * a.inner;
                std::copy(row, row + a.inner, dst + (o * m + j) * a.inner);
            }
    });
    return out;
}

Tensor embedding(const Tensor& table, const IndexTensor& ids) {
    check_index(ids, "embedding");
    if (table.dim() != 2)
        throw std::invalid_argument("embedding: table must be 2-D (V, D), got shape " + shape_str(table.shape()));
    int64_t V = table.shape()[0], D = table.shape()[1];
    ids.check_range(V, "embedding");
    // table: (V, D), ids: (...) -> out: (..., D), out[p, :] = table[ids[p], :]
    Tensor tc = contiguous(table);
    Shape out_shape = ids.shape;
    out_shape.push_back(D);
    Tensor out = Tensor::empty(out_shape, table.dtype());
    const int64_t* ip = ids.data.data();
    dispatch(table.dtype(), [&]<class T>() {
        const T* src = tc.data<T>();
        T* dst = out.data<T>();
        for (int64_t p = 0, n = ids.numel(); p < n; ++p)
            std::copy(src + ip[p] * D, src + (ip[p] + 1) * D, dst + p * D);
    });
    return out;
}

namespace {

// Shared checks of gather and scatter_add: idx has the rank of `shape` (the
// input of gather, the output of scatter_add) and fits inside it outside dim.
void check_gather_index(const IndexTensor& idx, const Shape& shape, int64_t dim, const char* op,
                        const char* what) {
    if ((int64_t)idx.shape.size() != (int64_t)shape.size())
        throw std::invalid_argument(std::string(op) + ": index has " + num(idx.dim()) + " dims but " + what +
                                    " has " + num((int64_t)shape.size()) + " (index shape " + shape_str(idx.shape) +
                                    ", " + what + " shape " + shape_str(shape) + ")");
    for (size_t d = 0; d < shape.size(); ++d)
        if ((int64_t)d != dim && idx.shape[d] > shape[d])
            throw std::invalid_argument(std::string(op) + ": index shape " + shape_str(idx.shape) + " exceeds " +
                                        what + " shape " + shape_str(shape) + " at dim " + num((int64_t)d) +
                                        " (only dim " + num(dim) + " may be larger)");
}

// A 0-d shape as (1,), so the row walkers always see at least one dim.
Shape at_least_1d(const Shape& s) { return s.empty() ? Shape{1} : s; }

}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const IndexTensor& idx) {
    check_index(idx, "gather");
    dim = wrap_dim(dim, x.dim(), "gather");
    check_gather_index(idx, x.shape(), dim, "gather", "input");
    idx.check_range(x.dim() ? x.shape()[dim] : 1, "gather");
    // out[i..., j, k...] = x[i..., idx[i..., j, k...], k...]; out.shape = idx.shape.
    // Walk idx's rows; xs0 addresses x with dim's own stride zeroed, so the row
    // start offset ignores the position along dim, which idx supplies.
    Tensor xc = contiguous(x);
    Shape ish = at_least_1d(idx.shape), xs = contiguous_strides(at_least_1d(x.shape()));
    Shape xs0 = xs;
    xs0[dim] = 0;
    int64_t last = (int64_t)ish.size() - 1, len = ish[last], xl = xs0[last], xd = xs[dim];
    Tensor out = Tensor::empty(idx.shape, x.dtype());
    const int64_t* ip = idx.data.data();
    dispatch(x.dtype(), [&]<class T>() {
        const T* src = xc.data<T>();
        T* dst = out.data<T>();
        for_each_row(ish, xs0, xs0, [&](int64_t p, int64_t ox, int64_t) {
            for (int64_t k = 0; k < len; ++k) dst[p + k] = src[ox + k * xl + ip[p + k] * xd];
        });
    });
    return out;
}

Tensor scatter_add(const Shape& shape, int64_t dim, const IndexTensor& idx, const Tensor& src) {
    check_index(idx, "scatter_add");
    check_out_shape(shape, "scatter_add");
    dim = wrap_dim(dim, (int64_t)shape.size(), "scatter_add");
    check_gather_index(idx, shape, dim, "scatter_add", "output");
    if (src.dim() != idx.dim())
        throw std::invalid_argument("scatter_add: index has " + num(idx.dim()) + " dims but src has " +
                                    num(src.dim()) + " (index shape " + shape_str(idx.shape) + ", src shape " +
                                    shape_str(src.shape()) + ")");
    for (int64_t d = 0; d < src.dim(); ++d)
        if (idx.shape[d] > src.shape()[d])
            throw std::invalid_argument("scatter_add: index shape " + shape_str(idx.shape) + " exceeds src shape " +
                                        shape_str(src.shape()) + " at dim " + num(d));
    idx.check_range(shape.empty() ? 1 : shape[dim], "scatter_add");
    // out = zeros(shape); out[i..., idx[i..., j, k...], k...] += src[i..., j, k...]
    // (the adjoint of gather). Walk idx's rows: os0 addresses out with dim's
    // stride zeroed, ss addresses src (which may be larger than idx).
    Tensor sc = contiguous(src);
    Shape ish = at_least_1d(idx.shape), os = contiguous_strides(at_least_1d(shape));
    Shape os0 = os, ss = contiguous_strides(at_least_1d(src.shape()));
    os0[dim] = 0;
    int64_t last = (int64_t)ish.size() - 1, len = ish[last], ol = os0[last], od = os[dim], sl = ss[last];
    Tensor out = Tensor::empty(shape, src.dtype());
    const int64_t* ip = idx.data.data();
    dispatch(src.dtype(), [&]<class T>() {
        const T* s = sc.data<T>();
        T* dst = out.data<T>();
        std::fill(dst, dst + out.numel(), T(0));
        for_each_row(ish, os0, ss, [&](int64_t p, int64_t oo, int64_t so) {
            for (int64_t k = 0; k < len; ++k) dst[oo + k * ol + ip[p + k] * od] += s[so + k * sl];
        });
    });
    return out;
}

Tensor index_add(const Shape& shape, int64_t dim, const IndexTensor& idx, const Tensor& src) {
    check_index(idx, "index_add");
    check_out_shape(shape, "index_add");
    if (shape.empty()) throw std::invalid_argument("index_add: output must have at least one dim, got shape ()");
    dim = wrap_dim(dim, (int64_t)shape.size(), "index_add");
    if (idx.dim() > 1)
        throw std::invalid_argument("index_add: index must be 1-D, got shape " + shape_str(idx.shape));
    Shape want = shape;
    want[dim] = idx.numel();
    if (src.shape() != want)
        throw std::invalid_argument("index_add: src has shape " + shape_str(src.shape()) + " but output shape " +
                                    shape_str(shape) + " with " + num(idx.numel()) + " indices along dim " +
                                    num(dim) + " needs " + shape_str(want));
    idx.check_range(shape[dim], "index_add");
    // out = zeros(shape): (outer, n, inner); out[o, idx[j], :] += src[o, j, :]
    // (the adjoint of index_select).
    Tensor sc = contiguous(src);
    Axis a = axis_of(shape, dim);
    int64_t m = idx.numel();
    Tensor out = Tensor::empty(shape, src.dtype());
    const int64_t* ip = idx.data.data();
    dispatch(src.dtype(), [&]<class T>() {
        const T* s = sc.data<T>();
        T* dst = out.data<T>();
        std::fill(dst, dst + out.numel(), T(0));
        for (int64_t o = 0; o < a.outer; ++o)
            for (int64_t j = 0; j < m; ++j) {
                const T* row = s + (o * m + j) * a.inner;
                T* to = dst + (o * a.n + ip[j]) * a.inner;
                for (int64_t i = 0; i < a.inner; ++i) to[i] += row[i];
            }
    });
    return out;
}

// ---- scans

namespace {

// x: (outer, n, inner) -> out[o, j, i] = x[o, 0, i] op ... op x[o, j, i]
// (or from the end when reverse). The running value is kept in double per
// inner position, as PyTorch accumulates f32 scans in a wider type.
template <bool Prod>
Tensor scan(const Tensor& x, int64_t dim, bool reverse, const char* op) {
    dim = wrap_dim(dim, x.dim(), op);
    Tensor xc = contiguous(x);
    Axis a = axis_of(x.shape(), dim);
    Tensor out = Tensor::empty(x.shape(), x.dtype());
    dispatch(x.dtype(), [&]<class T>() {
        const T* src = xc.data<T>();
        T* dst = out.data<T>();
        std::vector<double> acc((size_t)a.inner);
        for (int64_t o = 0; o < a.outer; ++o) {
            std::fill(acc.begin(), acc.end(), Prod ? 1.0 : 0.0);
            for (int64_t step = 0; step < a.n; ++step) {
                int64_t j = reverse ? a.n - 1 - step : step;
                int64_t base = (o * a.n + j) * a.inner;
                for (int64_t i = 0; i < a.inner; ++i) {
                    if constexpr (Prod) acc[i] *= (double)src[base + i];
                    else acc[i] += (double)src[base + i];
                    dst[base + i] = (T)acc[i];
                }
            }
        }
    });
    return out;
}

// Keeps j <= i + k (lower) or j >= i + k (upper) over the last two dims.
Tensor triangle(const Tensor& x, int64_t k, bool lower, const char* op) {
    if (x.dim() < 2)
        throw std::invalid_argument(std::string(op) + ": input must have at least 2 dims, got shape " +
                                    shape_str(x.shape()));
    Tensor xc = contiguous(x);
    int64_t R = x.shape()[x.dim() - 2], C = x.shape()[x.dim() - 1];
    int64_t B = R * C == 0 ? 0 : x.numel() / (R * C);
    k = std::clamp<int64_t>(k, -R - 1, C + 1);  // beyond this range the result no longer changes
    Tensor out = Tensor::empty(x.shape(), x.dtype());
    dispatch(x.dtype(), [&]<class T>() {
        const T* src = xc.data<T>();
        T* dst = out.data<T>();
        // x: (B, R, C); row i keeps columns [0, cut) (lower) or [cut, C) (upper).
        for (int64_t b = 0; b < B; ++b)
            for (int64_t i = 0; i < R; ++i) {
                const T* s = src + (b * R + i) * C;
                T* d = dst + (b * R + i) * C;
                int64_t cut = std::clamp<int64_t>(lower ? i + k + 1 : i + k, 0, C);
                if (lower) {
                    std::copy(s, s + cut, d);
                    std::fill(d + cut, d + C, T(0));
                } else {
                    std::fill(d, d + cut, T(0));
                    std::copy(s + cut, s + C, d + cut);
                }
            }
    });
    return out;
}

}  // namespace

Tensor cumsum(const Tensor& x, int64_t dim, bool reverse) { return scan<false>(x, dim, reverse, "cumsum"); }
Tensor cumprod(const Tensor& x, int64_t dim, bool reverse) { return scan<true>(x, dim, reverse, "cumprod"); }
Tensor tril(const Tensor& x, int64_t k) { return triangle(x, k, true, "tril"); }
Tensor triu(const Tensor& x, int64_t k) { return triangle(x, k, false, "triu"); }

Tensor one_hot(const IndexTensor& idx, int64_t num_classes, DType dt) {
    check_index(idx, "one_hot");
    if (num_classes < 0)
        throw std::invalid_argument("one_hot: num_classes must be non-negative, got " + num(num_classes));
    idx.check_range(num_classes, "one_hot");
    // idx: (...) -> out: (..., C), out[p, c] = (c == idx[p])
    Shape out_shape = idx.shape;
    out_shape.push_back(num_classes);
    Tensor out = Tensor::empty(out_shape, dt);
    dispatch(dt, [&]<class T>() {
        T* dst = out.data<T>();
        std::fill(dst, dst + out.numel(), T(0));
        for (int64_t p = 0, n = idx.numel(); p < n; ++p) dst[p * num_classes + idx.data[p]] = T(1);
    });
    return out;
}

}  // namespace miras::raw
