#pragma once
// Where tensor memory comes from. Blocks of 1 KiB and more are kept when
// freed, in size classes, and handed out again: a training step frees and
// allocates the same sizes step after step, and giving them back to the
// system (glibc returns large blocks with munmap, then faults the pages in
// again) cost 5-10% of a step, up to 3x when two workloads alternated
// (docs/performance.md). Smaller blocks go straight to malloc, which already
// caches them.
//
// Size classes: four per power of two (at most 25% rounding waste). The cache
// holds at most MIRAS_ALLOC_CACHE_MB mebibytes (default 1024; 0 disables it);
// a block freed beyond that goes back to the system. The sanitizer build
// disables the cache, so that AddressSanitizer sees every use after free.
#include <cstddef>
#include <cstdint>
#include <string>

namespace miras::alloc {

void* allocate(size_t nbytes);              // 64-byte aligned for ≥ 1 KiB; never null (throws bad_alloc)
void release(void* p, size_t nbytes);       // nbytes as given to allocate

struct CacheStats {
    size_t cached_bytes = 0;  // held for reuse, not in use
    size_t limit_bytes = 0;
    uint64_t hits = 0, misses = 0;
};
CacheStats cache_stats();
void empty_cache();                         // gives every cached block back to the system
void set_cache_limit(size_t bytes);         // and trims the cache to it
size_t size_class(size_t nbytes);           // the rounded size a block of nbytes occupies
// The limit a value of MIRAS_ALLOC_CACHE_MB asks for (null or empty: the
// default). Not a whole number: the default, and `problem` says why (the
// process prints it once to stderr).
size_t cache_limit_from(const char* env, std::string* problem);

}  // namespace miras::alloc
