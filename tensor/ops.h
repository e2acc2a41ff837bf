#pragma once
// Raw tensor operations: forward computation only, no gradients.
// The differentiable versions (autograd/ops.h) call these and record a graph
// node. Every raw op takes any strides and returns a fresh contiguous tensor,
// except the view ops, which share storage with their input.
#include <cstdint>
#include <vector>

#include "tensor/index.h"
#include "tensor/op_kinds.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace miras {

// ---- creation (leaves; these live in namespace miras: nothing to differentiate)
Tensor zeros(const Shape& s, DType dt = DType::f32);
Tensor ones(const Shape& s, DType dt = DType::f32);
Tensor full(const Shape& s, double value, DType dt = DType::f32);
Tensor scalar_tensor(double value, DType dt = DType::f32);  // 0-d
Tensor arange(double start, double end, double step = 1, DType dt = DType::f32);
Tensor from_vector(const std::vector<double>& values, const Shape& s, DType dt = DType::f32);
Tensor randn(const Shape& s, Generator& g, DType dt = DType::f32, double mean = 0, double std = 1);
Tensor rand(const Shape& s, Generator& g, DType dt = DType::f32, double lo = 0, double hi = 1);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);

namespace raw {

// ---- views (share storage; no copy)
Tensor as_strided(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset);
Tensor view(const Tensor& x, Shape shape);     // -1 infers one dim; throws if not expressible as a view
Tensor reshape(const Tensor& x, Shape shape);  // view when possible, else copy
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& x, int64_t dim, int64_t index);
Tensor expand(const Tensor& x, const Shape& shape);  // broadcast to shape (NumPy rules)
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor contiguous(const Tensor& x);  // x itself if already contiguous
Tensor clone(const Tensor& x);       // always a fresh contiguous copy
Tensor to_dtype(const Tensor& x, DType dt);
// Infers a -1 entry and checks the element count.
Shape infer_shape(Shape shape, int64_t numel, const char* op);

// ---- elementwise
// Unary and Binary (the op kinds) are in tensor/op_kinds.h.
Tensor unary(Unary op, const Tensor& x);
Tensor binary(Binary op, const Tensor& a, const Tensor& b);  // NumPy broadcasting
Tensor binary_scalar(Binary op, const Tensor& a, double s);  // a op s
Tensor scalar_binary(Binary op, double s, const Tensor& b);  // s op b
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);  // cond != 0 ? a : b, broadcast
Tensor addcmul(const Tensor& c, const Tensor& a, const Tensor& b);  // c + a ⊙ b in one pass, broadcast
// out = a * alpha + b * beta, broadcasting b to a's shape (fast fused path for optimizers)
Tensor axpby(const Tensor& a, double alpha, const Tensor& b, double beta);

// In place (bump the version counter). `dst` must not be an expanded view.
void copy_(const Tensor& dst, const Tensor& src);  // src broadcast to dst
void fill_(const Tensor& dst, double value);
void add_(const Tensor& dst, const Tensor& src, double alpha = 1);  // dst += alpha * src

// ---- reductions
// Over `dims` (empty = all dims); keepdim keeps them as size 1.
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor amax(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
struct MaxResult { Tensor values; IndexTensor indices; };
MaxResult max_dim(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor logsumexp(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// Sum `x` down to `shape` (undo broadcasting): the shape must broadcast to x's.
Tensor sum_to(const Tensor& x, const Shape& shape);
// sum_to(x ⊙ y, shape) without the product tensor (x, y broadcast together;
// accumulated in double): the backward of a broadcast multiply.
Tensor mul_sum_to(const Tensor& x, const Tensor& y, const Shape& shape);

// ---- linear algebra
// (..., n, k) @ (..., k, m) -> (..., n, m), batch dims broadcast. 1-D operands
// follow NumPy: a vector is a row on the left, a column on the right.
Tensor matmul(const Tensor& a, const Tensor& b);
// Floating-point operations of every matmul so far, in this process (2·n·k·m
// per (n, k) @ (k, m) product; f32 and f64 alike; a running total, so take
// differences). For benchmarks: the work of a step, apart from its time.
uint64_t matmul_flops();

// ---- depthwise convolution over time (tensor/conv.cpp)
// x (..., T, C), w (C, K) -> (..., T, C), zero outside [0, T):
//   causal:     out[t, c] = Σ_j w[c, j] · x[t − K + 1 + j, c]
//   anticausal: out[t, c] = Σ_j w[c, j] · x[t + K − 1 − j, c]
Tensor depthwise_conv1d(const Tensor& x, const Tensor& w, bool anticausal);
// Its weight gradient: x, g (..., T, C) -> (C, K), f32 summed in double,
//   dw[c, j] = Σ_{..., t} g[t, c] · x[s, c], s the forward's tap j (t − K + 1 + j or t + K − 1 − j)
Tensor depthwise_conv1d_weight(const Tensor& x, const Tensor& g, int64_t K, bool anticausal);

// ---- joining, indexing, scans
Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);  // views
Tensor index_select(const Tensor& x, int64_t dim, const IndexTensor& idx);  // out.shape[dim] = idx.numel()
Tensor embedding(const Tensor& table, const IndexTensor& ids);  // (V, D), ids (...) -> (..., D)
Tensor gather(const Tensor& x, int64_t dim, const IndexTensor& idx);   // out.shape = idx.shape
// zeros(shape) with src added at idx along dim (repeated indices accumulate)
Tensor scatter_add(const Shape& shape, int64_t dim, const IndexTensor& idx, const Tensor& src);
// index_add: zeros(shape) with src slices added at rows idx along dim (inverse of index_select)
Tensor index_add(const Shape& shape, int64_t dim, const IndexTensor& idx, const Tensor& src);
Tensor cumsum(const Tensor& x, int64_t dim, bool reverse = false);
Tensor cumprod(const Tensor& x, int64_t dim, bool reverse = false);
Tensor tril(const Tensor& x, int64_t k = 0);  // keep j <= i + k over the last two dims
Tensor triu(const Tensor& x, int64_t k = 0);  // keep j >= i + k
Tensor one_hot(const IndexTensor& idx, int64_t num_classes, DType dt = DType::f32);

}  // namespace raw
}  // namespace miras
