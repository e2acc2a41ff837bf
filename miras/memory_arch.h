#pragma once
// Memory architectures M_W : R^{d_h} -> R^{d_h} (docs/math.md §1.3).
//
// An architecture never touches its weights directly. It lists the shapes of
// its weight matrices and writes only the non-linear glue between them; each
// weight matrix l is applied through a callback, lin(l, h), that maps the
// layer input h (..., in) to z = W_l h (..., out). This is what makes one
// definition serve every evaluation strategy:
//   - sequential reference: lin multiplies by the concrete weights W_t;
//   - chunk-parallel inner gradient: lin multiplies every token of a chunk by
//     the anchor weights W_{t'} and records (h_l, z_l), so the per-token
//     gradient of W_l is the rank-1 outer product (∂ℓ/∂z_l) h_lᵀ;
//   - chunk-parallel retrieval: lin applies the dual form (docs/math.md §1.8) or
//     per-token weights.
// Contract: forward calls lin exactly once per weight matrix (the rank-1
// factorisation relies on it; the scans check it), and is otherwise made of
// differentiable ops acting on the last axis only (tokens never interact).
//
// Adding an architecture = one small class + register_memory_arch():
//
//   struct GatedLinear : MemoryArch {
//       std::vector<std::pair<int64_t, int64_t>> weight_shapes(int64_t dh) const override {
//           return {{dh, dh}, {dh, dh}};
//       }
//       Tensor forward(const Tensor& k, const LinearFn& lin) const override {
//           return mul(lin(0, k), sigmoid(lin(1, k)));
//       }
//   };
//   register_memory_arch("gated_linear", [](const MemoryConfig&) { return std::make_shared<GatedLinear>(); });
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"
#include "miras/config.h"

namespace miras {

// Applies weight matrix `layer` to the layer input h: (..., in) -> (..., out).
using LinearFn = std::function<Tensor(int layer, const Tensor& h)>;

class MemoryArch {
public:
    virtual ~MemoryArch() = default;
    // (out, in) of every weight matrix, indexed as in lin(l, ·).
    virtual std::vector<std::pair<int64_t, int64_t>> weight_shapes(int64_t d_h) const = 0;
    // M_W(k): k (..., d_h) -> (..., d_h).
    virtual Tensor forward(const Tensor& k, const LinearFn& lin) const = 0;
};

// M_W(k) = W k, W (d_h, d_h).
class LinearMemory : public MemoryArch {
public:
    std::vector<std::pair<int64_t, int64_t>> weight_shapes(int64_t d_h) const override;
    Tensor forward(const Tensor& k, const LinearFn& lin) const override;
};

// M_W(k) = k + LN(W_L gelu(… gelu(W_1 k))), hidden width e·d_h, no biases;
// the residual and the LN (no affine, population variance, ε = 1e-5) can each
// be switched off.
class MlpMemory : public MemoryArch {
public:
    MlpMemory(int64_t depth, int64_t expansion, bool residual, bool layernorm)
        : depth_(depth), expansion_(expansion), residual_(residual), layernorm_(layernorm) {}
    std::vector<std::pair<int64_t, int64_t>> weight_shapes(int64_t d_h) const override;
    Tensor forward(const Tensor& k, const LinearFn& lin) const override;

private:
    int64_t depth_, expansion_;
    bool residual_, layernorm_;
};

using MemoryArchFactory = std::function<std::shared_ptr<const MemoryArch>(const MemoryConfig&)>;

// Adds a factory under a new name (a taken one throws std::invalid_argument).
void register_memory_arch(const std::string& name, MemoryArchFactory factory);
bool has_memory_arch(const std::string& name);
std::vector<std::string> memory_arch_names();
// The architecture cfg.memory names, built from cfg; throws
// std::invalid_argument listing the known names if it is unknown.
std::shared_ptr<const MemoryArch> make_memory_arch(const MemoryConfig& cfg);

inline constexpr double kMemoryLnEps = 1e-5;  // docs/math.md §1.3

}  // namespace miras
