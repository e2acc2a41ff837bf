// Picks the kernel build once per process (see tensor/kernels.h).
#include "tensor/kernels.h"

#include <cstdlib>
#include <cstring>

namespace miras::kernels {
namespace baseline { Loops make_loops(); }
namespace avx2 { Loops make_loops(); }

const Loops& baseline_loops() {
    static const Loops l = baseline::make_loops();
    return l;
}

const Loops* avx2_loops() {
    // cpu_init first: this may run during static initialisation, before
    // libgcc's own constructor has filled in the CPU model.
    static const bool ok = (__builtin_cpu_init(), __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
    static const Loops l = avx2::make_loops();
    return ok ? &l : nullptr;
}

const Loops& loops() {
    static const Loops* chosen = [] {
        const char* env = std::getenv("MIRAS_KERNELS");
        if (env && std::strcmp(env, "baseline") == 0) return &baseline_loops();
        const Loops* v = avx2_loops();
        return v ? v : &baseline_loops();
    }();
    return *chosen;
}

}  // namespace miras::kernels
