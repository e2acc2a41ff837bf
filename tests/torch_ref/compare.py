#!/usr/bin/python3
"""Run the PyTorch reference of one Miras layer on given parameters and input,
and write what the C++ side must reproduce. Also holds the reference's own
self-tests.

Usage
  compare.py --config cfg.json --params params.safetensors \
             --input x.safetensors --out ref.safetensors
      Runs the layer in f64 (docs/math.md §1). The input file holds "x" (B, T, d) and
      "R" (B, T, d), the cotangent. Writes
          "out"             o, (B, T, d)
          "loss"            sum(o * R), shape []
          "grad.<name>"     d loss / d param, for every parameter (same shape)
          "grad.x"          d loss / d x
      A parameter that does not reach the loss (e.g. W_K under first_order with
      linear memory) gets an all-zero gradient. Parameter files and the
      gradients are in PyTorch's layout, as `miras forward/grad --layer` reads
      and writes them (st_io.to_pytorch: W_* and gate_*_w (out, in), conv_*
      (d, 1, 4); metadata "layout": "pytorch").

  compare.py --config cfg.json --make-params params.safetensors [--seed S]
  compare.py --config cfg.json --make-input x.safetensors --batch B --seq T [--seed S]
      Write random parameters (miras_ref.init_params) / a random x and R, in f64.

  compare.py --diff a.safetensors b.safetensors [--tol 1e-9]
      Per tensor: |a - b| <= tol * max(1, max|b|) (docs/math.md §4); shapes [] and [1]
      are treated as equal. Exit status 1 on any mismatch or missing name.

  compare.py --selftest [--quick]
      Checks the reference itself (see selftest() below). Prints
      "N passed, M failed" and exits nonzero on failure.

Config: JSON object with the keys of miras_ref.DEFAULTS.
"""

import argparse
import json
import os
import sys
import tempfile
import time
import traceback

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import miras_ref as R          # noqa: E402
import miras_chunk as C        # noqa: E402
import st_io                   # noqa: E402

F64 = torch.float64


# ---------------------------------------------------------------------------
# Reference run
# ---------------------------------------------------------------------------

def load_config(path):
    with open(path) as f:
        return R.normalize_config(json.load(f))


def run_reference(cfg, params_np, x_np, r_np, forward=R.layer_forward):
    """Forward + backward in f64. Returns dict name -> np.ndarray."""
    cfg = R.normalize_config(cfg)
    names = R.param_names(cfg)
    missing = [n for n in names if n not in params_np]
    extra = [n for n in params_np if n not in names]
    if missing or extra:
        raise SystemExit('parameter names do not match the config: missing %s, unexpected %s'
                         % (missing, extra))
    params = {n: torch.tensor(np.asarray(params_np[n]), dtype=F64).requires_grad_(True)
              for n in names}
    x = torch.tensor(np.asarray(x_np), dtype=F64).requires_grad_(True)
    rr = torch.tensor(np.asarray(r_np), dtype=F64)
    o = forward(params, x, cfg)
    if o.shape != rr.shape:
        raise SystemExit('R has shape %s, output has shape %s' % (tuple(rr.shape), tuple(o.shape)))
    loss = (o * rr).sum()
    inputs = [params[n] for n in names] + [x]
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    out = {'out': o.detach().numpy(), 'loss': np.array(loss.item(), dtype=np.float64)}
    for n, t, g in zip(names + ['x'], inputs, grads):
        out['grad.' + n] = (torch.zeros_like(t) if g is None else g).detach().numpy()
    return out


def diff_files(a_path, b_path, tol):
    a, _ = st_io.read(a_path)
    b, _ = st_io.read(b_path)
    ok = True
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            print('MISSING %-28s in %s' % (name, a_path if name not in a else b_path))
            ok = False
            continue
        ta, tb = np.asarray(a[name], np.float64), np.asarray(b[name], np.float64)
        if ta.size == tb.size == 1:
            ta, tb = ta.reshape(()), tb.reshape(())
        if ta.shape != tb.shape:
            print('SHAPE   %-28s %s vs %s' % (name, ta.shape, tb.shape))
            ok = False
            continue
        err = float(np.max(np.abs(ta - tb))) if ta.size else 0.0
        scale = max(1.0, float(np.max(np.abs(tb))) if tb.size else 0.0)
        good = err <= tol * scale
        ok &= good
        print('%s %-28s max|a-b| = %.3e  (limit %.3e)' % ('ok     ' if good else 'DIFFERS',
                                                         name, err, tol * scale))
    return ok


