// The built-in retention maps φ (docs/math.md §1.6) and their A_0 initialisation.
#include "miras/retention.h"

#include <cmath>
#include <stdexcept>

#include "miras/registry.h"

namespace miras {
namespace {

// N(0, (a0_scale · std)²) in the config's dtype.
Tensor normal_init(const Shape& shape, Generator& gen, const MemoryConfig& cfg, double std) {
    return randn(shape, gen, cfg.dtype, 0.0, cfg.a0_scale * std);
}

// Default scale: 1/sqrt(fan_in), so |W k| ≈ |k| at the start.
Tensor fan_in_init(const Shape& shape, Generator& gen, const MemoryConfig& cfg) {
    return normal_init(shape, gen, cfg, 1.0 / std::sqrt((double)shape.back()));
}

// |A|^q. For an even integer q (Moneta's q = 4) as repeated squares of A:
// the same value, and a graph of multiplications only, whose backward (and
// the backward of that, which the outer gradient takes) is cheaper than
// pow's and abs's (pow's derivative calls pow again, abs's needs sign).
Tensor abs_pow(const Tensor& A, double q) {
    if (q >= 2 && q <= 16 && q == std::floor(q) && (int64_t)q % 2 == 0) {
        Tensor r = square(A);  // |A|^2
        Tensor acc;            // the product of the squares taken so far
        for (int64_t k = (int64_t)q / 2;; k /= 2) {
            if (k % 2) acc = acc.defined() ? mul(acc, r) : r;
            if (k == 1) break;
            r = square(r);
        }
        return acc;
    }
    return pow(abs(A), q);
}

Tensor phi_identity(const Tensor& A, const MemoryConfig&) { return A; }

// Moneta's ℓ_q retention [choice, docs/math.md §1.6: per matrix]: W = A / ‖A‖_q^{q−2} with
// ‖A‖_q = (Σ_ij |A_ij|^q + ε)^{1/q}, i.e. W = A · (Σ|A|^q + ε)^{−(q−2)/q}.
Tensor phi_lq(const Tensor& A, const MemoryConfig& cfg) {
    const double q = cfg.q;
    Tensor s = add(sum(abs_pow(A, q), {-2, -1}, true), kLqEps);  // (..., 1, 1)
    return mul(A, pow(s, -(q - 2.0) / q));
}

// Memora's KL retention [choice, docs/math.md §1.6: each row over the input axis]:
// W = c · softmax_row(A), so every row of W sums to c.
Tensor phi_kl(const Tensor& A, const MemoryConfig& cfg) { return mul(softmax(A, -1), cfg.kl_c); }

// Elastic net (Miras Eq. 23): soft thresholding, zero gradient in |A| < γ.
Tensor phi_elastic(const Tensor& A, const MemoryConfig& cfg) {
    return mul(sign(A), relu(add(abs(A), -cfg.gamma)));
}

// lq: random direction scaled to ‖A_0‖_q = 1 per (head, matrix), so W_0 has
// ‖W_0‖_q = 1 too (φ has degree 3 − q in A).
Tensor lq_init(const Shape& shape, Generator& gen, const MemoryConfig& cfg) {
    Tensor a = fan_in_init(shape, gen, cfg);
    Tensor nrm = raw::binary_scalar(raw::Binary::pow,
                                    raw::sum(raw::binary_scalar(raw::Binary::pow, raw::unary(raw::Unary::abs, a), cfg.q),
                                             {-2, -1}, true),
                                    1.0 / cfg.q);
    return raw::binary(raw::Binary::div, a, nrm);
}

// kl: the softmax only sees differences within a row; unit std gives rows
// that are neither uniform nor one-hot.
Tensor kl_init(const Shape& shape, Generator& gen, const MemoryConfig& cfg) { return normal_init(shape, gen, cfg, 1.0); }

// elastic: std >= 3γ so most entries start outside the dead zone.
Tensor elastic_init(const Shape& shape, Generator& gen, const MemoryConfig& cfg) {
    return normal_init(shape, gen, cfg, std::max(1.0 / std::sqrt((double)shape.back()), 3.0 * cfg.gamma));
}

Registry<Retention>& registry() {
    static Registry<Retention> r("retention", {
        {"none", Retention{true, false, phi_identity, fan_in_init}},
        {"l2", Retention{true, true, phi_identity, fan_in_init}},
        {"lq", Retention{false, true, phi_lq, lq_init}},
        {"kl", Retention{false, true, phi_kl, kl_init}},
        {"elastic", Retention{false, true, phi_elastic, elastic_init}},
    });
    return r;
}

}  // namespace

void register_retention(const std::string& name, Retention r) {
    if (!r.phi) throw std::invalid_argument("register_retention: empty phi for '" + name + "'");
    if (!r.init) r.init = fan_in_init;
    registry().add(name, std::move(r));
}

bool has_retention(const std::string& name) { return registry().has(name); }
std::vector<std::string> retention_names() { return registry().names(); }
const Retention& retention(const std::string& name) { return registry().find(name); }

}  // namespace miras
