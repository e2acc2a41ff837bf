// Benchmarks of the foundation: matmul through the framework against raw
// OpenBLAS on the same shapes, and the fixed per-op overhead of small ops,
// with PyTorch's eager figures for the same cases (tests/bench/torch_core.py,
// run with Debian's /usr/bin/python3 when python3-torch is installed).
//
// Targets: matmul >= 0.95 of raw OpenBLAS from n = 256 up; per-op overhead
// <= 0.2 of PyTorch eager. Prints medians and ratios; see docs/performance.md.
#include <cblas.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "autograd/ops.h"
#include "tests/bench/bench_util.h"

using namespace miras;
namespace bm = miras::bench;

namespace {

const int64_t kSizes[] = {64, 128, 256, 512, 1024};

// Matmul cases: raw cblas_sgemm into a reused buffer, and matmul() through
// the framework (which allocates its result, as every op does).
struct MatmulCase {
    int64_t n;
    Tensor a, b, c;
    bm::Case blas, ours;
};

const char* verdict(bool ok) { return ok ? "meets" : "MISSES"; }

// PyTorch figures, keyed as torch_core.py prints them; empty if unavailable.
std::map<std::string, double> torch_figures(const bm::Options& o) {
    std::map<std::string, double> m;
    std::string cmd = bm::torch_env(o.threads) + "/usr/bin/python3 tests/bench/torch_core.py --threads " +
                      std::to_string(o.threads) + (o.quick ? " --quick" : "") + " 2>/dev/null";
    for (const auto& j : bm::json_lines(bm::run_capture(cmd)))
        if (j.contains("key") && j.contains("value")) m[j["key"].get<std::string>()] = j["value"].get<double>();
    return m;
}

}  // namespace

