// Placeholder CLI until the training stack lands: a tiny demo of gradient
// descent on a linear regression.
#include <cstdio>

#include "autograd/ops.h"

using namespace miras;

int main() {
    Generator g(0);
    Tensor X = randn({64, 4}, g), w_true = randn({4, 1}, g);
    Tensor y = raw::matmul(X, w_true);
    Tensor w = zeros({4, 1});
    set_requires_grad(w);
    for (int step = 0; step <= 100; ++step) {
        Tensor loss = mean(square(matmul(X, w) - y));
        Tensor gw = grad({loss}, {w})[0];
        {
            NoGradGuard ng;
            raw::add_(w, gw, -0.1);
        }
        if (step % 20 == 0) std::printf("step %3d  loss %.6f\n", step, loss.item());
    }
    return 0;
}
