// Joining, indexing and scans. Each backward is the adjoint op:
// cat <-> narrow, index_select <-> index_add, gather <-> scatter_add,
// cumsum <-> reversed cumsum.
#include <stdexcept>

#include "autograd/ops.h"

namespace miras {

Tensor cat(const TensorList& xs, int64_t dim) {
    Tensor out = raw::cat(xs, dim);
    dim = wrap_dim(dim, out.dim(), "cat");
    std::vector<int64_t> sizes;
    for (const auto& x : xs) sizes.push_back(x.shape()[dim]);
    // The adjoint of cat is split (one node, whose own backward is a cat).
    record("cat", xs, {out}, [sizes, dim](Node&, const TensorList& g) -> TensorList { return split(g[0], sizes, dim); });
    return out;
}

Tensor stack(const TensorList& xs, int64_t dim) {
    if (xs.empty()) throw std::invalid_argument("stack: empty list of tensors");
    dim = wrap_dim(dim, xs[0].dim() + 1, "stack");
    TensorList us;
    for (const auto& x : xs) us.push_back(unsqueeze(x, dim));
    return cat(us, dim);
}

TensorList split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
    // One node for all pieces, whose backward is a single cat: cutting a
    // sequence into n pieces costs O(T), where n separate narrows would each
    // scatter into a zero tensor of the full length (O(n T)).
    TensorList pieces = raw::split(x, sizes, dim);
    dim = wrap_dim(dim, x.dim(), "split");
    if (!should_record(x)) return pieces;
    record("split", {x}, pieces, [dim](Node&, const TensorList& g) -> TensorList { return {cat(g, dim)}; });
    return pieces;
}

Tensor index_select(const Tensor& x, int64_t dim, const IndexTensor& idx) {
    Tensor out = raw::index_select(x, dim, idx);
    dim = wrap_dim(dim, x.dim(), "index_select");
    if (!should_record(x)) return out;
    record("index_select", {x}, {out}, [xs = x.shape(), dim, idx](Node&, const TensorList& g) -> TensorList {
        return {index_add(xs, dim, idx, g[0])};
    });
    return out;
}

Tensor index_add(const Shape& shape, int64_t dim, const IndexTensor& idx, const Tensor& src) {
    Tensor out = raw::index_add(shape, dim, idx, src);
    if (!should_record(src)) return out;
    record("index_add", {src}, {out}, [dim, idx](Node&, const TensorList& g) -> TensorList {
        return {index_select(g[0], dim, idx)};
    });
    return out;
}

Tensor embedding(const Tensor& table, const IndexTensor& ids) {
    if (table.dim() != 2)
        throw std::invalid_argument("embedding: table must be (V, D), got " + shape_str(table.shape()));
    Shape out_shape = ids.shape;
    out_shape.push_back(table.shape()[1]);
    return reshape(index_select(table, 0, IndexTensor({ids.numel()}, ids.data)), out_shape);
}

Tensor gather(const Tensor& x, int64_t dim, const IndexTensor& idx) {
    Tensor out = raw::gather(x, dim, idx);
    dim = wrap_dim(dim, x.dim(), "gather");
    if (!should_record(x)) return out;
    record("gather", {x}, {out}, [xs = x.shape(), dim, idx](Node&, const TensorList& g) -> TensorList {
        return {scatter_add(xs, dim, idx, g[0])};
    });
    return out;
}

Tensor scatter_add(const Shape& shape, int64_t dim, const IndexTensor& idx, const Tensor& src) {
    Tensor out = raw::scatter_add(shape, dim, idx, src);
    if (!should_record(src)) return out;
    record("scatter_add", {src}, {out}, [dim, idx, ss = src.shape()](Node&, const TensorList& g) -> TensorList {
        Tensor gs = gather(g[0], dim, idx);  // idx.shape
        // src may be larger than idx (only its leading part is read): zeros for the rest.
        for (int64_t d = 0; d < gs.dim(); ++d)
            if (gs.shape()[d] != ss[d]) {
                Shape s = gs.shape();
                s[d] = ss[d];
                gs = narrow_scatter(gs, s, d, 0);
            }
        return {gs};
    });
    return out;
}

Tensor cumsum(const Tensor& x, int64_t dim, bool reverse) {
    Tensor out = raw::cumsum(x, dim, reverse);
    if (!should_record(x)) return out;
    record("cumsum", {x}, {out}, [dim, reverse](Node&, const TensorList& g) -> TensorList {
        return {cumsum(g[0], dim, !reverse)};  // y_j = Σ_{i≤j} x_i  =>  dx_i = Σ_{j≥i} g_j
    });
    return out;
}

Tensor cumprod(const Tensor& x, int64_t dim, bool reverse) {
    Tensor out = raw::cumprod(x, dim, reverse);
    if (!should_record(x)) return out;
    record("cumprod", {x}, {out}, [x, dim, reverse](Node& n, const TensorList& g) -> TensorList {
        // y_j = Π_{i≤j} x_i  =>  dx_i = Σ_{j≥i} g_j y_j / x_i. Exact while no
        // x_i is zero; the memory layers use it for products of (1 − α) > 0.
        Tensor zero_count = raw::sum(raw::binary(raw::Binary::eq, x, scalar_tensor(0, x.dtype())));
        if (zero_count.item() != 0)
            throw std::runtime_error("cumprod: backward through an input with zeros is not supported (input " +
                                     shape_str(x.shape()) + ")");
        return {div(cumsum(mul(g[0], n.output(0)), dim, !reverse), x)};
    }, true);
    return out;
}

Tensor tril(const Tensor& x, int64_t k) {
    Tensor out = raw::tril(x, k);
    if (!should_record(x)) return out;
    record("tril", {x}, {out}, [k](Node&, const TensorList& g) -> TensorList { return {tril(g[0], k)}; });
    return out;
}

Tensor triu(const Tensor& x, int64_t k) {
    Tensor out = raw::triu(x, k);
    if (!should_record(x)) return out;
    record("triu", {x}, {out}, [k](Node&, const TensorList& g) -> TensorList { return {triu(g[0], k)}; });
    return out;
}

}  // namespace miras
