// View ops: new geometry over the same storage, never a copy (except
// reshape of a non-viewable layout, contiguous(), clone() and to_dtype()).
#include <algorithm>
#include <stdexcept>

#include "tensor/ops.h"

namespace miras::raw {

Tensor as_strided(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset) {
    if (shape.size() != strides.size())
        throw std::invalid_argument("as_strided: shape " + shape_str(shape) + " and strides " +
                                    shape_str(strides) + " differ in length");
    return Tensor::view_of(x, shape, strides, offset);
}

Shape infer_shape(Shape shape, int64_t numel, const char* op) {
    int64_t infer = -1, known = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == -1) {
            if (infer >= 0) throw std::invalid_argument(std::string(op) + ": only one dimension can be -1 in " + shape_str(shape));
            infer = (int64_t)i;
        } else if (shape[i] < 0) {
            throw std::invalid_argument(std::string(op) + ": invalid dimension in " + shape_str(shape));
        } else {
            known *= shape[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || numel % known != 0)
            throw std::invalid_argument(std::string(op) + ": cannot infer -1 in " + shape_str(shape) + " for " +
                                        std::to_string(numel) + " elements");
        shape[infer] = numel / known;
    } else if (known != numel) {
        throw std::invalid_argument(std::string(op) + ": shape " + shape_str(shape) + " is invalid for " +
                                    std::to_string(numel) + " elements");
    }
    return shape;
}

// Strides for viewing x as `shape` without copying, or empty if impossible.
// Walks groups of x's dims that are contiguous with each other (PyTorch's
// computeStride): each group can be split or merged freely.
static bool view_strides(const Tensor& x, const Shape& shape, Shape& out) {
    const Shape& os = x.shape();
    const Shape& ost = x.strides();
    out.assign(shape.size(), 0);
    if (x.numel() == 0) { out = contiguous_strides(shape); return true; }
    int64_t view_d = (int64_t)shape.size() - 1;
    int64_t chunk_base_stride = ost.empty() ? 1 : ost.back();
    int64_t tensor_numel = 1, view_numel = 1;
    for (int64_t d = (int64_t)os.size() - 1; d >= 0; --d) {
        tensor_numel *= os[d];
        if (d == 0 || (os[d - 1] != 1 && ost[d - 1] != tensor_numel * chunk_base_stride)) {
            while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
                out[view_d] = view_numel * chunk_base_stride;
                view_numel *= shape[view_d];
                --view_d;
            }
            if (view_numel != tensor_numel) return false;
            if (d > 0) { chunk_base_stride = ost[d - 1]; tensor_numel = 1; view_numel = 1; }
        }
    }
    while (view_d >= 0) { out[view_d] = 1; --view_d; }  // trailing size-1 dims (0-d input)
    return true;
}

Tensor view(const Tensor& x, Shape shape) {
    shape = infer_shape(std::move(shape), x.numel(), "view");
    Shape st;
    if (!view_strides(x, shape, st))
        throw std::invalid_argument("view: cannot view a tensor of shape " + shape_str(x.shape()) + " and strides " +
                                    shape_str(x.strides()) + " as " + shape_str(shape) + " without a copy; use reshape");
    return Tensor::view_of(x, shape, st, x.offset());
}

Tensor reshape(const Tensor& x, Shape shape) {
    shape = infer_shape(std::move(shape), x.numel(), "reshape");
    Shape st;
    if (view_strides(x, shape, st)) return Tensor::view_of(x, shape, st, x.offset());
    Tensor c = clone(x);
    return Tensor::view_of(c, shape, contiguous_strides(shape), 0);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
    int64_t n = x.dim();
    if ((int64_t)dims.size() != n)
        throw std::invalid_argument("permute: " + std::to_string(dims.size()) + " dims given for a tensor of shape " +
                                    shape_str(x.shape()));
    Shape sh(n), st(n);
    std::vector<bool> seen(n, false);
    for (int64_t i = 0; i < n; ++i) {
        int64_t d = wrap_dim(dims[i], n, "permute");
        if (seen[d]) throw std::invalid_argument("permute: dim " + std::to_string(d) + " repeated");
        seen[d] = true;
        sh[i] = x.shape()[d];
        st[i] = x.strides()[d];
    }
    return Tensor::view_of(x, sh, st, x.offset());
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
    d0 = wrap_dim(d0, x.dim(), "transpose");
    d1 = wrap_dim(d1, x.dim(), "transpose");
    Shape sh = x.shape(), st = x.strides();
    if (x.dim() == 0) return Tensor::view_of(x, sh, st, x.offset());
    std::swap(sh[d0], sh[d1]);
    std::swap(st[d0], st[d1]);
    return Tensor::view_of(x, sh, st, x.offset());
}

