#include "nn/optim.h"

#include <cmath>
#include <numbers>
#include <set>
#include <stdexcept>

namespace miras {
namespace {

// The gradient of p as a contiguous tensor of p's shape and dtype, or
// undefined if p has none.
Tensor grad_for_update(const std::string& name, const Tensor& p, const char* op) {
    Tensor g = grad_of(p);
    if (!g.defined()) return g;
    if (g.shape() != p.shape() || g.dtype() != p.dtype())
        throw std::logic_error(std::string(op) + ": gradient of '" + name + "' is " + shape_str(g.shape()) + " " +
                               dtype_name(g.dtype()) + " but the parameter is " + shape_str(p.shape()) + " " +
                               dtype_name(p.dtype()));
    return raw::contiguous(g);
}

std::string describe(const Tensor& t) { return shape_str(t.shape()) + " " + dtype_name(t.dtype()); }

}  // namespace

// ---------------------------------------------------------------- Optimizer

Optimizer::Optimizer(NamedTensors params, double lr, std::string kind)
    : params_(std::move(params)), lr_(0), kind_(std::move(kind)) {
    set_lr(lr);
    std::set<std::string> names;
    std::set<const TensorImpl*> impls;
    for (auto& [name, p] : params_) {
        if (!p.defined()) throw std::invalid_argument(kind_ + ": parameter '" + name + "' is undefined");
        if (!names.insert(name).second) throw std::invalid_argument(kind_ + ": duplicate parameter name '" + name + "'");
        if (!impls.insert(p.impl_ptr()).second)
            throw std::invalid_argument(kind_ + ": parameter '" + name + "' is listed twice (under another name too)");
        if (!is_leaf(p) || !requires_grad(p))
            throw std::invalid_argument(kind_ + ": parameter '" + name + "' must be a leaf that requires grad");
        // The fused update loops walk the storage linearly.
        if (!p.is_contiguous())
            throw std::invalid_argument(kind_ + ": parameter '" + name + "' " + describe(p) + " is not contiguous");
    }
}

void Optimizer::set_lr(double lr) {
    if (!(lr >= 0) || !std::isfinite(lr))
        throw std::invalid_argument(kind_ + ": learning rate must be finite and >= 0, got " + std::to_string(lr));
    lr_ = lr;
}

void Optimizer::zero_grad() {
    for (auto& [name, p] : params_) set_grad(p, Tensor());
}

StateDict Optimizer::state_dict() const {
    StateDict out;
    out[kind_ + ".step"] = scalar_tensor((double)step_, DType::f64);
    for (auto& [buf, ts] : buffers_)
        for (size_t i = 0; i < params_.size(); ++i) out[kind_ + "." + buf + "." + params_[i].first] = raw::clone(ts[i]);
    return out;
}

void Optimizer::load_state_dict(const StateDict& state) {
    StateDict expected;
    expected[kind_ + ".step"] = scalar_tensor(0, DType::f64);
    std::map<std::string, Tensor> targets;  // name -> internal buffer to fill
    for (auto& [buf, ts] : buffers_)
        for (size_t i = 0; i < params_.size(); ++i) {
            std::string key = kind_ + "." + buf + "." + params_[i].first;
            expected[key] = ts[i];
            targets[key] = ts[i];
        }
    std::string errors;
    for (auto& [key, want] : expected) {
        auto it = state.find(key);
        if (it == state.end()) {
            errors += "\n  missing '" + key + "' " + describe(want);
        } else if (it->second.shape() != want.shape() || it->second.dtype() != want.dtype()) {
            errors += "\n  '" + key + "': expected " + describe(want) + ", got " + describe(it->second);
        }
    }
    for (auto& [key, t] : state)
        if (!expected.count(key)) errors += "\n  unexpected '" + key + "' " + describe(t);
    // Values: a NaN or a negative second moment would turn every later
    // update into NaN (sqrt of a negative), silently.
    if (errors.empty()) {
        for (auto& [key, buf] : targets) {
            const std::vector<double> x = raw::contiguous(state.at(key)).to_vector();
            const std::string name = key.substr(kind_.size() + 1, key.find('.', kind_.size() + 1) - kind_.size() - 1);
            const bool nonnegative = nonnegative_buffers_.count(name) > 0;
            int64_t bad = 0, first = -1;
            for (size_t i = 0; i < x.size(); ++i)
                if (!std::isfinite(x[i]) || (nonnegative && x[i] < 0)) {
                    if (bad++ == 0) first = (int64_t)i;
                }
            if (bad > 0)
                errors += "\n  '" + key + "': " + std::to_string(bad) + " of " + std::to_string(x.size()) +
                          " values are " + (nonnegative ? "negative or not finite" : "not finite") + " (the first, " +
                          std::to_string(x[(size_t)first]) + ", at flat index " + std::to_string(first) + ")";
        }
    }
    int64_t step = 0;
    if (errors.empty()) {
        double s = state.at(kind_ + ".step").item();
        if (!(s >= 0) || s != std::floor(s) || s > 9.0e15)
            errors += "\n  '" + kind_ + ".step' must be a non-negative integer, got " + std::to_string(s);
        else
            step = (int64_t)s;  // only in range: converting 1e300 or NaN is undefined
    }
    if (!errors.empty()) throw std::invalid_argument(kind_ + ": load_state_dict: mismatch:" + errors);
    NoGradGuard ng;
    for (auto& [key, buf] : targets) raw::copy_(buf, state.at(key));
    step_ = step;
}

// ---------------------------------------------------------------- SGD

SGD::SGD(NamedTensors params, SGDOptions opt) : Optimizer(std::move(params), opt.lr, "sgd"), opt_(opt) {
    if (!(opt.momentum >= 0 && opt.momentum < 1))
        throw std::invalid_argument("sgd: momentum must be in [0, 1), got " + std::to_string(opt.momentum));
    if (opt.momentum != 0) {
        TensorList bufs;
        for (auto& [name, p] : params_) bufs.push_back(zeros(p.shape(), p.dtype()));
        buffers_.emplace_back("momentum", std::move(bufs));
    }
}

void SGD::step() {
    NoGradGuard ng;
    const double lr = lr_, mu = opt_.momentum;
    for (size_t i = 0; i < params_.size(); ++i) {
        // Named references, not a structured binding: the lambda below uses p,
        // and capturing a binding is C++20 that clang accepts only from 16.
        const std::string& name = params_[i].first;
        const Tensor& p = params_[i].second;
        Tensor g = grad_for_update(name, p, "sgd");
        if (!g.defined()) continue;
        const int64_t n = p.numel();
        dispatch(p.dtype(), [&]<class T>() {
            T* pp = p.data<T>();
            const T* pg = g.data<T>();
            if (mu == 0) {
                for (int64_t k = 0; k < n; ++k) pp[k] = (T)(pp[k] - lr * pg[k]);
            } else {
                T* pb = buffers_[0].second[i].data<T>();
                for (int64_t k = 0; k < n; ++k) {
                    pb[k] = (T)(mu * pb[k] + pg[k]);  // b ← μ b + g
                    pp[k] = (T)(pp[k] - lr * pb[k]);  // p ← p − lr b
                }
                buffers_[0].second[i].bump_version();
            }
        });
        p.bump_version();
    }
    ++step_;
}

// ---------------------------------------------------------------- AdamW

bool decay_if_matrix(const std::string& name, const Tensor& p) {
    // A memory's initial pre-weights A0 / A0_<l> are a state, not a map:
    // under lq retention W_0 = A_0 / ‖A_0‖^{q-2} grows as A_0 shrinks, so
    // decaying them would push the memory the wrong way.
    std::string leaf = name.substr(name.rfind('.') == std::string::npos ? 0 : name.rfind('.') + 1);
    if (leaf == "A0" || leaf.rfind("A0_", 0) == 0) return false;
    return p.dim() >= 2;
}

AdamW::AdamW(NamedTensors params, AdamWOptions opt) : Optimizer(std::move(params), opt.lr, "adam"), opt_(opt) {
    auto in01 = [](double b) { return b >= 0 && b < 1; };
    if (!in01(opt.beta1) || !in01(opt.beta2))
        throw std::invalid_argument("adam: betas must be in [0, 1), got " + std::to_string(opt.beta1) + ", " +
                                    std::to_string(opt.beta2));
    if (!(opt.eps > 0)) throw std::invalid_argument("adam: eps must be > 0, got " + std::to_string(opt.eps));
    if (!(opt.weight_decay >= 0))
        throw std::invalid_argument("adam: weight_decay must be >= 0, got " + std::to_string(opt.weight_decay));
    if (!opt_.decay) opt_.decay = decay_if_matrix;
    TensorList m, v;
    for (auto& [name, p] : params_) {
        m.push_back(zeros(p.shape(), p.dtype()));
        v.push_back(zeros(p.shape(), p.dtype()));
        decay_.push_back(opt_.decay(name, p));
    }
    buffers_.emplace_back("m", std::move(m));
    buffers_.emplace_back("v", std::move(v));
    nonnegative_buffers_.insert("v");  // a running mean of squared gradients
}

void AdamW::step() {
    NoGradGuard ng;
    const double t = (double)(step_ + 1);
    const double b1 = opt_.beta1, b2 = opt_.beta2, eps = opt_.eps, lr = lr_;
    const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);  // bias corrections
    const double step_size = lr / bc1, inv_sqrt_bc2 = 1 / std::sqrt(bc2);
    for (size_t i = 0; i < params_.size(); ++i) {
        // Named references, not a structured binding: the lambda below uses p,
        // and capturing a binding is C++20 that clang accepts only from 16.
        const std::string& name = params_[i].first;
        const Tensor& p = params_[i].second;
        Tensor g = grad_for_update(name, p, "adam");
        if (!g.defined()) continue;
        const Tensor& m = buffers_[0].second[i];
        const Tensor& v = buffers_[1].second[i];
        const double keep = decay_[i] ? 1 - lr * opt_.weight_decay : 1;  // decoupled decay: p ← p − lr λ p
        const int64_t n = p.numel();
        dispatch(p.dtype(), [&]<class T>() {
            T *pp = p.data<T>(), *pm = m.data<T>(), *pv = v.data<T>();
            const T* pg = g.data<T>();
            for (int64_t k = 0; k < n; ++k) {
                const double gk = pg[k];
                const double mk = b1 * pm[k] + (1 - b1) * gk;
                const double vk = b2 * pv[k] + (1 - b2) * gk * gk;
                pm[k] = (T)mk;
                pv[k] = (T)vk;
                pp[k] = (T)(keep * pp[k] - step_size * mk / (std::sqrt(vk) * inv_sqrt_bc2 + eps));
            }
        });
        p.bump_version();
        m.bump_version();
        v.bump_version();
    }
    ++step_;
}

