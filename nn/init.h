#pragma once
// Parameter initialisers. Every one draws from an explicit Generator, so a
// model built twice from the same seed is bit-identical, and returns a plain
// tensor (no grad): Module::register_parameter marks it as a variable.
#include <cstdint>

#include "tensor/ops.h"

namespace miras::init {

// N(0, std²).
Tensor normal(const Shape& shape, double std, Generator& gen, DType dt = DType::f32);
// U(−bound, bound).
Tensor uniform(const Shape& shape, double bound, Generator& gen, DType dt = DType::f32);
// N(0, 1/fan_in): keeps the variance of x W equal to that of x when x has
// independent unit-variance entries (LeCun). The default for projections.
Tensor lecun_normal(const Shape& shape, int64_t fan_in, Generator& gen, DType dt = DType::f32);
// U(±sqrt(6 / (fan_in + fan_out))) (Glorot & Bengio 2010).
Tensor xavier_uniform(const Shape& shape, int64_t fan_in, int64_t fan_out, Generator& gen, DType dt = DType::f32);

}  // namespace miras::init
