"""Sequential PyTorch reference of one Miras memory layer (docs/math.md §1).

This file is the outside check for the C++ layer. It is written for clarity,
not speed: the memory is updated token by token, and every inner gradient u_t
is taken with torch.autograd.grad, exactly as docs/math.md §1.8 ("sequential
reference") describes.

Conventions shared with the C++ side
------------------------------------
Tensors
    x : (B, T, d) layer input, tokens are row vectors (docs/math.md §0).
    o : (B, T, d) layer output.
    H heads of width d_h = d / H; head h owns channels [h*d_h, (h+1)*d_h).

Parameters: a dict name -> tensor
    W_Q, W_K, W_V, W_G, W_O   (d, d)    math convention: projection is x @ W,
                                        W is (d_in, d_out).
    conv_q, conv_k, conv_v    (d, 4)    w[c, j]; out[t, c] = sum_j w[c, j] z[t-3+j, c]
                                        (left zero padding, j = 3 is the current token).
    conv_q_b, conv_k_b, conv_v_b (d,)   only if cfg['conv_bias'].
    gate_<g>_w (d, H), gate_<g>_b (H,)  for g in theta, eta, alpha, delta; present
                                        only when that gate is used by the config and
                                        not fixed to a constant:
                                          theta: always used
                                          eta:   algorithm == 'momentum'
                                          alpha: retention != 'none'
                                          delta: bias == 'huber_mix'
    A0                        (H, d_h, d_h)          linear memory
    A0_1                      (H, e*d_h, d_h)        mlp memory, first layer
    A0_2 .. A0_{L-1}          (H, e*d_h, e*d_h)      mlp memory, middle layers
    A0_L                      (H, d_h, e*d_h)        mlp memory, last layer
                              Memory weights act on columns (W k), stored (out, in).
                              A0 is the *pre-weight*; W_0 = phi(A0) (docs/math.md §1.6).
                              Absent when cfg['fix_A0_zero'].
    out_norm_w                (d,)      RMSNorm weight of the output norm.

Config: a plain dict (missing keys take the defaults in DEFAULTS)
    d, heads, memory ('linear'|'mlp'), depth, expansion, residual, layernorm,
    bias ('dot'|'l2'|'lp'|'huber_mix'|'huber'), p, huber_delta,
    retention ('none'|'l2'|'lq'|'kl'|'elastic'), q, kl_c, gamma,
    algorithm ('gd'|'momentum'), chunk, theta_max,
    fixed_gates  e.g. {'theta': 1.0}  (a fixed gate *is* the constant; theta_max
                 is not applied, docs/math.md §1.2),
    fix_A0_zero, conv_bias, first_order.

Choices below that docs/math.md leaves to the implementation
    - LN variance is the population (biased) variance over the features.
    - The huber_mix branch test uses the exact |e|_2 (no epsilon) and carries
      no gradient.
"""

import math

import torch

# Numerical constants fixed by docs/math.md §1.
NORM2_EPS = 1e-6      # norm2(z) = z / sqrt(|z|^2 + 1e-6), docs/math.md §1.1
LN_EPS = 1e-5         # memory LayerNorm, docs/math.md §1.3
LP_EPS = 1e-6         # lp bias smoothing, docs/math.md §1.4
HUBER_MIX_EPS = 1e-6  # huber_mix linear branch smoothing, docs/math.md §1.4
LQ_EPS = 1e-6         # ||A||_q = (sum |A|^q + 1e-6)^(1/q), docs/math.md §1.6
RMS_EPS = 1e-6        # output RMSNorm, docs/math.md §1.7
CONV_K = 4            # causal depthwise conv kernel, docs/math.md §1.1

DEFAULTS = {
    'd': 16,
    'heads': 2,
    'memory': 'linear',
    'depth': 2,
    'expansion': 4,
    'residual': True,
    'layernorm': True,
    'bias': 'l2',
    'p': 3.0,
    'huber_delta': 1.0,
    'retention': 'l2',
    'q': 4.0,
    'kl_c': 1.0,
    'gamma': 0.01,
    'algorithm': 'gd',
    'chunk': 16,
    'theta_max': 1.0,
    'fixed_gates': {},
    'fix_A0_zero': False,
    'conv_bias': False,
    'first_order': False,
}

