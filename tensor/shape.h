#pragma once
// Shapes, strides and broadcasting rules (NumPy semantics).
#include <cstdint>
#include <string>
#include <vector>

namespace miras {

using Shape = std::vector<int64_t>;

int64_t numel_of(const Shape& s);
Shape contiguous_strides(const Shape& s);
std::string shape_str(const Shape& s);  // "(2, 3)"
// NumPy broadcast of two shapes; throws naming `op` and both shapes if they do not fit.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Wraps a possibly negative dim into [0, ndim); throws naming `op` if out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

}  // namespace miras
