#pragma once
// Training losses and the accuracy metric.
#include <cstdint>

#include "autograd/ops.h"

namespace miras {

constexpr int64_t kIgnoreIndex = -100;  // targets equal to this are skipped (PyTorch's default)

struct CrossEntropyResult {
    Tensor loss;        // 0-d: mean of −log softmax(logits)[target] over the counted targets
    int64_t count = 0;  // number of targets counted (not equal to ignore_index)
};

// Cross-entropy of logits (..., V) against integer targets (...), averaged
// over the targets that are not ignore_index. Built from log_softmax and
// gather, so it is differentiable to any order. When every target is ignored
// the loss is an exact 0 (count = 0) with a zero gradient, never NaN: a batch
// made only of padding contributes nothing. A counted target outside [0, V)
// throws, naming its position.
CrossEntropyResult cross_entropy(const Tensor& logits, const IndexTensor& targets,
                                 int64_t ignore_index = kIgnoreIndex);

struct Accuracy {
    int64_t correct = 0;  // counted targets where argmax(logits) == target (first max on ties)
    int64_t count = 0;    // counted targets (not equal to ignore_index)
    double value() const { return count ? (double)correct / (double)count : 0.0; }
};

// Top-1 accuracy over the targets that are not ignore_index. Not differentiable.
Accuracy accuracy(const Tensor& logits, const IndexTensor& targets, int64_t ignore_index = kIgnoreIndex);

// Mean squared error mean((a − b)²), 0-d. a and b must have the same shape
// (no broadcasting, which would silently change what the mean is over).
Tensor mse(const Tensor& a, const Tensor& b);

}  // namespace miras
