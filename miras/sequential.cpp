// The sequential reference of the memory recurrence (docs/math.md §1.8, first form):
// one token at a time, written to be read against the equations. The
// chunk-parallel scan (miras/chunked.cpp) is checked against this loop.
//
// Per token t, with t' the end of the previous chunk (docs/math.md §1.5):
//   u_t = ∂ℓ(W; k_t, v_t)/∂W  at W = W_{t'}                 docs/math.md §1.4
//   gd:        Δ_t = −θ_t u_t                                docs/math.md §1.6
//   momentum:  S_t = η_t S_{t−1} − θ_t u_t,  Δ_t = S_t       Titans Eq. 14
//   A_t = (1 − α_t) A_{t−1} + Δ_t                            Titans Eq. 13 (on A)
//   W_t = φ(A_t)                                             docs/math.md §1.6, Miras §5
//   y_t = M_{W_t}(q_t)                                       docs/math.md §1.7
#include <stdexcept>

#include "miras/scan_common.h"

namespace miras {
namespace {

using namespace scan_detail;

// u = ∂ℓ/∂W for every weight matrix of one token, at the weights W
// (B, H, out, in). k, v: (B, H, 1, d_h); delta: (B, H, 1) or undefined.
// Every (batch, head) memory is independent, so the gradient of the summed
// loss is, for each memory, its own gradient.
std::vector<Tensor> inner_gradient(const ScanSetup& s, const MemoryConfig& cfg, const std::vector<Tensor>& W_anchor,
                                   const Tensor& k, const Tensor& v, const Tensor& delta) {
    EnableGradGuard on;  // inference too: the inner loop always learns
    // detach_anchor: the anchor's value, cut from the outer graph (u_t keeps k, v, δ).
    std::vector<Tensor> W = cfg.detach_anchor && s.create_graph ? constant_leaves(W_anchor) : differentiable(W_anchor);
    UseCount uses(W.size());
    Tensor pred = s.arch->forward(k, [&](int l, const Tensor& h) {  // M_W(k_t): (B, H, 1, d_h)
        uses.use(l, "memory_scan_sequential");
        return apply_weight(W[(size_t)l], h);
    });
    uses.check("memory_scan_sequential");
    Tensor loss = sum((*s.bias)(pred, v, delta, cfg));  // Σ_{b,h} ℓ(W; k_t, v_t)
    // create_graph while training: u_t stays a function of W_{t'}, k_t, v_t, δ_t,
    // so the outer gradient differentiates through it (second order).
    TensorList u = grad({loss}, W, {}, {.create_graph = s.create_graph, .allow_unused = true});
    for (size_t l = 0; l < u.size(); ++l)
        if (!u[l].defined()) u[l] = zeros_like(W[l]);
    if (cfg.inner_clip > 0) {  // docs/memory.md §3.10: u_t <- u_t · f_t, one factor per (batch, head)
        Tensor sq;
        for (const Tensor& x : u) sq = sq.defined() ? add(sq, sum(square(x), {-2, -1})) : sum(square(x), {-2, -1});
        Tensor f = unsqueeze(unsqueeze(inner_clip_factor(sq, cfg.inner_clip), -1), -1);  // (B, H, 1, 1)
        for (Tensor& x : u) x = mul(x, f);
    }
    return u;
}

}  // namespace

Tensor memory_scan_sequential(const MemoryConfig& cfg, const MemoryInputs& in, MemoryState& st) {
    const ScanSetup s = setup_scan(cfg, in, st, "memory_scan_sequential");
    std::vector<Tensor> A = st.A, S = st.S, anchor = st.anchor;
    int64_t offset = st.offset;
    // One piece per token (a single split node: narrow per token would cost O(T²) in backward).
    std::vector<MemoryInputs> tokens = split_time(in, std::vector<int64_t>((size_t)s.T, 1));
    TensorList ys;
    for (int64_t t = 0; t < s.T; ++t) {
        const MemoryInputs& tok = tokens[(size_t)t];
        // docs/math.md §1.5: every token of a chunk takes its gradient at W_{t'}, the
        // weights at the end of the previous chunk (W_0 = φ(A_0) for the first).
        if (offset == 0) anchor = phi_all(s, A, cfg);

        const Tensor &k_t = tok.k, &v_t = tok.v, &q_t = tok.q;  // (B, H, 1, d_h)
        const Tensor& d_t = tok.delta;                          // (B, H, 1) or undefined
        // A gate per (batch, head), broadcast over a weight matrix: (B, H, 1, 1).
        auto gate_t = [](const Tensor& g) { return unsqueeze(g, -1); };

        // docs/math.md §1.4: u_t = ∂ℓ(W; k_t, v_t)/∂W at W = W_{t'}, by autodiff.
        std::vector<Tensor> u = inner_gradient(s, cfg, anchor, k_t, v_t, d_t);

        Tensor theta = gate_t(tok.theta);
        for (size_t l = 0; l < s.L(); ++l) {
            Tensor step = neg(mul(theta, u[l]));           // gd: Δ_t = −θ_t u_t
            if (s.momentum) {                              // Titans Eq. 14: S_t = η_t S_{t−1} − θ_t u_t
                S[l] = add(mul(gate_t(tok.eta), S[l]), step);
                step = S[l];                               // the update is Δ_t = S_t
            }
            if (s.uses_alpha)                              // Titans Eq. 13: A_t = (1 − α_t) A_{t−1} + Δ_t
                A[l] = add(mul(add(neg(gate_t(tok.alpha)), 1.0), A[l]), step);
            else                                           // retention "none": α ≡ 0
                A[l] = add(A[l], step);
        }

        // docs/math.md §1.7: read with the weights after token t's write, W_t = φ(A_t).
        std::vector<Tensor> W_t = phi_all(s, A, cfg);
        UseCount uses(W_t.size());
        ys.push_back(s.arch->forward(q_t, [&](int l, const Tensor& h) {  // (B, H, 1, d_h)
            uses.use(l, "memory_scan_sequential");
            return apply_weight(W_t[(size_t)l], h);
        }));
        uses.check("memory_scan_sequential");

        offset = (offset + 1) % cfg.chunk;
    }
    return finish_scan(s, st, std::move(A), std::move(S), anchor, offset, ys, in.q.dtype());
}

}  // namespace miras
