// Benchmarks of the foundation: matmul through the framework against raw
// OpenBLAS on the same shapes, and the fixed per-op overhead of small ops,
// with PyTorch's eager figures for the same cases where python3-torch exists.
// Prints a table and ratios; see docs/performance.md.
#include <cblas.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "autograd/ops.h"
#include "tests/bench/bench_util.h"

using namespace miras;
using miras::bench::median_seconds;

namespace {

bool quick = false;

void bench_matmul(std::map<std::string, double>& torch) {
    std::printf("\nmatmul f32 (n x n @ n x n), median GFLOP/s\n");
    std::printf("%6s %12s %12s %8s %12s %8s\n", "n", "OpenBLAS", "framework", "ratio", "PyTorch", "ratio");
    for (int64_t n : {64, 128, 256, 512, 1024}) {
        Generator g(1);
        Tensor a = randn({n, n}, g), b = randn({n, n}, g);
        Tensor c = Tensor::empty({n, n});
        double flops = 2.0 * n * n * n;
        int reps = quick ? 5 : (n >= 512 ? 9 : 21);
        int inner = n <= 128 ? 50 : (n <= 256 ? 5 : 1);
        // Interleave the two measurements so both see the same machine load.
        double t_blas = 1e30, t_ours = 1e30;
        for (int round = 0; round < 3; ++round) {
            t_blas = std::min(t_blas, median_seconds([&] {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f, a.data<float>(),
                            (int)n, b.data<float>(), (int)n, 0.0f, c.data<float>(), (int)n);
            }, reps, inner));
            t_ours = std::min(t_ours, median_seconds([&] { Tensor r = matmul(a, b); }, reps, inner));
        }
        double gb = flops / t_blas / 1e9, go = flops / t_ours / 1e9;
        std::string key = "matmul_" + std::to_string(n);
        if (torch.count(key)) {
            double gt = torch[key];
            std::printf("%6ld %12.1f %12.1f %8.3f %12.1f %8.3f\n", (long)n, gb, go, go / gb, gt, go / gt);
        } else {
            std::printf("%6ld %12.1f %12.1f %8.3f %12s %8s\n", (long)n, gb, go, go / gb, "-", "-");
        }
    }
}

void bench_overhead(std::map<std::string, double>& torch) {
    std::printf("\nper-op overhead, 16-element f32 add, median ns per op\n");
    Generator g(2);
    Tensor a = randn({16}, g), b = randn({16}, g);
    int reps = quick ? 5 : 15, inner = 20000;
    double fwd = median_seconds([&] { Tensor r = add(a, b); }, reps, inner) * 1e9;
    Tensor x = randn({16}, g);
    set_requires_grad(x);
    // Forward + backward of y = sum(x + x): three ops recorded, one backward.
    double fb = median_seconds([&] {
        Tensor y = sum(add(x, x));
        TensorList gx = grad({y}, {x});
    }, reps, inner / 10) * 1e9;
    auto row = [&](const char* name, double ours, const char* key) {
        if (torch.count(key))
            std::printf("%-34s %10.0f ns   PyTorch %10.0f ns   ratio (ours/PyTorch) %.3f\n", name, ours, torch[key],
                        ours / torch[key]);
        else
            std::printf("%-34s %10.0f ns   PyTorch: not installed\n", name, ours);
    };
    row("add forward", fwd, "add_fwd_ns");
    row("sum(x + x) forward + grad", fb, "add_fwd_bwd_ns");
}

// PyTorch figures for the same cases, from tests/bench/torch_core.py.
std::map<std::string, double> torch_figures() {
    std::map<std::string, double> m;
    std::string out = miras::bench::run_capture(
        std::string("/usr/bin/python3 tests/bench/torch_core.py") + (quick ? " --quick" : "") + " 2>/dev/null");
    size_t pos = 0;
    while (pos < out.size()) {
        size_t end = out.find('\n', pos);
        if (end == std::string::npos) end = out.size();
        std::string line = out.substr(pos, end - pos);
        pos = end + 1;
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains("key") || !j.contains("value")) continue;
        m[j["key"].get<std::string>()] = j["value"].get<double>();
    }
    return m;
}

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i)
        if (!std::strcmp(argv[i], "--quick")) quick = true;
    openblas_set_num_threads(2);
    auto torch = torch_figures();
    if (torch.empty()) std::printf("(PyTorch figures unavailable: /usr/bin/python3 with torch not found)\n");
    bench_matmul(torch);
    bench_overhead(torch);
    return 0;
}
