#pragma once
// Timing helpers for the benchmark programs: medians of repeated runs, since
// the machines are shared and noisy; every figure that matters is printed as
// a ratio against a reference measured in the same run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace miras::bench {

// Median seconds per call of f over `reps` timed batches of `inner` calls.
template <class F> double median_seconds(F&& f, int reps, int inner = 1) {
    f();  // warm-up
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
        auto s = std::chrono::steady_clock::now();
        for (int i = 0; i < inner; ++i) f();
        auto e = std::chrono::steady_clock::now();
        t.push_back(std::chrono::duration<double>(e - s).count() / inner);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

// Runs a command and returns its standard output ("" if it failed).
inline std::string run_capture(const std::string& cmd) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    if (pclose(p) != 0) return "";
    return out;
}

}  // namespace miras::bench
