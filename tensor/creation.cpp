// Creation of leaf tensors: constants, ranges, data and seeded random numbers.
#include <cmath>
#include <stdexcept>

#include "tensor/ops.h"

namespace miras {

Tensor full(const Shape& s, double value, DType dt) {
    Tensor t = Tensor::empty(s, dt);
    raw::fill_(t, value);
    return t;
}
Tensor zeros(const Shape& s, DType dt) { return full(s, 0.0, dt); }
Tensor ones(const Shape& s, DType dt) { return full(s, 1.0, dt); }
Tensor scalar_tensor(double value, DType dt) { return full({}, value, dt); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }

Tensor arange(double start, double end, double step, DType dt) {
    if (step == 0 || !std::isfinite(start) || !std::isfinite(end) || !std::isfinite(step))
        throw std::invalid_argument("arange: step must be non-zero and bounds finite");
    int64_t n = (int64_t)std::ceil((end - start) / step);
    if (n < 0) n = 0;
    Tensor t = Tensor::empty({n}, dt);
    dispatch(dt, [&]<class T>() {
        T* p = t.data<T>();
        for (int64_t i = 0; i < n; ++i) p[i] = (T)(start + (double)i * step);
    });
    return t;
}

Tensor from_vector(const std::vector<double>& values, const Shape& s, DType dt) {
    if ((int64_t)values.size() != numel_of(s))
        throw std::invalid_argument("from_vector: " + std::to_string(values.size()) + " values for shape " +
                                    shape_str(s) + " (" + std::to_string(numel_of(s)) + " elements)");
    Tensor t = Tensor::empty(s, dt);
    dispatch(dt, [&]<class T>() {
        T* p = t.data<T>();
        for (size_t i = 0; i < values.size(); ++i) p[i] = (T)values[i];
    });
    return t;
}

// Values are drawn in f64 and rounded, so f32 and f64 tensors from the same
// seed hold the same numbers up to rounding.
Tensor randn(const Shape& s, Generator& g, DType dt, double mean, double std) {
    Tensor t = Tensor::empty(s, dt);
    dispatch(dt, [&]<class T>() {
        T* p = t.data<T>();
        for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = (T)(mean + std * g.normal());
    });
    return t;
}

Tensor rand(const Shape& s, Generator& g, DType dt, double lo, double hi) {
    Tensor t = Tensor::empty(s, dt);
    dispatch(dt, [&]<class T>() {
        T* p = t.data<T>();
        for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = (T)(lo + (hi - lo) * g.uniform());
    });
    return t;
}

}  // namespace miras
