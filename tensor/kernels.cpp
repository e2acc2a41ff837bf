// Picks the kernel build once per process (see tensor/kernels.h).
#include "tensor/kernels.h"

#include <cstdio>
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

const Loops& choose_loops(const char* env, std::string* problem) {
    const Loops* best = avx2_loops() ? avx2_loops() : &baseline_loops();
    if (!env || !*env || std::strcmp(env, "auto") == 0) return *best;
    if (std::strcmp(env, "baseline") == 0) return baseline_loops();
    if (std::strcmp(env, "avx2") == 0 && avx2_loops()) return *avx2_loops();
    if (problem)
        *problem = std::string("MIRAS_KERNELS='") + env + "' " +
                   (std::strcmp(env, "avx2") == 0 ? "asks for AVX2, which this CPU lacks"
                                                  : "is not one of auto, baseline, avx2") +
                   "; using the " + best->isa + " kernels";
    return *best;
}

const Loops& loops() {
    static const Loops* chosen = [] {
        std::string problem;
        const Loops* l = &choose_loops(std::getenv("MIRAS_KERNELS"), &problem);
        if (!problem.empty()) std::fprintf(stderr, "warning: %s\n", problem.c_str());
        return l;
    }();
    return *chosen;
}

}  // namespace miras::kernels
