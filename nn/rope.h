#pragma once
// Rotary position embeddings (RoFormer, Su et al. 2021), applied per head to
// queries and keys so that <rope(q, i), rope(k, j)> depends on i - j only.
//
// Convention: rotate-half (GPT-NeoX / Llama as published in Hugging Face).
// With h = d_h / 2 and frequencies θ_i = base^(−2i / d_h), i ∈ [0, h), the
// channel pairs (i, i + h) of a vector at position p are rotated by p·θ_i:
//   out[i]     = x[i] cos(p θ_i) − x[i + h] sin(p θ_i)
//   out[i + h] = x[i + h] cos(p θ_i) + x[i] sin(p θ_i)
// Positions are given explicitly (one integer per row), so callers that lay
// out persistent tokens or segments themselves (MAC's [P ; h ; S]) choose
// them. Built from differentiable ops: gradients of any order flow through.
#include <cstdint>
#include <vector>

#include "autograd/ops.h"

namespace miras {

inline constexpr double kRopeBase = 10000.0;

// x: (..., T, d_h) with d_h even; positions: T integers (row t of x sits at
// positions[t]). Returns a tensor of x's shape and dtype.
Tensor rope(const Tensor& x, const std::vector<int64_t>& positions, double base = kRopeBase);

// rope with positions start, start + 1, ..., start + T − 1.
Tensor rope_from(const Tensor& x, int64_t start, double base = kRopeBase);

}  // namespace miras
