#include "miras/config.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "miras/bias.h"
#include "miras/memory_arch.h"
#include "miras/retention.h"

namespace miras {
namespace {

[[noreturn]] void fail(const std::string& key, const std::string& what) {
    throw std::invalid_argument("memory config: " + key + " " + what);
}

std::string num(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
}

}  // namespace

const std::vector<std::string>& gate_names() {
    static const std::vector<std::string> g = {"theta", "eta", "alpha", "delta"};
    return g;
}

void MemoryConfig::validate() const {
    if (d < 1) fail("d", "must be >= 1, got " + std::to_string(d));
    if (heads < 1) fail("heads", "must be >= 1, got " + std::to_string(heads));
    if (d % heads != 0) fail("d", "= " + std::to_string(d) + " must be divisible by heads = " + std::to_string(heads));
    // Throws on an unknown name (listing the known ones) and on settings the
    // architecture refuses (mlp: depth, expansion): its factory checks them.
    make_memory_arch(*this);
    bias_fn(bias);  // throws on an unknown name
    if (bias == "lp" && !(p > 1)) fail("p", "must be > 1 for bias lp, got " + num(p));
    if (bias == "huber" && !(huber_delta > 0)) fail("huber_delta", "must be > 0, got " + num(huber_delta));
    if (!(huber_eps > 0) || !std::isfinite(huber_eps)) fail("huber_eps", "must be a finite number > 0, got " + num(huber_eps));
    miras::retention(retention);  // throws on an unknown name
    if (retention == "lq" && !(q >= 2)) fail("q", "must be >= 2 for retention lq, got " + num(q));
    if (retention == "kl" && !(kl_c > 0)) fail("kl_c", "must be > 0, got " + num(kl_c));
    if (retention == "elastic" && !(gamma >= 0)) fail("gamma", "must be >= 0, got " + num(gamma));
    if (algorithm != "gd" && algorithm != "momentum")
        fail("algorithm", "must be 'gd' or 'momentum', got '" + algorithm + "'");
    if (chunk < 1) fail("chunk", "(b) must be >= 1, got " + std::to_string(chunk));
    if (!(theta_max > 0) || !std::isfinite(theta_max)) fail("theta_max", "must be a finite number > 0, got " + num(theta_max));
    if (!(a0_scale > 0) || !std::isfinite(a0_scale)) fail("a0_scale", "must be a finite number > 0, got " + num(a0_scale));
    if (!(inner_clip >= 0) || !std::isfinite(inner_clip))
        fail("inner_clip", "must be a finite number >= 0 (0 = off), got " + num(inner_clip));
    for (auto& [g, v] : gate_init) {
        bool known = false;
        for (auto& n : gate_names()) known |= n == g;
        if (!known) fail("gate_init", "has unknown gate '" + g + "' (known: theta, eta, alpha, delta)");
        if (!std::isfinite(v)) fail("gate_init." + g, "must be finite, got " + num(v));
        if (g == "theta" && !(v > 0 && v < theta_max))
            fail("gate_init.theta", "must be in (0, theta_max = " + num(theta_max) + "), got " + num(v));
        if ((g == "eta" || g == "alpha") && !(v > 0 && v < 1)) fail("gate_init." + g, "must be in (0, 1), got " + num(v));
        if (g == "delta" && !(v > 0)) fail("gate_init.delta", "must be > 0, got " + num(v));
        if (!gate_learned(g))
            fail("gate_init." + g, gate_used(g) ? "is set but the gate is fixed (fixed_gates." + g + ")"
                                                : "is set but this config does not use the gate");
    }
    for (auto& [g, v] : fixed_gates) {
        bool known = false;
        for (auto& n : gate_names()) known |= n == g;
        if (!known) fail("fixed_gates", "has unknown gate '" + g + "' (known: theta, eta, alpha, delta)");
        if (!std::isfinite(v)) fail("fixed_gates." + g, "must be finite, got " + num(v));
        if (g == "theta" && v < 0) fail("fixed_gates.theta", "must be >= 0, got " + num(v));
        if ((g == "eta" || g == "alpha") && (v < 0 || v > 1)) fail("fixed_gates." + g, "must be in [0, 1], got " + num(v));
        if (g == "delta" && !(v > 0)) fail("fixed_gates.delta", "must be > 0, got " + num(v));
        // A constant for a gate this config never reads is a mistake (a
        // typo, or a setting that silently does nothing): say so.
        if (!gate_used(g)) {
            const char* why = g == "eta"     ? "eta is used only with algorithm = \"momentum\""
                              : g == "alpha" ? "alpha is used only by a retention with a forget gate (l2, lq, kl, elastic)"
                                             : "delta is used only with bias = \"huber_mix\"";
            fail("fixed_gates." + g, std::string("is set but this config does not use it: ") + why);
        }
    }
}

double MemoryConfig::gate_bias_centre(const std::string& g) const {
    auto it = gate_init.find(g);
    if (it == gate_init.end()) {
        // Defaults: θ = θ_max/2, η = σ(1) ≈ 0.73, α = σ(−2) ≈ 0.12, δ = softplus(0) ≈ 0.69.
        if (g == "eta") return 1.0;
        if (g == "alpha") return -2.0;
        return 0.0;
    }
    const double v = it->second;
    if (g == "theta") return std::log(v / (theta_max - v));  // θ = θ_max σ(b)
    if (g == "delta") return v > 30 ? v : std::log(std::expm1(v));  // δ = softplus(b) (= b above 30 in double)
    return std::log(v / (1 - v));                          // η, α = σ(b)
}

bool MemoryConfig::gate_used(const std::string& g) const {
    if (g == "theta") return true;
    if (g == "eta") return momentum();
    if (g == "alpha") return miras::retention(retention).uses_alpha;
    if (g == "delta") return bias == "huber_mix";
    throw std::invalid_argument("memory config: unknown gate '" + g + "' (known: theta, eta, alpha, delta)");
}

bool MemoryConfig::gate_learned(const std::string& g) const { return gate_used(g) && !fixed_gates.count(g); }

std::optional<double> MemoryConfig::fixed_gate(const std::string& g) const {
    auto it = fixed_gates.find(g);
    if (it == fixed_gates.end()) return std::nullopt;
    return it->second;
}

std::vector<std::pair<int64_t, int64_t>> MemoryConfig::weight_shapes() const {
    return make_memory_arch(*this)->weight_shapes(head_dim());
}

std::vector<std::string> MemoryConfig::a0_names() const {
    size_t n = weight_shapes().size();
    if (n == 1) return {"A0"};
    std::vector<std::string> names;
    for (size_t i = 1; i <= n; ++i) names.push_back("A0_" + std::to_string(i));
    return names;
}

}  // namespace miras
