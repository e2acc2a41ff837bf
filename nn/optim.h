#pragma once
// Optimizers for the outer training loop, gradient clipping and the learning
// rate schedule.
//
// An optimizer holds the (name, parameter) list of Module::named_parameters()
// and reads each parameter's accumulated gradient grad_of(p) (from
// backward()). step() updates the parameters in place with raw kernels under
// NoGradGuard: the update is not part of any graph, and the in-place write
// bumps each parameter's version so a graph recorded before the step refuses
// to run backward on stale values. Parameters with no gradient (unused this
// step) are left untouched, their state too.
//
// State (momentum buffers, Adam moments, the step count) is exported as named
// tensors for checkpoints; importing it and stepping reproduces the run.
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"

namespace miras {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using StateDict = std::map<std::string, Tensor>;

class Optimizer {
public:
    virtual ~Optimizer() = default;
    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;

    // One update of every parameter that has a gradient; increments steps().
    virtual void step() = 0;
    // Drops every parameter's gradient (grad_of(p) becomes undefined), so the
    // next backward() starts from zero.
    void zero_grad();

    double lr() const { return lr_; }
    void set_lr(double lr);     // e.g. set_lr(schedule.at(opt.steps())) before each step
    int64_t steps() const { return step_; }
    const NamedTensors& params() const { return params_; }

    // Copies of the state, named "<kind>.step" (0-d f64) and
    // "<kind>.<buffer>.<param name>". Later steps do not change an exported map.
    StateDict state_dict() const;
    // Strict: every name, shape and dtype must match, and no name may be
    // unexpected; every value must be finite, and a buffer that is a sum of
    // squares (AdamW's v) non-negative. The message lists every mismatch.
    // Nothing is written unless everything matches.
    void load_state_dict(const StateDict& state);

protected:
    Optimizer(NamedTensors params, double lr, std::string kind);
    // Per-parameter buffers, one list per buffer name: "momentum" or "m", "v".
    std::vector<std::pair<std::string, TensorList>> buffers_;
    // Names of the buffers whose values cannot be negative ("v").
    std::set<std::string> nonnegative_buffers_;

    NamedTensors params_;
    double lr_;
    int64_t step_ = 0;
    std::string kind_;
};

struct SGDOptions {
    double lr = 1e-2;
    double momentum = 0;  // 0: plain gradient descent (no buffers)
};

// Heavy-ball SGD, as PyTorch's (dampening 0, no Nesterov):
//   b ← μ b + g ;  p ← p − lr b      (b starts at 0, so the first b is g)
// State: "sgd.step", and "sgd.momentum.<name>" when μ ≠ 0.
class SGD : public Optimizer {
public:
    SGD(NamedTensors params, SGDOptions opt = {});
    void step() override;
    const SGDOptions& options() const { return opt_; }

private:
    SGDOptions opt_;
};

// Which parameters AdamW decays. The default rule decays parameters with at
// least 2 dims (projection matrices, embeddings) and not 1-D or 0-D ones
// (norm weights, biases, per-head gate biases), the usual practice since
// decaying a norm's gain or a bias only biases the model; nor a memory's
// initial state (a parameter named A0 or A0_<l>), see docs/nn.md.
using DecayRule = std::function<bool(const std::string& name, const Tensor& p)>;
bool decay_if_matrix(const std::string& name, const Tensor& p);

struct AdamWOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.01;
    DecayRule decay = decay_if_matrix;  // evaluated once per parameter, at construction
};

// AdamW (Loshchilov & Hutter 2019), as PyTorch's, with t = steps() + 1:
//   p ← p − lr λ p                   (decoupled decay, only where decays(i))
//   m ← β1 m + (1 − β1) g ;  v ← β2 v + (1 − β2) g²
//   p ← p − lr (m / (1 − β1ᵗ)) / (sqrt(v / (1 − β2ᵗ)) + eps)
// t is one global count: a parameter that skipped steps (no gradient) uses
// the bias correction of the global step, not of its own update count.
// State: "adam.step", "adam.m.<name>", "adam.v.<name>".
class AdamW : public Optimizer {
public:
    AdamW(NamedTensors params, AdamWOptions opt = {});
    void step() override;
    const AdamWOptions& options() const { return opt_; }
    bool decays(size_t i) const { return decay_.at(i); }  // i indexes params()

private:
    AdamWOptions opt_;
    std::vector<bool> decay_;
};

// Scales all gradients together so their global L2 norm is at most max_norm
// (factor max_norm / (norm + 1e-6), as PyTorch), and returns the norm before
// clipping. Parameters without a gradient are skipped. A non-finite norm
// leaves the gradients untouched and is returned as is, so the caller can
// skip the step.
double clip_grad_norm(const TensorList& params, double max_norm);
double clip_grad_norm(const NamedTensors& params, double max_norm);

// Linear warm-up, then cosine decay to a floor. `step` is the 0-based index
// of the update about to be taken:
//   step < warmup:           base · (step + 1) / warmup   (reaches base at the last warm-up step)
//   warmup ≤ step < total:   min + (base − min) · ½ (1 + cos(π (step − warmup) / (total − warmup)))
//   step ≥ total:            min
double lr_at(int64_t step, int64_t warmup, int64_t total, double base, double min);

struct LrSchedule {
    int64_t warmup = 0;
    int64_t total = 1;
    double base = 1e-3;
    double min = 0;
    double at(int64_t step) const { return lr_at(step, warmup, total, base, min); }
};

}  // namespace miras
