#include "nn/attention.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include "nn/functional.h"
#include "nn/init.h"

namespace miras {

Tensor Mixer::forward_stream(const Tensor&, MixerState&) {
    throw std::logic_error("this mixer cannot read a sequence in pieces (begin_stream gives no state)");
}
namespace {

// Additive mask value: finite, so a fully masked row (only padding rows can
// be one) gives a uniform softmax instead of NaN, and exp() of it underflows
// to exactly 0 next to any real score, in f32 and f64.
constexpr double kMasked = -1e30;

std::string shapes3(const Tensor& q, const Tensor& k, const Tensor& v) {
    return "q " + shape_str(q.shape()) + ", k " + shape_str(k.shape()) + ", v " + shape_str(v.shape());
}

// The visibility rule of attention() (see the header), in key-index space.
struct Visibility {
    bool causal;
    int64_t window, n_prefix;
    bool operator()(int64_t a, int64_t j) const {
        if (causal && j > a) return false;
        return j < n_prefix || window == 0 || a - j < window;
    }
};

// How attention() computes: blocked with a gathered window of keys, or dense.
struct Plan {
    bool blocked = false;
    int64_t bq = 0, nb = 0, L = 0;  // block rows, blocks, keys per block
    int64_t scores = 0;             // score entries per (batch, head)
};

Plan plan_attention(int64_t Tq, int64_t Tk, bool causal, int64_t window, int64_t n_prefix, int64_t block_size) {
    Plan p;
    p.scores = Tq * Tk;
    if (!causal || window <= 0 || Tq == 0 || block_size < 1) return p;
    p.bq = std::min(block_size, Tq);
    p.nb = (Tq + p.bq - 1) / p.bq;
    p.L = n_prefix + p.bq + window - 1;
    // Taken only when cheaper than the dense Tq × Tk scores.
    if (p.nb * p.bq * p.L < Tq * Tk) { p.blocked = true; p.scores = p.nb * p.bq * p.L; }
    return p;
}

}  // namespace

int64_t attention_score_count(int64_t Tq, int64_t Tk, bool causal, int64_t window, int64_t n_prefix,
                              int64_t block_size) {
    return plan_attention(Tq, Tk, causal, window, n_prefix, block_size).scores;
}

namespace {

// Shapes (B, H, Tq, d_k), (B, H, Tk, d_k), (B, H, Tk, d_v) and one dtype.
void check_qkv(const std::string& who, const Tensor& q, const Tensor& k, const Tensor& v) {
    if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4)
        throw std::invalid_argument(who + ": q, k, v must be (B, H, T, d), got " + shapes3(q, k, v));
    const int64_t B = q.size(0), H = q.size(1), dk = q.size(3), Tk = k.size(2);
    if (k.size(0) != B || k.size(1) != H || k.size(3) != dk || v.size(0) != B || v.size(1) != H || v.size(2) != Tk)
        throw std::invalid_argument(who + ": shapes do not fit: " + shapes3(q, k, v));
    if (q.dtype() != k.dtype() || q.dtype() != v.dtype())
        throw std::invalid_argument(who + ": dtypes differ (" + std::string(dtype_name(q.dtype())) + ", " +
                                    dtype_name(k.dtype()) + ", " + dtype_name(v.dtype()) + ")");
}

// The convolutions must be (d, K) each when cfg.conv = K > 0, undefined otherwise.
void check_convs(const std::string& who, const AttentionConvs& conv, const AttentionConfig& cfg) {
    const int64_t K = cfg.conv, d = cfg.d_model;
    for (const Tensor* w : {&conv.q, &conv.k, &conv.v}) {
        const bool ok = K > 0 ? w->defined() && w->shape() == Shape{d, K} : !w->defined();
        if (!ok)
            throw std::invalid_argument(who + ": cfg.conv = " + std::to_string(K) + " needs " +
                                        (K > 0 ? "conv.q, conv.k, conv.v of shape (" + std::to_string(d) + ", " +
                                                     std::to_string(K) + ")"
                                               : std::string("no convolution weights")) +
                                        ", got " + (w->defined() ? shape_str(w->shape()) : "undefined"));
    }
}

}  // namespace

