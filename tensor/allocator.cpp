// A size-class cache in front of aligned_alloc (see tensor/allocator.h).
#include "tensor/allocator.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

namespace miras::alloc {
namespace {

constexpr size_t kSmall = 1024;  // below: plain malloc

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCacheBuilt = false;
#else
constexpr bool kCacheBuilt = true;
#endif

constexpr size_t kDefaultLimit = size_t(1024) << 20;

size_t default_limit() {
    if (!kCacheBuilt) return 0;
    std::string problem;
    const size_t limit = cache_limit_from(std::getenv("MIRAS_ALLOC_CACHE_MB"), &problem);
    if (!problem.empty()) std::fprintf(stderr, "warning: %s\n", problem.c_str());
    return limit;
}

struct Cache {
    std::mutex mu;
    std::unordered_map<size_t, std::vector<void*>> free;  // size class -> blocks
    size_t cached = 0, limit = default_limit();
    uint64_t hits = 0, misses = 0;

    void trim_to(size_t target) {  // caller holds mu
        for (auto& [size, blocks] : free) {
            while (cached > target && !blocks.empty()) {
                std::free(blocks.back());
                blocks.pop_back();
                cached -= size;
            }
        }
    }
};

// Never destroyed: tensors that outlive main's statics still free into it.
Cache& cache() {
    static Cache* c = new Cache;
    return *c;
}

}  // namespace

size_t cache_limit_from(const char* env, std::string* problem) {
    if (!env || !*env) return kDefaultLimit;
    char* end = nullptr;
    errno = 0;
    const unsigned long long mb = std::strtoull(env, &end, 10);
    if (*end != '\0' || env[0] == '-' || errno == ERANGE || mb > (1ull << 30)) {
        if (problem)
            *problem = std::string("MIRAS_ALLOC_CACHE_MB='") + env +
                       "' is not a whole number of MiB (0 to 2^30); the block cache keeps its default of 1024 MiB";
        return kDefaultLimit;
    }
    return (size_t)mb << 20;
}

size_t size_class(size_t n) {
    if (n < kSmall) return n;
    size_t p = size_t(1) << (63 - __builtin_clzll((unsigned long long)n));  // highest power of 2 ≤ n
    size_t step = p / 4;
    return (n + step - 1) / step * step;
}

void* allocate(size_t n) {
    if (n < kSmall) {
        void* p = std::malloc(n ? n : 16);
        if (!p) throw std::bad_alloc();
        return p;
    }
    const size_t size = size_class(n);
    Cache& c = cache();
    if (c.limit > 0) {
        std::lock_guard<std::mutex> lock(c.mu);
        auto it = c.free.find(size);
        if (it != c.free.end() && !it->second.empty()) {
            void* p = it->second.back();
            it->second.pop_back();
            c.cached -= size;
            ++c.hits;
            return p;
        }
        ++c.misses;
    }
    void* p = std::aligned_alloc(64, size);  // size is a multiple of 64 (≥ 1024, steps of ≥ 128)
    if (!p) {
        empty_cache();  // memory held for reuse may be what is missing
        p = std::aligned_alloc(64, size);
        if (!p) throw std::bad_alloc();
    }
    return p;
}

void release(void* p, size_t n) {
    if (!p) return;
    if (n < kSmall) {
        std::free(p);
        return;
    }
    const size_t size = size_class(n);
    Cache& c = cache();
    {
        std::lock_guard<std::mutex> lock(c.mu);
        if (c.cached + size <= c.limit) {
            c.free[size].push_back(p);
            c.cached += size;
            return;
        }
    }
    std::free(p);
}

CacheStats cache_stats() {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    return {c.cached, c.limit, c.hits, c.misses};
}

void empty_cache() {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    c.trim_to(0);
}

void set_cache_limit(size_t bytes) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    c.limit = kCacheBuilt ? bytes : 0;
    c.trim_to(c.limit);
}

}  // namespace miras::alloc
