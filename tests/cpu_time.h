#pragma once
// CPU seconds spent by the calling thread: for the tests that bound how long
// a parse takes (a regression to quadratic time shows as seconds of CPU),
// so that a machine busy with other work does not make them fail the way
// a wall-clock bound would.
#include <time.h>

namespace miras::testing {

inline double thread_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

}  // namespace miras::testing
