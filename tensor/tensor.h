#pragma once
// The tensor handle: a shared pointer to an impl that holds a view (shape,
// strides, offset, dtype) onto a Storage. Views share the Storage and its
// version counter. This layer knows nothing about gradients: the impl only
// carries an opaque slot (`autograd`) that the autograd layer fills in, as
// PyTorch's TensorImpl carries an AutogradMetaInterface.
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/shape.h"

namespace miras {

// A block of memory on one device. `version` counts in-place writes so the
// autograd layer can detect a saved tensor that was modified after saving.
struct Storage {
    void* data = nullptr;
    size_t nbytes = 0;
    Device device = Device::cpu;
    uint64_t version = 0;

    explicit Storage(size_t nbytes, Device dev = Device::cpu);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
};

// Thrown by Tensor::empty when the allocation fails: still a std::bad_alloc
// (so code that catches that keeps working), but its what() says how many
// bytes, for which shape and dtype, so a user can find the config key that
// asked for it.
class OutOfMemory : public std::bad_alloc {
public:
    explicit OutOfMemory(std::string msg) : msg_(std::move(msg)) {}
    const char* what() const noexcept override { return msg_.c_str(); }

private:
    std::string msg_;
};

// Filled by the autograd layer; opaque here.
struct AutogradMetaBase {
    virtual ~AutogradMetaBase() = default;
};

struct TensorImpl {
    std::shared_ptr<Storage> storage;
    Shape shape;
    Shape strides;       // in elements
    int64_t offset = 0;  // in elements
    DType dtype = DType::f32;
    std::unique_ptr<AutogradMetaBase> autograd;
};

class Tensor {
public:
    Tensor() = default;
    explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

    // A fresh, uninitialised, contiguous tensor.
    static Tensor empty(const Shape& shape, DType dtype = DType::f32);
    // A view onto `base`'s storage with new geometry (no autograd data).
    static Tensor view_of(const Tensor& base, Shape shape, Shape strides, int64_t offset);

    bool defined() const { return impl_ != nullptr; }
    const Shape& shape() const { return impl().shape; }
    const Shape& strides() const { return impl().strides; }
    int64_t offset() const { return impl().offset; }
    int64_t dim() const { return (int64_t)impl().shape.size(); }
    int64_t size(int64_t d) const;
    int64_t numel() const { return numel_of(impl().shape); }
    DType dtype() const { return impl().dtype; }
    Device device() const { return impl().storage->device; }
    bool is_contiguous() const;

    // Typed pointer to element [0, 0, ...] of this view (offset applied).
    template <class T> T* data() const {
        check_dtype(dtype_of<T>(), "data<T>()");
        return static_cast<T*>(impl().storage->data) + impl().offset;
    }
    // Value of a one-element tensor, as double.
    double item() const;
    // All elements in row-major order, converted to double (for tests and printing).
    std::vector<double> to_vector() const;
    std::string str() const;  // readable printing, like PyTorch's repr

    uint64_t version() const { return impl().storage->version; }
    void bump_version() const { ++impl().storage->version; }

    TensorImpl& impl() const;
    TensorImpl* impl_ptr() const { return impl_.get(); }
    const std::shared_ptr<TensorImpl>& impl_shared() const { return impl_; }
    bool same_storage(const Tensor& o) const { return impl().storage == o.impl().storage; }

private:
    void check_dtype(DType want, const char* where) const;
    std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace miras
