// The depthwise convolution's loops (tensor/conv.cpp), part of the kernel
// loops: included only by tensor/kernel_loops.h, so they are compiled twice
// like the rest (baseline, AVX2), into the same namespace, under the same
// rule (compiler builtins only, no library inline function).
//
// x is n slabs of (T, C), contiguous; each channel has K taps, taken from a
// (K, C) copy of the (C, K) weight so the channel loop is unit-stride. Tap j
// reads x at t + d_j, zero outside [0, T), with
//   causal:      d_j = j − (K − 1)   (tap K − 1 is the current step)
//   anticausal:  d_j = (K − 1) − j   (the mirror image: the adjoint in x)
// For any output step t the taps that land in [0, T) are one run of
// consecutive j, and their sources step by +1 (causal) or −1 (anticausal) in
// time as j grows.
#include <cstdint>

#ifndef MIRAS_KERNEL_ISA
#error "tensor/conv_loops.h is part of tensor/kernel_loops.h"
#endif

namespace miras::kernels::MIRAS_KERNEL_ISA {
namespace {

// Offset in time of tap j: x is read at t + conv_tap_offset(j).
inline int64_t conv_tap_offset(int64_t j, int64_t K, bool anticausal) { return anticausal ? K - 1 - j : j - (K - 1); }

// o[c] = (init ? o[c] : 0) + Σ_{g<G} w[g·C + c] · x[g·xs + c], c < C: G
// consecutive taps per pass, so each output is loaded and stored once per G
// taps, not per tap. xs = ±C, the step in x from one tap's row to the next.
// Not inlined: with its eight vectorised loops (G = 1..4, init or not)
// inlined, the row loop spilled its pointers to the stack, and the forward
// of x (8, 515, 128), K = 4 took about 7% longer.
template <int G, class S>
__attribute__((noinline)) void conv_taps(S* __restrict o, const S* w, const S* x, int64_t xs, int64_t C, bool init) {
    const S* wr[G];
    const S* xr[G];
    for (int g = 0; g < G; ++g) wr[g] = w + g * C, xr[g] = x + g * xs;
    if (init) {
        for (int64_t c = 0; c < C; ++c) {
            S a = o[c];
            for (int g = 0; g < G; ++g) a += wr[g][c] * xr[g][c];
            o[c] = a;
        }
    } else {
        for (int64_t c = 0; c < C; ++c) {
            S a = S(0);
            for (int g = 0; g < G; ++g) a += wr[g][c] * xr[g][c];
            o[c] = a;
        }
    }
}

// out = conv(x, w): per output row (C) its m valid taps, in order of j, four
// at a time (then 3, 2 or 1); a row with no valid tap is zero.
template <class S>
void conv_loop(S* out, const S* x, const S* wt, int64_t n, int64_t T, int64_t C, int64_t K, bool anticausal) {
    const int64_t xs = anticausal ? -C : C;
    for (int64_t b = 0; b < n; ++b) {
        const S* xb = x + b * T * C;  // (T, C)
        S* ob = out + b * T * C;
        for (int64_t t = 0; t < T; ++t) {
            S* o = ob + t * C;
            // The valid taps j0 .. j1 − 1, those whose source t + d_j is in
            // [0, T): causal j ≥ K − 1 − t and j < T + K − 1 − t, anticausal
            // j ≥ t + K − T and j < t + K. The rest read the zero padding.
            const int64_t lo = anticausal ? t + K - T : K - 1 - t, hi = anticausal ? t + K : T + K - 1 - t;
            const int64_t j0 = lo > 0 ? lo : 0, j1 = hi < K ? hi : K, m = j1 > j0 ? j1 - j0 : 0;
            if (m == 0) {
                for (int64_t c = 0; c < C; ++c) o[c] = S(0);
                continue;
            }
            const S* w0 = wt + j0 * C;
            const S* x0 = xb + (t + conv_tap_offset(j0, K, anticausal)) * C;
            int64_t i = 0;
            for (; i + 4 <= m; i += 4) conv_taps<4>(o, w0 + i * C, x0 + i * xs, xs, C, i > 0);
            switch (m - i) {
                case 3: conv_taps<3>(o, w0 + i * C, x0 + i * xs, xs, C, i > 0); break;
                case 2: conv_taps<2>(o, w0 + i * C, x0 + i * xs, xs, C, i > 0); break;
                case 1: conv_taps<1>(o, w0 + i * C, x0 + i * xs, xs, C, i > 0); break;
            }
        }
    }
}

// acc[c] += Σ_{t<m} g[t·C + c] · x[t·C + c] over a block of kConvBlock
// channels held in registers through the whole walk over time.
constexpr int64_t kConvBlock = 16;
template <class S> void conv_dot_block(double* __restrict acc, const S* g, const S* x, int64_t m, int64_t C) {
    double a[kConvBlock] = {};
    for (int64_t t = 0; t < m; ++t)
        for (int64_t c = 0; c < kConvBlock; ++c) a[c] += (double)g[t * C + c] * (double)x[t * C + c];
    for (int64_t c = 0; c < kConvBlock; ++c) acc[c] += a[c];
}
// The same for the last width < kConvBlock channels, straight into acc.
template <class S>
void conv_dot_tail(double* __restrict acc, const S* g, const S* x, int64_t m, int64_t C, int64_t width) {
    for (int64_t t = 0; t < m; ++t)
        for (int64_t c = 0; c < width; ++c) acc[c] += (double)g[t * C + c] * (double)x[t * C + c];
}

// acc (K, C) += the weight gradient, acc[j·C + c] += Σ_{b, t} g[t, c] ·
// x[t + d_j, c], in double for both dtypes: per slab, per tap, the steps t
// whose source lies in [0, T), in blocks of 16 channels.
template <class S>
void conv_weight_loop(double* acc, const S* g, const S* x, int64_t n, int64_t T, int64_t C, int64_t K,
                      bool anticausal) {
    for (int64_t b = 0; b < n; ++b) {
        const S* xb = x + b * T * C;  // (T, C)
        const S* gb = g + b * T * C;
        for (int64_t j = 0; j < K; ++j) {
            const int64_t d = conv_tap_offset(j, K, anticausal);
            const int64_t t0 = d < 0 ? -d : 0, t1 = d > 0 ? T - d : T;
            if (t1 <= t0) continue;
            const S* g0 = gb + t0 * C;
            const S* x0 = xb + (t0 + d) * C;
            double* a = acc + j * C;
            int64_t c = 0;
            for (; c + kConvBlock <= C; c += kConvBlock) conv_dot_block(a + c, g0 + c, x0 + c, t1 - t0, C);
            if (c < C) conv_dot_tail(a + c, g0 + c, x0 + c, t1 - t0, C, C - c);
        }
    }
}

}  // namespace
}  // namespace miras::kernels::MIRAS_KERNEL_ISA
