#include "nn/rope.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace miras {

Tensor rope(const Tensor& x, const std::vector<int64_t>& positions, double base) {
    if (x.dim() < 2)
        throw std::invalid_argument("rope: x must be (..., T, d_h), got " + shape_str(x.shape()));
    const int64_t T = x.size(-2), dh = x.size(-1);
    if (dh % 2 != 0)
        throw std::invalid_argument("rope: head width d_h must be even, got x " + shape_str(x.shape()));
    if ((int64_t)positions.size() != T)
        throw std::invalid_argument("rope: " + std::to_string(positions.size()) + " positions for x " +
                                    shape_str(x.shape()) + " with T = " + std::to_string(T));
    if (!(base > 0)) throw std::invalid_argument("rope: base must be > 0, got " + std::to_string(base));
    const int64_t h = dh / 2;
    if (h == 0) return x;

    // cos/sin tables (T, h), computed in double and stored in x's dtype; they
    // are constants (no gradient), broadcast over the leading dims of x.
    std::vector<double> c((size_t)(T * h)), s((size_t)(T * h));
    for (int64_t i = 0; i < h; ++i) {
        const double theta = std::pow(base, -2.0 * (double)i / (double)dh);
        for (int64_t t = 0; t < T; ++t) {
            const double a = (double)positions[(size_t)t] * theta;
            c[(size_t)(t * h + i)] = std::cos(a);
            s[(size_t)(t * h + i)] = std::sin(a);
        }
    }
    Tensor C = from_vector(c, {T, h}, x.dtype());
    Tensor S = from_vector(s, {T, h}, x.dtype());

    Tensor x1 = narrow(x, -1, 0, h);  // (..., T, h)
    Tensor x2 = narrow(x, -1, h, h);  // (..., T, h)
    return cat({x1 * C - x2 * S, x2 * C + x1 * S}, -1);  // (..., T, d_h)
}

Tensor rope_from(const Tensor& x, int64_t start, double base) {
    if (x.dim() < 2)
        throw std::invalid_argument("rope_from: x must be (..., T, d_h), got " + shape_str(x.shape()));
    std::vector<int64_t> pos((size_t)x.size(-2));
    for (size_t t = 0; t < pos.size(); ++t) pos[t] = start + (int64_t)t;
    return rope(x, pos, base);
}

}  // namespace miras
