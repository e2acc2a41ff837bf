#!/usr/bin/python3
"""The model of state_dict_ref.py as a PyTorch nn.Module: PyTorch draws the
weights, `state_dict()` gives the tensors, PyTorch's own ops compute the
logits. tests/test_layout.cpp runs it (where /usr/bin/python3 has torch) and
checks that our model, loaded from that state dict as `miras forward --params`
loads it, reproduces the logits.

The module is the `attn` Transformer of docs/math.md §2 with the sizes of
state_dict_ref.py (vocab 11, d 8, 2 heads, 2 layers, SwiGLU hidden 16,
attention conv of 4 taps, 2 persistent tokens, RMSNorm eps 1e-6, untied
head), f64. Its parameters are registered under the names our modules use,
the way a port would: a projection is an nn.Parameter (out, in) applied with
F.linear (what nn.Linear does), a conv an nn.Parameter (C, 1, K) applied with
F.conv1d(groups=C) (what nn.Conv1d(C, C, K, groups=C) does), so
`state_dict()` has blocks.<l>.mixer.W_Q, ..., embed.weight, head.weight.

  /usr/bin/python3 tests/torch_ref/state_dict_torch.py --out-dir DIR [--seed S]

writes DIR/params.safetensors (the state dict, __metadata__ {"format": "pt"})
and DIR/io.safetensors ("tokens" (2, 6) I64, "logits" (2, 6, 11) F64), and
checks the logits against state_dict_ref.forward (numpy) on the same weights.
"""

import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
import state_dict_ref as ref  # noqa: E402

V, D, H, L, HIDDEN, K, NP = ref.V, ref.D, ref.H, ref.L, ref.HIDDEN, ref.K, ref.NP
EPS, BASE = ref.EPS, ref.BASE


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * self.weight


def rope(x, start):
    """x (B, H, T, dh), rotate-half, positions start .. start + T - 1."""
    dh = x.shape[-1]
    h = dh // 2
    theta = BASE ** (-2.0 * torch.arange(h, dtype=x.dtype) / dh)
    a = (start + torch.arange(x.shape[-2], dtype=x.dtype))[:, None] * theta[None, :]
    c, s = a.cos(), a.sin()
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        for n in ('W_Q', 'W_K', 'W_V', 'W_O'):
            setattr(self, n, nn.Parameter(0.4 * torch.randn(D, D)))      # (out, in)
        self.persistent = nn.Parameter(torch.randn(NP, D))
        for n in ('conv_q', 'conv_k', 'conv_v'):
            c = 0.3 * torch.randn(D, 1, K)                                 # (C, 1, K)
            c[:, 0, K - 1] += 1.0
            setattr(self, n, nn.Parameter(c))

    def conv(self, x, w):
        """Causal depthwise conv over time: x (B, T, C)."""
        return F.conv1d(F.pad(x.transpose(1, 2), (K - 1, 0)), w, groups=D).transpose(1, 2)

    def forward(self, x):
        B, T, _ = x.shape
        q = self.conv(F.linear(x, self.W_Q), self.conv_q)
        k = self.conv(F.linear(x, self.W_K), self.conv_k)
        v = self.conv(F.linear(x, self.W_V), self.conv_v)
        P = self.persistent.expand(B, NP, D)                               # not convolved
        k = torch.cat([F.linear(P, self.W_K), k], dim=1)
        v = torch.cat([F.linear(P, self.W_V), v], dim=1)

        def heads(z):
            return z.view(B, z.shape[1], H, D // H).transpose(1, 2)       # (B, H, T, dh)

        qh, kh, vh = rope(heads(q), NP), rope(heads(k), 0), heads(v)
        s = qh @ kh.transpose(-1, -2) / math.sqrt(D // H)                   # (B, H, T, NP + T)
        mask = torch.ones(T, NP + T, dtype=torch.bool)
        mask[:, NP:] = torch.ones(T, T, dtype=torch.bool).tril()           # P always visible, then causal
        a = s.masked_fill(~mask, float('-inf')).softmax(-1)
        y = (a @ vh).transpose(1, 2).reshape(B, T, D)
        return F.linear(y, self.W_O)


class SwiGLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.W_gate = nn.Parameter(0.4 * torch.randn(HIDDEN, D))
        self.W_up = nn.Parameter(0.4 * torch.randn(HIDDEN, D))
        self.W_down = nn.Parameter(0.4 * torch.randn(D, HIDDEN))

    def forward(self, z):
        return F.linear(F.silu(F.linear(z, self.W_gate)) * F.linear(z, self.W_up), self.W_down)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1, self.mixer, self.norm2, self.mlp = RMSNorm(D), Attention(), RMSNorm(D), SwiGLU()

    def forward(self, x):
        h = x + self.mixer(self.norm1(x))
        return h + self.mlp(self.norm2(h))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.blocks = nn.ModuleList([Block() for _ in range(L)])
        self.norm = RMSNorm(D)
        self.head = nn.Linear(D, V, bias=False)                            # weight (11, 8)

    def forward(self, tokens):
        x = self.embed(tokens)
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out-dir', required=True)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    model = Model().double()
    tokens = torch.randint(0, V, (2, 6), dtype=torch.int64)
    with torch.no_grad():
        logits = model(tokens)
    sd = {n: t.detach().numpy().copy() for n, t in model.state_dict().items()}
    # PyTorch's result is the reference; the numpy forward of state_dict_ref.py
    # must agree on the same weights, or one of the two is not the model.
    gap = np.abs(ref.forward(sd, tokens.numpy()) - logits.numpy()).max()
    if not gap <= 1e-10:
        sys.exit('state_dict_torch.py: PyTorch and state_dict_ref.forward differ by %g' % gap)
    os.makedirs(a.out_dir, exist_ok=True)
    st_io.write(os.path.join(a.out_dir, 'params.safetensors'), sd, {'format': 'pt'})
    st_io.write(os.path.join(a.out_dir, 'io.safetensors'), {'tokens': tokens.numpy(), 'logits': logits.numpy()})
    print('ok: %d tensors, logits[0, 0, :3] = %s' % (len(sd), logits[0, 0, :3].tolist()))


if __name__ == '__main__':
    main()
