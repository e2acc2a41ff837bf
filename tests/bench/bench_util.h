#pragma once
// Timing helpers for the benchmark programs. The machines are shared and
// noisy, so every figure is a median, cases that are compared are timed in
// interleaved rounds (each round times every case once, so a burst of load
// hits all of them alike), and every figure that matters is printed as a
// ratio against a reference measured in the same run.
#include <cblas.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/threads.h"

namespace miras::bench {

inline double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double median(std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The q-quantile (0 <= q <= 1) of v, by linear interpolation.
inline double quantile(std::vector<double> v, double q) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    double pos = q * (v.size() - 1);
    size_t i = (size_t)pos;
    if (i + 1 >= v.size()) return v.back();
    return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

// How many calls of f make one timed batch of about `target` seconds (at
// least 1); f is run a few times first, which also warms it up.
inline int calibrate_inner(const std::function<void()>& f, double target) {
    f();
    int count = 0;
    double s = now_seconds(), el = 0.0;
    while (count < 3 || el < std::min(target, 0.05)) {
        f();
        ++count;
        el = now_seconds() - s;
    }
    return std::max(1, (int)(target / (el / count)));
}

// One case of an interleaved measurement: f timed in batches of `inner`
// calls, every `every`-th round only (slow cases take part in fewer rounds).
struct Case {
    std::function<void()> f;
    int inner = 1;
    int every = 1;
    int warm = 0;                 // untimed calls before each timed batch
    std::vector<double> samples;  // seconds per call, one per timed batch
    std::vector<int> rounds;      // the round of each sample
    double median() const { return bench::median(samples); }
};

// Times `rounds` rounds; in each, every case due that round runs one batch.
// The order within a round rotates so no case always runs first after a
// pause. Appends to each case's samples (call again for more rounds).
inline void interleaved(std::vector<Case*> cases, int rounds, int first_round = 0) {
    for (int r = first_round; r < first_round + rounds; ++r) {
        for (size_t j = 0; j < cases.size(); ++j) {
            Case& c = *cases[(j + r) % cases.size()];
            if (r % c.every) continue;
            for (int i = 0; i < c.warm; ++i) c.f();
            double s = now_seconds();
            for (int i = 0; i < c.inner; ++i) c.f();
            c.samples.push_back((now_seconds() - s) / c.inner);
            c.rounds.push_back(r);
        }
    }
}

// `rounds` interleaved rounds in runs + 1 equal blocks, with between_blocks()
// (a reference measured in another process, e.g. PyTorch) called between
// consecutive blocks, runs times in all: both then sample the same stretch
// of the machine's load.
template <class F> void interleaved_around(std::vector<Case*> cases, int rounds, int runs, F&& between_blocks) {
    int done = 0;
    for (int k = 0; k <= runs; ++k) {
        int block = (rounds - done) / (runs + 1 - k);
        interleaved(cases, block, done);
        done += block;
        if (k < runs) between_blocks();
    }
}

// "name: round:seconds ..." for --samples.
inline void print_samples(const char* name, const Case& c) {
    std::printf("  samples %-28s", name);
    for (size_t i = 0; i < c.samples.size(); ++i) std::printf(" %d:%.4g", c.rounds[i], c.samples[i]);
    std::printf("\n");
}

// Median over the rounds in which both ran of a's time / b's time: the ratio
// of two cases timed side by side, less sensitive to drifts of the load than
// the ratio of the medians.
inline std::vector<double> paired_ratios(const Case& a, const Case& b) {
    std::vector<double> r;
    for (size_t i = 0; i < a.samples.size(); ++i)
        for (size_t j = 0; j < b.samples.size(); ++j)
            if (a.rounds[i] == b.rounds[j]) r.push_back(a.samples[i] / b.samples[j]);
    return r;
}
inline double paired_ratio(const Case& a, const Case& b) { return median(paired_ratios(a, b)); }

// a's time / b's time: the paired ratio when both ran in the same rounds;
// otherwise (a case timed only every few rounds) the ratio of the medians,
// since a median of a few pairs is at the mercy of one burst of load.
inline double time_ratio(const Case& a, const Case& b) {
    return a.rounds == b.rounds ? paired_ratio(a, b) : a.median() / b.median();
}

// Raw OpenBLAS, c = a b for n × n row-major f32 matrices into a caller's
// buffer: the reference that matmul() (bench_core) and a layer's products
// (bench_memory) are measured against.
inline void sgemm_square(int64_t n, const float* a, const float* b, float* c) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f, a, (int)n, b, (int)n, 0.0f, c,
                (int)n);
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

// The JSON objects among the lines of `out` (other lines are skipped).
inline std::vector<nlohmann::json> json_lines(const std::string& out) {
    std::vector<nlohmann::json> v;
    size_t pos = 0;
    while (pos < out.size()) {
        size_t end = out.find('\n', pos);
        if (end == std::string::npos) end = out.size();
        auto j = nlohmann::json::parse(out.substr(pos, end - pos), nullptr, false);
        pos = end + 1;
        if (!j.is_discarded() && j.is_object()) v.push_back(std::move(j));
    }
    return v;
}

// Threads. OpenBLAS (the only multi-threaded part of the framework) and
// PyTorch are both pinned to the same count. torch.set_num_threads sets only
// PyTorch's OpenMP pool: Debian's torch does its matmuls in the same
// libopenblas, whose pool follows OPENBLAS_NUM_THREADS, so the child process
// gets both variables.
inline void set_threads(int n) { set_blas_threads(n); }
inline std::string torch_env(int n) {
    return "OPENBLAS_NUM_THREADS=" + std::to_string(n) + " OMP_NUM_THREADS=" + std::to_string(n) + " ";
}

// The allocator. Every op allocates its result. When one case runs after
// another with a different allocation pattern, glibc's adaptive thresholds
// (heap trimming, mmap for large blocks) hand freed memory back to the OS and
// the next case page-faults its working set in again: an artefact of
// interleaving. A training loop repeating one step does not see it
// (measured: a case run back to back is as fast with and without this
// setting, while interleaved it was up to 3x slower without). Fixed
// thresholds keep freed memory in the process, as in that steady state.
// --default-malloc skips this, to check.
inline void steady_state_allocator() {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest glibc allows; blocks below come from the heap
    mallopt(M_TRIM_THRESHOLD, 1 << 30);   // never give the heap's top back to the OS
}

inline double load_average_1min() {
    std::ifstream f("/proc/loadavg");
    double l = -1.0;
    f >> l;
    return l;
}

inline std::string cpu_model() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("model name", 0) == 0) {
            auto p = line.find(':');
            return p == std::string::npos ? line : line.substr(p + 2);
        }
    return "unknown";
}

