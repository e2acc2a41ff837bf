#pragma once
// MemoryConfig: every choice of docs/math.md §1 for one Miras memory layer.
//
// The names and defaults are those of the PyTorch reference
// (tests/torch_ref/miras_ref.py, DEFAULTS), so one config file drives both.
// The string-valued choices (memory, bias, retention) are looked up in
// registries (miras/memory_arch.h, miras/bias.h, miras/retention.h): a new
// architecture, attentional bias or retention registers itself under a name
// and becomes selectable here without touching this file.
//
//   MemoryConfig cfg;
//   cfg.d = 64; cfg.heads = 4;
//   cfg.memory = "mlp"; cfg.bias = "lp"; cfg.retention = "lq";   // Moneta
//   cfg.validate();            // throws std::invalid_argument naming the key
//
// Gates (docs/math.md §1.2) are learned unless listed in `fixed_gates`, in which case
// the gate *is* the constant (theta_max is not applied): linear attention is
// {bias = "dot", retention = "none", fixed_gates = {{"theta", 1}},
//  fix_A0_zero = true}.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tensor/dtype.h"

namespace miras {

struct MemoryConfig {
    int64_t d = 16;                  // model width; heads of d_h = d / heads
    int64_t heads = 2;

    // §1.3 architecture of M_W
    std::string memory = "linear";   // registered: "linear", "mlp"
    int64_t depth = 2;               // mlp: number of weight matrices L >= 2
    int64_t expansion = 4;           // mlp: hidden width e * d_h
    bool residual = true;            // mlp: M(k) = k + ...
    bool layernorm = true;           // mlp: LN on the last layer's output

    // §1.4 attentional bias
    std::string bias = "l2";         // registered: "dot", "l2", "lp", "huber_mix", "huber"
    double p = 3.0;                  // lp exponent, p > 1
    double huber_delta = 1.0;        // huber (coordinate-wise) threshold, > 0
    double huber_eps = 1e-6;         // huber_mix: ε of the linear branch δ Σ sqrt(e_i² + ε), > 0

    // §1.6 retention (A -> W map) and algorithm
    std::string retention = "l2";    // registered: "none", "l2", "lq", "kl", "elastic"
    double q = 4.0;                  // lq: q >= 2
    double kl_c = 1.0;               // kl: row sum c > 0
    double gamma = 0.01;             // elastic: soft threshold >= 0
    std::string algorithm = "gd";    // "gd" | "momentum"

    // §1.5 chunking and §1.2 gates
    int64_t chunk = 16;              // b >= 1
    double theta_max = 1.0;          // theta = theta_max * sigmoid(.), > 0
    std::map<std::string, double> fixed_gates;  // keys in {theta, eta, alpha, delta}
    // A learned gate's value at initialisation (its bias centre is the inverse
    // of the gate's map at this value): theta in (0, theta_max), eta and alpha
    // in (0, 1), delta > 0. Unset: θ_max/2, η ≈ 0.73, α ≈ 0.12, δ ≈ 0.69
    // (docs/memory.md §11).
    std::map<std::string, double> gate_init;

    bool fix_A0_zero = false;        // A_0 = 0, not a parameter (linear attention)
    bool conv_bias = false;          // conv_q/k/v get a bias (docs/math.md §1.1: off by default)
    bool first_order = false;        // treat every u_t as a constant (first-order MAML)
    bool detach_anchor = false;      // u_t takes the anchor W_{t'} as a constant (keeps k, v, δ): docs/memory.md §3.8
    double a0_scale = 1.0;           // multiplies the std of A_0's initialisation (> 0; §11)
    double inner_clip = 0;           // > 0: every token's inner gradient softly limited to this norm (docs/memory.md §3.10)

    DType dtype = DType::f32;        // of the parameters
    uint64_t seed = 0;               // initialisation seed

    // Throws std::invalid_argument naming the offending key and value.
    void validate() const;

    int64_t head_dim() const { return d / heads; }
    bool momentum() const { return algorithm == "momentum"; }
    // Whether gate g ("theta", "eta", "alpha", "delta") enters the layer at all:
    // theta always, eta with momentum, alpha unless retention is "none", delta
    // with bias "huber_mix" (docs/math.md §1.2).
    bool gate_used(const std::string& g) const;
    // Used and not fixed: the layer owns gate_<g>_w (d, H) and gate_<g>_b (H,).
    bool gate_learned(const std::string& g) const;
    std::optional<double> fixed_gate(const std::string& g) const;
    // The bias centre of learned gate g: from gate_init, or the default.
    double gate_bias_centre(const std::string& g) const;
    // (out, in) of every memory weight matrix, in the order the architecture
    // applies them (from the registered architecture).
    std::vector<std::pair<int64_t, int64_t>> weight_shapes() const;
    // Names of the A_0 parameters: "A0" for one matrix, else "A0_1" .. "A0_L".
    std::vector<std::string> a0_names() const;
};

// The four gate names, in the order the layer registers their parameters.
const std::vector<std::string>& gate_names();

}  // namespace miras
