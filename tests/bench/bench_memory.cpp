// Throughput of one Miras memory layer (docs/math.md §1), training step: forward,
// loss = sum(o ⊙ R) for a fixed random R, and the gradients of x and of every
// parameter (second order through the inner updates, as in training).
//
//   layer: d = 128, 4 heads (d_h = 32), chunk b = 16, f32, l2 bias,
//          l2 retention, momentum (Titans-like), batch 8, T = 512
//          (--quick: T = 64); memory linear, and mlp (depth 2, expansion 4)
//   cases: the whole layer, chunk-parallel (ScanMode::chunked, docs/math.md §1.8)
//          against the sequential reference (ScanMode::sequential), and
//          against the same layer in PyTorch eager
//          (tests/torch_ref/bench_torch.py, which times
//          miras_chunk.layer_forward_chunked with the same loss);
//          and the memory recurrence alone (memory_scan_chunked against
//          memory_scan_sequential on fixed q, k, v and gates, gradients of
//          those and of A_0), since projections and output are shared by
//          both forms and bound the whole-layer ratio.
//
// Targets: chunk-parallel >= 10x the sequential reference; >= 2x PyTorch.
// Prints medians of tokens/s (batch * T / seconds per step) and the ratios;
// see docs/performance.md. Also the matmul work of each step (GFLOP, counted
// by raw::matmul_flops) against OpenBLAS's own rate in the same rounds: the
// time a step would take if every product ran at that rate and nothing else
// cost anything, and so the best chunked / sequential ratio any
// implementation of the chunked step could reach against this reference.
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "autograd/engine.h"
#include "autograd/ops.h"
#include "autograd/grad_mode.h"
#include "miras/layer.h"
#include "miras/scan.h"
#include "tests/bench/bench_util.h"

using namespace miras;
namespace bm = miras::bench;

namespace {

constexpr int64_t kBatch = 8;
constexpr int64_t kDim = 128;

// One layer with its input, the fixed loss weights R and the tensors to
// differentiate (x first, then every parameter).
struct LayerBench {
    std::string memory;
    std::unique_ptr<MirasLayer> layer;
    Tensor x, R;  // (B, T, d)
    TensorList inputs;

    LayerBench(const std::string& mem, int64_t T) : memory(mem) {
        MemoryConfig cfg;
        cfg.d = kDim;
        cfg.heads = 4;
        cfg.memory = mem;
        cfg.depth = 2;
        cfg.expansion = 4;
        cfg.bias = "l2";
        cfg.retention = "l2";
        cfg.algorithm = "momentum";
        cfg.chunk = 16;
        cfg.dtype = DType::f32;
        layer = std::make_unique<MirasLayer>(cfg);
        Generator g(1);
        x = set_requires_grad(randn({kBatch, T, kDim}, g));
        R = randn({kBatch, T, kDim}, g);
        inputs.push_back(x);
        for (const Tensor& p : layer->parameters()) inputs.push_back(p);
    }

    // One training step; the gradients are dropped (only their cost matters).
    void step(ScanMode mode) {
        Tensor o = layer->forward(x, nullptr, mode);  // (B, T, d)
        Tensor loss = sum(o * R);
        TensorList g = grad({loss}, inputs, {}, {.allow_unused = true});
    }
};

// The recurrence alone (docs/math.md §1.4–1.7): q, k, v and the gates of the layer
// above, computed once and made leaves; a step scans them from A_0 and
// differentiates sum(y ⊙ R_y) with respect to them and to A_0.
struct ScanBench {
    const MirasLayer* layer;
    MemoryInputs in;  // (B, H, T, d_h) and (B, H, T), leaves
    Tensor Ry;        // (B, H, T, d_h)
    TensorList inputs;

