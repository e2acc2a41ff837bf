#pragma once
// Retention: the map φ from a memory's pre-weight A to its weight W = φ(A)
// (docs/math.md §1.6, Miras §5), one weight matrix at a time.
//
// Every retention here keeps the recurrence linear in A,
//   A_t = (1 − α_t) A_{t−1} + Δ_t,
// and differs only in φ and in how A_0 is initialised:
//   "none"     φ = identity, α ≡ 0 (no forget gate)
//   "l2"       φ = identity                         (Titans, Yaad, Gated DeltaNet)
//   "lq"       φ(A) = A / ‖A‖_q^{q−2}, one norm per matrix (Moneta)
//   "kl"       φ(A) = c · softmax over each row's input axis (Memora)
//   "elastic"  φ(A) = sign(A) · max(|A| − γ, 0)    (Miras Eq. 23)
// A new retention is a Retention value passed to register_retention().
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "miras/config.h"
#include "tensor/random.h"

namespace miras {

struct Retention {
    // φ = identity: the chunk-parallel retrieval can use the dual form
    // (docs/math.md §1.8) instead of materialising per-token weights.
    bool identity = false;
    // Whether the forget gate α_t enters the recurrence ("none" has α ≡ 0).
    bool uses_alpha = true;
    // W = φ(A). A: (..., out, in), one matrix per leading index -> same shape.
    // Written with differentiable ops.
    std::function<Tensor(const Tensor& A, const MemoryConfig& cfg)> phi;
    // A random A_0 of `shape` = (H, out, in) in the config's dtype, scaled as
    // this retention needs (docs/math.md §1.6: lq unit q-norm, elastic std >= 3γ).
    std::function<Tensor(const Shape& shape, Generator& gen, const MemoryConfig& cfg)> init;
};

// Adds a retention under a new name (a taken one throws
// std::invalid_argument); an empty init defaults to N(0, 1/in).
void register_retention(const std::string& name, Retention r);
bool has_retention(const std::string& name);
std::vector<std::string> retention_names();
// Throws std::invalid_argument listing the known names if `name` is unknown.
const Retention& retention(const std::string& name);

inline constexpr double kLqEps = 1e-6;  // ‖A‖_q = (Σ |A_ij|^q + 1e-6)^{1/q}

}  // namespace miras
