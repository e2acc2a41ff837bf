"""PyTorch eager figures for the cases of bench_core.cpp, as JSON lines
{"key": ..., "value": ...}: matmul GFLOP/s and per-op overhead in ns.
Run by bench_core with Debian's /usr/bin/python3 (python3-torch)."""
import json
import sys
import time

import torch

torch.set_num_threads(2)
quick = "--quick" in sys.argv


def median_seconds(f, reps, inner):
    f()
    ts = []
    for _ in range(reps):
        s = time.perf_counter()
        for _ in range(inner):
            f()
        ts.append((time.perf_counter() - s) / inner)
    ts.sort()
    return ts[len(ts) // 2]


def emit(key, value):
    print(json.dumps({"key": key, "value": value}), flush=True)


for n in (64, 128, 256, 512, 1024):
    a, b = torch.randn(n, n), torch.randn(n, n)
    reps = 5 if quick else (9 if n >= 512 else 21)
    inner = 50 if n <= 128 else (5 if n <= 256 else 1)
    with torch.no_grad():
        t = min(median_seconds(lambda: torch.matmul(a, b), reps, inner) for _ in range(3))
    emit(f"matmul_{n}", 2.0 * n**3 / t / 1e9)

a, b = torch.randn(16), torch.randn(16)
reps, inner = (5 if quick else 15), 20000
with torch.no_grad():
    emit("add_fwd_ns", median_seconds(lambda: a + b, reps, inner) * 1e9)
x = torch.randn(16, requires_grad=True)


def fwd_bwd():
    y = (x + x).sum()
    torch.autograd.grad(y, x)


emit("add_fwd_bwd_ns", median_seconds(fwd_bwd, reps, inner // 10) * 1e9)
