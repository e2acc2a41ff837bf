#include "nn/loss.h"

#include <stdexcept>
#include <string>
#include <vector>

namespace miras {
namespace {

// Checks that targets has logits' shape without the last dim and that every
// counted target is a class index. Returns V.
int64_t check_targets(const Tensor& logits, const IndexTensor& targets, int64_t ignore_index, const char* op) {
    if (logits.dim() < 1) throw std::invalid_argument(std::string(op) + ": logits must be (..., V), got a scalar");
    Shape want(logits.shape().begin(), logits.shape().end() - 1);
    if (targets.shape != want)
        throw std::invalid_argument(std::string(op) + ": logits " + shape_str(logits.shape()) + " need targets " +
                                    shape_str(want) + ", got " + shape_str(targets.shape));
    int64_t V = logits.size(-1);
    if (V < 1) throw std::invalid_argument(std::string(op) + ": logits " + shape_str(logits.shape()) + " have no classes");
    for (size_t i = 0; i < targets.data.size(); ++i) {
        int64_t t = targets.data[i];
        if (t != ignore_index && (t < 0 || t >= V))
            throw std::out_of_range(std::string(op) + ": target " + std::to_string(t) + " at position " +
                                    std::to_string(i) + " is outside [0, " + std::to_string(V) +
                                    ") and is not ignore_index " + std::to_string(ignore_index));
    }
    return V;
}

}  // namespace

CrossEntropyResult cross_entropy(const Tensor& logits, const IndexTensor& targets, int64_t ignore_index) {
    const int64_t V = check_targets(logits, targets, ignore_index, "cross_entropy");
    const int64_t N = targets.numel();
    // Counted rows get weight −1/count, so the weighted sum is the mean
    // without any division by a zero count. Ignored rows gather class 0 and
    // are then *selected away* (where), not multiplied by 0: a row nobody
    // scores may hold inf or NaN logits (a padding tail the model was never
    // trained on), and 0 · NaN would spoil the loss. Selecting also makes the
    // all-ignored loss +0, not −0.
    std::vector<int64_t> idx((size_t)N);
    std::vector<double> w((size_t)N), keep((size_t)N);
    int64_t count = 0;
    for (int64_t i = 0; i < N; ++i) count += targets.data[(size_t)i] != ignore_index;
    for (int64_t i = 0; i < N; ++i) {
        keep[(size_t)i] = targets.data[(size_t)i] != ignore_index;
        idx[(size_t)i] = keep[(size_t)i] ? targets.data[(size_t)i] : 0;
        w[(size_t)i] = keep[(size_t)i] ? -1.0 / (double)count : 0.0;
    }
    const DType dt = logits.dtype();
    Tensor logp = log_softmax(reshape(logits, {N, V}), 1);               // (N, V)
    Tensor picked = gather(logp, 1, IndexTensor({N, 1}, std::move(idx)));  // (N, 1)
    Tensor terms = where(from_vector(keep, {N, 1}, dt), mul(picked, from_vector(w, {N, 1}, dt)),
                         scalar_tensor(0.0, dt));                          // (N, 1)
    return {sum(terms), count};
}

Accuracy accuracy(const Tensor& logits, const IndexTensor& targets, int64_t ignore_index) {
    check_targets(logits, targets, ignore_index, "accuracy");
    IndexTensor pred = raw::max_dim(logits, -1).indices;  // (...)
    Accuracy a;
    for (size_t i = 0; i < targets.data.size(); ++i) {
        if (targets.data[i] == ignore_index) continue;
        ++a.count;
        a.correct += pred.data[i] == targets.data[i];
    }
    return a;
}

Tensor mse(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape())
        throw std::invalid_argument("mse: shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()) +
                                    " differ");
    return mean(square(sub(a, b)));
}

}  // namespace miras
