#include "tensor/threads.h"

#include <cblas.h>

#include <stdexcept>
#include <string>

namespace miras {

int set_blas_threads(int n) {
    // OpenBLAS itself takes n < 1 as "the count found at start-up": silently
    // all cores, the opposite of what a caller asking for 0 threads meant.
    if (n < 1) throw std::invalid_argument("set_blas_threads: the thread count must be >= 1, got " + std::to_string(n));
    openblas_set_num_threads(n);
    return openblas_get_num_threads();
}

int blas_threads() { return openblas_get_num_threads(); }

// The previous count is read before anything changes, so a bad n throws with
// nothing to restore.
BlasThreadsScope::BlasThreadsScope(int n) : previous_(blas_threads()) { set_blas_threads(n); }

BlasThreadsScope::~BlasThreadsScope() { openblas_set_num_threads(previous_); }

}  // namespace miras