# ---------------------------------------------------------------------------
# Self-tests
# ---------------------------------------------------------------------------

class Runner:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, fn):
        t0 = time.perf_counter()
        try:
            msg = fn()
            self.passed += 1
            print('PASS %-52s %6.1fs %s' % (name, time.perf_counter() - t0, msg or ''))
        except Exception as e:  # noqa: BLE001 -- report every failure and go on
            self.failed += 1
            print('FAIL %-52s %s' % (name, e))
            traceback.print_exc()
        sys.stdout.flush()


def _leaf_params(cfg, seed, tweak=None):
    p = R.init_params(cfg, seed, F64)
    if tweak:
        tweak(p)
    return {k: v.detach().clone().requires_grad_(True) for k, v in p.items()}


def _rand_x(B, T, d, seed, scale=1.0):
    g = torch.Generator().manual_seed(10_000 + seed)
    return (torch.randn(B, T, d, generator=g, dtype=F64) * scale).requires_grad_(True)


def _find_seed(cfg, B, T, accept, tweak=None, tries=200):
    """First seed whose forward pass satisfies accept(stats): keeps tests away
    from the kinks of huber / elastic (docs/math.md §4: every kink >= 1e-3 away)."""
    for seed in range(tries):
        p = _leaf_params(cfg, seed, tweak)
        x = _rand_x(B, T, cfg['d'], seed)
        stats = {}
        with torch.no_grad():
            R.layer_forward(p, x, cfg, stats)
        if accept(stats):
            return seed, stats
    raise AssertionError('no seed in %d keeps the kinks >= 1e-3 away' % tries)


def _gradcheck_case(cfg, B=2, T=6, accept=None, tweak=None):
    """gradcheck of the sequential layer's outer gradient w.r.t. x and every
    parameter (central differences, eps 1e-6, atol 1e-5, rtol 1e-3, docs/math.md §4)."""
    cfg = R.normalize_config(cfg)
    seed, stats = (0, {}) if accept is None else _find_seed(cfg, B, T, accept, tweak)
    p = _leaf_params(cfg, seed, tweak)
    names = R.param_names(cfg)
    x = _rand_x(B, T, cfg['d'], seed)

    def f(x_, *ts):
        return R.layer_forward(dict(zip(names, ts)), x_, cfg)

    ok = torch.autograd.gradcheck(f, (x,) + tuple(p[n] for n in names),
                                  eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True)
    assert ok
    n_in = x.numel() + sum(p[n].numel() for n in names)
    extra = ' '.join('%s=%.2e' % (k, v) if isinstance(v, float) else '%s=%s' % (k, v)
                     for k, v in sorted(stats.items()))
    return '(%d inputs, seed %d) %s' % (n_in, seed, extra)


def _max_rel(a, b):
    return (a - b).abs().max().item() / max(1.0, b.abs().max().item())


def _chunk_case(cfg, B=2, T=11, seed=3):
    """Chunk-parallel == sequential, outputs and outer gradients (docs/math.md §1.8, §4)."""
    cfg = R.normalize_config(cfg)
    p = _leaf_params(cfg, seed)
    names = R.param_names(cfg)
    x = _rand_x(B, T, cfg['d'], seed)
    rr = torch.randn(B, T, cfg['d'], generator=torch.Generator().manual_seed(seed), dtype=F64)
    inputs = [x] + [p[n] for n in names]
    o1 = R.layer_forward(p, x, cfg)
    o2 = C.layer_forward_chunked(p, x, cfg)
    g1 = torch.autograd.grad((o1 * rr).sum(), inputs, allow_unused=True)
    g2 = torch.autograd.grad((o2 * rr).sum(), inputs, allow_unused=True)
    worst = _max_rel(o2, o1)
    assert worst <= 1e-9, 'output differs: %.3e' % worst
    for n, a, b in zip(['x'] + names, g1, g2):
        assert (a is None) == (b is None), 'grad.%s reaches the loss in only one form' % n
        if a is None:
            continue
        e = _max_rel(b, a)
        assert e <= 1e-9, 'grad.%s differs: %.3e' % (n, e)
        worst = max(worst, e)
    return '(worst rel %.1e)' % worst