GATES = ('theta', 'eta', 'alpha', 'delta')


# ---------------------------------------------------------------------------
# Config helpers
# ---------------------------------------------------------------------------

def normalize_config(cfg):
    """Return a full config: defaults filled in, values checked."""
    out = dict(DEFAULTS)
    out.update(cfg)
    if 'fixed' in cfg and 'fixed_gates' not in cfg:   # accepted alias
        out['fixed_gates'] = cfg['fixed']
    out.pop('fixed', None)
    out['fixed_gates'] = {k: float(v) for k, v in dict(out['fixed_gates']).items()}
    for k in out['fixed_gates']:
        assert k in GATES, 'unknown fixed gate %r' % k
    assert out['d'] % out['heads'] == 0, 'd must be divisible by heads'
    assert out['memory'] in ('linear', 'mlp')
    assert out['bias'] in ('dot', 'l2', 'lp', 'huber_mix', 'huber')
    assert out['retention'] in ('none', 'l2', 'lq', 'kl', 'elastic')
    assert out['algorithm'] in ('gd', 'momentum')
    assert out['chunk'] >= 1
    if out['memory'] == 'mlp':
        assert out['depth'] >= 2, 'mlp memory needs depth >= 2 (docs/math.md §1.3)'
    if out['retention'] == 'lq':
        assert out['q'] >= 2
    if out['bias'] == 'lp':
        assert out['p'] > 1
    return out


def gate_used(cfg, g):
    """Whether gate g enters the layer's computation at all (docs/math.md §1.2)."""
    if g == 'theta':
        return True
    if g == 'eta':
        return cfg['algorithm'] == 'momentum'
    if g == 'alpha':
        return cfg['retention'] != 'none'
    if g == 'delta':
        return cfg['bias'] == 'huber_mix'
    raise ValueError(g)


def gate_learned(cfg, g):
    return gate_used(cfg, g) and g not in cfg['fixed_gates']


def memory_shapes(cfg):
    """(out, in) shape of every memory weight matrix, in order (docs/math.md §1.3)."""
    dh = cfg['d'] // cfg['heads']
    if cfg['memory'] == 'linear':
        return [(dh, dh)]
    e = cfg['expansion'] * dh
    L = cfg['depth']
    return [(e, dh)] + [(e, e)] * (L - 2) + [(dh, e)]


def a0_names(cfg):
    if cfg['memory'] == 'linear':
        return ['A0']
    return ['A0_%d' % (i + 1) for i in range(cfg['depth'])]


def param_names(cfg):
    """All parameter names of a config, in a fixed order."""
    cfg = normalize_config(cfg)
    names = ['W_Q', 'W_K', 'W_V', 'W_G', 'W_O', 'conv_q', 'conv_k', 'conv_v']
    if cfg['conv_bias']:
        names += ['conv_q_b', 'conv_k_b', 'conv_v_b']
    for g in GATES:
        if gate_learned(cfg, g):
            names += ['gate_%s_w' % g, 'gate_%s_b' % g]
    if not cfg['fix_A0_zero']:
        names += a0_names(cfg)
    names += ['out_norm_w']
    return names


# ---------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------

