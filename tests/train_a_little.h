#pragma once
// Two AdamW (or SGD) steps of a model with vocabulary >= 11 on random
// (2, 6) batches, so that every optimizer buffer is non-trivial: for the
// checkpoint and stored-layout tests.
#include <vector>

#include "nn/loss.h"
#include "nn/optim.h"
#include "nn/transformer.h"

namespace miras::testing {

inline void train_a_little(Transformer& model, Optimizer& opt) {
    Generator g(1);
    for (int s = 0; s < 2; ++s) {
        std::vector<int64_t> ids(12), tg(12);
        for (auto& i : ids) i = (int64_t)g.below(11);
        for (auto& i : tg) i = (int64_t)g.below(11);
        opt.zero_grad();
        backward(cross_entropy(model.forward(IndexTensor({2, 6}, ids)), IndexTensor({2, 6}, tg)).loss);
        opt.step();
    }
}

}  // namespace miras::testing