def _textbook(kind):
    """With b = 1 and linear memory, settings of docs/math.md §1 must equal the classic
    recurrences (docs/math.md §3). W is per (batch, head); y_t = W_t q_t."""
    B, T, d, H = 2, 7, 8, 2
    base = dict(d=d, heads=H, memory='linear', chunk=1, algorithm='gd')
    if kind == 'linear_attention':
        cfg = dict(base, bias='dot', retention='none', fixed_gates={'theta': 1.0},
                   fix_A0_zero=True)
    elif kind == 'deltanet':
        cfg = dict(base, bias='l2', retention='none')
    elif kind == 'gated_deltanet':
        cfg = dict(base, bias='l2', retention='l2')
    elif kind == 'ttt_minibatch':     # chunk 3: all gradients of a chunk at W_{t'}
        cfg = dict(base, bias='l2', retention='none', chunk=3)
    elif kind == 'momentum':
        cfg = dict(base, bias='l2', retention='l2', algorithm='momentum')
    else:
        raise ValueError(kind)
    cfg = R.normalize_config(cfg)
    p = R.init_params(cfg, 7, F64)
    x = _rand_x(B, T, d, 7).detach()
    with torch.no_grad():
        q, k, v, gates = R.project(p, x, cfg)
        th, al, et = gates['theta'], gates['alpha'], gates['eta']
        dh = d // H
        W = torch.zeros(B, H, dh, dh, dtype=F64) if cfg['fix_A0_zero'] \
            else p['A0'].unsqueeze(0).repeat(B, 1, 1, 1)
        S = torch.zeros_like(W)
        Wc = W.clone()
        ys = []
        outer = lambda a, b_: a.unsqueeze(-1) * b_.unsqueeze(-2)   # a b^T
        mv = lambda M, z: torch.einsum('bhij,bhj->bhi', M, z)
        for t in range(T):
            kt, vt, qt = k[:, t], v[:, t], q[:, t]
            tht = th[:, t, :, None, None]
            if kind == 'linear_attention':
                W = W + outer(vt, kt)                                   # W_t = W_{t-1} + v k^T
            elif kind == 'deltanet':
                W = W - tht * outer(mv(W, kt) - vt, kt)                 # W - theta (W k - v) k^T
            elif kind == 'gated_deltanet':
                a = al[:, t, :, None, None]
                W = (1 - a) * W - tht * outer(mv(W, kt) - vt, kt)
            elif kind == 'ttt_minibatch':
                if t % 3 == 0:
                    Wc = W.clone()
                W = W - tht * outer(mv(Wc, kt) - vt, kt)
            elif kind == 'momentum':
                S = et[:, t, :, None, None] * S - tht * outer(mv(W, kt) - vt, kt)
                W = (1 - al[:, t, :, None, None]) * W + S
            ys.append(mv(W, qt))
        y_book = torch.stack(ys, 1)
        A_init = R.initial_state(p, cfg, B, F64)
        y_ref = R.memory_scan(q, k, v, gates, A_init, cfg)
        o_ref = R.layer_forward(p, x, cfg)
        o_book = R.output(p, x, y_book, cfg)
    e1 = _max_rel(y_ref, y_book)
    e2 = _max_rel(o_ref, o_book)
    assert e1 <= 1e-12 and e2 <= 1e-12, 'y %.3e, o %.3e' % (e1, e2)
    return '(rel err y %.1e, o %.1e)' % (e1, e2)


def _inner_grad_closed_forms():
    """u from autodiff equals the closed forms for linear memory (docs/math.md §1.4)."""
    g = torch.Generator().manual_seed(5)
    B, H, dh = 3, 2, 5
    W = torch.randn(B, H, dh, dh, generator=g, dtype=F64)
    k = R.norm2(torch.randn(B, H, dh, generator=g, dtype=F64))
    v = torch.randn(B, H, dh, generator=g, dtype=F64)
    delta = torch.rand(B, H, generator=g, dtype=F64) * 3
    e = torch.einsum('bhij,bhj->bhi', W, k) - v
    en = e.norm(dim=-1)
    cases = {
        'dot': -v,
        'l2': e,
        'lp': 3.0 * e * (e * e + 1e-6) ** 0.5,
        'huber': e.clamp(-0.7, 0.7),
        'huber_mix': torch.where((en <= delta)[..., None], e,
                                 delta[..., None] * e / torch.sqrt(e * e + 1e-6)),
    }
    for bias, gvec in cases.items():
        cfg = R.normalize_config(dict(d=dh * H, heads=H, memory='linear', bias=bias, p=3.0,
                                      huber_delta=0.7, first_order=True))
        (u,) = R.inner_grad([W], k, v, delta, cfg)
        want = gvec.unsqueeze(-1) * k.unsqueeze(-2)
        err = (u - want).abs().max().item()
        assert err < 1e-12, '%s: %.3e' % (bias, err)
    return '(%s)' % ', '.join(cases)


