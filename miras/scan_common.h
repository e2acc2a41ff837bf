#pragma once
// Pieces shared by the two memory scans (miras/sequential.cpp,
// miras/chunked.cpp); not part of the public API.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "miras/bias.h"
#include "miras/memory_arch.h"
#include "miras/retention.h"
#include "miras/scan.h"

namespace miras::scan_detail {

// What a scan needs to know, resolved once and checked against the inputs.
struct ScanSetup {
    std::shared_ptr<const MemoryArch> arch;
    const BiasFn* bias = nullptr;
    const Retention* ret = nullptr;
    std::vector<std::pair<int64_t, int64_t>> shapes;  // (out, in) per weight matrix
    int64_t B = 0, H = 0, T = 0, dh = 0;
    bool outer_grad = false;    // grad mode was on at entry: the outputs are recorded
    bool create_graph = false;  // inner gradients stay differentiable (outer_grad && !first_order)
    bool momentum = false;
    bool uses_alpha = false;
    size_t L() const { return shapes.size(); }
};

// Validates cfg, the inputs' shapes and dtypes and the state; `op` names the
// caller in messages.
ScanSetup setup_scan(const MemoryConfig& cfg, const MemoryInputs& in, const MemoryState& st, const char* op);


// The inputs cut along time into consecutive pieces of `sizes` tokens.
std::vector<MemoryInputs> split_time(const MemoryInputs& in, const std::vector<int64_t>& sizes);

// W = φ(A) for every weight matrix.
// Ends a scan of s.T tokens: writes the state it reached into `st`
// (A, S, the anchor while a chunk is in progress, offset, position) and
// returns the outputs joined along time, (B, H, T, d_h).
Tensor finish_scan(const ScanSetup& s, MemoryState& st, std::vector<Tensor> A, std::vector<Tensor> S,
                   const std::vector<Tensor>& anchor, int64_t offset, const TensorList& ys, DType dt);

std::vector<Tensor> phi_all(const ScanSetup& s, const std::vector<Tensor>& A, const MemoryConfig& cfg);

// z = W h for a batch of tokens: h (B, H, n, in), W (B, H, out, in) -> (B, H, n, out).
Tensor apply_weight(const Tensor& W, const Tensor& h);

// The weights to differentiate the inner loss at: W itself when it already
// requires grad (training: the anchor is part of the outer graph), otherwise
// a detached leaf that requires grad (inference, or a constant anchor).
std::vector<Tensor> differentiable(const std::vector<Tensor>& W);
// Detached leaves that require grad, whatever W is: the inner loss is
// differentiated at W's value, and no outer gradient flows into W through
// it (MemoryConfig::detach_anchor).
std::vector<Tensor> constant_leaves(const std::vector<Tensor>& W);

// memory.inner_clip = c > 0: the factor that softly limits each token's inner
// gradient, all its weight matrices together, to norm c,
//   u_t <- u_t · f_t,  f_t = c · tanh(n_t / c) / n_t,  n_t = sqrt(Σ_l ‖u_{t,l}‖²_F + 1e-12),
// so f_t ≈ 1 while n_t ≪ c and ‖f_t u_t‖ → c above it; smooth, and written in
// differentiable ops (the outer gradient goes through it). sq_norm: Σ_l ‖u_{t,l}‖²_F,
// (B, H) or (B, H, n) -> the same shape.
Tensor inner_clip_factor(const Tensor& sq_norm, double c);

// Counts how often an architecture calls lin(l, ·): the rank-1 factorisation
// of the per-token gradients needs exactly once per weight matrix.
class UseCount {
public:
    explicit UseCount(size_t L) : n_(L, 0) {}
    void use(int l, const char* op);
    void check(const char* op) const;

private:
    std::vector<int> n_;
};

}  // namespace miras::scan_detail
