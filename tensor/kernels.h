#pragma once
// The innermost loops of the elementwise ops, of sum and of the depthwise
// convolution, compiled twice:
//
//   tensor/kernels_baseline.cpp   -O3 for the baseline x86-64 (SSE2)
//   tensor/kernels_avx2.cpp       -O3 -mavx2 -mfma (8 floats per instruction)
//
// and picked once, at the first call, from what the CPU supports (set
// MIRAS_KERNELS=baseline to force the baseline build, e.g. to compare;
// see choose_loops).
// The ops in tensor/elementwise.cpp and tensor/reduce.cpp do the shape work
// (broadcasting, the strided walk) and hand every contiguous or evenly
// strided run of n elements to one of these loops; tensor/conv.cpp checks
// shapes and hands over contiguous (T, C) slabs.
//
// Why two builds instead of one: the library is built for generic x86-64, and
// at -O2 GCC 12 leaves most of these loops scalar. Why not -march=native for
// everything: a build must run on any x86-64 machine it is copied to.
// The two kernel files include only tensor/op_kinds.h and the loop bodies
// (tensor/kernel_loops.h, tensor/conv_loops.h), all in a namespace of their
// own, so no inline function compiled for AVX2 can be picked by the linker
// for the baseline.
#include <cstdint>
#include <string>

#include "tensor/op_kinds.h"

