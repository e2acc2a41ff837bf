// Depthwise 1-D convolution over time, x (..., T, C) with w (C, K), and its
// weight gradient. Each channel has its own K taps; time is zero outside
// [0, T). Tap j reads x at t + d_j with
//   causal:      d_j = j − (K − 1)   (tap K − 1 is the current step)
//   anticausal:  d_j = (K − 1) − j   (the mirror image: the adjoint in x)
//
// Both kernels work on contiguous memory with a unit-stride channel loop
// that GCC vectorises (the file is built -O3, see the Makefile):
//   forward  per output row, its in-range taps four at a time, so the row is
//            stored once per four taps; the taps come from a (K, C) copy of w.
//   weight   per tap, blocks of 16 channels summed in double in registers all
//            along time, then added to a (K, C) double accumulator.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/ops.h"

namespace miras::raw {
namespace {

// Offset in time of tap j: x is read at t + tap_offset(j).
inline int64_t tap_offset(int64_t j, int64_t K, bool anticausal) { return anticausal ? K - 1 - j : j - (K - 1); }

void check_input(const Tensor& x, const char* op, const char* what) {
    if (x.dim() < 2)
        throw std::invalid_argument(std::string(op) + ": " + what + " " + shape_str(x.shape()) +
                                    " must have at least 2 dims (..., T, C)");
}

// o[c] = (init ? o[c] : 0) + Σ_{g<G} w[g][c] · x[g][c], c < n: G taps per
// pass, so each output is loaded and stored once per G taps, not per tap.
template <int G, class S> void taps(S* __restrict o, const S* const* w, const S* const* x, int64_t n, bool init) {
    const S* wr[G];
    const S* xr[G];
    for (int g = 0; g < G; ++g) wr[g] = w[g], xr[g] = x[g];
    if (init) {
        for (int64_t c = 0; c < n; ++c) {
            S a = o[c];
            for (int g = 0; g < G; ++g) a += wr[g][c] * xr[g][c];
            o[c] = a;
        }
    } else {
        for (int64_t c = 0; c < n; ++c) {
            S a = S(0);
            for (int g = 0; g < G; ++g) a += wr[g][c] * xr[g][c];
            o[c] = a;
        }
    }
}

// One output row from its m valid taps (zero if none), four at a time.
template <class S> void conv_row(S* o, const S* const* w, const S* const* x, int64_t m, int64_t n) {
    if (m == 0) {
        for (int64_t c = 0; c < n; ++c) o[c] = S(0);
        return;
    }
    int64_t j = 0;
    for (; j + 4 <= m; j += 4) taps<4>(o, w + j, x + j, n, j > 0);
    switch (m - j) {
        case 3: taps<3>(o, w + j, x + j, n, j > 0); break;
        case 2: taps<2>(o, w + j, x + j, n, j > 0); break;
        case 1: taps<1>(o, w + j, x + j, n, j > 0); break;
    }
}

// acc[c] += Σ_{t<m} g[t·n + c] · x[t·n + c] over a block of kBlock channels
// held in registers through the whole walk over time (c < kBlock).
constexpr int64_t kBlock = 16;
template <class S> void dot_block(double* __restrict acc, const S* g, const S* x, int64_t m, int64_t n) {
    double a[kBlock] = {};
    for (int64_t t = 0; t < m; ++t)
        for (int64_t c = 0; c < kBlock; ++c) a[c] += (double)g[t * n + c] * (double)x[t * n + c];
    for (int64_t c = 0; c < kBlock; ++c) acc[c] += a[c];
}
template <class S> void dot_tail(double* __restrict acc, const S* g, const S* x, int64_t m, int64_t n, int64_t width) {
    for (int64_t t = 0; t < m; ++t)
        for (int64_t c = 0; c < width; ++c) acc[c] += (double)g[t * n + c] * (double)x[t * n + c];
}

}  // namespace

Tensor depthwise_conv1d(const Tensor& x, const Tensor& w, bool anticausal) {
    const char* op = "depthwise_conv1d";
    check_input(x, op, "input");
    if (w.dim() != 2 || w.size(0) != x.size(-1) || w.size(1) < 1)
        throw std::invalid_argument(std::string(op) + ": input " + shape_str(x.shape()) + " and weight " +
                                    shape_str(w.shape()) + " do not fit (expected (..., T, C) and (C, K), K >= 1)");
    if (w.dtype() != x.dtype())
        throw std::invalid_argument(std::string(op) + ": input is " + dtype_name(x.dtype()) + " but weight is " +
                                    dtype_name(w.dtype()));
    const int64_t T = x.size(-2), C = x.size(-1), K = w.size(1);
    const int64_t lead = T * C > 0 ? x.numel() / (T * C) : 0;
    Tensor xc = contiguous(x);
    Tensor wt = contiguous(transpose(w, 0, 1));  // (K, C)
    Tensor out = Tensor::empty(x.shape(), x.dtype());
    dispatch(x.dtype(), [&]<class S>() {
        const S* xp = xc.data<S>();
        const S* wp = wt.data<S>();
        S* outp = out.data<S>();
        std::vector<const S*> wv((size_t)K), xv((size_t)K);  // the valid taps of one output row
        for (int64_t b = 0; b < lead; ++b) {
            const S* xb = xp + b * T * C;  // (T, C)
            S* ob = outp + b * T * C;
            for (int64_t t = 0; t < T; ++t) {
                int64_t m = 0;
                for (int64_t j = 0; j < K; ++j) {
                    int64_t s = t + tap_offset(j, K, anticausal);
                    if (s < 0 || s >= T) continue;  // zero padding
                    wv[(size_t)m] = wp + j * C, xv[(size_t)m] = xb + s * C, ++m;
                }
                conv_row(ob + t * C, wv.data(), xv.data(), m, C);
            }
        }
    });
    return out;
}

Tensor depthwise_conv1d_weight(const Tensor& x, const Tensor& g, int64_t K, bool anticausal) {
    const char* op = "depthwise_conv1d_weight";
    check_input(x, op, "input");
    if (g.shape() != x.shape())
        throw std::invalid_argument(std::string(op) + ": input " + shape_str(x.shape()) + " and gradient " +
                                    shape_str(g.shape()) + " must have the same shape");
    if (g.dtype() != x.dtype())
        throw std::invalid_argument(std::string(op) + ": input is " + dtype_name(x.dtype()) + " but gradient is " +
                                    dtype_name(g.dtype()));
    if (K < 1) throw std::invalid_argument(std::string(op) + ": kernel size K = " + std::to_string(K) + " must be >= 1");
    const int64_t T = x.size(-2), C = x.size(-1);
    const int64_t lead = T * C > 0 ? x.numel() / (T * C) : 0;
    Tensor xc = contiguous(x), gc = contiguous(g);
    // dw[c, j] = Σ_{lead, t} g[t, c] · x[t + d_j, c], summed in double as (K, C)
    // so the channel loop stays unit-stride; transposed to (C, K) at the end.
    std::vector<double> acc((size_t)(K * C), 0.0);
    Tensor out = Tensor::empty({C, K}, x.dtype());
    dispatch(x.dtype(), [&]<class S>() {
        const S* xp = xc.data<S>();
        const S* gp = gc.data<S>();
        for (int64_t b = 0; b < lead; ++b) {
            const S* xb = xp + b * T * C;  // (T, C)
            const S* gb = gp + b * T * C;
            for (int64_t j = 0; j < K; ++j) {
                // the steps t whose source t + d lies in [0, T)
                int64_t d = tap_offset(j, K, anticausal), t0 = std::max<int64_t>(0, -d), t1 = std::min(T, T - d);
                if (t1 <= t0) continue;
                const S* g0 = gb + t0 * C;
                const S* x0 = xb + (t0 + d) * C;
                double* a = acc.data() + j * C;
                int64_t c = 0;
                for (; c + kBlock <= C; c += kBlock) dot_block(a + c, g0 + c, x0 + c, t1 - t0, C);
                if (c < C) dot_tail(a + c, g0 + c, x0 + c, t1 - t0, C, C - c);
            }
        }
        S* o = out.data<S>();
        for (int64_t c = 0; c < C; ++c)
            for (int64_t j = 0; j < K; ++j) o[c * K + j] = (S)acc[(size_t)(j * C + c)];
    });
    return out;
}

}  // namespace miras::raw
