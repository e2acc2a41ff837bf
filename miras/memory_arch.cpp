// The two built-in memory architectures (docs/math.md §1.3) and the registry.
#include "miras/memory_arch.h"

#include <stdexcept>

#include "miras/registry.h"
#include "nn/functional.h"

namespace miras {

std::vector<std::pair<int64_t, int64_t>> LinearMemory::weight_shapes(int64_t d_h) const { return {{d_h, d_h}}; }

// M_W(k) = W k.
Tensor LinearMemory::forward(const Tensor& k, const LinearFn& lin) const { return lin(0, k); }

std::vector<std::pair<int64_t, int64_t>> MlpMemory::weight_shapes(int64_t d_h) const {
    const int64_t e = expansion_ * d_h;
    std::vector<std::pair<int64_t, int64_t>> s;
    s.push_back({e, d_h});                                 // W_1
    for (int64_t l = 1; l + 1 < depth_; ++l) s.push_back({e, e});  // middle layers
    s.push_back({d_h, e});                                 // W_L
    return s;
}

// M_W(k) = k + LN(W_L gelu(… gelu(W_1 k))) (Titans §3.1 deep memory; docs/math.md §1.3).
Tensor MlpMemory::forward(const Tensor& k, const LinearFn& lin) const {
    Tensor h = k;                                 // (..., d_h)
    for (int l = 0; l + 1 < depth_; ++l) h = gelu(lin(l, h));  // (..., e·d_h)
    Tensor z = lin((int)depth_ - 1, h);           // (..., d_h)
    if (layernorm_) z = layer_norm(z, Tensor(), Tensor(), kMemoryLnEps);
    return residual_ ? add(k, z) : z;
}

namespace {

Registry<MemoryArchFactory>& registry() {
    static Registry<MemoryArchFactory> r("memory architecture", {
        {"linear", [](const MemoryConfig&) -> std::shared_ptr<const MemoryArch> { return std::make_shared<LinearMemory>(); }},
        {"mlp",
         [](const MemoryConfig& c) -> std::shared_ptr<const MemoryArch> {
             if (c.depth < 2)
                 throw std::invalid_argument("memory config: depth must be >= 2 for mlp memory (docs/math.md §1.3), got " +
                                             std::to_string(c.depth));
             if (c.expansion < 1)
                 throw std::invalid_argument("memory config: expansion must be >= 1 for mlp memory, got " +
                                             std::to_string(c.expansion));
             return std::make_shared<MlpMemory>(c.depth, c.expansion, c.residual, c.layernorm);
         }},
    });
    return r;
}

}  // namespace

void register_memory_arch(const std::string& name, MemoryArchFactory factory) {
    if (!factory) throw std::invalid_argument("register_memory_arch: empty factory for '" + name + "'");
    registry().add(name, std::move(factory));
}

bool has_memory_arch(const std::string& name) { return registry().has(name); }
std::vector<std::string> memory_arch_names() { return registry().names(); }

// The factory runs outside the registry's lock (find's reference stays
// valid), so building an architecture may itself look names up.
std::shared_ptr<const MemoryArch> make_memory_arch(const MemoryConfig& cfg) { return registry().find(cfg.memory)(cfg); }

}  // namespace miras