def init_params(cfg, seed=0, dtype=torch.float64):
    """Random parameters for cfg. Any reasonable init is allowed by docs/math.md; the
    only constraints are those of docs/math.md §1.6 on A_0 (lq: ||A_0||_q = 1 per
    matrix; elastic: std >= 3*gamma so the memory does not start dead)."""
    cfg = normalize_config(cfg)
    g = torch.Generator().manual_seed(int(seed))
    d, H = cfg['d'], cfg['heads']

    def randn(*shape, std=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * std

    p = {}
    for n in ('W_Q', 'W_K', 'W_V', 'W_G', 'W_O'):
        p[n] = randn(d, d, std=1.0 / math.sqrt(d))
    for n in ('conv_q', 'conv_k', 'conv_v'):
        w = randn(d, CONV_K, std=0.3)
        w[:, -1] += 1.0   # keep the current token dominant so q/k/v stay informative
        p[n] = w
        if cfg['conv_bias']:
            p[n + '_b'] = randn(d, std=0.1)
    # Gate biases put the gates in a sensible working range at init.
    gate_bias = {'theta': 0.0, 'eta': 1.0, 'alpha': -2.0, 'delta': 0.0}
    for gname in GATES:
        if gate_learned(cfg, gname):
            p['gate_%s_w' % gname] = randn(d, H, std=1.0 / math.sqrt(d))
            p['gate_%s_b' % gname] = gate_bias[gname] + randn(H, std=0.1)
    if not cfg['fix_A0_zero']:
        for name, (o, i) in zip(a0_names(cfg), memory_shapes(cfg)):
            if cfg['retention'] == 'kl':
                a = randn(H, o, i, std=1.0)
            elif cfg['retention'] == 'elastic':
                a = randn(H, o, i, std=max(1.0 / math.sqrt(i), 3.0 * cfg['gamma']))
            else:
                a = randn(H, o, i, std=1.0 / math.sqrt(i))
            if cfg['retention'] == 'lq':
                qq = cfg['q']
                nrm = (a.abs() ** qq).sum(dim=(1, 2), keepdim=True) ** (1.0 / qq)
                a = a / nrm
            p[name] = a
    p['out_norm_w'] = 1.0 + randn(d, std=0.1)
    return {k: v.to(dtype) for k, v in p.items()}


# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------

def silu(z):
    return z * torch.sigmoid(z)


def gelu_tanh(z):
    # gelu, tanh form (docs/math.md §0)
    return 0.5 * z * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z ** 3)))


def norm2(z):
    # docs/math.md §1.1: z / sqrt(|z|^2 + 1e-6), over the last axis (one head)
    return z / torch.sqrt((z * z).sum(-1, keepdim=True) + NORM2_EPS)


def causal_conv(z, w, b=None):
    """Causal depthwise conv, docs/math.md §1.1.
    z: (B, T, d), w: (d, 4). out[t, c] = sum_j w[c, j] z[t-3+j, c], zero left pad."""
    B, T, d = z.shape
    zp = torch.cat([z.new_zeros(B, CONV_K - 1, d), z], dim=1)   # (B, T+3, d)
    out = 0
    for j in range(CONV_K):
        out = out + zp[:, j:j + T, :] * w[:, j]
    if b is not None:
        out = out + b
    return out


def layer_norm(z):
    # docs/math.md §1.3: no affine parameters, population variance
    mu = z.mean(-1, keepdim=True)
    var = ((z - mu) ** 2).mean(-1, keepdim=True)
    return (z - mu) / torch.sqrt(var + LN_EPS)


def matvec(W, x):
    """Memory weights act on columns: (W x)_i = sum_j W_ij x_j (docs/math.md §0).
    W: (..., out, in), x: (..., in) -> (..., out)."""
    return torch.matmul(W, x.unsqueeze(-1)).squeeze(-1)


def memory_apply(Ws, x, cfg):
    """M_W(x), docs/math.md §1.3. Ws: list of (B, H, out, in); x: (B, H, d_h)."""
    if cfg['memory'] == 'linear':
        return matvec(Ws[0], x)
    h = x
    for W in Ws[:-1]:
        h = gelu_tanh(matvec(W, h))
    z = matvec(Ws[-1], h)
    if cfg['layernorm']:
        z = layer_norm(z)
    if cfg['residual']:
        z = x + z
    return z


