// The bodies of the kernel loops (tensor/kernels.h), included by exactly two
// files, each defining MIRAS_KERNEL_ISA (baseline, avx2) and built with its
// own flags; the convolution's loops are in tensor/conv_loops.h, included
// below. Everything here lives in miras::kernels::MIRAS_KERNEL_ISA, and
// only compiler builtins are called (no library inline functions), so the
// two builds share no symbol.
//
// Maths. f64 uses the C library (exact to what gradcheck needs). f32 exp,
// tanh and what is built on them (sigmoid, SiLU, GELU and their derivatives)
// use the branch-free forms below, which GCC vectorises; the C library's
// expf/tanhf are scalar calls and were a fifth of a layer's time.
#include <cstdint>

#include "tensor/op_kinds.h"
#include "tensor/kernels.h"

#ifndef MIRAS_KERNEL_ISA
#error "define MIRAS_KERNEL_ISA before including tensor/kernel_loops.h"
#endif

#include "tensor/conv_loops.h"  // the depthwise convolution's loops, same namespace

namespace miras::kernels::MIRAS_KERNEL_ISA {
namespace {

// Forced: a loop vectorises only if the per-element maths is inlined, and
// GCC's heuristics stop inlining in the big switch functions below.
#define KINLINE inline __attribute__((always_inline))

// ---- f32 exp and tanh (Cephes' expf and tanhf, made branch-free)

// e^x, relative error < 3e-7 where the result is a normal f32
// (tests/test_kernels.cpp); subnormal results down to e^-103.9, then 0;
// inf above ln(FLT_MAX) = 88.72; NaN stays NaN.
KINLINE float vexp(float x) {
    const float hi = 88.72283935546875f, lo = -103.9f;
    float xc = x > hi ? hi : x;
    xc = xc < lo ? lo : xc;
    xc = xc == xc ? xc : 0.0f;  // NaN: any finite value; the result is replaced below
    // x = n ln2 + r, |r| ≤ ln2/2: n rounded by adding and removing 1.5·2^23
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f;  // ln2 in two parts, so r is exact
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    // y · 2^n as y · 2^n1 · 2^n2 with n1, n2 in [-75, 64]: both factors are
    // normal floats, and overflow or underflow happens in the products.
    int32_t ni = (int32_t)n, n1 = ni >> 1, n2 = ni - n1;
    y = y * __builtin_bit_cast(float, (n1 + 127) << 23);
    y = y * __builtin_bit_cast(float, (n2 + 127) << 23);
    y = x < lo ? 0.0f : y;
    y = x > hi ? __builtin_huge_valf() : y;
    return x == x ? y : x;
}

// tanh x: an odd polynomial for |x| < 0.625, 1 − 2/(e^{2|x|} + 1) beyond.
KINLINE float vtanh(float x) {
    float ax = __builtin_fabsf(x);
    float big = 1.0f - 2.0f / (vexp(2.0f * ax) + 1.0f);
    big = x < 0.0f ? -big : big;
    float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = p * z * x + x;
    return ax < 0.625f ? small : big;
}

KINLINE float m_exp(float x) { return vexp(x); }
KINLINE double m_exp(double x) { return __builtin_exp(x); }
KINLINE float m_tanh(float x) { return vtanh(x); }
KINLINE double m_tanh(double x) { return __builtin_tanh(x); }
KINLINE float m_abs(float x) { return __builtin_fabsf(x); }
KINLINE double m_abs(double x) { return __builtin_fabs(x); }
KINLINE float m_log(float x) { return __builtin_logf(x); }
KINLINE double m_log(double x) { return __builtin_log(x); }
KINLINE float m_sqrt(float x) { return __builtin_sqrtf(x); }
KINLINE double m_sqrt(double x) { return __builtin_sqrt(x); }
KINLINE float m_sin(float x) { return __builtin_sinf(x); }
KINLINE double m_sin(double x) { return __builtin_sin(x); }
KINLINE float m_cos(float x) { return __builtin_cosf(x); }
KINLINE double m_cos(double x) { return __builtin_cos(x); }
KINLINE float m_log1p(float x) { return __builtin_log1pf(x); }
KINLINE double m_log1p(double x) { return __builtin_log1p(x); }
KINLINE float m_expm1(float x) { return __builtin_expm1f(x); }
KINLINE double m_expm1(double x) { return __builtin_expm1(x); }
KINLINE float m_pow(float a, float b) { return __builtin_powf(a, b); }
KINLINE double m_pow(double a, double b) { return __builtin_pow(a, b); }

// ---- the activations and their derivatives

// Stable for any x and branch-free (one exp, a select).
template <class T> KINLINE T sigmoid_(T x) {
    T e = m_exp(-m_abs(x));
    T s = T(1) / (T(1) + e);
    return x >= T(0) ? s : e * s;
}
template <class T> KINLINE T silu_grad_(T x) {  // s (1 + x (1 − s))
    T s = sigmoid_(x);
    return s * (T(1) + x * (T(1) - s));
}
// GELU, tanh form: ½ x (1 + tanh(c (x + k x³))), c = √(2/π), k = 0.044715
template <class T> KINLINE T gelu_(T x) {
    const T c = T(0.7978845608028654), k = T(0.044715);
    return T(0.5) * x * (T(1) + m_tanh(c * x * (T(1) + k * x * x)));
}
template <class T> KINLINE T gelu_grad_(T x) {  // ½ (1 + t) + ½ x (1 − t²) c (1 + 3k x²)
    const T c = T(0.7978845608028654), k = T(0.044715);
    T x2 = x * x;
    T t = m_tanh(c * x * (T(1) + k * x2));
    return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * c * (T(1) + T(3) * k * x2);
}
template <class T> KINLINE T softplus_(T x) { return x > T(20) ? x : m_log1p(m_exp(x)); }

#define UNARY_CASES(X)                                         \
    X(neg, -x)                                                 \
    X(exp, m_exp(x))                                           \
    X(log, m_log(x))                                           \
    X(sqrt, m_sqrt(x))                                         \
    X(rsqrt, T(1) / m_sqrt(x))                                 \
    X(abs, m_abs(x))                                           \
    X(sign, T((x > T(0)) - (x < T(0))))                        \
    X(tanh, m_tanh(x))                                         \
    X(sigmoid, sigmoid_(x))                                    \
    X(silu, x * sigmoid_(x))                                   \
    X(gelu, gelu_(x))                                          \
    X(softplus, softplus_(x))                                  \
    X(relu, x > T(0) ? x : T(0))                               \
    X(square, x * x)                                           \
    X(reciprocal, T(1) / x)                                    \
    X(sin, m_sin(x))                                           \
    X(cos, m_cos(x))                                           \
    X(log1p, m_log1p(x))                                       \
    X(expm1, m_expm1(x))                                       \
    X(step, x > T(0) ? T(1) : T(0))

#define BINARY_CASES(X)                     \
    X(add, a + b)                           \
    X(sub, a - b)                           \
    X(mul, a * b)                           \
    X(div, a / b)                           \
    X(pow, m_pow(a, b))                     \
    X(maximum, a > b || a != a ? a : b)     \
    X(minimum, a < b || a != a ? a : b)     \
    X(eq, T(a == b))                        \
    X(ne, T(a != b))                        \
    X(lt, T(a < b))                         \
    X(le, T(a <= b))                        \
    X(gt, T(a > b))                         \
    X(ge, T(a >= b))                        \
    X(sigmoid_backward, b * a * (T(1) - a)) \
    X(tanh_backward, b * (T(1) - a * a))    \
    X(silu_backward, b * silu_grad_(a))     \
    X(gelu_backward, b * gelu_grad_(a))

#define DEFINE_UNARY(name, expr) \
    struct U_##name { template <class T> static KINLINE T f(T x) { return expr; } };
UNARY_CASES(DEFINE_UNARY)
#undef DEFINE_UNARY
#define DEFINE_BINARY(name, expr) \
    struct B_##name { template <class T> static KINLINE T f(T a, T b) { return expr; } };
BINARY_CASES(DEFINE_BINARY)
#undef DEFINE_BINARY

// ---- loops. The output of a contiguous run is __restrict: an op writes a
// fresh tensor, or (in-place ops) the very elements it reads, which is safe
// for a loop that reads element i before writing element i.

template <class Op, class T> void unary_loop(T* o, const T* x, int64_t n, int64_t so, int64_t sx) {
    if (so == 1 && sx == 1) {
        T* __restrict oo = o;
        for (int64_t i = 0; i < n; ++i) oo[i] = Op::f(x[i]);
        return;
    }
    for (int64_t i = 0; i < n; ++i) o[i * so] = Op::f(x[i * sx]);
}

template <class Op, class T>
void binary_loop(T* o, const T* a, const T* b, int64_t n, int64_t so, int64_t sa, int64_t sb) {
    if (n <= 0) return;  // the scalar paths read a[0] or b[0]
    T* __restrict oo = o;
    if (so == 1 && sa == 1 && sb == 1) {
        for (int64_t i = 0; i < n; ++i) oo[i] = Op::f(a[i], b[i]);
    } else if (so == 1 && sa == 1 && sb == 0) {
        const T s = b[0];
        for (int64_t i = 0; i < n; ++i) oo[i] = Op::f(a[i], s);
    } else if (so == 1 && sa == 0 && sb == 1) {
        const T s = a[0];
        for (int64_t i = 0; i < n; ++i) oo[i] = Op::f(s, b[i]);
    } else {
        for (int64_t i = 0; i < n; ++i) o[i * so] = Op::f(a[i * sa], b[i * sb]);
    }
}

template <class T> void unary_any(raw::Unary op, T* o, const T* x, int64_t n, int64_t so, int64_t sx) {
    switch (op) {
#define UCASE(name, expr) case raw::Unary::name: unary_loop<U_##name>(o, x, n, so, sx); return;
        UNARY_CASES(UCASE)
#undef UCASE
    }
}

template <class T>
void binary_any(raw::Binary op, T* o, const T* a, const T* b, int64_t n, int64_t so, int64_t sa, int64_t sb) {
    switch (op) {
#define BCASE(name, expr) case raw::Binary::name: binary_loop<B_##name>(o, a, b, n, so, sa, sb); return;
        BINARY_CASES(BCASE)
#undef BCASE
    }
}

// Eight running sums: a plain `acc += x[i]` is a chain the compiler may not
// reorder (that would change the rounding), so it stays scalar; eight
// independent sums are eight lanes.
template <class T> double sum_loop(const T* x, int64_t n) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; ++j) acc[j] += (double)x[i + j];
    double s = 0;
    for (; i < n; ++i) s += (double)x[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + s;
}

template <class T> void accumulate_loop(double* __restrict acc, const T* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) acc[i] += (double)x[i];
}

