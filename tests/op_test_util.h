#pragma once
// Helpers shared by the op tests (test_tensor_ops, test_broadcast, test_grad_*):
// tensor literals, value comparison, the gradcheck + gradgradcheck wrapper,
// naive broadcasting index arithmetic and error-message predicates.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"

namespace miras::test {

inline const DType kDtypes[] = {DType::f32, DType::f64};

inline Tensor T(const std::vector<double>& v, const Shape& s, DType dt = DType::f64) { return from_vector(v, s, dt); }

// A leaf that requires grad.
inline Tensor leaf(const Tensor& t) {
    set_requires_grad(t);
    return t;
}

// f32 kernels compute in float: compare with a relative tolerance.
inline double tol_for(DType dt) { return dt == DType::f32 ? 2e-6 : 1e-12; }

inline bool close(double got, double want, double tol) {
    if (std::isnan(want)) return std::isnan(got);
    if (std::isinf(want)) return got == want;
    return std::abs(got - want) <= tol * std::max(1.0, std::abs(want));
}

// Shape and every value (row-major) of `got`, within a relative tolerance.
inline void check_values(const Tensor& got, const Shape& shape, const std::vector<double>& want, double tol = 1e-12) {
    BOOST_TEST_CONTEXT("got " << got.str()) {
        BOOST_TEST(got.shape() == shape, "shape " << shape_str(got.shape()) << " != " << shape_str(shape));
        std::vector<double> v = got.to_vector();
        BOOST_REQUIRE_EQUAL(v.size(), want.size());
        for (size_t i = 0; i < v.size(); ++i)
            BOOST_TEST(close(v[i], want[i], tol), "element " << i << ": " << v[i] << " != " << want[i]);
    }
}

// Same shape, same dtype, values equal within tol (0: bit-equal values).
inline void check_same(const Tensor& got, const Tensor& want, double tol = 0) {
    BOOST_TEST((got.dtype() == want.dtype()));
    check_values(got, want.shape(), want.to_vector(), tol);
}

// gradcheck and gradgradcheck of f at `inputs` (f64; the inputs that
// require grad are differentiated). Failures print the op and the worst
// mismatch.
inline void check_grads(const std::string& what, const TensorFn& f, const TensorList& inputs, bool second = true) {
    GradcheckResult r = gradcheck(f, inputs);
    BOOST_CHECK_MESSAGE(r.ok, what << ": " << r.message);
    if (!second) return;
    GradcheckResult r2 = gradgradcheck(f, inputs);
    BOOST_CHECK_MESSAGE(r2.ok, what << ": " << r2.message);
}

// A causal depthwise convolution over time written out as shifted copies:
// out[b, t, c] = Σ_j w[c, j] · z[b, t − K + 1 + j, c], zero before t = 0.
// z (B, T, C), w (C, K) -> (B, T, C).
inline Tensor conv_by_hand(const Tensor& z, const Tensor& w) {
    const int64_t B = z.size(0), T = z.size(1), C = z.size(2), K = w.size(1);
    Tensor out = zeros({B, T, C}, z.dtype());
    for (int64_t j = 0; j < K; ++j) {
        const int64_t shift = K - 1 - j;  // tap j reads the token `shift` steps back
        if (shift >= T) continue;
        Tensor shifted = shift == 0 ? z : cat({zeros({B, shift, C}, z.dtype()), narrow(z, 1, 0, T - shift)}, 1);
        out = add(out, mul(shifted, select(w, 1, j)));
    }
    return out;
}

// One-input, one-output function as a TensorFn.
inline TensorFn fn1(std::function<Tensor(const Tensor&)> f) {
    return [f](const TensorList& x) { return TensorList{f(x[0])}; };
}
inline TensorFn fn2(std::function<Tensor(const Tensor&, const Tensor&)> f) {
    return [f](const TensorList& x) { return TensorList{f(x[0], x[1])}; };
}

// f64 leaves of random values: normal, or uniform in [lo, hi).
inline Tensor rn(const Shape& s, Generator& g) { return leaf(randn(s, g, DType::f64)); }
inline Tensor ru(const Shape& s, Generator& g, double lo, double hi) { return leaf(rand(s, g, DType::f64, lo, hi)); }

// Row-major multi-index of flat position i in shape s.
inline std::vector<int64_t> unravel(int64_t i, const Shape& s) {
    std::vector<int64_t> idx(s.size());
    for (size_t d = s.size(); d-- > 0;) {
        idx[d] = s[d] ? i % s[d] : 0;
        i = s[d] ? i / s[d] : 0;
    }
    return idx;
}

// Flat row-major position in `in` of the element that NumPy broadcasting
// maps to multi-index `out_idx` of the (larger) output.
inline int64_t bcast_pos(const std::vector<int64_t>& out_idx, const Shape& in) {
    size_t lead = out_idx.size() - in.size();
    int64_t p = 0;
    for (size_t d = 0; d < in.size(); ++d) p = p * in[d] + (in[d] == 1 ? 0 : out_idx[lead + d]);
    return p;
}

// what() of the E that f throws, or "<no error>" (anything else propagates).
template <class E = std::exception> std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    return "<no error>";
}

// Largest |a_i − b_i| (same number of elements required).
inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
    BOOST_REQUIRE_EQUAL(a.size(), b.size());
    double m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}
inline double max_abs_diff(const Tensor& a, const Tensor& b) { return max_abs_diff(a.to_vector(), b.to_vector()); }

// Predicate for BOOST_CHECK_EXCEPTION: what() contains every piece.
inline auto has(std::vector<std::string> pieces) {
    return [pieces](const std::exception& e) {
        std::string m = e.what();
        for (const auto& p : pieces)
            if (m.find(p) == std::string::npos) {
                BOOST_TEST_MESSAGE("message '" << m << "' lacks '" << p << "'");
                return false;
            }
        return true;
    };
}

// A contiguous copy made without any op under test.
inline Tensor copy_of(const Tensor& x) { return from_vector(x.to_vector(), x.shape(), x.dtype()); }

// Non-contiguous (2, 3, 4) views with the values of `x` (a (2, 3, 4) tensor):
// transposed storage, narrowed storage with gaps and an offset, and an
// expanded (stride 0) one is built separately since it repeats values.
inline std::vector<Tensor> strided_copies(const Tensor& x) {
    std::vector<Tensor> r;
    {   // storage laid out (4, 3, 2), viewed back as (2, 3, 4)
        Tensor base = Tensor::empty({4, 3, 2}, x.dtype());
        Tensor v = raw::permute(base, {2, 1, 0});
        raw::copy_(v, x);
        r.push_back(v);
    }
    {   // a window of a (3, 5, 6) storage
        Tensor base = zeros({3, 5, 6}, x.dtype());
        Tensor v = raw::narrow(raw::narrow(raw::narrow(base, 0, 1, 2), 1, 2, 3), 2, 1, 4);
        raw::copy_(v, x);
        r.push_back(v);
    }
    return r;
}

}  // namespace miras::test