// One line describing the conditions of the run, printed first.
inline void print_environment(int threads, bool default_malloc) {
    std::printf("machine: %s, %ld CPUs, threads used: %d (OpenBLAS and PyTorch), load average (1 min): %.2f\n",
                cpu_model().c_str(), sysconf(_SC_NPROCESSORS_ONLN), threads, load_average_1min());
    std::printf("allocator: %s\n", default_malloc ? "glibc defaults (--default-malloc)"
                                                   : "glibc, fixed mmap/trim thresholds (steady state)");
}

// The flags every benchmark program takes:
//   --quick       smaller shapes and fewer repetitions (a smoke run)
//   --threads N   OpenBLAS and PyTorch threads (default 1, see docs/performance.md)
//   --no-torch    skip the PyTorch comparison
//   --default-malloc  keep glibc's adaptive thresholds (see steady_state_allocator)
//   --samples     also print every timed sample (round: seconds per call)
struct Options {
    bool quick = false;
    bool samples = false;
    bool torch = true;
    bool default_malloc = false;
    int threads = 1;
    std::vector<std::string> flags;  // program-specific flags that were given
    bool has(const std::string& f) const { return std::find(flags.begin(), flags.end(), f) != flags.end(); }
};

// Parses the flags above and the program's own `extra` flags; throws on
// anything else, naming it.
inline Options parse_options(int argc, char** argv, const std::string& usage,
                             const std::vector<std::string>& extra = {}) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--quick") o.quick = true;
        else if (a == "--no-torch") o.torch = false;
        else if (a == "--default-malloc") o.default_malloc = true;
        else if (a == "--samples") o.samples = true;
        else if (a == "--threads") {
            // A whole number >= 1; anything else is an error, not silently 1.
            std::string v = i + 1 < argc ? argv[++i] : "";
            size_t used = 0;
            int n = 0;
            try { n = std::stoi(v, &used); } catch (const std::exception&) { used = 0; }
            if (v.empty() || used != v.size() || n < 1)
                throw std::invalid_argument("--threads needs a whole number >= 1, got '" + v + "'; usage: " + usage);
            o.threads = n;
        }
        else if (std::find(extra.begin(), extra.end(), a) != extra.end()) o.flags.push_back(a);
        else throw std::invalid_argument("unknown argument '" + a + "'; usage: " + usage);
    }
    return o;
}

// Applies the options shared by every benchmark; call first in main.
inline void apply(const Options& o) {
    set_threads(o.threads);
    if (!o.default_malloc) steady_state_allocator();
    print_environment(o.threads, o.default_malloc);
}

}  // namespace miras::bench