// acc[i·so] += a[i·sa] b[i·sb]: the backward of a broadcast multiply,
// sum_to(g ⊙ b), without the product tensor. so = 0 reduces the whole run
// (eight lanes, as in sum_loop).
template <class T>
void mul_acc_loop(double* acc, const T* a, const T* b, int64_t n, int64_t so, int64_t sa, int64_t sb) {
    if (n <= 0) return;
    if (so == 0) {
        double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t i = 0;
        if (sa == 1 && sb == 1) {
            for (; i + 8 <= n; i += 8)
                for (int j = 0; j < 8; ++j) l[j] += (double)a[i + j] * (double)b[i + j];
        }
        double s = 0;
        for (; i < n; ++i) s += (double)a[i * sa] * (double)b[i * sb];
        acc[0] += ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])) + s;
        return;
    }
    double* __restrict o = acc;
    if (so == 1 && sa == 1 && sb == 1) {
        for (int64_t i = 0; i < n; ++i) o[i] += (double)a[i] * (double)b[i];
    } else if (so == 1 && sa == 1 && sb == 0) {
        const double s = (double)b[0];
        for (int64_t i = 0; i < n; ++i) o[i] += (double)a[i] * s;
    } else if (so == 1 && sa == 0 && sb == 1) {
        const double s = (double)a[0];
        for (int64_t i = 0; i < n; ++i) o[i] += s * (double)b[i];
    } else {
        for (int64_t i = 0; i < n; ++i) o[i * so] += (double)a[i * sa] * (double)b[i * sb];
    }
}