Tensor attention_masked(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<bool>& visible) {
    check_qkv("attention_masked", q, k, v);
    const int64_t Tq = q.size(2), Tk = k.size(2), dk = q.size(3);
    if ((int64_t)visible.size() != Tq * Tk)
        throw std::invalid_argument("attention_masked: visible has " + std::to_string(visible.size()) +
                                    " entries, need Tq · Tk = " + std::to_string(Tq) + " · " + std::to_string(Tk));
    std::vector<double> mask((size_t)(Tq * Tk), 0.0);
    for (int64_t i = 0; i < Tq; ++i) {
        bool any = false;
        for (int64_t j = 0; j < Tk; ++j) {
            if (visible[(size_t)(i * Tk + j)]) any = true;
            else mask[(size_t)(i * Tk + j)] = kMasked;
        }
        if (!any) throw std::invalid_argument("attention_masked: query " + std::to_string(i) + " sees no key");
    }
    Tensor scores = matmul(q * (1.0 / std::sqrt((double)dk)), transpose(k, -1, -2));  // (B, H, Tq, Tk)
    scores = scores + from_vector(mask, {Tq, Tk}, q.dtype());
    return matmul(softmax(scores, -1), v);  // (B, H, Tq, d_v)
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, int64_t window,
                 int64_t n_prefix, int64_t block_size) {
    check_qkv("attention", q, k, v);
    const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), dk = q.size(3);
    const int64_t Tk = k.size(2), dv = v.size(3);
    if (Tq > Tk)
        throw std::invalid_argument("attention: more queries than keys (queries align with the last keys): " +
                                    shapes3(q, k, v));
    if (window < 0 || block_size < 1 || n_prefix < 0 || n_prefix > Tk)
        throw std::invalid_argument("attention: need window >= 0, block_size >= 1, 0 <= n_persistent_prefix <= Tk; "
                                    "got window " + std::to_string(window) + ", block_size " +
                                    std::to_string(block_size) + ", n_persistent_prefix " +
                                    std::to_string(n_prefix) + " for " + shapes3(q, k, v));
    if (!causal && window > 0)
        throw std::invalid_argument("attention: a sliding window needs causal = true");
    if (Tq == 0) return zeros({B, H, 0, dv}, q.dtype());

    const Visibility visible{causal, window, n_prefix};
    const int64_t off = Tk - Tq;  // key index of query 0
    Tensor qs = q * (1.0 / std::sqrt((double)dk));

    const Plan plan = plan_attention(Tq, Tk, causal, window, n_prefix, block_size);
    if (plan.blocked) {
        // Windowed path: nb blocks of bq queries, each against L = n_prefix + bq + w − 1
        // gathered keys.
        const int64_t bq = plan.bq, nb = plan.nb, L = plan.L;
        std::vector<int64_t> idx((size_t)(nb * L));
        std::vector<double> mask((size_t)(nb * bq * L), 0.0);
        for (int64_t b = 0; b < nb; ++b) {
            const int64_t a0 = off + b * bq;  // key index of the block's first query
            for (int64_t c = 0; c < L; ++c) {
                // Columns: the prefix keys 0..n_prefix−1, then the span
                // [a0 − w + 1, a0 + bq). Span entries outside [n_prefix, Tk)
                // (before the start, duplicates of the prefix, past the end)
                // point at key 0 and are masked.
                const int64_t j = c < n_prefix ? c : a0 - window + 1 + (c - n_prefix);
                const bool in_range = c < n_prefix || (j >= n_prefix && j < Tk);
                idx[(size_t)(b * L + c)] = in_range ? j : 0;
                for (int64_t r = 0; r < bq; ++r)
                    if (!in_range || !visible(a0 + r, j)) mask[(size_t)((b * bq + r) * L + c)] = kMasked;
            }
        }
        const int64_t pad = nb * bq - Tq;
        if (pad > 0) qs = cat({qs, zeros({B, H, pad, dk}, q.dtype())}, 2);
        Tensor qb = reshape(qs, {B, H, nb, bq, dk});                                            // (B, H, nb, bq, dk)
        IndexTensor gather_idx({nb * L}, std::move(idx));
        Tensor kb = reshape(index_select(k, 2, gather_idx), {B, H, nb, L, dk});                 // (B, H, nb, L, dk)
        Tensor vb = reshape(index_select(v, 2, gather_idx), {B, H, nb, L, dv});                 // (B, H, nb, L, dv)
        Tensor scores = matmul(qb, transpose(kb, -1, -2)) + from_vector(mask, {nb, bq, L}, q.dtype());  // (B, H, nb, bq, L)
        Tensor out = matmul(softmax(scores, -1), vb);                                          // (B, H, nb, bq, dv)
        out = reshape(out, {B, H, nb * bq, dv});
        return pad > 0 ? narrow(out, 2, 0, Tq) : out;                                          // (B, H, Tq, dv)
    }

    // Dense path: all Tq × Tk scores at once (full causal attention costs that anyway).
    Tensor scores = matmul(qs, transpose(k, -1, -2));  // (B, H, Tq, Tk)
    std::vector<double> mask((size_t)(Tq * Tk), 0.0);
    bool any_masked = false;
    for (int64_t i = 0; i < Tq; ++i)
        for (int64_t j = 0; j < Tk; ++j)
            if (!visible(off + i, j)) { mask[(size_t)(i * Tk + j)] = kMasked; any_masked = true; }
    if (any_masked) scores = scores + from_vector(mask, {Tq, Tk}, q.dtype());
    return matmul(softmax(scores, -1), v);  // (B, H, Tq, dv)
}

