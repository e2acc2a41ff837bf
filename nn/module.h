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

    // Copies values into the parameters by name. Every name, shape and dtype
    // must match (strict: missing and unexpected names are errors too); the
    // message lists each mismatch.
    void load_parameters(const std::map<std::string, Tensor>& values);

    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }

protected:
    // Registers a parameter (marks it requires_grad) and returns it.
    Tensor register_parameter(const std::string& name, Tensor t);
    template <class M> std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
        children_.emplace_back(name, m);
        return m;
    }

private:
    void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const;
    std::vector<std::pair<std::string, Tensor>> params_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    bool training_ = true;
};

}  // namespace miras
