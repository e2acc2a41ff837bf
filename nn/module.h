#pragma once
// Modules: objects that own named parameters and child modules, so a model's
// parameters can be listed as "blocks.0.mixer.W_Q", counted, saved and loaded
// by name. Parameters are leaf tensors that require grad; loading copies data
// into them in place, so every handle a module holds stays valid.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"

namespace miras {

// How a parameter is laid out in checkpoints and parameter files: PyTorch's
// convention for the module it corresponds to, so a state dict moves between
// the two without edits. The mathematics and the tensor in memory keep their
// own layout (x W, W (in, out)); the conversion happens only where a file is
// written or read (train/checkpoint.cpp, train/probe.cpp). Table of every
// parameter: docs/training.md, Checkpoints.
enum class StoredLayout {
    same,       // stored as held: vectors, nn.Embedding (num, dim), plain nn.Parameter
    linear,     // held (in, out) for x W; stored (out, in) like nn.Linear.weight (the transpose)
    depthwise,  // held (C, K); stored (C, 1, K) like nn.Conv1d(C, C, K, groups=C).weight
};

// "same", "linear", "depthwise".
const char* layout_name(StoredLayout l);
// The layout named `name`; false when there is none.
bool parse_layout(const std::string& name, StoredLayout& out);
// The stored shape of a held shape (a held shape of the wrong rank for the
// layout throws std::logic_error).
Shape stored_shape(StoredLayout l, const Shape& held);
// Contiguous copies in the other layout. from_stored throws
// std::invalid_argument when `stored` does not have a stored shape of `l`.
Tensor to_stored(StoredLayout l, const Tensor& held);
Tensor from_stored(StoredLayout l, const Tensor& stored);

class Module {
public:
    virtual ~Module() = default;
    Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    // Every parameter of this module and its children, depth first, in
    // registration order, with dotted names.
    std::vector<std::pair<std::string, Tensor>> named_parameters() const;
    TensorList parameters() const;
    int64_t num_parameters() const;
    // The stored layout of every parameter whose layout is not `same`, by
    // dotted name.
    std::map<std::string, StoredLayout> parameter_layouts() const;

    // Copies values into the parameters by name. Every name, shape and dtype
    // must match (strict: missing and unexpected names are errors too); the
    // message lists each mismatch.
    void load_parameters(const std::map<std::string, Tensor>& values);

    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }

protected:
    // Registers a parameter (marks it requires_grad) and returns it. `layout`
    // says how files store it (the module knows which PyTorch module the
    // parameter plays the part of).
    Tensor register_parameter(const std::string& name, Tensor t, StoredLayout layout = StoredLayout::same);
    template <class M> std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
        children_.emplace_back(name, m);
        return m;
    }

private:
    void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const;
    void collect_layouts(const std::string& prefix, std::map<std::string, StoredLayout>& out) const;
    std::vector<std::pair<std::string, Tensor>> params_;
    std::map<std::string, StoredLayout> layouts_;  // by local name; absent = same
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    bool training_ = true;
};

}  // namespace miras