std::array<Tensor, 3> attention_projections(const Tensor& x, const Tensor& W_Q, const Tensor& W_K, const Tensor& W_V,
                                            const AttentionConfig& cfg, const AttentionConvs& conv, ConvTails* tails) {
    std::array<Tensor, 3> z{matmul(x, W_Q), matmul(x, W_K), matmul(x, W_V)};  // (B, n, d) each
    const int64_t K = cfg.conv, B = x.size(0), n = x.size(1);
    if (K == 0) return z;
    check_convs("attention_projections", conv, cfg);
    const std::array<const Tensor*, 3> w{&conv.q, &conv.k, &conv.v};
    if (!tails) {
        for (size_t i = 0; i < 3; ++i) z[i] = causal_depthwise_conv1d(z[i], *w[i]);
        return z;
    }
    const std::array<Tensor*, 3> tail{&tails->q, &tails->k, &tails->v};
    for (size_t i = 0; i < 3; ++i) {
        Tensor& t = *tail[i];
        if (!t.defined()) t = zeros({B, K - 1, cfg.d_model}, x.dtype());      // the left padding of x
        if (t.size(0) != B)
            throw std::invalid_argument("attention_projections: the conv tails hold " + std::to_string(t.size(0)) +
                                        " rows, the piece " + std::to_string(B));
        Tensor zc = cat({t, z[i]}, 1);                                          // (B, K − 1 + n, d)
        t = contiguous(narrow(zc, 1, n, K - 1));                                // the last K − 1 inputs
        z[i] = narrow(causal_depthwise_conv1d(zc, *w[i]), 1, K - 1, n);         // (B, n, d)
    }
    return z;
}

double attended_keys_per_query(int64_t T, int64_t window, int64_t n_prefix) {
    if (T <= 0) return (double)n_prefix;
    const double w = (window <= 0 || window >= T) ? (double)T : (double)window;
    // Σ_t min(t + 1, w) over t < T, divided by T.
    const double total = w * (w + 1) / 2 + ((double)T - w) * w;
    return (double)n_prefix + total / (double)T;
}

Tensor split_heads(const Tensor& x, int64_t n_heads) {
    if (x.dim() != 3 || n_heads < 1 || x.size(2) % n_heads != 0)
        throw std::invalid_argument("split_heads: x must be (B, T, d) with d divisible by " +
                                    std::to_string(n_heads) + " heads, got " + shape_str(x.shape()));
    const int64_t B = x.size(0), T = x.size(1), dh = x.size(2) / n_heads;
    return permute(reshape(x, {B, T, n_heads, dh}), {0, 2, 1, 3});  // (B, H, T, d_h)
}