// ---------------------------------------------------------------- clipping

double clip_grad_norm(const TensorList& params, double max_norm) {
    if (!(max_norm > 0)) throw std::invalid_argument("clip_grad_norm: max_norm must be > 0, got " + std::to_string(max_norm));
    double sq = 0;
    for (const Tensor& p : params) {
        Tensor g = grad_of(p);
        if (!g.defined()) continue;
        g = raw::contiguous(g);
        dispatch(g.dtype(), [&]<class T>() {
            const T* pg = g.data<T>();
            for (int64_t k = 0, n = g.numel(); k < n; ++k) sq += (double)pg[k] * (double)pg[k];
        });
    }
    const double norm = std::sqrt(sq);
    if (!std::isfinite(norm) || norm <= max_norm) return norm;
    const double scale = max_norm / (norm + 1e-6);
    NoGradGuard ng;
    // A fresh tensor rather than an in-place scale: the accumulated gradient
    // may be a broadcast view or shared with another tensor.
    for (const Tensor& p : params) {
        Tensor g = grad_of(p);
        if (g.defined()) set_grad(p, raw::binary_scalar(raw::Binary::mul, g, scale));
    }
    return norm;
}

double clip_grad_norm(const NamedTensors& params, double max_norm) {
    TensorList ps;
    for (auto& [name, p] : params) ps.push_back(p);
    return clip_grad_norm(ps, max_norm);
}

// ---------------------------------------------------------------- schedule

double lr_at(int64_t step, int64_t warmup, int64_t total, double base, double min) {
    if (step < 0 || warmup < 0 || total < warmup || !(base >= 0) || !(min >= 0))
        throw std::invalid_argument("lr_at: need step >= 0, 0 <= warmup <= total, base >= 0, min >= 0; got step " +
                                    std::to_string(step) + ", warmup " + std::to_string(warmup) + ", total " +
                                    std::to_string(total) + ", base " + std::to_string(base) + ", min " +
                                    std::to_string(min));
    if (step < warmup) return base * (double)(step + 1) / (double)warmup;
    if (step >= total) return min;
    const double progress = (double)(step - warmup) / (double)(total - warmup);
    return min + (base - min) * 0.5 * (1 + std::cos(std::numbers::pi * progress));
}

}  // namespace miras