int main(int argc, char** argv) {
    bm::Options opt;
    try {
        opt = bm::parse_options(argc, argv,
                                "bench_core [--quick] [--threads N] [--no-torch] [--default-malloc] [--samples]");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
    }
    bm::apply(opt);
    double t0 = bm::now_seconds();

    // ---- set up every case, calibrated to batches of about `batch_s` seconds
    const double batch_s = opt.quick ? 0.005 : 0.05;
    const int rounds = opt.quick ? 4 : 20;
    std::vector<MatmulCase> mm(std::size(kSizes));
    for (size_t i = 0; i < mm.size(); ++i) {
        MatmulCase& c = mm[i];
        int64_t n = c.n = kSizes[i];
        Generator g(1);
        c.a = randn({n, n}, g);
        c.b = randn({n, n}, g);
        c.c = Tensor::empty({n, n});
        c.blas.f = [&c, n] { bm::sgemm_square(n, c.a.data<float>(), c.b.data<float>(), c.c.data<float>()); };
        c.ours.f = [&c] { Tensor r = matmul(c.a, c.b); };
        // Same batch length for both, so they are timed under the same conditions.
        c.blas.inner = c.ours.inner = bm::calibrate_inner(c.blas.f, batch_s);
    }

    // Per-op overhead: a 16-element add (forward only), and the whole
    // snippet y = sum(x + x); grad(y, x) (two recorded ops, one backward).
    Generator g(2);
    Tensor a = randn({16}, g), b = randn({16}, g);
    Tensor x = set_requires_grad(randn({16}, g));
    bm::Case add_fwd, add_fb;
    add_fwd.f = [&] { Tensor r = add(a, b); };
    add_fb.f = [&] {
        Tensor y = sum(add(x, x));
        TensorList gx = grad({y}, {x});
    };
    add_fwd.inner = bm::calibrate_inner(add_fwd.f, batch_s);
    add_fb.inner = bm::calibrate_inner(add_fb.f, batch_s);

    std::vector<bm::Case*> all;
    for (auto& c : mm) { all.push_back(&c.blas); all.push_back(&c.ours); }
    all.push_back(&add_fwd);
    all.push_back(&add_fb);

    // ---- measure: PyTorch runs (separate processes) between blocks of our
    // rounds, so both sample the load of the same stretch of time; the
    // PyTorch figure is the median over its runs.
    const int torch_runs = opt.torch ? (opt.quick ? 1 : 3) : 0;
    std::map<std::string, std::vector<double>> torch_runs_by_key;
    bm::interleaved_around(all, rounds, torch_runs, [&] {
        for (auto& [key, v] : torch_figures(opt)) torch_runs_by_key[key].push_back(v);
    });
    std::map<std::string, double> torch;
    for (auto& [key, v] : torch_runs_by_key) torch[key] = bm::median(v);

    // ---- report
    std::printf("\nmatmul f32 (n x n @ n x n), median GFLOP/s over %d interleaved rounds; ratios are medians of\n"
                "per-round ratios, with their quartiles\n", rounds);
    std::printf("%6s %10s %10s %14s %15s %10s %14s\n", "n", "OpenBLAS", "framework", "ours/OpenBLAS",
                "(quartiles)", "PyTorch", "ours/PyTorch");
    bool mm_ok = true;
    double worst = 1e30;
    for (auto& c : mm) {
        double flops = 2.0 * c.n * c.n * c.n;
        double gb = flops / c.blas.median() / 1e9, go = flops / c.ours.median() / 1e9;
        auto ratios = bm::paired_ratios(c.blas, c.ours);  // t_blas / t_ours = speed ratio, per round
        double ratio = bm::median(ratios);
        if (c.n >= 256) { mm_ok &= ratio >= 0.95; worst = std::min(worst, ratio); }
        std::printf("%6ld %10.1f %10.1f %14.3f   [%5.3f, %5.3f] ", (long)c.n, gb, go, ratio,
                    bm::quantile(ratios, 0.25), bm::quantile(ratios, 0.75));
        auto it = torch.find("matmul_" + std::to_string(c.n));
        if (it != torch.end()) std::printf(" %10.1f %14.3f\n", it->second, go / it->second);
        else std::printf(" %10s %14s\n", "-", "-");
    }

    std::printf("\nper-op overhead, 16-element f32 tensors, median ns\n");
    bool oh_ok = true, oh_known = false;
    auto row = [&](const char* name, const bm::Case& c, const char* key) {
        double ours = c.median() * 1e9;
        auto it = torch.find(key);
        if (it == torch.end()) { std::printf("%-30s %8.0f ns   PyTorch: -\n", name, ours); return; }
        double r = ours / it->second;
        oh_known = true;
        oh_ok &= r <= 0.2;
        std::printf("%-30s %8.0f ns   PyTorch %8.0f ns   ours/PyTorch %.3f\n", name, ours, it->second, r);
    };
    row("add forward", add_fwd, "add_fwd_ns");
    row("y = sum(x + x); grad(y, x)", add_fb, "add_fwd_bwd_ns");

    if (opt.samples) {
        std::printf("\n");
        for (auto& c : mm) {
            bm::print_samples(("OpenBLAS " + std::to_string(c.n)).c_str(), c.blas);
            bm::print_samples(("framework " + std::to_string(c.n)).c_str(), c.ours);
        }
        bm::print_samples("add forward", add_fwd);
        bm::print_samples("sum(x + x) + grad", add_fb);
    }

    std::printf("\ntargets\n");
    std::printf("matmul >= 0.95 of OpenBLAS for n >= 256: worst %.3f: %s\n", worst, verdict(mm_ok));
    if (oh_known) std::printf("per-op overhead <= 0.2 of PyTorch eager: %s\n", verdict(oh_ok));
    if (!torch.empty())
        std::printf("(PyTorch: median of %d run%s of tests/bench/torch_core.py)\n", torch_runs,
                    torch_runs > 1 ? "s" : "");
    if (opt.quick) std::printf("(--quick: a smoke run, too short to judge the targets)\n");
    if (!opt.torch) std::printf("(PyTorch comparison skipped: --no-torch)\n");
    else if (torch.empty()) std::printf("(PyTorch figures unavailable: /usr/bin/python3 with torch not found)\n");
    std::printf("load average (1 min) at the end: %.2f; wall time %.0f s\n", bm::load_average_1min(),
                bm::now_seconds() - t0);
    return 0;
}
