#pragma once
// Shapes, strides and broadcasting rules (NumPy semantics).
//
// Shape is a small vector of int64_t: up to kInline dims live inside the
// object, more go to the heap. Every tensor and view holds two of them
// (shape, strides), and most ops build a few more, so with std::vector they
// were a large share of an op's heap allocations (docs/performance.md).
// It converts to and from std::vector<int64_t> and has the subset of
// std::vector's interface the library uses.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <string>
#include <vector>

namespace miras {

class Shape {
public:
    using value_type = int64_t;
    using size_type = size_t;
    using difference_type = std::ptrdiff_t;
    using reference = int64_t&;
    using const_reference = const int64_t&;
    using pointer = int64_t*;
    using const_pointer = const int64_t*;
    using iterator = int64_t*;
    using const_iterator = const int64_t*;
    using reverse_iterator = std::reverse_iterator<iterator>;
    using const_reverse_iterator = std::reverse_iterator<const_iterator>;
    static constexpr size_t kInline = 6;

    Shape() = default;
    Shape(std::initializer_list<int64_t> l) { assign(l.begin(), l.end()); }
    explicit Shape(size_t n, int64_t v = 0) { assign(n, v); }
    template <class It, class = typename std::iterator_traits<It>::iterator_category>
    Shape(It first, It last) { assign(first, last); }
    Shape(const std::vector<int64_t>& v) { assign(v.begin(), v.end()); }  // NOLINT: implicit on purpose
    Shape(const Shape& o) { assign(o.begin(), o.end()); }
    Shape(Shape&& o) noexcept { take(o); }
    Shape& operator=(const Shape& o) {
        if (this != &o) assign(o.begin(), o.end());
        return *this;
    }
    Shape& operator=(Shape&& o) noexcept {
        if (this != &o) {
            release();
            take(o);
        }
        return *this;
    }
    Shape& operator=(std::initializer_list<int64_t> l) {
        assign(l.begin(), l.end());
        return *this;
    }
    ~Shape() { release(); }
    operator std::vector<int64_t>() const { return std::vector<int64_t>(begin(), end()); }  // NOLINT

    size_t size() const { return n_; }
    bool empty() const { return n_ == 0; }
    int64_t* data() { return p_; }
    const int64_t* data() const { return p_; }
    iterator begin() { return p_; }
    iterator end() { return p_ + n_; }
    const_iterator begin() const { return p_; }
    const_iterator end() const { return p_ + n_; }
    const_iterator cbegin() const { return p_; }
    const_iterator cend() const { return p_ + n_; }
    reverse_iterator rbegin() { return reverse_iterator(end()); }
    reverse_iterator rend() { return reverse_iterator(begin()); }
    const_reverse_iterator rbegin() const { return const_reverse_iterator(end()); }
    const_reverse_iterator rend() const { return const_reverse_iterator(begin()); }
    int64_t& operator[](size_t i) { return p_[i]; }
    const int64_t& operator[](size_t i) const { return p_[i]; }
    int64_t& front() { return p_[0]; }
    const int64_t& front() const { return p_[0]; }
    int64_t& back() { return p_[n_ - 1]; }
    const int64_t& back() const { return p_[n_ - 1]; }

    void reserve(size_t c) {
        if (c <= cap_) return;
        int64_t* q = new int64_t[c];
        std::copy(p_, p_ + n_, q);
        if (p_ != buf_) delete[] p_;
        p_ = q;
        cap_ = c;
    }
    void clear() { n_ = 0; }
    void push_back(int64_t v) {
        grow_for(1);
        p_[n_++] = v;
    }
    int64_t& emplace_back(int64_t v) {
        push_back(v);
        return back();
    }
    void pop_back() { --n_; }
    void resize(size_t n, int64_t v = 0) {
        reserve(n);
        for (size_t i = n_; i < n; ++i) p_[i] = v;
        n_ = n;
    }
    void assign(size_t n, int64_t v) {
        n_ = 0;
        resize(n, v);
    }
    template <class It> void assign(It first, It last) {
        const size_t n = (size_t)std::distance(first, last);
        reserve(n);
        std::copy(first, last, p_);  // first..last never points into *this here
        n_ = n;
    }
    iterator insert(const_iterator pos, int64_t v) { return insert(pos, (size_t)1, v); }
    iterator insert(const_iterator pos, size_t count, int64_t v) {
        const size_t i = (size_t)(pos - p_);
        grow_for(count);
        std::copy_backward(p_ + i, p_ + n_, p_ + n_ + count);
        std::fill(p_ + i, p_ + i + count, v);
        n_ += count;
        return p_ + i;
    }
    template <class It, class = typename std::iterator_traits<It>::iterator_category>
    iterator insert(const_iterator pos, It first, It last) {
        const std::vector<int64_t> tmp(first, last);  // the range may alias *this
        const size_t i = (size_t)(pos - p_), count = tmp.size();
        grow_for(count);
        std::copy_backward(p_ + i, p_ + n_, p_ + n_ + count);
        std::copy(tmp.begin(), tmp.end(), p_ + i);
        n_ += count;
        return p_ + i;
    }
    iterator insert(const_iterator pos, std::initializer_list<int64_t> l) { return insert(pos, l.begin(), l.end()); }
    iterator erase(const_iterator pos) { return erase(pos, pos + 1); }
    iterator erase(const_iterator first, const_iterator last) {
        const size_t i = (size_t)(first - p_), j = (size_t)(last - p_);
        std::copy(p_ + j, p_ + n_, p_ + i);
        n_ -= j - i;
        return p_ + i;
    }

    friend bool operator==(const Shape& a, const Shape& b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }
    friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }
    friend bool operator<(const Shape& a, const Shape& b) {
        return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
    }

private:
    // Room for `more` elements: doubles the capacity when it runs out, so a
    // shape of up to kInline dims never leaves the object.
    void grow_for(size_t more) {
        if (n_ + more > cap_) reserve(std::max(n_ + more, cap_ * 2));
    }
    void release() {
        if (p_ != buf_) delete[] p_;
        p_ = buf_;
        cap_ = kInline;
        n_ = 0;
    }
    void take(Shape& o) {  // *this is empty and inline
        if (o.p_ == o.buf_) {
            std::copy(o.buf_, o.buf_ + o.n_, buf_);
            p_ = buf_;
            cap_ = kInline;
        } else {
            p_ = o.p_;
            cap_ = o.cap_;
            o.p_ = o.buf_;
            o.cap_ = kInline;
        }
        n_ = o.n_;
        o.n_ = 0;
    }

    int64_t buf_[kInline];
    int64_t* p_ = buf_;
    size_t n_ = 0, cap_ = kInline;
};

int64_t numel_of(const Shape& s);
// False if a dim is negative or the product of the non-zero dims overflows
// int64 (then numel_of and contiguous_strides would overflow); every shape a
// tensor is created with passes this (Tensor::empty, IndexTensor).
bool shape_fits(const Shape& s);
Shape contiguous_strides(const Shape& s);
std::string shape_str(const Shape& s);  // "(2, 3)"
// NumPy broadcast of two shapes; throws naming `op` and both shapes if they do not fit.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Wraps a possibly negative dim into [0, ndim); throws naming `op` if out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

}  // namespace miras
