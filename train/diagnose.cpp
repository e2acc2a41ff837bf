#include "train/diagnose.h"

#include <cmath>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "miras/mixers.h"

namespace miras {
namespace {

// How many values of t are NaN or infinite (0 for an undefined tensor).
int64_t count_non_finite(const Tensor& t) {
    if (!t.defined()) return 0;
    int64_t bad = 0;
    for (double v : t.to_vector()) bad += std::isfinite(v) ? 0 : 1;
    return bad;
}

// The memory layer of a mixer that has one (lmm, mag, mal, mac), else null.
MirasLayer* memory_of(Mixer& m) {
    if (auto* x = dynamic_cast<MemoryMixer*>(&m)) return &x->memory();
    if (auto* x = dynamic_cast<MagMixer*>(&m)) return &x->memory();
    if (auto* x = dynamic_cast<MalMixer*>(&m)) return &x->memory();
    if (auto* x = dynamic_cast<MacMixer*>(&m)) return &x->memory();
    return nullptr;
}

// The memory layer alone on x (B, T, d), token by token: the first of its
// gates, weights (after a token's update) and output to be non-finite.
std::string memory_stage(MirasLayer& mem, const Tensor& x) {
    const int64_t B = x.size(0), T = x.size(1);
    MemoryState gates_state = mem.initial_state(B);
    const MemoryInputs in = mem.project(x, gates_state);  // every token's q, k, v and gates
    const std::pair<const char*, const Tensor*> gates[] = {
        {"q, k, v", &in.q}, {"q, k, v", &in.k}, {"q, k, v", &in.v}, {"θ (the inner step size)", &in.theta},
        {"η (the momentum)", &in.eta}, {"α (the forget rate)", &in.alpha}, {"δ (the Huber threshold)", &in.delta}};
    for (const auto& [name, t] : gates)
        if (count_non_finite(*t) > 0) return std::string("its ") + name + " are non-finite";
    MemoryState st = mem.initial_state(B);
    for (int64_t t = 0; t < T; ++t) {
        // One token per call: the sequential scan's update, then the read.
        Tensor y = mem.forward(narrow(x, 1, t, 1), &st, ScanMode::sequential);  // (B, 1, d)
        for (size_t i = 0; i < st.A.size(); ++i)
            if (count_non_finite(st.A[i]) > 0)
                return "its gates are finite, and weight matrix " + std::to_string(i + 1) + " of the memory became "
                       "non-finite at token " + std::to_string(t) + " of " + std::to_string(T) +
                       " (after that token's inner update)";
        if (count_non_finite(y) > 0)
            return "its gates and weights are finite, and its output became non-finite at token " + std::to_string(t) +
                   " of " + std::to_string(T);
    }
    return "the memory layer alone stays finite (so the rest of the mixer is)";
}

}  // namespace

std::string first_non_finite_stage(Transformer& model, const IndexTensor& ids) {
    NoGradGuard no_grad;
    Tensor h = model.embed().forward(ids);  // (B, T, d)
    if (count_non_finite(h) > 0) return "the token embedding";
    const auto& blocks = model.blocks();
    for (size_t l = 0; l < blocks.size(); ++l) {
        Block& b = *blocks[l];
        const Tensor x = b.norm1().forward(h);  // the mixer's input
        const Tensor y = b.mixer().forward(x);
        const std::string where = "block " + std::to_string(l);
        if (count_non_finite(y) > 0) {
            MirasLayer* mem = memory_of(b.mixer());
            return where + "'s mixer output" +
                   (mem ? " (its memory layer, run alone on the block's input: " + memory_stage(*mem, x) + ")" : "");
        }
        h = b.forward(h);
        if (count_non_finite(h) > 0) return where + "'s output (its mixer's output is finite: the MLP half)";
    }
    return "";
}

std::string deepest_non_finite_gradient(const std::vector<std::pair<std::string, Tensor>>& named) {
    // The backward runs from the loss toward the embedding, so a non-finite
    // value reaches every parameter before the place it arose: the last
    // such parameter in the forward's order marks that place.
    std::string deepest;
    int64_t params_bad = 0;
    for (const auto& [name, p] : named) {
        const Tensor g = grad_of(p);
        const int64_t bad = count_non_finite(g);
        if (bad == 0) continue;
        ++params_bad;
        deepest = name + " (" + std::to_string(bad) + " of " + std::to_string(g.numel()) + " values)";
    }
    if (deepest.empty()) return "";
    return deepest + "; " + std::to_string(params_bad) + " of " + std::to_string(named.size()) +
           " parameters have non-finite gradients";
}

// The message for a training loss or gradient norm that became `value` (NaN
// or infinite) at `step`. Later on, the usual cause is a step too large. At
// step 0 of a fresh run no update has happened, so the learning rate cannot
// be the cause: the message says where the forward of the initial weights
// first goes non-finite (train/diagnose.h), and which gradient does.
std::string non_finite_message(const std::string& what, double value, int64_t step, Transformer& model,
                               const IndexTensor& inputs, bool gradients) {
    std::string msg = "the " + what + " became " + std::to_string(value) + " at step " + std::to_string(step);
    if (step > 0) return msg + "; try a lower optim.lr" + (gradients ? "" : " or optim.clip");
    msg += ", before any update (so not because of the learning rate)";
    if (gradients) {
        const std::string g = deepest_non_finite_gradient(model.named_parameters());
        msg += g.empty() ? ": every gradient value is finite, their squares overflow the norm"
                         : ": the deepest parameter with a non-finite gradient is " + g;
    }
    const std::string where = first_non_finite_stage(model, inputs);
    msg += where.empty() ? "; the forward of the first batch is finite up to the logits"
                         : "; the forward of the first batch is first non-finite in " + where;
    return msg + ". Look for a key whose value the model's dtype cannot carry through the memory's "
                 "updates (e.g. memory.q, memory.huber_delta, memory.kl_c, memory.theta_max)";
}

}  // namespace miras
