"""Chunk-parallel PyTorch version of one Miras layer (docs/math.md §1.8, second form).

Same inputs, parameters and config as miras_ref.layer_forward, and it must give
the same outputs and outer gradients (the selftest in compare.py holds it to
docs/math.md §4's 1e-9 in f64). It exists so the benchmark can time something closer
to what a real implementation does than the token-by-token loop.

Per chunk of n tokens (all inner gradients at W_{t'}, docs/math.md §1.5):
  1. Run the memory once on all n keys at W_{t'}. Every weight matrix W_l only
     touches a token through its pre-activation z_l = W_l h_{l-1}, so the
     per-token gradient is the rank-1 outer product u_{t,l} = g_{t,l} h_{t,l-1}^T
     with g_{t,l} = d l_t / d z_{t,l}. One reverse pass over the summed loss
     yields all g_{t,l} at once (tokens do not interact inside it).
  2. The recurrences of docs/math.md §1.6 are linear in A inside a chunk:
        A_i = P_i A_{t'} + Q_i S_{t'} + sum_{j<=i} K_ij (-theta_j) u_j
        S_i = Peta_i S_{t'} + sum_{j<=i} Leta_ij (-theta_j) u_j
     with P_i = prod_{m<=i} (1-alpha_m), Lkeep_ij = prod_{j<m<=i} (1-alpha_m),
     Leta_ij = prod_{j<m<=i} eta_m, Peta_i = prod_{m<=i} eta_m and
     K = Lkeep (gd) or Lkeep Leta (momentum), Q = 0 (gd) or Lkeep Peta.
  3. Retrieval (docs/math.md §1.7):
     - phi = identity (retention none / l2): the "dual form" of docs/math.md §1.8,
       W_{l,i} x = P_i A x + Q_i S x + sum_j K_ij (-theta_j)(h_j^T x) g_j,
       applied layer by layer; no per-token weights are formed.
     - other phi: the per-token pre-weights A_i are materialised and read
       through W_i = phi(A_i).
"""

import torch

import miras_ref as R


def _decay_matrices(a):
    """a: (B, H, n) per-token factors. Returns
    L (B, H, n, n) with L_ij = prod_{j<m<=i} a_m for j <= i, else 0, and
    P (B, H, n)    with P_i  = prod_{m<=i} a_m.
    Products are formed directly (no log/division) so a factor of 0 is exact."""
    n = a.shape[-1]
    idx = torch.arange(n, device=a.device)
    i = idx.view(n, 1, 1)
    j = idx.view(1, n, 1)
    m = idx.view(1, 1, n)
    inside = (m > j) & (m <= i)                          # (n, n, n)
    ones = torch.ones((), dtype=a.dtype, device=a.device)
    L = torch.where(inside, a[..., None, None, :], ones).prod(-1)
    L = L * (j[..., 0] <= i[..., 0]).to(a.dtype)         # strictly upper part is 0
    upto = (idx.view(1, n) <= idx.view(n, 1))            # (n, n): m <= i
    P = torch.where(upto, a[..., None, :], ones).prod(-1)
    return L, P


def _forward_with_preacts(Ws, X, cfg):
    """Memory on many tokens at shared weights. Ws: (B, H, out, in) each;
    X: (B, H, n, d_h). Returns output, pre-activations z_l, layer inputs h_{l-1}."""
    zs, hs = [], []
    h = X
    for li, W in enumerate(Ws):
        hs.append(h)
        z = h @ W.transpose(-1, -2)
        if li == 0 and not z.requires_grad:
            z.requires_grad_(True)   # nothing upstream needs grad; still need d l / d z
        zs.append(z)
        if li < len(Ws) - 1:
            h = R.gelu_tanh(z)
    out = zs[-1]
    if cfg['memory'] == 'mlp':
        if cfg['layernorm']:
            out = R.layer_norm(out)
        if cfg['residual']:
            out = X + out
    return out, zs, hs


def _read_dual(A, S, G, Hs, coef_K, P, Q, X, cfg):
    """Retrieval through the dual form (phi = identity). A, S, G, Hs: lists per
    weight matrix; coef_K: (B, H, n, n) = K_ij * (-theta_j); X: (B, H, n, d_h)."""
    def apply_layer(l, x):
        out = P[..., None] * (x @ A[l].transpose(-1, -2))
        if S is not None:
            out = out + Q[..., None] * (x @ S[l].transpose(-1, -2))
        return out + (coef_K * (x @ Hs[l].transpose(-1, -2))) @ G[l]

    h = X
    L = len(A)
    for l in range(L):
        z = apply_layer(l, h)
        h = R.gelu_tanh(z) if l < L - 1 else z
    out = h
    if cfg['memory'] == 'mlp':
        if cfg['layernorm']:
            out = R.layer_norm(out)
        if cfg['residual']:
            out = X + out
    return out