    explicit ScanBench(const LayerBench& ls) : layer(ls.layer.get()) {
        MemoryState st = layer->initial_state(kBatch);
        {
            NoGradGuard off;
            in = layer->project(ls.x, st);
        }
        for (Tensor* t : {&in.q, &in.k, &in.v, &in.theta, &in.eta, &in.alpha, &in.delta})
            if (t->defined()) inputs.push_back(*t = set_requires_grad(detach(*t)));
        for (const Tensor& a : layer->A0()) inputs.push_back(a);
        Generator g(3);
        Ry = randn(in.q.shape(), g);
    }

    void step(ScanMode mode) {
        const MemoryConfig& cfg = layer->config();
        MemoryState st = initial_memory_state(cfg, layer->A0(), kBatch, cfg.dtype);
        Tensor y = mode == ScanMode::chunked ? memory_scan_chunked(cfg, in, st) : memory_scan_sequential(cfg, in, st);
        TensorList g = grad({sum(y * Ry)}, inputs, {}, {.allow_unused = true});
    }
};

// tokens/s of the PyTorch layer, keyed "<memory>/<form>", for batch kBatch
// and T tokens; empty if python3-torch is missing or the script failed.
std::map<std::string, double> torch_layer(const bm::Options& o, int64_t T, bool sequential) {
    std::string cmd = bm::torch_env(o.threads) + "/usr/bin/python3 tests/torch_ref/bench_torch.py --threads " +
                      std::to_string(o.threads) + (o.quick ? " --quick" : "") +
                      (sequential ? "" : " --skip-sequential") + " 2>/dev/null";
    std::map<std::string, double> m;
    for (const auto& j : bm::json_lines(bm::run_capture(cmd))) {
        if (j.value("bench", "") != "miras_layer" || j.value("batch", 0) != kBatch || j.value("T", 0) != T ||
            j.value("d", 0) != kDim || j.value("dtype", "") != "f32")
            continue;
        m[j.value("memory", "") + "/" + j.value("form", "")] = j.value("tokens_per_s", 0.0);
    }
    return m;
}

const char* verdict(double v, double target) { return v >= target ? "meets" : "MISSES"; }

// OpenBLAS's own rate, the ceiling for the products of a step: n × n @ n × n
// sgemm into reused buffers, n = 512 (the rate is flat from 256 up, see
// bench_core), a few products per call so one call lasts ~10 ms.
struct BlasPeak {
    static constexpr int n = 512, reps = 4;
    std::vector<float> a, b, c;
    BlasPeak() : a(n * n, 0.5f), b(n * n, 0.25f), c(n * n) {}
    void run() {
        for (int r = 0; r < reps; ++r) bm::sgemm_square(n, a.data(), b.data(), c.data());
    }
    double flops_per_run() const { return 2.0 * n * n * n * reps; }
};

}  // namespace

