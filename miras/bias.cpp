// The built-in attentional biases (docs/math.md §1.4; Miras §4 and Eq. 16) and their
// registry. Every formula is a plain composition of differentiable ops: the
// inner gradient comes from autodiff, and so do its derivatives (the outer,
// second-order gradient).
#include "miras/bias.h"

#include <stdexcept>

#include "miras/registry.h"

namespace miras {
namespace {

// ℓ = −<M_W(k), v>: linear attention family (Miras §4.1).
Tensor bias_dot(const Tensor& pred, const Tensor& v, const Tensor&, const MemoryConfig&) {
    return neg(sum(mul(pred, v), {-1}));  // (...)
}

// ℓ = ½ |e|², e = M_W(k) − v: Titans, TTT, DeltaNet.
Tensor bias_l2(const Tensor& pred, const Tensor& v, const Tensor&, const MemoryConfig&) {
    Tensor e = sub(pred, v);             // (..., d_h)
    return mul(sum(square(e), {-1}), 0.5);
}

// ℓ = Σ_i (e_i² + ε)^{p/2}: Moneta's ℓ_p bias with one smooth formula [choice, docs/math.md §1.4].
Tensor bias_lp(const Tensor& pred, const Tensor& v, const Tensor&, const MemoryConfig& cfg) {
    Tensor e = sub(pred, v);
    return sum(pow(add(square(e), kLpEps), cfg.p / 2.0), {-1});
}

// Yaad (Miras Eq. 16): ½|e|² while |e|₂ ≤ δ_t, else δ_t Σ_i sqrt(e_i² + ε),
// ε = cfg.huber_eps (1e-6 by default). The branch test is taken on the
// values only and carries no gradient; the loss is discontinuous at
// |e|₂ = δ_t (docs/math.md §1.4 warning). The linear branch's curvature at
// e_i = 0 is δ_t / sqrt(ε) (1000 δ_t at the default): docs/memory.md §3.2.
Tensor bias_huber_mix(const Tensor& pred, const Tensor& v, const Tensor& delta, const MemoryConfig& cfg) {
    if (!delta.defined()) throw std::invalid_argument("bias huber_mix: needs the per-token threshold delta");
    Tensor e = sub(pred, v);                                   // (..., d_h)
    Tensor quad = mul(sum(square(e), {-1}), 0.5);              // (...)
    Tensor lin = mul(delta, sum(sqrt(add(square(e), cfg.huber_eps)), {-1}));
    Tensor enorm = raw::unary(raw::Unary::sqrt, raw::sum(raw::unary(raw::Unary::square, e), {-1}));
    Tensor inner = raw::binary(raw::Binary::le, enorm, delta);  // 0/1, a constant
    return where(inner, quad, lin);
}

// Coordinate-wise Huber: Σ_i H_δ(e_i), H_δ(a) = ½a² if |a| ≤ δ else δ(|a| − ½δ).
Tensor bias_huber(const Tensor& pred, const Tensor& v, const Tensor&, const MemoryConfig& cfg) {
    const double dl = cfg.huber_delta;
    Tensor e = sub(pred, v);
    Tensor a = abs(e);
    Tensor inner = raw::binary_scalar(raw::Binary::le, a, dl);  // 0/1, a constant
    Tensor per = where(inner, mul(square(e), 0.5), mul(add(a, -0.5 * dl), dl));
    return sum(per, {-1});
}

Registry<BiasFn>& registry() {
    static Registry<BiasFn> r("attentional bias", {
        {"dot", bias_dot}, {"l2", bias_l2}, {"lp", bias_lp}, {"huber_mix", bias_huber_mix}, {"huber", bias_huber}});
    return r;
}

}  // namespace

void register_bias(const std::string& name, BiasFn fn) {
    if (!fn) throw std::invalid_argument("register_bias: empty function for '" + name + "'");
    registry().add(name, std::move(fn));
}

bool has_bias(const std::string& name) { return registry().has(name); }
std::vector<std::string> bias_names() { return registry().names(); }
const BiasFn& bias_fn(const std::string& name) { return registry().find(name); }

}  // namespace miras
