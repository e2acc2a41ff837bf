#pragma once
// Differentiable ops. Each computes its forward with a raw kernel
// (tensor/ops.h) and records a node whose backward formula is written with
// these same ops, so a backward pass run with create_graph is itself a graph
// that can be differentiated again. Forward and backward of each op sit side
// by side in autograd/ops_*.cpp.
#include <vector>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "tensor/ops.h"

namespace miras {

// ---- elementwise (NumPy broadcasting; gradients are summed back to each input's shape)
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, double p);
Tensor maximum(const Tensor& a, const Tensor& b);  // ties: gradient to a
Tensor minimum(const Tensor& a, const Tensor& b);  // ties: gradient to a
Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);        // gradient sign(x) (0 at 0)
Tensor sign(const Tensor& x);       // gradient 0
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor gelu(const Tensor& x);       // tanh form
Tensor softplus(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor square(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor expm1(const Tensor& x);
// Fused activation derivatives (one pass; what the backward of sigmoid, tanh,
// silu and gelu calls), differentiable again. y: the activation's output,
// x: its input, g: the incoming gradient.
Tensor sigmoid_backward(const Tensor& y, const Tensor& g);  // g y (1 − y)
Tensor tanh_backward(const Tensor& y, const Tensor& g);     // g (1 − y²)
Tensor silu_backward(const Tensor& x, const Tensor& g);     // g silu'(x)
Tensor gelu_backward(const Tensor& x, const Tensor& g);     // g gelu'(x), tanh form
Tensor clamp(const Tensor& x, double lo, double hi);  // gradient 1 inside [lo, hi]
// cond != 0 ? a : b. cond carries no gradient.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// Comparisons give 0/1 tensors of the inputs' dtype and carry no gradient.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);

// ---- reductions
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor amax(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);  // ties share the gradient
struct MaxOut { Tensor values; IndexTensor indices; };
MaxOut max(const Tensor& x, int64_t dim, bool keepdim = false);  // gradient to the (first) argmax
Tensor logsumexp(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
Tensor sum_to(const Tensor& x, const Shape& shape);  // undo broadcasting
// sum_to(x ⊙ y, shape) in one pass, no product tensor (mul's backward uses it)
// c + a ⊙ b in one pass (broadcast), no product tensor
Tensor addcmul(const Tensor& c, const Tensor& a, const Tensor& b);
Tensor mul_sum_to(const Tensor& x, const Tensor& y, const Shape& shape);

// ---- linear algebra
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- depthwise convolution over time (x (..., T, C), w (C, K); see raw::depthwise_conv1d)
Tensor depthwise_conv1d(const Tensor& x, const Tensor& w, bool anticausal = false);
// Its weight gradient (C, K), differentiable in x and g (it is bilinear).
Tensor depthwise_conv1d_weight(const Tensor& x, const Tensor& g, int64_t K, bool anticausal = false);

// ---- shape and views (results share storage with the input where possible)
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor view(const Tensor& x, const Shape& shape);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& x, int64_t dim, int64_t index);
Tensor expand(const Tensor& x, const Shape& shape);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor contiguous(const Tensor& x);
Tensor clone(const Tensor& x);
Tensor to_dtype(const Tensor& x, DType dt);
// zeros(shape) with `src` written at [start, start + src.size(dim)) along dim:
// the adjoint of narrow.
Tensor narrow_scatter(const Tensor& src, const Shape& shape, int64_t dim, int64_t start);

// ---- joining, indexing, scans
Tensor cat(const TensorList& xs, int64_t dim);
Tensor stack(const TensorList& xs, int64_t dim);
TensorList split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);
Tensor index_select(const Tensor& x, int64_t dim, const IndexTensor& idx);
Tensor index_add(const Shape& shape, int64_t dim, const IndexTensor& idx, const Tensor& src);
Tensor embedding(const Tensor& table, const IndexTensor& ids);
Tensor gather(const Tensor& x, int64_t dim, const IndexTensor& idx);
Tensor scatter_add(const Shape& shape, int64_t dim, const IndexTensor& idx, const Tensor& src);
Tensor cumsum(const Tensor& x, int64_t dim, bool reverse = false);
Tensor cumprod(const Tensor& x, int64_t dim, bool reverse = false);
Tensor tril(const Tensor& x, int64_t k = 0);
Tensor triu(const Tensor& x, int64_t k = 0);

// ---- operators
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, s); }
inline Tensor operator+(double s, const Tensor& a) { return add(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return add(a, -s); }
inline Tensor operator-(double s, const Tensor& a) { return add(neg(a), s); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
inline Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return mul(a, 1.0 / s); }
inline Tensor operator/(double s, const Tensor& a) { return mul(reciprocal(a), s); }

}  // namespace miras