def _phi_properties():
    """kl rows sum to c; lq: ||phi(A)||_q = ||A||_q^(3-q) (docs/math.md §1.6); elastic shrinks."""
    g = torch.Generator().manual_seed(6)
    A = torch.randn(2, 3, 4, 5, generator=g, dtype=F64)
    W = R.phi(A, R.normalize_config(dict(retention='kl', kl_c=2.5)))
    assert (W.sum(-1) - 2.5).abs().max() < 1e-12
    qq = 4.0
    W = R.phi(A, R.normalize_config(dict(retention='lq', q=qq)))
    nA = ((A.abs() ** qq).sum((-2, -1)) + 1e-6) ** (1 / qq)
    nW = ((W.abs() ** qq).sum((-2, -1))) ** (1 / qq)
    # exact up to the 1e-6 inside the norm
    assert ((nW - nA ** (3 - qq)) / nW).abs().max() < 1e-6
    W = R.phi(A, R.normalize_config(dict(retention='elastic', gamma=0.3)))
    want = torch.where(A.abs() > 0.3, A - 0.3 * torch.sign(A), torch.zeros_like(A))
    assert (W - want).abs().max() < 1e-15
    return ''


def _first_order():
    """first_order: u is a constant, so with linear memory the keys and values
    (which enter only through u) get no outer gradient, and the rest does."""
    cfg = R.normalize_config(dict(d=8, heads=2, memory='linear', bias='l2', retention='l2',
                                  algorithm='momentum', chunk=2, first_order=True))
    p = _leaf_params(cfg, 0)
    x = _rand_x(2, 6, 8, 0)
    o = R.layer_forward(p, x, cfg)
    names = R.param_names(cfg)
    gr = dict(zip(names, torch.autograd.grad(o.sum(), [p[n] for n in names],
                                             allow_unused=True)))
    for n in ('W_K', 'W_V', 'conv_k', 'conv_v'):
        assert gr[n] is None or gr[n].abs().max() == 0, n
    for n in ('W_Q', 'A0', 'gate_theta_w', 'gate_eta_b', 'gate_alpha_w', 'W_O', 'out_norm_w'):
        assert gr[n] is not None and gr[n].abs().max() > 0, n
    return ''


def _st_roundtrip():
    t = {'a': np.random.RandomState(0).randn(3, 4),
         'b': np.float32(2.5) * np.ones((2,), np.float32),
         'c': np.array(7.0), 'i': np.arange(5, dtype=np.int64)}
    with tempfile.TemporaryDirectory() as dd:
        path = os.path.join(dd, 't.safetensors')
        st_io.write(path, t, {'k': 'v'})
        back, meta = st_io.read(path)
        with open(path, 'rb') as f:
            n = int.from_bytes(f.read(8), 'little')
        assert (8 + n) % 8 == 0
    assert meta == {'k': 'v'}
    for k in t:
        assert back[k].dtype == np.asarray(t[k]).dtype and back[k].shape == np.shape(t[k]), k
        assert np.array_equal(back[k], t[k]), k
    return ''


