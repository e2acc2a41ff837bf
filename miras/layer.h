#pragma once
// MirasLayer: one memory layer of docs/math.md §1, x (B, T, d) -> o (B, T, d).
//
//   q, k, v  = per-head norm2/SiLU of causal convs of x W_Q, x W_K, x W_V   §1.1
//   θ, η, α, δ = per token and head gates (each learned or fixed)            §1.2
//   y        = the memory recurrence (miras/scan.h), chunked or sequential  §1.3–1.6
//   o        = (RMSNorm_heads(y) ⊙ σ(x W_G)) W_O                            §1.7
//
// Parameters (names and layouts shared with tests/torch_ref/miras_ref.py, in
// this registration order):
//   W_Q, W_K, W_V, W_G, W_O   (d, d)        y = x W (stored (d_in, d_out))
//   conv_q, conv_k, conv_v    (d, 4)        out[t,c] = Σ_j w[c,j] z[t−3+j, c]
//   conv_q_b, conv_k_b, conv_v_b (d)        only with cfg.conv_bias
//   gate_<g>_w (d, H), gate_<g>_b (H)       g in theta, eta, alpha, delta, when learned
//   A0 (H, d_h, d_h)                        linear memory, pre-weight A_0
//   A0_1 .. A0_L (H, out, in)               mlp memory (A0_1: (H, e·d_h, d_h), …, A0_L: (H, d_h, e·d_h))
//                                           absent with cfg.fix_A0_zero
//   out_norm_w                (d)           output RMSNorm weight
// Memory weights act on columns (W k) and are stored (out, in).
//
// Streaming: pass a MemoryState to carry the memory and the convolutions'
// last inputs from one call to the next. A fresh (default) state starts the
// stream; a long input fed in pieces of any lengths (also ending inside a
// chunk) gives the same outputs as fed whole.
//
//   MirasLayer layer(cfg);
//   Tensor o = layer.forward(x);                          // whole sequence
//   MemoryState st;
//   Tensor o1 = layer.forward(x1, &st), o2 = layer.forward(x2, &st);  // streamed
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "miras/config.h"
#include "miras/memory_arch.h"
#include "miras/scan.h"
#include "nn/module.h"

namespace miras {

enum class ScanMode { chunked, sequential };

class MirasLayer : public Module {
public:
    // Validates cfg and draws the parameters from Generator(cfg.seed) in cfg.dtype.
    explicit MirasLayer(const MemoryConfig& cfg);

    // x (B, T, d) -> o (B, T, d). Without a state the memory starts at A_0;
    // with one, it continues from it (an empty state is initialised) and is
    // advanced past x.
    Tensor forward(const Tensor& x, MemoryState* state = nullptr, ScanMode mode = ScanMode::chunked);

    // The stages of forward, for tests and for models that combine them.
    // docs/math.md §1.1–1.2: q, k, v (B, H, T, d_h) and the gates (B, H, T); reads and
    // advances the conv tails of `state` (which must be started).
    MemoryInputs project(const Tensor& x, MemoryState& state) const;
    // Only q of project(): (B, H, T, d_h); reads and advances the conv tail
    // of q alone (MAC's read, miras/mixers.h).
    Tensor project_queries(const Tensor& x, MemoryState& state) const;
    // docs/math.md §1.7: y (B, H, T, d_h), x (B, T, d) -> o (B, T, d).
    Tensor output(const Tensor& x, const Tensor& y) const;
    // The state at the start of a stream for a batch of B.
    MemoryState initial_state(int64_t batch) const;

    const MemoryConfig& config() const { return cfg_; }
    // A parameter by its name (see above); throws if there is none.
    const Tensor& param(const std::string& name) const;
    // The A_0 parameters in weight-matrix order (empty with fix_A0_zero).
    const std::vector<Tensor>& A0() const { return A0_; }

private:
    Tensor branch(const Tensor& x, const Tensor& W, const Tensor& conv_w, const Tensor& conv_b, Tensor& tail,
                  bool normalise) const;

    MemoryConfig cfg_;
    std::map<std::string, Tensor> by_name_;
    Tensor W_Q_, W_K_, W_V_, W_G_, W_O_;
    Tensor conv_q_, conv_k_, conv_v_, conv_q_b_, conv_k_b_, conv_v_b_;
    std::map<std::string, std::pair<Tensor, Tensor>> gates_;  // learned gate -> (w, b)
    std::vector<Tensor> A0_;
    Tensor out_norm_w_;

    Tensor add_param(const std::string& name, Tensor t, StoredLayout layout = StoredLayout::same);
};

inline constexpr double kNorm2Eps = 1e-6;    // docs/math.md §1.1: z / sqrt(|z|² + 1e-6)
inline constexpr double kOutNormEps = 1e-6;  // docs/math.md §1.7 output RMSNorm
inline constexpr int64_t kConvTaps = 4;      // docs/math.md §1.1

}  // namespace miras
