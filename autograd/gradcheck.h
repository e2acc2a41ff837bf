#pragma once
// Checks analytic gradients against central differences, in f64. Usable on
// any user function of tensors: the same checks the test suite runs on
// every op.
#include <functional>
#include <string>

#include "autograd/node.h"

namespace miras {

using TensorFn = std::function<TensorList(const TensorList&)>;

struct GradcheckOptions {
    double eps = 1e-6;
    double atol = 1e-5;
    double rtol = 1e-3;
};

struct GradcheckResult {
    bool ok = true;
    std::string message;  // the worst mismatch, when !ok
    explicit operator bool() const { return ok; }
};

// Compares the full Jacobian of f at `inputs` (every f64 input that requires
// grad) computed by the engine with central differences.
GradcheckResult gradcheck(const TensorFn& f, const TensorList& inputs, const GradcheckOptions& opt = {});

// gradcheck of (inputs, v) -> grad(f(inputs), inputs, v, {.create_graph = true}),
// with random cotangents v: checks the second derivative.
GradcheckResult gradgradcheck(const TensorFn& f, const TensorList& inputs, const GradcheckOptions& opt = {},
                              uint64_t seed = 0);

}  // namespace miras
