#pragma once
// The memory recurrence of docs/math.md §1.4–1.7, computed two ways that must agree
// (outputs and outer gradients, f64 to 1e-9; tests/test_miras_equivalence.cpp):
//
//   memory_scan_sequential  the reference: a plain loop over tokens, u_t taken
//                           by autodiff at the chunk's anchor weights
//                           (miras/sequential.cpp, commented line by line
//                           against the equations);
//   memory_scan_chunked     chunk-parallel: all u_t of a chunk in one batched
//                           pass, the linear recurrences in A by cumulative
//                           products, retrieval of the whole chunk at once
//                           (miras/chunked.cpp).
//
// Every memory is per (batch element, head): inputs are laid out
// (B, H, T, d_h) and the state (B, H, out, in) per weight matrix.
//
// Gradients. With grad mode on (training) the inner gradients are taken with
// create_graph, so the outer gradient flows through every inner step (second
// order) into q, k, v, the gates and A_0; cfg.first_order treats each u_t as
// a constant instead. With grad mode off (inference) the inner gradients are
// still computed (inside an EnableGradGuard, on detached leaves) and nothing
// is recorded.
//
// Streaming. A scan starts from `state` and leaves it at the end of its
// input, so a long sequence fed in pieces of any lengths gives the same
// outputs as fed whole. Chunks are counted from the first token of the
// stream: a piece may end inside a chunk, and the next piece finishes that
// chunk with the same anchor weights.
#include <cstdint>
#include <vector>

#include "autograd/ops.h"
#include "miras/config.h"

namespace miras {

// Inputs of one memory layer for T tokens (docs/math.md §1.1–1.2).
struct MemoryInputs {
    Tensor q, k, v;      // (B, H, T, d_h): queries, keys, values
    Tensor theta;        // (B, H, T) inner step size θ_t (always used)
    Tensor eta;          // (B, H, T) momentum η_t: defined iff algorithm = momentum
    Tensor alpha;        // (B, H, T) forget rate α_t: defined iff the retention uses it
    Tensor delta;        // (B, H, T) Huber threshold δ_t: defined iff bias = huber_mix
};

// Everything a memory layer carries from one piece of a stream to the next.
struct MemoryState {
    std::vector<Tensor> A;       // (B, H, out, in) per weight matrix: pre-weights A after the last token
    std::vector<Tensor> S;       // (B, H, out, in) momentum S (algorithm = momentum), else empty
    std::vector<Tensor> anchor;  // W_{t'} of the chunk in progress; set iff offset > 0
    int64_t offset = 0;          // tokens of the chunk in progress already consumed, in [0, b)
    int64_t position = 0;        // tokens consumed since the stream began
    // (B, 3, d): the last 3 inputs of conv_q, conv_k, conv_v (MirasLayer only;
    // zeros at the start of a stream = the convolution's left padding).
    Tensor conv_q, conv_k, conv_v;

    bool started() const { return !A.empty(); }
    int64_t batch() const { return A.empty() ? 0 : A[0].size(0); }
    // Cuts every tensor from the graph, keeping the values: the outer gradient
    // then stops at this piece boundary (truncated backpropagation).
    void detach();
};

// The state at the start of a stream: A = A_0 broadcast over the batch
// (A0[l]: (H, out, in); an empty list means A_0 = 0, as with fix_A0_zero),
// S = 0, no chunk in progress, zero conv tails of width cfg.d.
MemoryState initial_memory_state(const MemoryConfig& cfg, const std::vector<Tensor>& A0, int64_t batch, DType dt);

// y (B, H, T, d_h) with y_t = M_{W_t}(q_t), W_t = φ(A_t) the weights after
// token t's write (docs/math.md §1.7). Advances `state` by T tokens.
Tensor memory_scan_sequential(const MemoryConfig& cfg, const MemoryInputs& in, MemoryState& state);
Tensor memory_scan_chunked(const MemoryConfig& cfg, const MemoryInputs& in, MemoryState& state);

// Read only: M_W(q) at the state's current weights W = φ(A), q (B, H, T, d_h)
// -> (B, H, T, d_h). The state is not changed (the MAC read of docs/math.md §2).
Tensor memory_retrieve(const MemoryConfig& cfg, const Tensor& q, const MemoryState& state);

}  // namespace miras
