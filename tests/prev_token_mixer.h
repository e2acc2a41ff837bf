#pragma once
// A causal test mixer with no stream (tests/test_transformer.cpp,
// tests/test_stream.cpp): out_t = x_{t−1} W, zero for t = 0. Parameter "W" (d, d).
#include <cstdint>

#include "nn/attention.h"

namespace miras::test {

class PrevTokenMixer : public Mixer {
public:
    PrevTokenMixer(int64_t d, uint64_t seed) {
        Generator g(seed);
        W_ = register_parameter("W", randn({d, d}, g, DType::f64, 0, 0.3));
    }
    Tensor forward(const Tensor& x) override {  // (B, T, d) -> (B, T, d)
        const int64_t B = x.size(0), T = x.size(1), d = x.size(2);
        Tensor shifted = cat({zeros({B, 1, d}, x.dtype()), narrow(x, 1, 0, T - 1)}, 1);
        return matmul(shifted, W_);
    }
    double forward_flops_per_token(int64_t) const override { return 2.0 * (double)W_.numel(); }

private:
    Tensor W_;
};

}  // namespace miras::test
