#pragma once
// Attentional biases ℓ(W; k, v) of docs/math.md §1.4, as functions of the memory's
// prediction pred = M_W(k), the value v and the per-token threshold δ.
//
// Each bias is written with ordinary differentiable ops and returns one loss
// per token; the inner gradient u = ∂ℓ/∂W is then taken by the framework's
// own reverse-mode autodiff (miras/sequential.cpp, miras/chunked.cpp), so a
// new bias is one function plus one register_bias() call:
//
//   register_bias("cauchy", [](const Tensor& pred, const Tensor& v, const Tensor&, const MemoryConfig&) {
//       Tensor e = sub(pred, v);
//       return sum(log1p(square(e)), {-1});
//   });
//
// Built in: "dot", "l2", "lp", "huber_mix", "huber".
//
// Two warnings (docs/math.md §1.4):
//  - huber_mix is the paper's rule (Miras Eq. 16) and is discontinuous at
//    |e|₂ = δ_t: the branch test carries no gradient and the outer loss jumps
//    there. Gradient checks keep every token >= 1e-3 away from the switch.
//  - lp with p > 2 has curvature p(p−1)|e_i|^{p−2}|k|²: plain descent is
//    stable only while θ_t p(p−1) max_i |e_i|^{p−2} |k_t|² < 2. Nothing guards
//    it; pair lp with retention lq (bounded weights) or keep θ_max <= 0.1.
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "miras/config.h"

namespace miras {

// pred, v: (..., d_h); delta: (...) or undefined (only "huber_mix" uses it).
// Returns the per-token loss (...).
using BiasFn = std::function<Tensor(const Tensor& pred, const Tensor& v, const Tensor& delta, const MemoryConfig& cfg)>;

// Adds a bias under a new name (a taken one throws std::invalid_argument:
// scans hold on to the function while they run).
void register_bias(const std::string& name, BiasFn fn);
bool has_bias(const std::string& name);
std::vector<std::string> bias_names();
// Throws std::invalid_argument listing the known names if `name` is unknown.
const BiasFn& bias_fn(const std::string& name);

// The constants docs/math.md §1.4 fixes.
inline constexpr double kLpEps = 1e-6;        // lp: Σ (e² + ε)^{p/2}
inline constexpr double kHuberMixEps = 1e-6;  // huber_mix linear branch: δ Σ sqrt(e² + ε), the default of MemoryConfig::huber_eps

}  // namespace miras
