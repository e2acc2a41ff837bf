#pragma once
// Integer indices (token ids, argmax results, gather/scatter positions).
// Kept apart from Tensor: they never carry gradients and only f32/f64 are
// differentiable dtypes.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/shape.h"

namespace miras {

struct IndexTensor {
    Shape shape;
    std::vector<int64_t> data;  // row-major

    IndexTensor() = default;
    IndexTensor(Shape s, std::vector<int64_t> d) : shape(std::move(s)), data(std::move(d)) {
        if (!shape_fits(shape))
            throw std::invalid_argument("IndexTensor: shape " + shape_str(shape) +
                                        " has a negative dim or more than 2^63 - 1 elements");
        if (numel_of(shape) != (int64_t)data.size())
            throw std::invalid_argument("IndexTensor: shape " + shape_str(shape) + " needs " +
                                        std::to_string(numel_of(shape)) + " values, got " +
                                        std::to_string(data.size()));
    }
    int64_t numel() const { return (int64_t)data.size(); }
    int64_t dim() const { return (int64_t)shape.size(); }
    // Throws naming `op` if any index is outside [0, n).
    void check_range(int64_t n, const char* op) const {
        for (size_t i = 0; i < data.size(); ++i)
            if (data[i] < 0 || data[i] >= n)
                throw std::out_of_range(std::string(op) + ": index " + std::to_string(data[i]) + " at position " +
                                        std::to_string(i) + " is out of range [0, " + std::to_string(n) + ")");
    }
};

}  // namespace miras
