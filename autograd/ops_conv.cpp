// Depthwise 1-D convolution over time and its weight gradient, forward and
// backward side by side. Both are linear in each input, and their adjoints are
// the same two ops again (the direction flips where time is read backwards):
//
//   y  = conv(x, w, dir)           dx = conv(g, w, !dir)      dw = weight(x, g, K, dir)
//   dw = weight(x, g, K, dir)      dx = conv(g, gw, !dir)     dg = conv(x, gw, dir)
//
// so grad of grad of any order stays in these two kernels.
#include "autograd/ops.h"

namespace miras {

Tensor depthwise_conv1d(const Tensor& x, const Tensor& w, bool anticausal) {
    Tensor out = raw::depthwise_conv1d(x, w, anticausal);  // (..., T, C)
    if (!should_record(x, w)) return out;
    record("depthwise_conv1d", {x, w}, {out}, [x, w, anticausal](Node& n, const TensorList& g) -> TensorList {
        Tensor gx, gw;
        // out[t] reads x[t + d_j]: x[s] feeds out[s − d_j], the other direction.
        if (n.needs_input_grad(0)) gx = depthwise_conv1d(g[0], w, !anticausal);
        if (n.needs_input_grad(1)) gw = depthwise_conv1d_weight(x, g[0], w.size(1), anticausal);
        return {gx, gw};
    });
    return out;
}

Tensor depthwise_conv1d_weight(const Tensor& x, const Tensor& g, int64_t K, bool anticausal) {
    Tensor out = raw::depthwise_conv1d_weight(x, g, K, anticausal);  // (C, K)
    if (!should_record(x, g)) return out;
    record("depthwise_conv1d_weight", {x, g}, {out}, [x, g, anticausal](Node& n, const TensorList& gr) -> TensorList {
        // out[c, j] = Σ_t g[t, c] x[t + d_j, c]: bilinear, gr (C, K) plays the weight.
        Tensor gx, gg;
        if (n.needs_input_grad(0)) gx = depthwise_conv1d(g, gr[0], !anticausal);
        if (n.needs_input_grad(1)) gg = depthwise_conv1d(x, gr[0], anticausal);
        return {gx, gg};
    });
    return out;
}

}  // namespace miras
