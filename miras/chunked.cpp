// Chunk-parallel memory scan (docs/math.md §1.8, second form). Same contract as the
// sequential reference (miras/sequential.cpp) and held to it in f64 to 1e-9,
// outputs and outer gradients.
//
// Inside a chunk every token takes its gradient at the same anchor weights
// W_{t'} (docs/math.md §1.5), so for the n tokens of a chunk:
//
// 1. Inner gradients, all at once. The architecture runs once on all n keys
//    at W_{t'}. Weight matrix l meets token j only through z_{j,l} = W_l h_{j,l},
//    so its per-token gradient is the rank-1 outer product
//        u_{j,l} = g_{j,l} h_{j,l}ᵀ,   g_{j,l} = ∂ℓ_j/∂z_{j,l},
//    and one reverse pass over Σ_j ℓ_j gives every g_{j,l} (tokens do not
//    interact inside the memory, so ∂(Σ ℓ)/∂z_j = ∂ℓ_j/∂z_j).
// 2. The recurrences of docs/math.md §1.6 are linear, so they unroll in closed form.
//    With keep_m = 1 − α_m,
//        S_i = Pη_i S_0 + Σ_{j≤i} Lη_ij (−θ_j) u_j
//        A_i = P_i A_0 + Q_i S_0 + Σ_{j≤i} K_ij (−θ_j) u_j
//    where P_i = Π_{m≤i} keep_m, Lkeep_ij = Π_{j<m≤i} keep_m (Pη, Lη alike
//    with η), and K = Lkeep, Q = 0 for gd; K = Lkeep·Lη, Q = Lkeep·Pη for
//    momentum.
// 3. Retrieval of all n tokens, y_i = M_{φ(A_i)}(q_i) (docs/math.md §1.7):
//    φ = identity: the dual form, no per-token weights,
//        W_{l,i} x = P_i A_l x + Q_i S_l x + Σ_j C_ij (h_{j,l}ᵀ x) g_{j,l},  C_ij = K_ij (−θ_j);
//    other φ: A_i materialised for every token (one matmul per weight
//    matrix) and read through W_i = φ(A_i).
// 4. The state at the end of the chunk is the last row of step 2.
//
// A call may start or end inside a chunk (streaming): a "segment" is the part
// of one chunk inside this call; it starts from the state's (A, S) and takes
// its gradients at the chunk's anchor, carried in the state.
#include <stdexcept>
#include <tuple>

#include "miras/scan_common.h"

