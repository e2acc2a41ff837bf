#pragma once
// Helpers shared by the mixers' whole-sequence forward (miras/mixers.cpp) and
// their streaming forward (miras/mixers_stream.cpp).
#include <stdexcept>
#include <string>

#include "autograd/ops.h"

namespace miras::mixer_detail {

// [P ; x]: P (N_p, d) in front of every sequence of x (B, T, d) -> (B, N_p + T, d).
inline Tensor with_prefix(const Tensor& P, const Tensor& x) {
    if (!P.defined()) return x;
    return cat({expand(unsqueeze(P, 0), {x.size(0), P.size(0), P.size(1)}), x}, 1);
}

inline void check_input(const char* who, const Tensor& x, int64_t d) {
    if (x.dim() != 3 || x.size(2) != d)
        throw std::invalid_argument(std::string(who) + ": x must be (B, T, " + std::to_string(d) + "), got " +
                                    shape_str(x.shape()));
}

}  // namespace miras::mixer_detail
