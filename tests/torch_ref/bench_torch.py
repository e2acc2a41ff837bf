#!/usr/bin/python3
"""PyTorch micro-benchmarks, as a yardstick for the C++ framework.

Prints one JSON object per line; every number is the median over repeats,
timed with time.perf_counter, with torch.set_num_threads(2) (override with
--threads). f32 throughout.

  eager_add_fwd      y = x + x on a 16-element tensor; ns per add (pure
                     per-op dispatch overhead).
  eager_add_fwd_bwd  x requires grad; y = (x + x).sum(); y.backward();
                     ns per iteration of that whole snippet (two forward ops,
                     graph construction and one backward pass).
  matmul             square n x n @ n x n, GFLOP/s = 2 n^3 / time.
  miras_layer        forward + backward (loss = sum(o * R), gradients for x
                     and every parameter, second order through the inner
                     updates) of one memory layer, docs/math.md §1: d=128, 4 heads,
                     T=512, chunk b=16, batch 8, l2 bias, l2 retention,
                     momentum; linear and mlp memory (depth 2, expansion 4).
                     "form" says what was timed:
                       chunked    = miras_chunk.layer_forward_chunked (per-chunk
                                    rank-1 gradients + dual form, docs/math.md §1.8)
                       sequential = miras_ref.layer_forward (token-by-token
                                    loop with autograd.grad per token)
                     tokens_per_s = batch * T / time.

--quick: fewer repeats and iterations, and T=64 for the layer (reported).
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import miras_ref as R          # noqa: E402
import miras_chunk as C        # noqa: E402


def emit(**kw):
    print(json.dumps(kw), flush=True)


def median_time(fn, repeats, warmup=1):
    """Median wall time of fn() over repeats calls, after warmup calls."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), ts


def bench_eager(iters, repeats):
    x = torch.randn(16)

    def fwd():
        for _ in range(iters):
            x + x   # result discarded: only the dispatch cost is measured
    t, _ = median_time(fwd, repeats)
    emit(bench='eager_add_fwd', numel=16, ns_per_op=t / iters * 1e9,
         iters=iters, repeats=repeats)

    xg = torch.randn(16, requires_grad=True)

    def fwd_bwd():
        for _ in range(iters):
            y = (xg + xg).sum()
            y.backward()
    t, _ = median_time(fwd_bwd, repeats)
    emit(bench='eager_add_fwd_bwd', numel=16, ns_per_iter=t / iters * 1e9,
         snippet='y=(x+x).sum(); y.backward()', iters=iters, repeats=repeats)


def bench_matmul(sizes, repeats, min_time):
    for n in sizes:
        a = torch.randn(n, n)
        b = torch.randn(n, n)
        # pick an inner count so one timed call lasts about min_time; estimate
        # the cost of one product from a warm loop, not a single cold call
        torch.mm(a, b)
        count, t0 = 0, time.perf_counter()
        while count < 3 or time.perf_counter() - t0 < min(min_time, 0.05):
            torch.mm(a, b)
            count += 1
        one = (time.perf_counter() - t0) / count
        inner = max(1, int(min_time / one))

        def run():
            for _ in range(inner):
                torch.mm(a, b)
        t, _ = median_time(run, repeats)
        per = t / inner
        emit(bench='matmul', dtype='f32', n=n, gflops=2.0 * n ** 3 / per / 1e9,
             ms_per_matmul=per * 1e3, inner=inner, repeats=repeats)


def bench_layer(memory, form, B, T, repeats):
    cfg = R.normalize_config(dict(d=128, heads=4, memory=memory, depth=2, expansion=4,
                                  bias='l2', retention='l2', algorithm='momentum',
                                  chunk=16))
    params = {k: v.requires_grad_(True) for k, v in R.init_params(cfg, 0, torch.float32).items()}
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, cfg['d'], generator=g).requires_grad_(True)
    rr = torch.randn(B, T, cfg['d'], generator=g)
    fwd = C.layer_forward_chunked if form == 'chunked' else R.layer_forward
    inputs = [x] + list(params.values())

    def step():
        o = fwd(params, x, cfg)
        torch.autograd.grad((o * rr).sum(), inputs, allow_unused=True)

    t, ts = median_time(step, repeats)
    emit(bench='miras_layer', form=form, memory=memory, bias='l2', retention='l2',
         algorithm='momentum', d=128, heads=4, T=T, chunk=16, batch=B, dtype='f32',
         timed='forward+backward', tokens_per_s=B * T / t, s_per_iter=t, repeats=repeats)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--skip-sequential', action='store_true',
                    help='do not time the (slow) token-by-token layer')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    # The load average is recorded because OpenMP threads on an oversubscribed
    # machine spin at barriers: elementwise ops can then be >10x slower with 2
    # threads than with 1, and the numbers say more about the machine than torch.
    emit(bench='env', torch=torch.__version__, threads=torch.get_num_threads(),
         cpus=os.cpu_count(), loadavg_1min=os.getloadavg()[0], quick=a.quick)

    if a.quick:
        bench_eager(iters=2000, repeats=5)
        bench_matmul([64, 128, 256, 512, 1024], repeats=3, min_time=0.02)
        T, rep = 64, 2
    else:
        bench_eager(iters=20000, repeats=9)
        bench_matmul([64, 128, 256, 512, 1024], repeats=7, min_time=0.2)
        T, rep = 512, 3
    for memory in ('linear', 'mlp'):
        bench_layer(memory, 'chunked', 8, T, rep)
        if not a.skip_sequential:
            bench_layer(memory, 'sequential', 8, T, rep)


if __name__ == '__main__':
    main()
