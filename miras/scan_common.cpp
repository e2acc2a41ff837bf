// Shared checks and helpers of the two memory scans, the initial state and
// the read-only retrieval.
#include "miras/scan_common.h"

#include <stdexcept>

namespace miras {
namespace scan_detail {
namespace {

void check_gate(const Tensor& g, bool used, const char* name, const Shape& want, DType dt, const std::string& op) {
    if (!used) return;
    if (!g.defined()) throw std::invalid_argument(op + ": gate " + name + " is used by the config but not given");
    if (g.shape() != want || g.dtype() != dt)
        throw std::invalid_argument(op + ": gate " + name + " must be " + shape_str(want) + " " + dtype_name(dt) + ", got " +
                                    shape_str(g.shape()) + " " + dtype_name(g.dtype()));
}

}  // namespace

ScanSetup setup_scan(const MemoryConfig& cfg, const MemoryInputs& in, const MemoryState& st, const char* op_c) {
    const std::string op = op_c;
    cfg.validate();
    ScanSetup s;
    s.arch = make_memory_arch(cfg);
    s.bias = &bias_fn(cfg.bias);
    s.ret = &retention(cfg.retention);
    s.shapes = s.arch->weight_shapes(cfg.head_dim());
    s.momentum = cfg.momentum();
    s.uses_alpha = s.ret->uses_alpha;
    s.outer_grad = grad_enabled();
    s.create_graph = s.outer_grad && !cfg.first_order;

    if (!in.q.defined() || !in.k.defined() || !in.v.defined() || !in.theta.defined())
        throw std::invalid_argument(op + ": q, k, v and theta must all be given");
    const Tensor& q = in.q;
    if (q.dim() != 4 || q.size(1) != cfg.heads || q.size(3) != cfg.head_dim())
        throw std::invalid_argument(op + ": q must be (B, H=" + std::to_string(cfg.heads) + ", T, d_h=" +
                                    std::to_string(cfg.head_dim()) + "), got " + shape_str(q.shape()));
    const DType dt = q.dtype();
    if (in.k.shape() != q.shape() || in.v.shape() != q.shape() || in.k.dtype() != dt || in.v.dtype() != dt)
        throw std::invalid_argument(op + ": q, k, v must share shape and dtype, got " + shape_str(q.shape()) + ", " +
                                    shape_str(in.k.shape()) + ", " + shape_str(in.v.shape()));
    s.B = q.size(0);
    s.H = q.size(1);
    s.T = q.size(2);
    s.dh = q.size(3);
    const Shape gshape = {s.B, s.H, s.T};
    check_gate(in.theta, true, "theta", gshape, dt, op);
    check_gate(in.eta, s.momentum, "eta", gshape, dt, op);
    check_gate(in.alpha, s.uses_alpha, "alpha", gshape, dt, op);
    check_gate(in.delta, cfg.bias == "huber_mix", "delta", gshape, dt, op);

    if (!st.started()) throw std::invalid_argument(op + ": the memory state is empty (use initial_memory_state)");
    if (st.A.size() != s.L())
        throw std::invalid_argument(op + ": the state has " + std::to_string(st.A.size()) + " weight matrices, the " +
                                    cfg.memory + " memory has " + std::to_string(s.L()));
    for (size_t l = 0; l < s.L(); ++l) {
        Shape want = {s.B, s.H, s.shapes[l].first, s.shapes[l].second};
        if (st.A[l].shape() != want || st.A[l].dtype() != dt)
            throw std::invalid_argument(op + ": state A[" + std::to_string(l) + "] must be " + shape_str(want) + " " +
                                        dtype_name(dt) + ", got " + shape_str(st.A[l].shape()) + " " +
                                        dtype_name(st.A[l].dtype()));
        if (s.momentum && (st.S.size() != s.L() || st.S[l].shape() != want))
            throw std::invalid_argument(op + ": the state's momentum S must hold one " + shape_str(want) +
                                        " tensor per weight matrix");
        if (st.offset > 0 && (st.anchor.size() != s.L() || st.anchor[l].shape() != want))
            throw std::invalid_argument(op + ": a chunk is in progress (offset " + std::to_string(st.offset) +
                                        ") but the state's anchor weights are missing or misshaped");
    }
    if (st.offset < 0 || st.offset >= cfg.chunk)
        throw std::invalid_argument(op + ": state offset " + std::to_string(st.offset) + " is outside [0, chunk = " +
                                    std::to_string(cfg.chunk) + ")");
    return s;
}

std::vector<MemoryInputs> split_time(const MemoryInputs& in, const std::vector<int64_t>& sizes) {
    std::vector<MemoryInputs> out(sizes.size());
    auto cut = [&](const Tensor& x, Tensor MemoryInputs::*field) {
        if (!x.defined()) return;
        TensorList p = split(x, sizes, 2);  // one node; its backward is one cat
        for (size_t i = 0; i < sizes.size(); ++i) out[i].*field = p[i];
    };
    cut(in.q, &MemoryInputs::q);
    cut(in.k, &MemoryInputs::k);
    cut(in.v, &MemoryInputs::v);
    cut(in.theta, &MemoryInputs::theta);
    cut(in.eta, &MemoryInputs::eta);
    cut(in.alpha, &MemoryInputs::alpha);
    cut(in.delta, &MemoryInputs::delta);
    return out;
}

Tensor finish_scan(const ScanSetup& s, MemoryState& st, std::vector<Tensor> A, std::vector<Tensor> S,
                   const std::vector<Tensor>& anchor, int64_t offset, const TensorList& ys, DType dt) {
    st.A = std::move(A);
    st.S = std::move(S);
    st.offset = offset;
    st.anchor = offset > 0 ? anchor : std::vector<Tensor>{};
    st.position += s.T;
    if (ys.empty()) return zeros({s.B, s.H, 0, s.dh}, dt);
    return ys.size() == 1 ? ys[0] : cat(ys, 2);  // (B, H, T, d_h)
}

std::vector<Tensor> phi_all(const ScanSetup& s, const std::vector<Tensor>& A, const MemoryConfig& cfg) {
    std::vector<Tensor> W;
    for (const Tensor& a : A) W.push_back(s.ret->phi(a, cfg));
    return W;
}

Tensor apply_weight(const Tensor& W, const Tensor& h) { return matmul(h, transpose(W, -1, -2)); }

Tensor inner_clip_factor(const Tensor& sq_norm, double c) {
    Tensor n = sqrt(add(sq_norm, 1e-12));
    return div(mul(tanh(mul(n, 1.0 / c)), c), n);
}

std::vector<Tensor> constant_leaves(const std::vector<Tensor>& W) {
    std::vector<Tensor> out;
    for (const Tensor& w : W) out.push_back(set_requires_grad(detach(w)));
    return out;
}

std::vector<Tensor> differentiable(const std::vector<Tensor>& W) {
    std::vector<Tensor> out;
    for (const Tensor& w : W) out.push_back(requires_grad(w) ? w : set_requires_grad(detach(w)));
    return out;
}

void UseCount::use(int l, const char* op) {
    if (l < 0 || (size_t)l >= n_.size())
        throw std::out_of_range(std::string(op) + ": the memory architecture asked for weight matrix " +
                                std::to_string(l) + " but has " + std::to_string(n_.size()));
    ++n_[(size_t)l];
}

void UseCount::check(const char* op) const {
    for (size_t l = 0; l < n_.size(); ++l)
        if (n_[l] != 1)
            throw std::logic_error(std::string(op) + ": the memory architecture applied weight matrix " +
                                   std::to_string(l) + " " + std::to_string(n_[l]) +
                                   " times; each must be applied exactly once per forward");
}

}  // namespace scan_detail

void MemoryState::detach() {
    for (auto* list : {&A, &S, &anchor})
        for (Tensor& t : *list) t = miras::detach(t);
    for (Tensor* t : {&conv_q, &conv_k, &conv_v})
        if (t->defined()) *t = miras::detach(*t);
}

MemoryState initial_memory_state(const MemoryConfig& cfg, const std::vector<Tensor>& A0, int64_t batch, DType dt) {
    cfg.validate();
    auto shapes = make_memory_arch(cfg)->weight_shapes(cfg.head_dim());
    if (!A0.empty() && A0.size() != shapes.size())
        throw std::invalid_argument("initial_memory_state: " + std::to_string(A0.size()) + " A0 tensors for a memory with " +
                                    std::to_string(shapes.size()) + " weight matrices");
    MemoryState st;
    for (size_t l = 0; l < shapes.size(); ++l) {
        Shape hs = {cfg.heads, shapes[l].first, shapes[l].second};
        Shape bs = {batch, cfg.heads, shapes[l].first, shapes[l].second};
        if (A0.empty()) {
            st.A.push_back(zeros(bs, dt));
        } else {
            if (A0[l].shape() != hs || A0[l].dtype() != dt)
                throw std::invalid_argument("initial_memory_state: A0[" + std::to_string(l) + "] must be " + shape_str(hs) +
                                            " " + dtype_name(dt) + ", got " + shape_str(A0[l].shape()) + " " +
                                            dtype_name(A0[l].dtype()));
            // A_0 is shared across the batch (docs/math.md §1.3): one parameter per head.
            st.A.push_back(expand(unsqueeze(A0[l], 0), bs));
        }
        if (cfg.momentum()) st.S.push_back(zeros(bs, dt));  // S_0 = 0 (docs/math.md §1.6)
    }
    st.conv_q = zeros({batch, 3, cfg.d}, dt);
    st.conv_k = zeros({batch, 3, cfg.d}, dt);
    st.conv_v = zeros({batch, 3, cfg.d}, dt);
    return st;
}

Tensor memory_retrieve(const MemoryConfig& cfg, const Tensor& q, const MemoryState& st) {
    cfg.validate();
    auto arch = make_memory_arch(cfg);
    const Retention& ret = retention(cfg.retention);
    if (!st.started()) throw std::invalid_argument("memory_retrieve: the memory state is empty");
    if (q.dim() != 4 || q.size(0) != st.batch() || q.size(1) != cfg.heads || q.size(3) != cfg.head_dim())
        throw std::invalid_argument("memory_retrieve: q must be (B=" + std::to_string(st.batch()) + ", H, T, d_h), got " +
                                    shape_str(q.shape()));
    std::vector<Tensor> W;
    for (const Tensor& a : st.A) W.push_back(ret.phi(a, cfg));
    scan_detail::UseCount uses(W.size());
    Tensor y = arch->forward(q, [&](int l, const Tensor& h) {
        uses.use(l, "memory_retrieve");
        return scan_detail::apply_weight(W[(size_t)l], h);
    });
    uses.check("memory_retrieve");
    return y;
}

}  // namespace miras