def _cli_roundtrip():
    """The CLI end to end: make params and input, run, reread, check the loss."""
    cfg = dict(d=8, heads=2, memory='mlp', depth=2, expansion=2, bias='huber_mix',
               retention='l2', algorithm='momentum', chunk=3, conv_bias=True,
               fixed_gates={'eta': 0.9})
    me = os.path.abspath(__file__)
    with tempfile.TemporaryDirectory() as dd:
        cp = os.path.join(dd, 'cfg.json')
        with open(cp, 'w') as f:
            json.dump(cfg, f)
        pp, xp, op = (os.path.join(dd, n) for n in ('p.safetensors', 'x.safetensors',
                                                     'o.safetensors'))
        py = sys.executable
        for cmd in ('%s %s --config %s --make-params %s --seed 4' % (py, me, cp, pp),
                    '%s %s --config %s --make-input %s --batch 2 --seq 7' % (py, me, cp, xp),
                    '%s %s --config %s --params %s --input %s --out %s' % (py, me, cp, pp, xp, op),
                    '%s %s --diff %s %s > /dev/null' % (py, me, op, op)):
            rc = os.system(cmd)
            assert rc == 0, 'command failed: ' + cmd
        out, _ = st_io.read(op)
        inp, _ = st_io.read(xp)
        params, _ = st_io.read(pp)
    assert abs(float(np.sum(out['out'] * inp['R'])) - float(out['loss'])) < 1e-10
    want = set(['out', 'loss', 'grad.x'] + ['grad.' + n for n in params])
    assert set(out) == want, set(out) ^ want
    assert 'gate_eta_w' not in params and 'conv_q_b' in params
    for n in params:
        assert out['grad.' + n].shape == params[n].shape
    return '(%d tensors)' % len(out)


