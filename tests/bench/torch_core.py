"""PyTorch eager figures for the cases of bench_core.cpp, as JSON lines
{"key": ..., "value": ...}: matmul GFLOP/s and per-op overhead in ns.
Run by bench_core with Debian's /usr/bin/python3 (python3-torch).

  --threads N  torch.set_num_threads(N) (default 1). Debian's torch runs its
               matmuls in libopenblas, whose pool is set by the environment
               (OPENBLAS_NUM_THREADS), not by torch: bench_core sets both.
  --quick      shorter batches and fewer repeats.

Each figure is the median over repeats of a batch of calls lasting about
30 ms (5 ms with --quick); the calls are written inline in the timed loop,
so the Python overhead is that of the loop and the op itself, nothing more.
"""
import argparse
import json
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--quick", action="store_true")
args = ap.parse_args()
torch.set_num_threads(args.threads)
batch_s = 0.005 if args.quick else 0.03
reps = 5 if args.quick else 15


def emit(key, value):
    print(json.dumps({"key": key, "value": value}), flush=True)


def median_per_call(run, one):
    """Median seconds per call of run(inner) over reps batches; `one` is a
    single call, used to pick inner so that one batch lasts about batch_s."""
    one()
    count, t0 = 0, time.perf_counter()
    while count < 3 or time.perf_counter() - t0 < min(batch_s, 0.05):
        one()
        count += 1
    inner = max(1, int(batch_s / ((time.perf_counter() - t0) / count)))
    run(inner)  # warm-up at the timed size
    ts = []
    for _ in range(reps):
        s = time.perf_counter()
        run(inner)
        ts.append((time.perf_counter() - s) / inner)
    ts.sort()
    return ts[len(ts) // 2]


with torch.no_grad():
    for n in (64, 128, 256, 512, 1024):
        a, b = torch.randn(n, n), torch.randn(n, n)

        def run_mm(inner, a=a, b=b):
            for _ in range(inner):
                torch.matmul(a, b)
        t = median_per_call(run_mm, lambda: torch.matmul(a, b))
        emit(f"matmul_{n}", 2.0 * n**3 / t / 1e9)

    a, b = torch.randn(16), torch.randn(16)

    def run_add(inner):
        for _ in range(inner):
            a + b
    emit("add_fwd_ns", median_per_call(run_add, lambda: a + b) * 1e9)

x = torch.randn(16, requires_grad=True)


def fwd_bwd():
    y = (x + x).sum()
    torch.autograd.grad(y, x)


def run_fb(inner):
    for _ in range(inner):
        y = (x + x).sum()
        torch.autograd.grad(y, x)


emit("add_fwd_bwd_ns", median_per_call(run_fb, fwd_bwd) * 1e9)
