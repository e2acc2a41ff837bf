// Reductions and the softmax family, forward and backward side by side.
#include <algorithm>

#include "autograd/ops.h"

namespace miras {
namespace {

// Dims reduced by (dims, ndim): empty means all.
std::vector<int64_t> reduced_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op) {
    std::vector<int64_t> r;
    if (dims.empty()) {
        for (int64_t d = 0; d < ndim; ++d) r.push_back(d);
    } else {
        for (int64_t d : dims) r.push_back(wrap_dim(d, ndim, op));
        std::sort(r.begin(), r.end());
    }
    return r;
}

// g of a reduction without keepdim, given size-1 dims back so it broadcasts over x.
Tensor keepdim_grad(const Tensor& g, const Shape& x_shape, const std::vector<int64_t>& dims, bool keepdim) {
    if (keepdim || x_shape.empty()) return g;  // a 0-d input has no dim to restore (dims may hold a wrapped 0)
    Shape s = x_shape;
    for (int64_t d : dims) s[d] = 1;
    return reshape(g, s);
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
    Tensor out = raw::sum(x, dims, keepdim);
    if (!should_record(x)) return out;
    record("sum", {x}, {out}, [xs = x.shape(), rd = reduced_dims(dims, x.dim(), "sum"), keepdim](Node&, const TensorList& g) -> TensorList {
        return {expand(keepdim_grad(g[0], xs, rd, keepdim), xs)};
    });
    return out;
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
    int64_t count = 1;
    for (int64_t d : reduced_dims(dims, x.dim(), "mean")) count *= x.dim() ? x.shape()[d] : 1;
    return mul(sum(x, dims, keepdim), 1.0 / (double)std::max<int64_t>(count, 1));
}

Tensor amax(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
    Tensor out = raw::amax(x, dims, keepdim);
    if (!should_record(x)) return out;
    record("amax", {x}, {out}, [x, rd = reduced_dims(dims, x.dim(), "amax"), keepdim](Node& n, const TensorList& g) -> TensorList {
        // Gradient shared equally among tied maxima (a constant mask).
        Tensor m = raw::binary(raw::Binary::eq, x, keepdim_grad(detach(n.output(0)), x.shape(), rd, keepdim));
        Tensor share = raw::binary(raw::Binary::div, m, raw::sum(m, rd, true));
        return {mul(expand(keepdim_grad(g[0], x.shape(), rd, keepdim), x.shape()), share)};
    }, true);
    return out;
}

MaxOut max(const Tensor& x, int64_t dim, bool keepdim) {
    dim = wrap_dim(dim, x.dim(), "max");
    raw::MaxResult r = raw::max_dim(x, dim, true);
    // The values are a gather at the argmax: its backward is a scatter to it.
    Tensor values = gather(x, dim, r.indices);
    MaxOut out;
    out.values = keepdim ? values : squeeze(values, dim);
    out.indices = r.indices;
    if (!keepdim && x.dim() > 0) out.indices.shape.erase(out.indices.shape.begin() + dim);
    return out;
}

Tensor logsumexp(const Tensor& x, int64_t dim, bool keepdim) {
    dim = wrap_dim(dim, x.dim(), "logsumexp");
    Tensor out = raw::logsumexp(x, dim, keepdim);
    if (!should_record(x)) return out;
    record("logsumexp", {x}, {out}, [x, dim, keepdim](Node& n, const TensorList& g) -> TensorList {
        // d lse / dx = softmax(x) = exp(x - lse)
        Tensor lse = keepdim_grad(n.output(0), x.shape(), {dim}, keepdim);
        return {mul(keepdim_grad(g[0], x.shape(), {dim}, keepdim), exp(sub(x, lse)))};
    }, true);
    return out;
}

Tensor softmax(const Tensor& x, int64_t dim) {
    dim = wrap_dim(dim, x.dim(), "softmax");
    Tensor out = raw::softmax(x, dim);
    if (!should_record(x)) return out;
    record("softmax", {x}, {out}, [dim](Node& n, const TensorList& g) -> TensorList {
        // dx = y ⊙ (g − Σ_dim g ⊙ y)
        Tensor y = n.output(0);
        return {mul(y, sub(g[0], sum(mul(g[0], y), {dim}, true)))};
    }, true);
    return out;
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
    dim = wrap_dim(dim, x.dim(), "log_softmax");
    Tensor out = raw::log_softmax(x, dim);
    if (!should_record(x)) return out;
    record("log_softmax", {x}, {out}, [dim](Node& n, const TensorList& g) -> TensorList {
        // dx = g − softmax(x) Σ_dim g
        return {sub(g[0], mul(exp(n.output(0)), sum(g[0], {dim}, true)))};
    }, true);
    return out;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
    if (x.shape() == shape) return x;  // the common case: no broadcast, no node
    Tensor out = raw::sum_to(x, shape);
    if (!should_record(x)) return out;
    record("sum_to", {x}, {out}, [xs = x.shape()](Node&, const TensorList& g) -> TensorList { return {expand(g[0], xs)}; });
    return out;
}

}  // namespace miras