def selftest(quick=False):
    torch.set_num_threads(1)   # tiny tensors: threads only add overhead
    run = Runner()
    small = dict(d=8, heads=2, expansion=2, chunk=2)

    run.run('safetensors round trip', _st_roundtrip)
    run.run('inner gradient = closed forms (linear memory)', _inner_grad_closed_forms)
    run.run('phi properties (kl, lq, elastic)', _phi_properties)
    for kind in ('linear_attention', 'deltanet', 'gated_deltanet', 'ttt_minibatch', 'momentum'):
        run.run('textbook recurrence: %s' % kind, lambda kind=kind: _textbook(kind))
    run.run('first_order: u is constant', _first_order)

    # Outer gradient vs central differences through >= 3 chunks (T=6, b=2).
    def both_branches(st):
        return st['huber_margin'] >= 1e-3 and st['huber_inner'] > 0 and st['huber_outer'] > 0

    def bigger_delta(p):      # move delta_t near |e|_2 so both huber_mix branches occur
        p['gate_delta_b'] += 1.0

    grad_cases = [
        ('l2 + momentum + mlp + l2 ret (Titans)',
         dict(small, memory='mlp', bias='l2', retention='l2', algorithm='momentum',
              theta_max=0.5), None, None),
        ('lp + lq, mlp (Moneta)',
         dict(small, memory='mlp', bias='lp', p=3.0, retention='lq', q=4.0,
              theta_max=0.5), None, None),
        ('huber_mix + l2, mlp (Yaad)',
         dict(small, memory='mlp', bias='huber_mix', retention='l2', theta_max=0.5),
         both_branches, bigger_delta),
        ('l2 + kl, mlp (Memora)',
         dict(small, memory='mlp', bias='l2', retention='kl', theta_max=0.5), None, None),
        ('l2 + elastic + momentum, linear',
         dict(small, memory='linear', bias='l2', retention='elastic', gamma=0.1,
              algorithm='momentum', theta_max=0.5),
         lambda st: st['elastic_margin'] >= 1e-3 and st['elastic_dead'] > 0, None),
        ('dot + none, linear (learned A0, theta)',
         dict(small, memory='linear', bias='dot', retention='none', theta_max=0.5), None, None),
    ]
    if not quick:
        grad_cases += [
            ('huber(delta const) + l2, linear, b=1',
             dict(small, memory='linear', bias='huber', huber_delta=0.3, retention='l2',
                  chunk=1, theta_max=0.5),
             lambda st: st['huber_margin'] >= 1e-3, None),
            ('lp + none, mlp depth 3, no LN, theta<=0.1',
             dict(small, memory='mlp', depth=3, layernorm=False, bias='lp', retention='none',
                  theta_max=0.1), None, None),
            ('l2 + l2, mlp no residual, conv bias, b=4',
             dict(small, memory='mlp', residual=False, conv_bias=True, bias='l2',
                  retention='l2', chunk=4, theta_max=0.5), None, None),
            ('dot + l2, fixed theta/alpha, momentum, A0=0',
             dict(small, memory='linear', bias='dot', retention='l2', algorithm='momentum',
                  fixed_gates={'theta': 0.5, 'alpha': 0.1}, fix_A0_zero=True), None, None),
        ]
    for name, cfg, accept, tweak in grad_cases:
        run.run('gradcheck: ' + name,
                lambda cfg=cfg, accept=accept, tweak=tweak: _gradcheck_case(cfg, accept=accept,
                                                                            tweak=tweak))

    # Chunk-parallel form vs the sequential loop (T=11 leaves a short last chunk).
    mid = dict(d=8, heads=2, expansion=2, chunk=4)
    chunk_cases = []
    for ib, bias in enumerate(('dot', 'l2', 'lp', 'huber_mix', 'huber')):
        for ir, ret in enumerate(('none', 'l2', 'lq', 'kl', 'elastic')):
            for ia, alg in enumerate(('gd', 'momentum')):
                if quick and (alg == 'gd') == (bias in ('dot', 'lp')):
                    continue
                # alternate memories so that each meets every bias, retention and
                # algorithm (kl always gets the mlp)
                mem = 'mlp' if ((ib + ir + ia) % 2 == 0 or ret == 'kl') else 'linear'
                chunk_cases.append(dict(mid, memory=mem, bias=bias, retention=ret,
                                        algorithm=alg,
                                        theta_max=0.1 if bias == 'lp' else 0.5))
    chunk_cases += [
        dict(mid, memory='mlp', depth=3, bias='l2', retention='l2', algorithm='momentum',
             first_order=True),
        dict(mid, memory='mlp', bias='l2', retention='lq', first_order=True, chunk=1),
        dict(mid, memory='linear', bias='dot', retention='none', chunk=11,
             fixed_gates={'theta': 1.0}, fix_A0_zero=True),
    ]
    for cfg in chunk_cases:
        full = R.normalize_config(cfg)
        tag = '%s/%s/%s/%s b=%d%s' % (full['memory'], full['bias'], full['retention'],
                                      full['algorithm'], full['chunk'],
                                      ' 1st-order' if cfg.get('first_order') else '')
        run.run('chunked == sequential: ' + tag, lambda cfg=cfg: _chunk_case(cfg))

    run.run('CLI round trip (make-params, make-input, run, diff)', _cli_roundtrip)

    print('%d passed, %d failed' % (run.passed, run.failed))
    return run.failed == 0


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--config')
    ap.add_argument('--params')
    ap.add_argument('--input')
    ap.add_argument('--out')
    ap.add_argument('--chunked', action='store_true',
                    help='use the chunk-parallel form instead of the sequential loop')
    ap.add_argument('--make-params', metavar='PATH')
    ap.add_argument('--make-input', metavar='PATH')
    ap.add_argument('--batch', type=int, default=2)
    ap.add_argument('--seq', type=int, default=8)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--diff', nargs=2, metavar=('A', 'B'))
    ap.add_argument('--tol', type=float, default=1e-9)
    ap.add_argument('--selftest', action='store_true')
    ap.add_argument('--quick', action='store_true', help='shorter selftest')
    a = ap.parse_args(argv)

    if a.selftest:
        return 0 if selftest(a.quick) else 1
    if a.diff:
        return 0 if diff_files(a.diff[0], a.diff[1], a.tol) else 1
    if not a.config:
        ap.error('--config is required')
    cfg = load_config(a.config)
    if a.make_params or a.make_input:
        if a.make_params:
            p = R.init_params(cfg, a.seed, F64)
            st_io.write(a.make_params, st_io.to_pytorch({k: v.numpy() for k, v in p.items()}),
                        dict(st_io.LAYOUT_META, config=json.dumps(cfg, sort_keys=True), seed=a.seed))
        if a.make_input:
            g = torch.Generator().manual_seed(a.seed + 1)
            x = torch.randn(a.batch, a.seq, cfg['d'], generator=g, dtype=F64)
            rr = torch.randn(a.batch, a.seq, cfg['d'], generator=g, dtype=F64)
            st_io.write(a.make_input, {'x': x.numpy(), 'R': rr.numpy()})
        return 0
    if not (a.params and a.input and a.out):
        ap.error('--params, --input and --out are required')
    params = st_io.from_pytorch(a.params, *st_io.read(a.params))
    inp, _ = st_io.read(a.input)
    if 'x' not in inp or 'R' not in inp:
        raise SystemExit('%s must hold tensors "x" and "R"' % a.input)
    fwd = C.layer_forward_chunked if a.chunked else R.layer_forward
    res = run_reference(cfg, params, inp['x'], inp['R'], fwd)
    st_io.write(a.out, st_io.to_pytorch(res),
                dict(st_io.LAYOUT_META, config=json.dumps(cfg, sort_keys=True),
                     form='chunked' if a.chunked else 'sequential'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