// out = c + a ⊙ b in one pass; a or b is often one scalar per run (a
// per-matrix coefficient times a weight matrix, in the chunked scan).
template <class T>
void addcmul_loop(T* o, const T* c, const T* a, const T* b, int64_t n, int64_t so, int64_t sc, int64_t sa, int64_t sb) {
    if (n <= 0) return;  // the scalar paths read a[0] or b[0]
    T* __restrict oo = o;
    if (so == 1 && sc == 1 && sa == 1 && sb == 1) {
        for (int64_t i = 0; i < n; ++i) oo[i] = c[i] + a[i] * b[i];
    } else if (so == 1 && sc == 1 && sa == 0 && sb == 1) {
        const T s = a[0];
        for (int64_t i = 0; i < n; ++i) oo[i] = c[i] + s * b[i];
    } else if (so == 1 && sc == 1 && sa == 1 && sb == 0) {
        const T s = b[0];
        for (int64_t i = 0; i < n; ++i) oo[i] = c[i] + a[i] * s;
    } else {
        for (int64_t i = 0; i < n; ++i) o[i * so] = c[i * sc] + a[i * sa] * b[i * sb];
    }
}

#undef KINLINE
}  // namespace

Loops make_loops() {
#define MIRAS_STR2(x) #x
#define MIRAS_STR(x) MIRAS_STR2(x)
    return Loops{MIRAS_STR(MIRAS_KERNEL_ISA),
                 &unary_any<float>,     &unary_any<double>,     &binary_any<float>,      &binary_any<double>,
                 &sum_loop<float>,      &sum_loop<double>,      &accumulate_loop<float>, &accumulate_loop<double>,
                 &mul_acc_loop<float>,  &mul_acc_loop<double>,  &addcmul_loop<float>,    &addcmul_loop<double>,
                 &conv_loop<float>,     &conv_loop<double>,     &conv_weight_loop<float>, &conv_weight_loop<double>};
#undef MIRAS_STR
#undef MIRAS_STR2
}

}  // namespace miras::kernels::MIRAS_KERNEL_ISA