// wrap_dim accepts dim 0 of a 0-d tensor (as a reduction would); narrow and
// select need a real dim to index.
static void check_not_0d(const Tensor& x, const char* op) {
    if (x.dim() == 0) throw std::invalid_argument(std::string(op) + ": cannot be applied to a 0-d tensor (shape ())");
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
    check_not_0d(x, "narrow");
    dim = wrap_dim(dim, x.dim(), "narrow");
    int64_t n = x.shape()[dim];
    if (start < 0) start += n;
    if (start < 0 || length < 0 || start + length > n)
        throw std::out_of_range("narrow: range [" + std::to_string(start) + ", " + std::to_string(start + length) +
                                ") out of bounds for dim " + std::to_string(dim) + " of shape " + shape_str(x.shape()));
    Shape sh = x.shape();
    sh[dim] = length;
    return Tensor::view_of(x, sh, x.strides(), x.offset() + start * x.strides()[dim]);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
    check_not_0d(x, "select");
    dim = wrap_dim(dim, x.dim(), "select");
    int64_t n = x.shape()[dim];
    if (index < -n || index >= n)
        throw std::out_of_range("select: index " + std::to_string(index) + " out of range for dim " +
                                std::to_string(dim) + " of shape " + shape_str(x.shape()));
    if (index < 0) index += n;
    Shape sh = x.shape(), st = x.strides();
    int64_t off = x.offset() + index * st[dim];
    sh.erase(sh.begin() + dim);
    st.erase(st.begin() + dim);
    return Tensor::view_of(x, sh, st, off);
}

Tensor expand(const Tensor& x, const Shape& shape) {
    const Shape& xs = x.shape();
    if (shape.size() < xs.size())
        throw std::invalid_argument("expand: cannot expand " + shape_str(xs) + " to fewer dims " + shape_str(shape));
    size_t lead = shape.size() - xs.size();
    Shape st(shape.size(), 0);
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i < lead) continue;
        int64_t d = xs[i - lead];
        if (d == shape[i]) st[i] = x.strides()[i - lead];
        else if (d == 1) st[i] = 0;
        else throw std::invalid_argument("expand: shape " + shape_str(xs) + " cannot be broadcast to " + shape_str(shape));
    }
    return Tensor::view_of(x, shape, st, x.offset());
}

Tensor squeeze(const Tensor& x, int64_t dim) {
    dim = wrap_dim(dim, x.dim(), "squeeze");
    if (x.dim() == 0 || x.shape()[dim] != 1) return Tensor::view_of(x, x.shape(), x.strides(), x.offset());
    Shape sh = x.shape(), st = x.strides();
    sh.erase(sh.begin() + dim);
    st.erase(st.begin() + dim);
    return Tensor::view_of(x, sh, st, x.offset());
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
    dim = wrap_dim(dim, x.dim() + 1, "unsqueeze");
    Shape sh = x.shape(), st = x.strides();
    int64_t s = dim < x.dim() ? st[dim] * sh[dim] : 1;
    sh.insert(sh.begin() + dim, 1);
    st.insert(st.begin() + dim, s);
    return Tensor::view_of(x, sh, st, x.offset());
}

// Raw ops never hand back their input's own handle (always a fresh impl), so
// the autograd layer can attach a graph node to any result.
Tensor contiguous(const Tensor& x) {
    return x.is_contiguous() ? Tensor::view_of(x, x.shape(), x.strides(), x.offset()) : clone(x);
}

Tensor clone(const Tensor& x) {
    Tensor out = Tensor::empty(x.shape(), x.dtype());
    copy_(out, x);
    return out;
}

Tensor to_dtype(const Tensor& x, DType dt) {
    if (x.dtype() == dt) return Tensor::view_of(x, x.shape(), x.strides(), x.offset());
    Tensor xc = contiguous(x);
    Tensor out = Tensor::empty(x.shape(), dt);
    int64_t n = x.numel();
    dispatch(x.dtype(), [&]<class S>() {
        dispatch(dt, [&]<class D>() {
            const S* s = xc.data<S>();
            D* d = out.data<D>();
            for (int64_t i = 0; i < n; ++i) d[i] = (D)s[i];
        });
    });
    return out;
}

}  // namespace miras::raw