Tensor merge_heads(const Tensor& x) {
    if (x.dim() != 4) throw std::invalid_argument("merge_heads: x must be (B, H, T, d_h), got " + shape_str(x.shape()));
    const int64_t B = x.size(0), H = x.size(1), T = x.size(2), dh = x.size(3);
    return reshape(permute(x, {0, 2, 1, 3}), {B, T, H * dh});  // (B, T, d)
}

Attention::Attention(const AttentionConfig& cfg, Generator& gen) : cfg_(cfg) {
    const int64_t d = cfg.d_model;
    if (d < 1 || cfg.n_heads < 1 || d % cfg.n_heads != 0)
        throw std::invalid_argument("Attention: d_model " + std::to_string(d) + " must be a positive multiple of n_heads " +
                                    std::to_string(cfg.n_heads));
    if (cfg.use_rope && (d / cfg.n_heads) % 2 != 0)
        throw std::invalid_argument("Attention: RoPE needs an even head width, got d_model " + std::to_string(d) +
                                    " / n_heads " + std::to_string(cfg.n_heads));
    if (cfg.window < 0 || cfg.n_persistent < 0 || cfg.block_size < 1)
        throw std::invalid_argument("Attention: need window >= 0, n_persistent >= 0, block_size >= 1; got " +
                                    std::to_string(cfg.window) + ", " + std::to_string(cfg.n_persistent) + ", " +
                                    std::to_string(cfg.block_size));
    W_Q_ = register_parameter("W_Q", init::lecun_normal({d, d}, d, gen, cfg.dtype), StoredLayout::linear);
    W_K_ = register_parameter("W_K", init::lecun_normal({d, d}, d, gen, cfg.dtype), StoredLayout::linear);
    W_V_ = register_parameter("W_V", init::lecun_normal({d, d}, d, gen, cfg.dtype), StoredLayout::linear);
    W_O_ = register_parameter("W_O", init::lecun_normal({d, d}, d, gen, cfg.dtype), StoredLayout::linear);
    if (cfg.n_persistent > 0)
        persistent_ = register_parameter("persistent", init::normal({cfg.n_persistent, d}, 1.0, gen, cfg.dtype));
    if (cfg.conv != 0 && (cfg.conv < 2 || cfg.conv > kMaxAttentionConv))
        throw std::invalid_argument("Attention: conv must be 0 (none) or 2 … " + std::to_string(kMaxAttentionConv) +
                                    " taps, got " + std::to_string(cfg.conv));
    if (cfg.conv > 0) {
        // Drawn after the other weights, so a model without the conv keeps
        // the initial values it always had.
        auto conv_init = [&](const char* name) {
            Tensor w = init::normal({d, cfg.conv}, 0.3, gen, cfg.dtype);
            raw::add_(raw::select(w, 1, cfg.conv - 1), scalar_tensor(1.0, cfg.dtype));
            return register_parameter(name, w, StoredLayout::depthwise);
        };
        convs_.q = conv_init("conv_q");
        convs_.k = conv_init("conv_k");
        convs_.v = conv_init("conv_v");
    }
}