namespace miras {
namespace {

using namespace scan_detail;
constexpr const char* kOp = "memory_scan_chunked";

// Inclusive running product along the last axis, x_i = Π_{m≤i} a_m, by
// doubling (Hillis–Steele): log2(n) multiplications by shifted copies. Only
// products, so a factor of exactly 0 is fine and every derivative exists.
Tensor running_product(const Tensor& a) {
    const int64_t n = a.size(-1);
    Tensor x = a;
    for (int64_t s = 1; s < n; s *= 2) {
        Shape pad = x.shape();
        pad.back() = s;
        Tensor shifted = cat({ones(pad, x.dtype()), narrow(x, -1, 0, n - s)}, -1);  // x_{i−s}, 1 for i < s
        x = mul(x, shifted);
    }
    return x;
}

// Coefficients of x_i = a_i x_{i−1} + b_i unrolled over a chunk,
// x_i = P_i x_0 + Σ_{j≤i} L_ij b_j.  a: (B, H, n).
struct Decay {
    Tensor L;  // (B, H, n, n): L_ij = Π_{j<m≤i} a_m for j ≤ i, 0 above the diagonal
    Tensor P;  // (B, H, n):    P_i = Π_{m≤i} a_m
};

Decay decay_matrices(const Tensor& a) {
    const int64_t n = a.size(-1);
    // Row r of F holds the factors of the product that starts at token r:
    // F[r, m] = a_m if m ≥ r else 1. Row 0 gives P, row j + 1 gives L_{·j}.
    std::vector<double> mask((size_t)((n + 1) * n));
    for (int64_t r = 0; r <= n; ++r)
        for (int64_t m = 0; m < n; ++m) mask[(size_t)(r * n + m)] = m >= r ? 1.0 : 0.0;
    Tensor F = where(from_vector(mask, {n + 1, n}, a.dtype()), unsqueeze(a, -2), scalar_tensor(1.0, a.dtype()));
    F = running_product(F);                                            // (B, H, n+1, n)
    Decay d;
    d.P = select(F, -2, 0);                                            // (B, H, n)
    d.L = tril(transpose(narrow(F, -2, 1, n), -1, -2));                // (B, H, n, n)
    return d;
}

// (B, H, n) -> (B, H, n, 1, 1) or (B, H, 1, 1) for the last token: a per-token
// scalar broadcast over a weight matrix.
Tensor per_matrix(const Tensor& c) { return unsqueeze(unsqueeze(c, -1), -1); }

// The rank-1 factors of one chunk's per-token inner gradients.
struct Factors {
    std::vector<Tensor> G;  // (B, H, n, out): g_{j,l} = ∂ℓ_j/∂z_{j,l}
    std::vector<Tensor> H;  // (B, H, n, in):  h_{j,l}, the input of weight matrix l (H[0] = k)
};

// Runs the memory on all n keys at the weights W, recording each weight
// matrix's input h_l and output z_l, and differentiates Σ_j ℓ_j with respect
// to every z_l (tokens do not interact, so ∂(Σ ℓ)/∂z_{j,l} = ∂ℓ_j/∂z_{j,l}).
Factors factors_at(const ScanSetup& s, const MemoryConfig& cfg, const std::vector<Tensor>& W, const Tensor& k,
                   const Tensor& v, const Tensor& delta, bool create_graph) {
    EnableGradGuard on;  // inference too: the inner loop always learns
    const size_t L = s.L();
    Factors f{std::vector<Tensor>(L), std::vector<Tensor>(L)};
    std::vector<Tensor> Z(L);
    UseCount uses(L);
    Tensor pred = s.arch->forward(k, [&](int l, const Tensor& h) {  // (B, H, n, d_h)
        uses.use(l, kOp);
        f.H[(size_t)l] = h;
        Z[(size_t)l] = apply_weight(W[(size_t)l], h);  // z_{j,l} = W_l h_{j,l}
        return Z[(size_t)l];
    });
    uses.check(kOp);
    Tensor loss = sum((*s.bias)(pred, v, delta, cfg));  // Σ_{b,h,j} ℓ_j
    TensorList G = grad({loss}, Z, {}, {.create_graph = create_graph, .allow_unused = true});
    for (size_t l = 0; l < L; ++l) f.G[l] = G[l].defined() ? G[l] : zeros_like(Z[l]);
    return f;
}

// The factors (G_l, H_l) of the chunk's per-token inner gradients. While
// training (create_graph) they are taken on the real inputs, so the outer
// gradient flows through them (second order); the engine's topological
// pruning keeps each grad() to the chunk's own graph, not the whole history.
// Otherwise every u_t is a constant (first order, or inference): the
// gradient is taken on detached copies and the factors are detached.
// memory.inner_clip: u_{j,l} = g_{j,l} h_{j,l}ᵀ has ‖u_{j,l}‖_F = ‖g_{j,l}‖ ‖h_{j,l}‖,
// so each token's factor f_j (scan_common.h) scales its rows of G.
Factors clipped(Factors f, double c) {
    Tensor sq;
    for (size_t l = 0; l < f.G.size(); ++l) {
        Tensor t = mul(sum(square(f.G[l]), {-1}), sum(square(f.H[l]), {-1}));  // (B, H, n)
        sq = sq.defined() ? add(sq, t) : t;
    }
    Tensor fac = unsqueeze(inner_clip_factor(sq, c), -1);  // (B, H, n, 1)
    for (Tensor& g : f.G) g = mul(g, fac);
    return f;
}

Factors inner_factors_unclipped(const ScanSetup& s, const MemoryConfig& cfg, const std::vector<Tensor>& anchor,
                                const Tensor& k, const Tensor& v, const Tensor& delta);

Factors inner_factors(const ScanSetup& s, const MemoryConfig& cfg, const std::vector<Tensor>& anchor, const Tensor& k,
                      const Tensor& v, const Tensor& delta) {
    Factors f = inner_factors_unclipped(s, cfg, anchor, k, v, delta);
    return cfg.inner_clip > 0 ? clipped(std::move(f), cfg.inner_clip) : f;
}

Factors inner_factors_unclipped(const ScanSetup& s, const MemoryConfig& cfg, const std::vector<Tensor>& anchor,
                                const Tensor& k, const Tensor& v, const Tensor& delta) {
    const size_t L = s.L();
    auto leaf = [](const Tensor& x) { return x.defined() ? set_requires_grad(detach(x)) : Tensor(); };
    if (s.create_graph) {
        // An anchor that is a constant (e.g. A_0 fixed), or that detach_anchor
        // cuts, becomes a leaf, so z_l = W_l h_l carries a graph to differentiate.
        std::vector<Tensor> W;
        for (const Tensor& w : anchor) W.push_back(requires_grad(w) && !cfg.detach_anchor ? w : leaf(w));
        return factors_at(s, cfg, W, k, v, delta, true);
    }
    std::vector<Tensor> W;
    for (const Tensor& w : anchor) W.push_back(leaf(w));
    Factors local = factors_at(s, cfg, W, leaf(k), leaf(v), leaf(delta), false);
    Factors f;
    for (size_t l = 0; l < L; ++l) {
        f.G.push_back(detach(local.G[l]));
        f.H.push_back(l == 0 ? detach(k) : detach(local.H[l]));
    }
    return f;
}

// The gate-only coefficients of one segment (step 2 above). They do not
// depend on the memory, so they are computed before the scan, for all full
// chunks at once (leading dims (B, H, m) instead of (B, H)), and split.
struct Coeffs {
    Tensor P;       // (B, H, n): Π_{m≤i} keep_m, the weight of A at token i
    Tensor Q;       // (B, H, n): the weight of S at token i (momentum), else undefined
    Tensor C;       // (B, H, n, n): C_ij = K_ij (−θ_j)
    Tensor e_last;  // (B, H, n): Lη_{n−1,j} (−θ_j), the end state's S (momentum)
    Tensor eta_P;   // (B, H): Π_j η_j, the weight of S_0 in the end state's S (momentum)
};

// Gates (..., n) -> the coefficients over their last axis.
Coeffs coeffs_of(const ScanSetup& s, const Tensor& theta, const Tensor& eta, const Tensor& alpha) {
    const int64_t n = theta.size(-1);
    Tensor keep = s.uses_alpha ? add(neg(alpha), 1.0) : ones(theta.shape(), theta.dtype());
    Decay dk = decay_matrices(keep);
    Coeffs c;
    c.P = dk.P;
    Tensor K = dk.L;  // gd: K = Lkeep, Q = 0
    if (s.momentum) {
        Decay de = decay_matrices(eta);
        K = matmul(dk.L, de.L);                                   // (..., n, n)
        c.Q = squeeze(matmul(dk.L, unsqueeze(de.P, -1)), -1);     // (..., n)
        c.e_last = mul(select(de.L, -2, n - 1), neg(theta));     // Lη_{n−1,j} (−θ_j)
        c.eta_P = select(de.P, -1, n - 1);
    }
    c.C = mul(K, unsqueeze(neg(theta), -2));                      // C_ij = K_ij (−θ_j)
    return c;
}

// Coefficients of every segment. Runs of whole chunks are done in one batch:
// their gates (B, H, m·b) viewed as (B, H, m, b), the results split along m.
std::vector<Coeffs> all_coeffs(const ScanSetup& s, const MemoryConfig& cfg, const MemoryInputs& in,
                               const std::vector<int64_t>& sizes) {
    std::vector<Coeffs> out;
    const int64_t b = cfg.chunk;
    size_t i = 0;
    int64_t t = 0;
    auto gate = [&](const Tensor& g, int64_t t0, int64_t len) { return g.defined() ? narrow(g, 2, t0, len) : Tensor(); };
    while (i < sizes.size()) {
        size_t j = i;
        while (j < sizes.size() && sizes[j] == b) ++j;
        const int64_t m = (int64_t)(j - i);
        if (m >= 2) {
            auto chunks = [&](const Tensor& g) {  // (B, H, m·b) -> (B, H, m, b)
                return g.defined() ? reshape(gate(g, t, m * b), {s.B, s.H, m, b}) : Tensor();
            };
            Coeffs c = coeffs_of(s, chunks(in.theta), chunks(in.eta), chunks(in.alpha));
            auto pieces = [&](const Tensor& x) {
                std::vector<Tensor> r((size_t)m);
                if (!x.defined()) return r;
                TensorList p = split(x, std::vector<int64_t>((size_t)m, 1), 2);  // one node; backward is one cat
                for (int64_t k = 0; k < m; ++k) r[(size_t)k] = squeeze(p[(size_t)k], 2);
                return r;
            };
            auto P = pieces(c.P), Q = pieces(c.Q), C = pieces(c.C), E = pieces(c.e_last), EP = pieces(c.eta_P);
            for (int64_t k = 0; k < m; ++k) out.push_back({P[(size_t)k], Q[(size_t)k], C[(size_t)k], E[(size_t)k], EP[(size_t)k]});
            t += m * b;
            i = j;
        } else {
            const int64_t n = sizes[i];
            out.push_back(coeffs_of(s, gate(in.theta, t, n), gate(in.eta, t, n), gate(in.alpha, t, n)));
            t += n;
            ++i;
        }
    }
    return out;
}

// One segment: n tokens (`in` holds just them), all inside one chunk whose
// gradients are taken at `anchor`. Advances A and S to the segment's end and
// returns y (B, H, n, d_h).
Tensor segment(const ScanSetup& s, const MemoryConfig& cfg, const MemoryInputs& in, const Coeffs& co,
               const std::vector<Tensor>& anchor, std::vector<Tensor>& A, std::vector<Tensor>& S) {
    const size_t L = s.L();
    const int64_t n = in.q.size(2);
    const Tensor &k = in.k, &v = in.v, &q = in.q;  // (B, H, n, d_h)
    const Tensor& delta = in.delta;  // (B, H, n)

    // 1. Per-token inner gradients at W_{t'} as rank-1 factors u_{j,l} = g_{j,l} h_{j,l}ᵀ.
    Factors f = inner_factors(s, cfg, anchor, k, v, delta);
    const std::vector<Tensor>&Gs = f.G, &Hs = f.H;  // (B, H, n, out), (B, H, n, in)

    // 2. The decay coefficients, computed before the scan (all_coeffs).
    const Tensor &P = co.P, &Q = co.Q, &C = co.C;  // (B, H, n), (B, H, n), (B, H, n, n)

    // 3. Retrieval for every token of the segment, then 4. the end state.
    Tensor y;
    std::vector<Tensor> A_end(L);
    if (s.ret->identity) {
        // Dual form: W_{l,i} x_i without forming W_{l,i}.
        UseCount uses(L);
        y = s.arch->forward(q, [&](int l, const Tensor& x) {  // x (B, H, n, in) -> (B, H, n, out)
            uses.use(l, kOp);
            const size_t i = (size_t)l;
            Tensor scores = mul(C, matmul(x, transpose(Hs[i], -1, -2)));                // C_ij (h_jᵀ x_i)
            Tensor out = matmul(scores, Gs[i]);                                          // Σ_j … g_j
            out = addcmul(out, unsqueeze(P, -1), apply_weight(A[i], x));                 // + P_i A x_i
            if (s.momentum) out = addcmul(out, unsqueeze(Q, -1), apply_weight(S[i], x));  // + Q_i S x_i
            return out;
        });
        uses.check(kOp);
        Tensor c_last = select(C, -2, n - 1);  // (B, H, n): row of the last token
        for (size_t l = 0; l < L; ++l) {
            // Σ_j c_j g_j h_jᵀ = (G ⊙ c)ᵀ H: (B, H, out, n) @ (B, H, n, in); then + P A (+ Q S),
            // each one fused multiply-add over the weight matrix
            Tensor a = matmul(transpose(mul(Gs[l], unsqueeze(c_last, -1)), -1, -2), Hs[l]);
            a = addcmul(a, per_matrix(select(P, -1, n - 1)), A[l]);
            if (s.momentum) a = addcmul(a, per_matrix(select(Q, -1, n - 1)), S[l]);
            A_end[l] = a;
        }
    } else {
        // Per-token pre-weights A_i = P_i A + Q_i S + Σ_j C_ij g_j h_jᵀ, one matmul
        // of C with the flattened outer products; then W_i = φ(A_i).
        std::vector<Tensor> Wi(L);
        for (size_t l = 0; l < L; ++l) {
            const int64_t o = s.shapes[l].first, i = s.shapes[l].second;
            Tensor outer = reshape(mul(unsqueeze(Gs[l], -1), unsqueeze(Hs[l], -2)), {s.B, s.H, n, o * i});
            Tensor Ai = reshape(matmul(C, outer), {s.B, s.H, n, o, i});                   // (B, H, n, out, in)
            Ai = add(Ai, mul(per_matrix(P), unsqueeze(A[l], 2)));
            if (s.momentum) Ai = add(Ai, mul(per_matrix(Q), unsqueeze(S[l], 2)));
            Wi[l] = s.ret->phi(Ai, cfg);
            A_end[l] = select(Ai, 2, n - 1);
        }
        UseCount uses(L);
        y = s.arch->forward(q, [&](int l, const Tensor& x) {  // W_i x_i, token by token in one batched product
            uses.use(l, kOp);
            return squeeze(matmul(Wi[(size_t)l], unsqueeze(x, -1)), -1);
        });
        uses.check(kOp);
    }
    if (s.momentum) {
        for (size_t l = 0; l < L; ++l)
            S[l] = addcmul(matmul(transpose(mul(Gs[l], unsqueeze(co.e_last, -1)), -1, -2), Hs[l]),
                           per_matrix(co.eta_P), S[l]);
    }
    A = std::move(A_end);
    return y;
}

}  // namespace

Tensor memory_scan_chunked(const MemoryConfig& cfg, const MemoryInputs& in, MemoryState& st) {
    const ScanSetup s = setup_scan(cfg, in, st, kOp);
    std::vector<Tensor> A = st.A, S = st.S, anchor = st.anchor;
    int64_t offset = st.offset;
    // Chunks are counted from the first token of the stream (docs/math.md §0): a
    // segment runs to the end of the current chunk or of the input.
    std::vector<int64_t> sizes;
    for (int64_t t = 0, off = offset; t < s.T;) {
        sizes.push_back(std::min(cfg.chunk - off, s.T - t));
        t += sizes.back();
        off = (off + sizes.back()) % cfg.chunk;
    }
    std::vector<MemoryInputs> pieces = split_time(in, sizes);
    std::vector<Coeffs> coeffs = all_coeffs(s, cfg, in, sizes);
    TensorList ys;
    for (size_t i = 0; i < pieces.size(); ++i) {
        const MemoryInputs& piece = pieces[i];
        if (offset == 0) anchor = phi_all(s, A, cfg);  // W_{t'} = φ(A_{t'}) (docs/math.md §1.5)
        ys.push_back(segment(s, cfg, piece, coeffs[i], anchor, A, S));
        offset = (offset + piece.q.size(2)) % cfg.chunk;
    }
    return finish_scan(s, st, std::move(A), std::move(S), anchor, offset, ys, in.q.dtype());
}

}  // namespace miras