def attentional_bias(pred, v, delta, cfg, stats=None):
    """l(W; k, v) with pred = M_W(k) and e = pred - v, docs/math.md §1.4.
    pred, v: (B, H, d_h); delta: (B, H) or None. Returns (B, H)."""
    bias = cfg['bias']
    if bias == 'dot':
        return -(pred * v).sum(-1)
    e = pred - v
    if bias == 'l2':
        return 0.5 * (e * e).sum(-1)
    if bias == 'lp':
        return ((e * e + LP_EPS) ** (cfg['p'] / 2.0)).sum(-1)
    if bias == 'huber_mix':
        # The branch test carries no gradient (docs/math.md §1.4 warning).
        with torch.no_grad():
            enorm = torch.sqrt((e * e).sum(-1))
            inner = enorm <= delta
            if stats is not None:
                m = (enorm - delta).abs().min().item()
                stats['huber_margin'] = min(stats.get('huber_margin', math.inf), m)
                stats['huber_inner'] = stats.get('huber_inner', 0) + int(inner.sum())
                stats['huber_outer'] = stats.get('huber_outer', 0) + int((~inner).sum())
        quad = 0.5 * (e * e).sum(-1)
        lin = delta * torch.sqrt(e * e + HUBER_MIX_EPS).sum(-1)
        return torch.where(inner, quad, lin)
    if bias == 'huber':
        dl = cfg['huber_delta']
        a = e.abs()
        if stats is not None:
            m = (a - dl).abs().min().item()
            stats['huber_margin'] = min(stats.get('huber_margin', math.inf), m)
        per = torch.where(a <= dl, 0.5 * e * e, dl * (a - 0.5 * dl))
        return per.sum(-1)
    raise ValueError(bias)


def phi(A, cfg, stats=None):
    """Pre-weight -> weight map of the retention, docs/math.md §1.6. A: (B, H, out, in)."""
    r = cfg['retention']
    if r in ('none', 'l2'):
        return A
    if r == 'lq':
        qq = cfg['q']
        # ||A||_q^(q-2) = (sum |A|^q + eps)^((q-2)/q), one norm per (batch, head, matrix)
        s = (A.abs() ** qq).sum(dim=(-2, -1), keepdim=True) + LQ_EPS
        return A / s ** ((qq - 2.0) / qq)
    if r == 'kl':
        # c * softmax over each row's input axis (the last axis, W stored (out, in))
        return cfg['kl_c'] * torch.softmax(A, dim=-1)
    if r == 'elastic':
        gam = cfg['gamma']
        if stats is not None:
            m = (A.detach().abs() - gam).abs().min().item()
            stats['elastic_margin'] = min(stats.get('elastic_margin', math.inf), m)
            stats['elastic_dead'] = stats.get('elastic_dead', 0) + int((A.detach().abs() < gam).sum())
        return torch.sign(A) * torch.relu(A.abs() - gam)
    raise ValueError(r)


# ---------------------------------------------------------------------------
# The layer, in three stages
# ---------------------------------------------------------------------------

def project(params, x, cfg):
    """docs/math.md §1.1 and §1.2. Returns q, k, v of shape (B, T, H, d_h) and a dict
    of gates, each (B, T, H) (or None when the gate is not used)."""
    cfg = normalize_config(cfg)
    B, T, d = x.shape
    H = cfg['heads']
    dh = d // H

    def proj(W, conv, conv_b, normalise):
        z = silu(causal_conv(x @ W, conv, conv_b)).reshape(B, T, H, dh)
        return norm2(z) if normalise else z

    cb = cfg['conv_bias']
    q = proj(params['W_Q'], params['conv_q'], params.get('conv_q_b') if cb else None, True)
    k = proj(params['W_K'], params['conv_k'], params.get('conv_k_b') if cb else None, True)
    v = proj(params['W_V'], params['conv_v'], params.get('conv_v_b') if cb else None, False)

    gates = {}
    for g in GATES:
        if not gate_used(cfg, g):
            gates[g] = None
        elif g in cfg['fixed_gates']:
            # A fixed gate is the constant itself (docs/math.md §1.2).
            gates[g] = x.new_full((B, T, H), cfg['fixed_gates'][g])
        else:
            z = x @ params['gate_%s_w' % g] + params['gate_%s_b' % g]
            if g == 'theta':
                gates[g] = cfg['theta_max'] * torch.sigmoid(z)
            elif g == 'delta':
                gates[g] = torch.nn.functional.softplus(z)
            else:
                gates[g] = torch.sigmoid(z)
    return q, k, v, gates


def initial_state(params, cfg, B, dtype, device=None):
    """A_0 per weight matrix, expanded over the batch (shared, docs/math.md §1.3)."""
    H = cfg['heads']
    A = []
    for name, (o, i) in zip(a0_names(cfg), memory_shapes(cfg)):
        if cfg['fix_A0_zero']:
            A.append(torch.zeros(B, H, o, i, dtype=dtype, device=device))
        else:
            A.append(params[name].unsqueeze(0).expand(B, H, o, i))
    return A