namespace {

// The argument checks of self_attention and self_attention_stream.
void check_self_attention(const std::string& who, const Tensor& x, const Tensor& W_Q, const Tensor& W_K,
                          const Tensor& W_V, const Tensor& W_O, const Tensor& persistent, const AttentionConfig& cfg,
                          const AttentionConvs& conv) {
    check_convs(who, conv, cfg);
    const int64_t d = cfg.d_model, Np = cfg.n_persistent;
    if (x.dim() != 3 || x.size(2) != d)
        throw std::invalid_argument(who + ": x must be (B, T, " + std::to_string(d) + "), got " +
                                    shape_str(x.shape()));
    for (const Tensor* W : {&W_Q, &W_K, &W_V, &W_O})
        if (W->shape() != Shape{d, d})
            throw std::invalid_argument(who + ": projections must be (" + std::to_string(d) + ", " +
                                        std::to_string(d) + "), got " + shape_str(W->shape()));
    const int64_t B = x.size(0);
    const bool shape_ok = Np > 0 ? persistent.defined() && (persistent.shape() == Shape{Np, d} ||
                                                            persistent.shape() == Shape{B, Np, d})
                                 : !persistent.defined();
    if (!shape_ok)
        throw std::invalid_argument(who + ": persistent tokens must be (" + std::to_string(Np) + ", " +
                                    std::to_string(d) + ") or (" + std::to_string(B) + ", " + std::to_string(Np) +
                                    ", " + std::to_string(d) + ")" + (Np > 0 ? "" : " (undefined)") + ", got " +
                                    (persistent.defined() ? shape_str(persistent.shape()) : "undefined"));
}

// The keys and values (B, N_p, d) of the persistent prefix: [P ; x] W =
// [P W ; x W]. Learned P (N_p, d) is projected once and shared by the batch;
// a per-sequence prefix (B, N_p, d) (MAL: the memory's outputs at the
// persistent positions) is projected per sequence.
std::pair<Tensor, Tensor> prefix_kv(const Tensor& persistent, const Tensor& W_K, const Tensor& W_V, int64_t B) {
    Tensor pk = matmul(persistent, W_K), pv = matmul(persistent, W_V);  // (N_p, d) or (B, N_p, d)
    if (persistent.dim() == 2) {
        const int64_t Np = persistent.size(0), d = persistent.size(1);
        pk = expand(unsqueeze(pk, 0), {B, Np, d});
        pv = expand(unsqueeze(pv, 0), {B, Np, d});
    }
    return {pk, pv};
}

}  // namespace

Tensor self_attention(const Tensor& x, const Tensor& W_Q, const Tensor& W_K, const Tensor& W_V, const Tensor& W_O,
                      const Tensor& persistent, const AttentionConfig& cfg, const AttentionConvs& conv) {
    check_self_attention("self_attention", x, W_Q, W_K, W_V, W_O, persistent, cfg, conv);
    const int64_t H = cfg.n_heads, Np = cfg.n_persistent, B = x.size(0);
    auto [q, k, v] = attention_projections(x, W_Q, W_K, W_V, cfg, conv);  // (B, T, d) each
    if (Np > 0) {
        auto [pk, pv] = prefix_kv(persistent, W_K, W_V, B);  // (B, N_p, d)
        k = cat({pk, k}, 1);  // (B, N_p + T, d)
        v = cat({pv, v}, 1);  // (B, N_p + T, d)
    }
    Tensor qh = split_heads(q, H);  // (B, H, T, d_h)
    Tensor kh = split_heads(k, H);  // (B, H, N_p + T, d_h)
    Tensor vh = split_heads(v, H);               // (B, H, N_p + T, d_h)
    if (cfg.use_rope) {
        qh = rope_from(qh, Np, cfg.rope_base);  // x_t at position N_p + t
        kh = rope_from(kh, 0, cfg.rope_base);   // P at 0..N_p−1, then x
    }
    Tensor y = attention(qh, kh, vh, true, cfg.window, Np, cfg.block_size);  // (B, H, T, d_h)
    return matmul(merge_heads(y), W_O);                                      // (B, T, d)
}

std::pair<Tensor, Tensor> persistent_heads(const Tensor& persistent, const Tensor& W_K, const Tensor& W_V,
                                           const AttentionConfig& cfg, int64_t batch) {
    auto [pk, pv] = prefix_kv(persistent, W_K, W_V, batch);  // (B, N_p, d)
    Tensor k = split_heads(pk, cfg.n_heads), v = split_heads(pv, cfg.n_heads);  // (B, H, N_p, d_h)
    if (cfg.use_rope) k = rope_from(k, 0, cfg.rope_base);
    return {k, v};
}

