#!/usr/bin/python3
"""A small state dict in PyTorch's layout and the logits PyTorch computes from
it, for tests/test_layout.cpp (numpy only, so it runs where torch does not).

The model is the `attn` Transformer of docs/math.md §2 with
  vocab 11, d 8, 2 heads, 2 layers, SwiGLU hidden 16, attention conv of
  4 taps, 2 persistent tokens, RMSNorm eps 1e-6, RoPE base 10000, an untied
  head (nn.Linear(8, 11, bias=False): a non-square weight), f64.
Every weight is drawn and stored as the PyTorch module it plays the part of
holds it, and the forward below is written with PyTorch's conventions:
  nn.Linear(i, o).weight (o, i)              y = x @ W.T
  nn.Conv1d(C, C, K, groups=C).weight (C,1,K) y[t, c] = sum_j W[c, 0, j] x[t-K+1+j, c]
                                              (padding K-1 on the left, i.e.
                                              F.conv1d(F.pad(x, (K-1, 0)), W, groups=C))
  nn.Embedding(n, d).weight (n, d)           E[token]
  RMSNorm weight (d,)                         x / sqrt(mean(x^2) + eps) * w
  persistent tokens, an nn.Parameter (N_p, d)
The tensors are named as our modules name them (blocks.<l>.mixer.W_Q, ...),
which is what a PyTorch port of the model would register.

Writes (both committed; rerun to regenerate, the draw is seeded):
  state_dict_ref.safetensors   the parameters, __metadata__ {"format": "pt"}
                               (what safetensors.torch.save_model writes)
  state_dict_io.safetensors    "tokens" (2, 6) I64 and "logits" (2, 6, 11) F64

  /usr/bin/python3 tests/torch_ref/state_dict_ref.py [--out-dir tests/torch_ref]
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

V, D, H, L, HIDDEN, K, NP = 11, 8, 2, 2, 16, 4, 2
EPS, BASE = 1e-6, 10000.0


def make_params(seed=0):
    rng = np.random.RandomState(seed)

    def w(*shape, std=0.4):
        return rng.normal(0.0, std, size=shape)

    p = {'embed.weight': w(V, D, std=1.0)}
    for l in range(L):
        b = 'blocks.%d.' % l
        p[b + 'norm1.weight'] = 1.0 + w(D, std=0.1)
        for n in ('W_Q', 'W_K', 'W_V', 'W_O'):
            p[b + 'mixer.' + n] = w(D, D)                    # nn.Linear(D, D).weight: (out, in)
        p[b + 'mixer.persistent'] = w(NP, D, std=1.0)
        for n in ('conv_q', 'conv_k', 'conv_v'):
            c = w(D, 1, K, std=0.3)                          # nn.Conv1d(D, D, K, groups=D).weight
            c[:, 0, K - 1] += 1.0
            p[b + 'mixer.' + n] = c
        p[b + 'norm2.weight'] = 1.0 + w(D, std=0.1)
        p[b + 'mlp.W_gate'] = w(HIDDEN, D)                   # nn.Linear(D, HIDDEN).weight
        p[b + 'mlp.W_up'] = w(HIDDEN, D)
        p[b + 'mlp.W_down'] = w(D, HIDDEN)                   # nn.Linear(HIDDEN, D).weight
    p['norm.weight'] = 1.0 + w(D, std=0.1)
    p['head.weight'] = w(V, D)                               # nn.Linear(D, V).weight: (11, 8)
    return p


def linear(x, W):
    return x @ W.T


def rms_norm(x, w):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + EPS) * w


def conv_causal(x, W):
    """x (B, T, C), W (C, 1, K): F.conv1d(F.pad(x, (K-1, 0)), W, groups=C) over time."""
    B, T, C = x.shape
    xp = np.concatenate([np.zeros((B, K - 1, C)), x], axis=1)
    return sum(W[:, 0, j] * xp[:, j:j + T, :] for j in range(K))


def rope(x, start):
    """x (B, H, T, dh), rotate-half, positions start .. start + T - 1."""
    dh = x.shape[-1]
    h = dh // 2
    theta = BASE ** (-2.0 * np.arange(h) / dh)
    a = (start + np.arange(x.shape[-2]))[:, None] * theta[None, :]
    c, s = np.cos(a), np.sin(a)
    x1, x2 = x[..., :h], x[..., h:]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)


def heads(x):
    B, T, _ = x.shape
    return x.reshape(B, T, H, D // H).transpose(0, 2, 1, 3)  # (B, H, T, dh)


def attention(x, p, b):
    B, T, _ = x.shape
    q = conv_causal(linear(x, p[b + 'W_Q']), p[b + 'conv_q'])
    k = conv_causal(linear(x, p[b + 'W_K']), p[b + 'conv_k'])
    v = conv_causal(linear(x, p[b + 'W_V']), p[b + 'conv_v'])
    P = p[b + 'persistent']                                  # not convolved
    k = np.concatenate([np.broadcast_to(linear(P, p[b + 'W_K']), (B, NP, D)), k], axis=1)
    v = np.concatenate([np.broadcast_to(linear(P, p[b + 'W_V']), (B, NP, D)), v], axis=1)
    qh, kh, vh = rope(heads(q), NP), rope(heads(k), 0), heads(v)
    s = qh @ kh.transpose(0, 1, 3, 2) / np.sqrt(D // H)      # (B, H, T, NP + T)
    mask = np.ones((T, NP + T), dtype=bool)
    mask[:, NP:] = np.tril(np.ones((T, T), dtype=bool))      # P always visible, then causal
    s = np.where(mask, s, -np.inf)
    a = np.exp(s - s.max(axis=-1, keepdims=True))
    a /= a.sum(axis=-1, keepdims=True)
    y = (a @ vh).transpose(0, 2, 1, 3).reshape(B, T, D)
    return linear(y, p[b + 'W_O'])


def forward(p, tokens):
    x = p['embed.weight'][tokens]                            # (B, T, D)
    for l in range(L):
        b = 'blocks.%d.' % l
        h = x + attention(rms_norm(x, p[b + 'norm1.weight']), p, b + 'mixer.')
        z = rms_norm(h, p[b + 'norm2.weight'])
        g = linear(z, p[b + 'mlp.W_gate'])
        x = h + linear(g / (1 + np.exp(-g)) * linear(z, p[b + 'mlp.W_up']), p[b + 'mlp.W_down'])
    return linear(rms_norm(x, p['norm.weight']), p['head.weight'])  # (B, T, V)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out-dir', default=os.path.dirname(os.path.abspath(__file__)))
    a = ap.parse_args()
    p = make_params(0)
    tokens = np.random.RandomState(1).randint(0, V, size=(2, 6)).astype(np.int64)
    logits = forward(p, tokens)
    st_io.write(os.path.join(a.out_dir, 'state_dict_ref.safetensors'), p, {'format': 'pt'})
    st_io.write(os.path.join(a.out_dir, 'state_dict_io.safetensors'), {'tokens': tokens, 'logits': logits})
    print('logits[0, 0, :4] =', logits[0, 0, :4])


if __name__ == '__main__':
    main()