def inner_grad(Ws, k, v, delta, cfg, stats=None):
    """u = dl(W; k, v)/dW for every weight matrix, taken at Ws (docs/math.md §1.4),
    for all (batch, head) memories at once: they are independent, so the
    gradient of the sum is the per-memory gradient."""
    # W must be a differentiable input of l. When the caller needs no outer
    # gradient (grad mode off, or W independent of the parameters) a detached
    # copy is used; tensors made under no_grad must not be differentiated.
    outer = torch.is_grad_enabled()
    Win = [W if (outer and W.requires_grad) else W.detach().requires_grad_(True) for W in Ws]
    with torch.enable_grad():
        loss = attentional_bias(memory_apply(Win, k, cfg), v, delta, cfg, stats).sum()
        # create_graph: the outer gradient flows through u (second order, docs/math.md §1.8);
        # first_order treats u as a constant.
        u = torch.autograd.grad(loss, Win, create_graph=not cfg['first_order'],
                                retain_graph=True)
    if cfg['first_order']:
        u = [t.detach() for t in u]
    return list(u)


def memory_scan(q, k, v, gates, A_init, cfg, stats=None):
    """docs/math.md §1.5-1.7, token by token. Returns y (B, T, H, d_h)."""
    B, T, H, dh = q.shape
    b = cfg['chunk']
    theta, eta, alpha, delta = gates['theta'], gates['eta'], gates['alpha'], gates['delta']
    A = list(A_init)
    S = [torch.zeros_like(a) for a in A] if cfg['algorithm'] == 'momentum' else None
    ys = []
    W_chunk = None
    for t in range(T):
        if t % b == 0:
            # docs/math.md §1.5: gradients of the whole chunk are taken at the weights at
            # the end of the previous chunk (W_0 for the first chunk).
            W_chunk = [phi(a, cfg, stats) for a in A]
        u = inner_grad(W_chunk, k[:, t], v[:, t],
                       None if delta is None else delta[:, t], cfg, stats)
        th = theta[:, t, :, None, None]
        for l in range(len(A)):
            step = -th * u[l]                                  # gd: Delta = -theta u
            if S is not None:                                  # momentum, docs/math.md §1.6
                S[l] = eta[:, t, :, None, None] * S[l] + step  # S_t = eta S_{t-1} - theta u
                step = S[l]
            if alpha is None:                                  # retention none: alpha == 0
                A[l] = A[l] + step
            else:                                              # A_t = (1-alpha) A_{t-1} + Delta
                A[l] = (1.0 - alpha[:, t, :, None, None]) * A[l] + step
        # docs/math.md §1.7: read with the weights after token t's write.
        W_t = [phi(a, cfg, stats) for a in A]
        ys.append(memory_apply(W_t, q[:, t], cfg))
    return torch.stack(ys, dim=1)


def output(params, x, y, cfg):
    """docs/math.md §1.7: o = (RMSNorm_per_head(y) * sigmoid(x W_G)) W_O."""
    B, T, H, dh = y.shape
    yn = y / torch.sqrt((y * y).mean(-1, keepdim=True) + RMS_EPS)
    yn = yn.reshape(B, T, H * dh) * params['out_norm_w']
    return (yn * torch.sigmoid(x @ params['W_G'])) @ params['W_O']


def layer_forward(params, x, cfg, stats=None):
    """One Miras layer, docs/math.md §1. x: (B, T, d) -> o: (B, T, d).
    stats (optional dict) collects distances to kinks (huber switch, elastic
    threshold) so tests can confirm they stay away from them (docs/math.md §4)."""
    cfg = normalize_config(cfg)
    assert x.shape[-1] == cfg['d']
    q, k, v, gates = project(params, x, cfg)
    A_init = initial_state(params, cfg, x.shape[0], x.dtype, x.device)
    y = memory_scan(q, k, v, gates, A_init, cfg, stats)
    return output(params, x, y, cfg)