Tensor self_attention_stream(const Tensor& x, const Tensor& W_Q, const Tensor& W_K, const Tensor& W_V,
                             const Tensor& W_O, const Tensor& persistent, const AttentionConfig& cfg,
                             AttentionState& st, const AttentionConvs& conv) {
    check_self_attention("self_attention_stream", x, W_Q, W_K, W_V, W_O, persistent, cfg, conv);
    const int64_t H = cfg.n_heads, Np = cfg.n_persistent, B = x.size(0), n = x.size(1), w = cfg.window;
    if (B != st.batch || n < 1)
        throw std::invalid_argument("self_attention_stream: the stream was begun for " + std::to_string(st.batch) +
                                    " rows and takes pieces of >= 1 token; got x " + shape_str(x.shape()));
    if (Np > 0 && !st.prefix_k.defined())  // P sits at positions 0..N_p−1, whatever comes after it
        std::tie(st.prefix_k, st.prefix_v) = persistent_heads(persistent, W_K, W_V, cfg, B);
    auto [q, k, v] = attention_projections(x, W_Q, W_K, W_V, cfg, conv, &st.tails);  // (B, n, d) each
    Tensor qh = split_heads(q, H);  // (B, H, n, d_h)
    Tensor kh = split_heads(k, H);  // (B, H, n, d_h)
    Tensor vh = split_heads(v, H);  // (B, H, n, d_h)
    if (cfg.use_rope) {
        // x_t at N_p + t, as in self_attention: the piece starts at t = pos.
        qh = rope_from(qh, Np + st.pos, cfg.rope_base);
        kh = rope_from(kh, Np + st.pos, cfg.rope_base);
    }
    // Keys [prefix ; past ; piece]. attention() aligns the n queries with the
    // last n keys, so query i sits at key index N_p + n_past + i and the past
    // key c at N_p + c: their distance is that of the tokens in x (the past
    // holds the n_past tokens right before the piece), and the window and
    // the always-visible prefix select exactly what forward() would.
    // The past after this piece, before trimming: (B, H, n_past + n, d_h).
    Tensor k_new = st.k.defined() ? cat({st.k, kh}, 2) : kh;
    Tensor v_new = st.v.defined() ? cat({st.v, vh}, 2) : vh;
    Tensor k_all = Np > 0 ? cat({st.prefix_k, k_new}, 2) : k_new;  // (B, H, N_p + n_past + n, d_h)
    Tensor v_all = Np > 0 ? cat({st.prefix_v, v_new}, 2) : v_new;
    Tensor y = attention(qh, k_all, v_all, true, w, Np, cfg.block_size);  // (B, H, n, d_h)

    // Keep what a later query can see: with a window, the last w − 1 tokens
    // (copied, so the trimmed-off keys are freed rather than held by a view).
    const int64_t total = k_new.size(2), keep = w > 0 ? std::min(total, w - 1) : total;
    if (keep == 0) {
        st.k = Tensor();
        st.v = Tensor();
    } else if (keep < total) {
        st.k = contiguous(narrow(k_new, 2, total - keep, keep));
        st.v = contiguous(narrow(v_new, 2, total - keep, keep));
    } else {
        st.k = k_new;
        st.v = v_new;
    }
    st.pos += n;
    return matmul(merge_heads(y), W_O);  // (B, n, d)
}

std::unique_ptr<MixerState> Attention::begin_stream(int64_t batch) const {
    if (batch < 1) throw std::invalid_argument("Attention::begin_stream: batch must be >= 1, got " + std::to_string(batch));
    auto st = std::make_unique<AttentionState>();
    st->batch = batch;
    return st;
}

Tensor Attention::forward_stream(const Tensor& x, MixerState& state) {
    auto* st = dynamic_cast<AttentionState*>(&state);
    if (!st) throw std::invalid_argument("Attention::forward_stream: the state was not begun by an attention mixer");
    return self_attention_stream(x, W_Q_, W_K_, W_V_, W_O_, persistent_, cfg_, *st, convs_);
}

double self_attention_flops_per_token(const AttentionConfig& cfg, int64_t seq_len) {
    const double d = (double)cfg.d_model, Np = (double)cfg.n_persistent;
    const double n = attended_keys_per_query(seq_len, cfg.window, cfg.n_persistent);
    return 8 * d * d + 4 * d * n + (seq_len > 0 ? 4 * Np * d * d / (double)seq_len : 0.0);
}

double Attention::forward_flops_per_token(int64_t seq_len) const {
    return self_attention_flops_per_token(cfg_, seq_len);
}

}  // namespace miras
