#pragma once
// Runtime element types. Kernels are written once as templates over the C++
// type and dispatched here, at run time, from the tensor's DType.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace miras {

enum class DType : uint8_t { f32, f64 };

inline const char* dtype_name(DType d) { return d == DType::f32 ? "f32" : "f64"; }
inline size_t dtype_size(DType d) { return d == DType::f32 ? 4 : 8; }

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }

// Calls f.template operator()<T>() with T = float or double.
// Usage: dispatch(dt, [&]<class T>() { ... });
template <class F> decltype(auto) dispatch(DType dt, F&& f) {
    if (dt == DType::f32) return f.template operator()<float>();
    return f.template operator()<double>();
}

// Devices: only the CPU today. Storage records its device so a second backend
// (CUDA) can be added behind the same kernel entry points.
enum class Device : uint8_t { cpu };

}  // namespace miras
