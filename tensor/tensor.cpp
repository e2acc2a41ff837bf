#include "tensor/tensor.h"

#include "tensor/allocator.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <new>
#include <sstream>
#include <stdexcept>

namespace miras {

Storage::Storage(size_t n, Device dev) : nbytes(n), device(dev) {
    // 64-byte aligned from 1 KiB (cache lines, AVX-512 loads), from a cache
    // of freed blocks (tensor/allocator.h); never a null pointer, even for 0 bytes.
    data = alloc::allocate(n);
}

Storage::~Storage() { alloc::release(data, nbytes); }

namespace {

// 1099511627776 -> "1 TiB (1099511627776 bytes)": readable and exact.
std::string byte_size_str(size_t bytes) {
    const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double x = (double)bytes;
    int u = 0;
    while (x >= 1024 && u < 6) x /= 1024, ++u;
    std::ostringstream s;
    s << std::setprecision(3) << x << " " << units[u];
    if (u > 0) s << " (" << bytes << " bytes)";
    return s.str();
}

}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype) {
    for (int64_t d : shape)
        if (d < 0) throw std::invalid_argument("empty: negative dimension in shape " + shape_str(shape));
    if (!shape_fits(shape) || (uint64_t)numel_of(shape) > SIZE_MAX / dtype_size(dtype))
        throw std::invalid_argument("empty: shape " + shape_str(shape) + " has more elements than memory can address");
    auto impl = std::make_shared<TensorImpl>();
    const size_t bytes = (size_t)numel_of(shape) * dtype_size(dtype);
    try {
        impl->storage = std::make_shared<Storage>(bytes);
    } catch (const std::bad_alloc&) {
        throw OutOfMemory("empty: out of memory allocating " + byte_size_str(bytes) + " for a tensor of shape " +
                          shape_str(shape) + " " + dtype_name(dtype));
    }
    impl->shape = shape;
    impl->strides = contiguous_strides(shape);
    impl->dtype = dtype;
    return Tensor(std::move(impl));
}

Tensor Tensor::view_of(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = base.impl().storage;
    impl->shape = std::move(shape);
    impl->strides = std::move(strides);
    impl->offset = offset;
    impl->dtype = base.dtype();
    return Tensor(std::move(impl));
}

TensorImpl& Tensor::impl() const {
    if (!impl_) throw std::logic_error("use of an undefined (empty) Tensor handle");
    return *impl_;
}

int64_t Tensor::size(int64_t d) const {
    if (dim() == 0) throw std::out_of_range("size: a 0-d tensor has no dim " + std::to_string(d));
    return shape()[wrap_dim(d, dim(), "size")];
}

bool Tensor::is_contiguous() const {
    int64_t expect = 1;
    const auto& sh = shape();
    const auto& st = strides();
    for (size_t i = sh.size(); i-- > 0;) {
        if (sh[i] != 1 && st[i] != expect) return false;
        expect *= sh[i];
    }
    return true;
}

void Tensor::check_dtype(DType want, const char* where) const {
    if (dtype() != want)
        throw std::invalid_argument(std::string(where) + ": tensor has dtype " + dtype_name(dtype()) +
                                    ", asked for " + dtype_name(want));
}

std::vector<double> Tensor::to_vector() const {
    std::vector<double> out((size_t)numel());
    dispatch(dtype(), [&]<class T>() {
        const T* base = static_cast<const T*>(impl().storage->data);
        const auto& sh = shape();
        const auto& st = strides();
        int64_t nd = dim();
        std::vector<int64_t> idx(nd, 0);
        for (size_t i = 0; i < out.size(); ++i) {
            int64_t off = offset();
            for (int64_t k = 0; k < nd; ++k) off += idx[k] * st[k];
            out[i] = (double)base[off];
            for (int64_t k = nd - 1; k >= 0; --k) {
                if (++idx[k] < sh[k]) break;
                idx[k] = 0;
            }
        }
    });
    return out;
}

double Tensor::item() const {
    if (numel() != 1)
        throw std::invalid_argument("item: tensor of shape " + shape_str(shape()) + " has " +
                                    std::to_string(numel()) + " elements, expected 1");
    return to_vector()[0];
}

std::string Tensor::str() const {
    if (!defined()) return "Tensor(undefined)";
    std::vector<double> v = to_vector();
    std::ostringstream os;
    os << std::setprecision(dtype() == DType::f32 ? 6 : 10);
    const Shape& sh = shape();
    int64_t nd = dim();
    os << "tensor(";
    if (v.size() > 1000) {
        // Large tensors: the first and last values only, as a summary.
        os << "[" << v[0] << ", " << v[1] << ", " << v[2] << ", ..., " << v[v.size() - 3] << ", "
           << v[v.size() - 2] << ", " << v.back() << "]";
    } else if (nd == 0) {
        os << v[0];
    } else {
        // Row-major walk; a bracket opens and closes with each dimension.
        std::vector<int64_t> idx(nd, 0);
        for (int64_t k = 0; k < nd; ++k) os << "[";
        for (size_t i = 0; i < v.size(); ++i) {
            os << v[i];
            int64_t k = nd - 1;
            int closed = 0;
            for (; k >= 0; --k) {
                if (++idx[k] < sh[k]) break;
                idx[k] = 0;
                ++closed;
            }
            if (k < 0) break;
            for (int c = 0; c < closed; ++c) os << "]";
            os << (closed ? ",\n" + std::string(7 + nd - closed, ' ') : ", ");
            for (int c = 0; c < closed; ++c) os << "[";
        }
        for (int64_t k = 0; k < nd; ++k) os << "]";
        if (v.empty()) os << "";
    }
    os << ", shape=" << shape_str(sh) << ", dtype=" << dtype_name(dtype()) << ")";
    return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace miras