int main(int argc, char** argv) {
    bm::Options opt;
    try {
        opt = bm::parse_options(argc, argv,
                                "bench_memory [--quick] [--threads N] [--no-torch] [--default-malloc] [--samples] "
                                "[--torch-sequential]",
                                {"--torch-sequential"});
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
    }
    bm::apply(opt);
    const int64_t T = opt.quick ? 64 : 512;
    // Rounds of the interleaved measurement; the sequential path (seconds
    // per step at T = 512) takes part in every `seq_every`-th round.
    const int rounds = opt.quick ? 4 : 9;
    const int seq_every = opt.quick ? 1 : 3;

    std::printf("\nMiras layer, forward + backward (all parameters and x, second order), loss = sum(o * R)\n");
    std::printf("d=%ld, 4 heads, chunk 16, batch %ld, T=%ld, f32, bias l2, retention l2, momentum; mlp: depth 2, "
                "expansion 4\n",
                (long)kDim, (long)kBatch, (long)T);

    LayerBench lin("linear", T), mlp("mlp", T);
    ScanBench lin_scan(lin), mlp_scan(mlp);
    LayerBench* setups[2] = {&lin, &mlp};
    ScanBench* scans[2] = {&lin_scan, &mlp_scan};
    // Per memory: layer chunked, layer sequential, scan chunked, scan sequential.
    std::vector<bm::Case> cases(8);
    for (int i = 0; i < 2; ++i) {
        LayerBench* l = setups[i];
        ScanBench* sc = scans[i];
        cases[4 * i + 0].f = [l] { l->step(ScanMode::chunked); };
        cases[4 * i + 1].f = [l] { l->step(ScanMode::sequential); };
        cases[4 * i + 2].f = [sc] { sc->step(ScanMode::chunked); };
        cases[4 * i + 3].f = [sc] { sc->step(ScanMode::sequential); };
        cases[4 * i + 1].every = cases[4 * i + 3].every = seq_every;
        // The sequential form's graph is large (the mlp one peaks near 4 GB):
        // run after other cases, its first step re-faults the heap and is up
        // to 1.6x slower than the steady state of repeated steps, which one
        // untimed step restores.
        cases[4 * i + 1].warm = cases[4 * i + 3].warm = 1;
    }
    BlasPeak blas;
    bm::Case peak;
    peak.f = [&blas] { blas.run(); };
    peak.inner = 2;
    double t0 = bm::now_seconds();
    // Warm-up (allocator and page faults), which also counts each step's
    // matmul work: the same every step, since the shapes are.
    std::vector<double> gflop(cases.size());
    for (size_t i = 0; i < cases.size(); ++i) {
        uint64_t before = raw::matmul_flops();
        cases[i].f();
        gflop[i] = (double)(raw::matmul_flops() - before) * 1e-9;
    }
    std::vector<bm::Case*> all;
    for (auto& c : cases) all.push_back(&c);
    all.push_back(&peak);

    // PyTorch runs (separate processes) between blocks of our rounds, so
    // both sample the load of the same stretch of time. Each run times only
    // three steps, so one burst of load can halve it: the better run counts.
    const int torch_runs = opt.torch ? (opt.quick ? 1 : 2) : 0;
    const bool torch_seq = opt.quick || opt.has("--torch-sequential");  // cheap at T = 64
    std::map<std::string, double> torch;
    bm::interleaved_around(all, rounds, torch_runs, [&] {
        for (auto& [key, v] : torch_layer(opt, T, torch_seq)) torch[key] = std::max(torch[key], v);
    });
    double elapsed = bm::now_seconds() - t0;

    std::printf("\nwhole layer (medians; PyTorch: tests/torch_ref/bench_torch.py, same layer and loss%s)\n",
                torch_runs > 1 ? (", the better of " + std::to_string(torch_runs) + " runs").c_str() : "");
    std::printf("%-7s %-11s %12s %10s %8s %14s %13s\n", "memory", "form", "tokens/s", "s/step", "samples",
                "PyTorch tok/s", "ours/PyTorch");
    struct Summary { double speedup, vs_torch, scan_speedup; };
    std::map<std::string, Summary> sum_by_mem;
    for (int i = 0; i < 2; ++i) {
        const std::string& mem = setups[i]->memory;
        for (int s = 0; s < 2; ++s) {
            const bm::Case& c = cases[4 * i + s];
            const char* form = s == 0 ? "chunked" : "sequential";
            double tps = kBatch * T / c.median();
            std::printf("%-7s %-11s %12.0f %10.3f %8zu", mem.c_str(), form, tps, c.median(), c.samples.size());
            auto it = torch.find(mem + "/" + form);
            if (it != torch.end()) std::printf(" %14.0f %13.2f\n", it->second, tps / it->second);
            else std::printf(" %14s %13s\n", "-", "-");
        }
        auto it = torch.find(mem + "/chunked");
        sum_by_mem[mem] = {bm::time_ratio(cases[4 * i + 1], cases[4 * i]),  // t_seq / t_chunk
                           it == torch.end() ? 0.0 : kBatch * T / cases[4 * i].median() / it->second,
                           bm::time_ratio(cases[4 * i + 3], cases[4 * i + 2])};
    }
    std::printf("\nmemory recurrence alone (memory_scan_*; forward + backward to q, k, v, gates, A_0)\n");
    std::printf("%-7s %-11s %12s %10s %8s\n", "memory", "form", "tokens/s", "s/step", "samples");
    for (int i = 0; i < 2; ++i)
        for (int s = 0; s < 2; ++s) {
            const bm::Case& c = cases[4 * i + 2 + s];
            std::printf("%-7s %-11s %12.0f %10.3f %8zu\n", setups[i]->memory.c_str(), s == 0 ? "chunked" : "sequential",
                        kBatch * T / c.median(), c.median(), c.samples.size());
        }

    // The ceiling: t_sequential / (chunked GFLOP / peak rate), the ratio the
    // chunked form would reach if its step were only its products, run at
    // OpenBLAS's n = 512 rate (its real products are far smaller).
    const double peak_rate = blas.flops_per_run() * 1e-9 / peak.median();  // GFLOP/s
    std::printf("\nmatmul work per step (2nk per n x k @ k x m product, forward and backward) against OpenBLAS "
                "sgemm n = %d in the same rounds: %.1f GFLOP/s\n",
                BlasPeak::n, peak_rate);
    std::printf("%-7s %-22s %10s %10s %14s %17s\n", "memory", "case", "GFLOP", "GFLOP/s", "share of step",
                "step at peak (s)");
    const char* case_names[4] = {"layer chunked", "layer sequential", "recurrence chunked", "recurrence sequential"};
    for (size_t i = 0; i < cases.size(); ++i) {
        double t = cases[i].median(), at_peak = gflop[i] / peak_rate;
        std::printf("%-7s %-22s %10.3f %10.1f %13.0f%% %17.4f\n", setups[i / 4]->memory.c_str(), case_names[i % 4],
                    gflop[i], gflop[i] / t, 100.0 * at_peak / t, at_peak);
    }
    for (int i = 0; i < 2; ++i) {
        const std::string& mem = setups[i]->memory;
        std::printf("%-7s ceiling of chunked / sequential (products at peak, nothing else): whole layer %6.2fx, "
                    "recurrence %6.2fx\n",
                    mem.c_str(), cases[4 * i + 1].median() / (gflop[4 * i] / peak_rate),
                    cases[4 * i + 3].median() / (gflop[4 * i + 2] / peak_rate));
    }

    if (opt.samples) {
        std::printf("\n");
        const char* names[4] = {"layer chunked", "layer sequential", "scan chunked", "scan sequential"};
        for (int i = 0; i < 8; ++i)
            bm::print_samples((setups[i / 4]->memory + " " + names[i % 4]).c_str(), cases[i]);
        bm::print_samples("OpenBLAS sgemm 512", peak);
    }

    std::printf("\ntargets\n");
    for (auto& [mem, s] : sum_by_mem) {
        std::printf("%-7s chunked / sequential, whole layer     %7.2fx   target >= 10x: %s\n", mem.c_str(), s.speedup,
                    verdict(s.speedup, 10.0));
        std::printf("%-7s chunked / sequential, recurrence only %7.2fx   target >= 10x: %s\n", mem.c_str(),
                    s.scan_speedup, verdict(s.scan_speedup, 10.0));
        if (s.vs_torch > 0)
            std::printf("%-7s chunked / PyTorch chunked, layer      %7.2fx   target >=  2x: %s\n", mem.c_str(),
                        s.vs_torch, verdict(s.vs_torch, 2.0));
    }
    if (opt.quick) std::printf("(--quick: T = 64 and few samples, too short to judge the targets)\n");
    if (!opt.torch) std::printf("(PyTorch comparison skipped: --no-torch)\n");
    else if (torch.empty()) std::printf("(PyTorch figures unavailable: /usr/bin/python3 with torch not found, or "
                                        "tests/torch_ref/bench_torch.py failed)\n");
    std::printf("load average (1 min) at the end: %.2f; wall time %.0f s\n", bm::load_average_1min(), elapsed);
    return 0;
}
