// Views and layout ops. Their backward formulas only move gradients around:
// the inverse view, or a scatter into zeros for narrow/select.
#include "autograd/ops.h"

namespace miras {

Tensor reshape(const Tensor& x, const Shape& shape) {
    Tensor out = raw::reshape(x, shape);
    if (!should_record(x)) return out;
    record("reshape", {x}, {out}, [xs = x.shape()](Node&, const TensorList& g) -> TensorList { return {reshape(g[0], xs)}; });
    return out;
}

Tensor view(const Tensor& x, const Shape& shape) {
    Tensor out = raw::view(x, shape);
    if (!should_record(x)) return out;
    record("view", {x}, {out}, [xs = x.shape()](Node&, const TensorList& g) -> TensorList { return {reshape(g[0], xs)}; });
    return out;
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
    if (x.dim() == 0) return reshape(x, {1});
    start_dim = wrap_dim(start_dim, x.dim(), "flatten");
    end_dim = wrap_dim(end_dim, x.dim(), "flatten");
    if (start_dim > end_dim)
        throw std::invalid_argument("flatten: start_dim " + std::to_string(start_dim) + " comes after end_dim " +
                                    std::to_string(end_dim) + " for shape " + shape_str(x.shape()));
    Shape s(x.shape().begin(), x.shape().begin() + start_dim);
    int64_t m = 1;
    for (int64_t d = start_dim; d <= end_dim; ++d) m *= x.shape()[d];
    s.push_back(m);
    s.insert(s.end(), x.shape().begin() + end_dim + 1, x.shape().end());
    return reshape(x, s);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
    Tensor out = raw::permute(x, dims);
    std::vector<int64_t> inv(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) inv[wrap_dim(dims[i], x.dim(), "permute")] = (int64_t)i;
    if (!should_record(x)) return out;
    record("permute", {x}, {out}, [inv](Node&, const TensorList& g) -> TensorList { return {permute(g[0], inv)}; });
    return out;
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
    Tensor out = raw::transpose(x, d0, d1);
    if (!should_record(x)) return out;
    record("transpose", {x}, {out}, [d0, d1](Node&, const TensorList& g) -> TensorList { return {transpose(g[0], d0, d1)}; });
    return out;
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
    Tensor out = raw::narrow(x, dim, start, length);
    dim = wrap_dim(dim, x.dim(), "narrow");
    if (start < 0) start += x.shape()[dim];
    if (!should_record(x)) return out;
    record("narrow", {x}, {out}, [xs = x.shape(), dim, start](Node&, const TensorList& g) -> TensorList {
        return {narrow_scatter(g[0], xs, dim, start)};
    });
    return out;
}

Tensor narrow_scatter(const Tensor& src, const Shape& shape, int64_t dim, int64_t start) {
    dim = wrap_dim(dim, (int64_t)shape.size(), "narrow_scatter");
    Tensor out = zeros(shape, src.dtype());
    raw::copy_(raw::narrow(out, dim, start, src.shape()[dim]), src);
    int64_t len = src.shape()[dim];
    if (!should_record(src)) return out;
    record("narrow_scatter", {src}, {out}, [dim, start, len](Node&, const TensorList& g) -> TensorList {
        return {narrow(g[0], dim, start, len)};
    });
    return out;
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
    Tensor out = raw::select(x, dim, index);
    dim = wrap_dim(dim, x.dim(), "select");
    if (index < 0) index += x.shape()[dim];
    if (!should_record(x)) return out;
    record("select", {x}, {out}, [xs = x.shape(), dim, index](Node&, const TensorList& g) -> TensorList {
        return {narrow_scatter(unsqueeze(g[0], dim), xs, dim, index)};
    });
    return out;
}

Tensor expand(const Tensor& x, const Shape& shape) {
    Tensor out = raw::expand(x, shape);
    if (!should_record(x)) return out;
    record("expand", {x}, {out}, [xs = x.shape()](Node&, const TensorList& g) -> TensorList { return {sum_to(g[0], xs)}; });
    return out;
}

Tensor squeeze(const Tensor& x, int64_t dim) {
    Tensor out = raw::squeeze(x, dim);
    if (!should_record(x)) return out;
    record("squeeze", {x}, {out}, [xs = x.shape()](Node&, const TensorList& g) -> TensorList { return {reshape(g[0], xs)}; });
    return out;
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
    Tensor out = raw::unsqueeze(x, dim);
    if (!should_record(x)) return out;
    record("unsqueeze", {x}, {out}, [xs = x.shape()](Node&, const TensorList& g) -> TensorList { return {reshape(g[0], xs)}; });
    return out;
}

Tensor contiguous(const Tensor& x) {
    Tensor out = raw::contiguous(x);
    if (!should_record(x)) return out;
    record("contiguous", {x}, {out}, [](Node&, const TensorList& g) -> TensorList { return {g[0]}; });
    return out;
}

Tensor clone(const Tensor& x) {
    Tensor out = raw::clone(x);
    if (!should_record(x)) return out;
    record("clone", {x}, {out}, [](Node&, const TensorList& g) -> TensorList { return {g[0]}; });
    return out;
}

Tensor to_dtype(const Tensor& x, DType dt) {
    Tensor out = raw::to_dtype(x, dt);
    if (!should_record(x)) return out;
    record("to_dtype", {x}, {out}, [src = x.dtype()](Node&, const TensorList& g) -> TensorList { return {to_dtype(g[0], src)}; });
    return out;
}

}  // namespace miras