def memory_scan_chunked(q, k, v, gates, A_init, cfg):
    """Chunk-parallel counterpart of miras_ref.memory_scan. Returns y (B, T, H, d_h)."""
    B, T, H, dh = q.shape
    b = cfg['chunk']
    identity_phi = cfg['retention'] in ('none', 'l2')
    momentum = cfg['algorithm'] == 'momentum'
    # Work in (B, H, T, ...) so that each (batch, head) memory is a leading index.
    qh, kh, vh = (t.permute(0, 2, 1, 3) for t in (q, k, v))
    gh = {g: (None if t is None else t.permute(0, 2, 1)) for g, t in gates.items()}

    A = list(A_init)
    S = [torch.zeros_like(a) for a in A] if momentum else None
    ys = []
    for s in range(0, T, b):
        e = min(s + b, T)
        theta = gh['theta'][..., s:e]
        keep = (1.0 - gh['alpha'][..., s:e]) if gh['alpha'] is not None \
            else torch.ones_like(theta)

        # 1. per-token gradients at W_{t'} as rank-1 factors g h^T
        Wc = [R.phi(a, cfg) for a in A]
        keys = kh[..., s:e, :]
        if not torch.is_grad_enabled():   # no outer gradient wanted: plain constants
            Wc, keys = [w.detach() for w in Wc], keys.detach()
        with torch.enable_grad():
            pred, zs, hs = _forward_with_preacts(Wc, keys, cfg)
            delta = None if gh['delta'] is None else gh['delta'][..., s:e]
            loss = R.attentional_bias(pred, vh[..., s:e, :], delta, cfg).sum()
            G = list(torch.autograd.grad(loss, zs, create_graph=not cfg['first_order'],
                                         retain_graph=True))
        Hs = hs
        if cfg['first_order']:
            G = [g.detach() for g in G]
            Hs = [h.detach() for h in hs]

        # 2. decay coefficients of the two linear recurrences
        Lkeep, P = _decay_matrices(keep)
        if momentum:
            Leta, Peta = _decay_matrices(gh['eta'][..., s:e])
            K = Lkeep @ Leta
            Q = (Lkeep @ Peta.unsqueeze(-1)).squeeze(-1)
        else:
            K, Q, Leta, Peta = Lkeep, None, None, None
        coef_K = K * (-theta).unsqueeze(-2)                  # K_ij (-theta_j)

        # 3. retrieval for every token of the chunk
        if identity_phi:
            y = _read_dual(A, S, G, Hs, coef_K, P, Q, qh[..., s:e, :], cfg)
        else:
            Ai = []
            for l in range(len(A)):
                a_i = P[..., None, None] * A[l].unsqueeze(2)
                if momentum:
                    a_i = a_i + Q[..., None, None] * S[l].unsqueeze(2)
                a_i = a_i + torch.einsum('bhij,bhjo,bhjn->bhion', coef_K, G[l], Hs[l])
                Ai.append(a_i)                               # (B, H, n, out, in)
            Wi = [R.phi(a, cfg) for a in Ai]
            y = R.memory_apply(Wi, qh[..., s:e, :], cfg)
        ys.append(y)

        # state at the end of the chunk (last row of the recurrences)
        newA = []
        for l in range(len(A)):
            a_end = P[..., -1, None, None] * A[l]
            if momentum:
                a_end = a_end + Q[..., -1, None, None] * S[l]
            a_end = a_end + torch.einsum('bhj,bhjo,bhjn->bhon', coef_K[..., -1, :], G[l], Hs[l])
            newA.append(a_end)
        if momentum:
            coef_eta = Leta[..., -1, :] * (-theta)
            S = [Peta[..., -1, None, None] * S[l]
                 + torch.einsum('bhj,bhjo,bhjn->bhon', coef_eta, G[l], Hs[l])
                 for l in range(len(A))]
        A = newA
    return torch.cat(ys, dim=2).permute(0, 2, 1, 3)


def layer_forward_chunked(params, x, cfg):
    """One Miras layer, chunk-parallel. Same contract as miras_ref.layer_forward."""
    cfg = R.normalize_config(cfg)
    q, k, v, gates = R.project(params, x, cfg)
    A_init = R.initial_state(params, cfg, x.shape[0], x.dtype, x.device)
    y = memory_scan_chunked(q, k, v, gates, A_init, cfg)
    return R.output(params, x, y, cfg)
