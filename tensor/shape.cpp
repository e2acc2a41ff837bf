#include "tensor/shape.h"

#include <sstream>
#include <stdexcept>

namespace miras {

int64_t numel_of(const Shape& s) {
    int64_t n = 1;
    for (int64_t d : s) n *= d;
    return n;
}

bool shape_fits(const Shape& s) {
    int64_t n = 1;
    for (int64_t d : s)
        if (d < 0 || (d != 0 && __builtin_mul_overflow(n, d, &n))) return false;
    return true;
}

Shape contiguous_strides(const Shape& s) {
    Shape st(s.size());
    int64_t acc = 1;
    for (size_t i = s.size(); i-- > 0;) {
        st[i] = acc;
        acc *= s[i];
    }
    return st;
}

std::string shape_str(const Shape& s) {
    std::ostringstream os;
    os << "(";
    for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
    if (s.size() == 1) os << ",";
    os << ")";
    return os.str();
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
    size_t n = std::max(a.size(), b.size());
    Shape out(n);
    for (size_t i = 0; i < n; ++i) {
        int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
        int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
        if (da != db && da != 1 && db != 1)
            throw std::invalid_argument(std::string(op) + ": shapes " + shape_str(a) + " and " +
                                        shape_str(b) + " cannot be broadcast together");
        out[i] = da == 1 ? db : da;
    }
    return out;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
    int64_t n = ndim == 0 ? 1 : ndim;
    if (dim < -n || dim >= n)
        throw std::out_of_range(std::string(op) + ": dim " + std::to_string(dim) +
                                " out of range for a tensor with " + std::to_string(ndim) + " dims");
    return dim < 0 ? dim + n : dim;
}

}  // namespace miras