namespace miras::kernels {

struct Loops {
    const char* isa;  // "avx2" or "baseline"
    // out[i·so] = op(x[i·sx]), i < n
    void (*unary_f32)(raw::Unary op, float* out, const float* x, int64_t n, int64_t so, int64_t sx);
    void (*unary_f64)(raw::Unary op, double* out, const double* x, int64_t n, int64_t so, int64_t sx);
    // out[i·so] = op(a[i·sa], b[i·sb]), i < n (a stride 0 is a broadcast scalar)
    void (*binary_f32)(raw::Binary op, float* out, const float* a, const float* b, int64_t n, int64_t so, int64_t sa,
                       int64_t sb);
    void (*binary_f64)(raw::Binary op, double* out, const double* a, const double* b, int64_t n, int64_t so,
                       int64_t sa, int64_t sb);
    // Σ_i x[i], accumulated in double (eight running sums, then added)
    double (*sum_f32)(const float* x, int64_t n);
    double (*sum_f64)(const double* x, int64_t n);
    // acc[j] += x[j], j < n: one row of a sum over leading dims
    void (*accumulate_f32)(double* acc, const float* x, int64_t n);
    void (*accumulate_f64)(double* acc, const double* x, int64_t n);
    // acc[i·so] += a[i·sa] · b[i·sb], in double; so = 0 is a dot product
    void (*mul_acc_f32)(double* acc, const float* a, const float* b, int64_t n, int64_t so, int64_t sa, int64_t sb);
    void (*mul_acc_f64)(double* acc, const double* a, const double* b, int64_t n, int64_t so, int64_t sa, int64_t sb);
    // out[i·so] = c[i·sc] + a[i·sa] · b[i·sb]
    void (*addcmul_f32)(float* out, const float* c, const float* a, const float* b, int64_t n, int64_t so, int64_t sc,
                        int64_t sa, int64_t sb);
    void (*addcmul_f64)(double* out, const double* c, const double* a, const double* b, int64_t n, int64_t so,
                        int64_t sc, int64_t sa, int64_t sb);
    // Depthwise convolution over time (tensor/conv.cpp) of n contiguous slabs
    // x (T, C) with taps wt (K, C): out[t, c] = Σ_j wt[j, c] · x[t + d_j, c],
    // zero outside [0, T); d_j = j − (K − 1), or (K − 1) − j if anticausal.
    // f32 sums in f32.
    void (*conv_f32)(float* out, const float* x, const float* wt, int64_t n, int64_t T, int64_t C, int64_t K,
                     bool anticausal);
    void (*conv_f64)(double* out, const double* x, const double* wt, int64_t n, int64_t T, int64_t C, int64_t K,
                     bool anticausal);
    // Its weight gradient: acc (K, C) += Σ_{slab, t} g[t, c] · x[t + d_j, c],
    // summed in double for both dtypes.
    void (*conv_weight_f32)(double* acc, const float* g, const float* x, int64_t n, int64_t T, int64_t C, int64_t K,
                            bool anticausal);
    void (*conv_weight_f64)(double* acc, const double* g, const double* x, int64_t n, int64_t T, int64_t C, int64_t K,
                            bool anticausal);
};

// The loops this process uses (AVX2 + FMA when the CPU has both).
const Loops& loops();
// Both builds, for tests that hold them to each other.
const Loops& baseline_loops();
const Loops* avx2_loops();  // nullptr if the CPU lacks AVX2 or FMA
// The build a value of MIRAS_KERNELS asks for: null, empty or "auto" the best
// the CPU runs, "baseline" or "avx2" that one. An unknown value, or "avx2" on
// a CPU without it: the best available, and `problem` says why (printed once).
const Loops& choose_loops(const char* env, std::string* problem);

// Typed access: unary<T>(L, ...) calls L.unary_f32 or L.unary_f64.
template <class T> void unary(const Loops& L, raw::Unary op, T* o, const T* x, int64_t n, int64_t so, int64_t sx) {
    if constexpr (sizeof(T) == 4) L.unary_f32(op, o, x, n, so, sx);
    else L.unary_f64(op, o, x, n, so, sx);
}
template <class T>
void binary(const Loops& L, raw::Binary op, T* o, const T* a, const T* b, int64_t n, int64_t so, int64_t sa, int64_t sb) {
    if constexpr (sizeof(T) == 4) L.binary_f32(op, o, a, b, n, so, sa, sb);
    else L.binary_f64(op, o, a, b, n, so, sa, sb);
}
template <class T> double sum(const Loops& L, const T* x, int64_t n) {
    if constexpr (sizeof(T) == 4) return L.sum_f32(x, n);
    else return L.sum_f64(x, n);
}
template <class T> void accumulate(const Loops& L, double* acc, const T* x, int64_t n) {
    if constexpr (sizeof(T) == 4) L.accumulate_f32(acc, x, n);
    else L.accumulate_f64(acc, x, n);
}

template <class T>
void mul_acc(const Loops& L, double* acc, const T* a, const T* b, int64_t n, int64_t so, int64_t sa, int64_t sb) {
    if constexpr (sizeof(T) == 4) L.mul_acc_f32(acc, a, b, n, so, sa, sb);
    else L.mul_acc_f64(acc, a, b, n, so, sa, sb);
}

template <class T>
void addcmul(const Loops& L, T* o, const T* c, const T* a, const T* b, int64_t n, int64_t so, int64_t sc, int64_t sa,
             int64_t sb) {
    if constexpr (sizeof(T) == 4) L.addcmul_f32(o, c, a, b, n, so, sc, sa, sb);
    else L.addcmul_f64(o, c, a, b, n, so, sc, sa, sb);
}

template <class T>
void conv(const Loops& L, T* out, const T* x, const T* wt, int64_t n, int64_t t, int64_t c, int64_t k,
          bool anticausal) {
    if constexpr (sizeof(T) == 4) L.conv_f32(out, x, wt, n, t, c, k, anticausal);
    else L.conv_f64(out, x, wt, n, t, c, k, anticausal);
}

template <class T>
void conv_weight(const Loops& L, double* acc, const T* g, const T* x, int64_t n, int64_t t, int64_t c, int64_t k,
                 bool anticausal) {
    if constexpr (sizeof(T) == 4) L.conv_weight_f32(acc, g, x, n, t, c, k, anticausal);
    else L.conv_weight_f64(acc, g, x, n, t, c, k, anticausal);
}

}  // namespace miras::kernels
