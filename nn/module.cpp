#include "nn/module.h"

#include <set>
#include <stdexcept>

namespace miras {

Tensor Module::register_parameter(const std::string& name, Tensor t) {
    for (auto& [n, _] : params_)
        if (n == name) throw std::logic_error("register_parameter: duplicate parameter name '" + name + "'");
    set_requires_grad(t);
    params_.emplace_back(name, t);
    return t;
}

void Module::collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const {
    for (auto& [n, t] : params_) out.emplace_back(prefix + n, t);
    for (auto& [n, m] : children_) m->collect(prefix + n + ".", out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
    std::vector<std::pair<std::string, Tensor>> out;
    collect("", out);
    return out;
}

TensorList Module::parameters() const {
    TensorList out;
    for (auto& [n, t] : named_parameters()) out.push_back(t);
    return out;
}

int64_t Module::num_parameters() const {
    int64_t n = 0;
    for (auto& [name, t] : named_parameters()) n += t.numel();
    return n;
}

void Module::load_parameters(const std::map<std::string, Tensor>& values) {
    auto params = named_parameters();
    std::string errors;
    std::set<std::string> known;
    for (auto& [name, p] : params) {
        known.insert(name);
        auto it = values.find(name);
        if (it == values.end()) { errors += "\n  missing parameter '" + name + "' " + shape_str(p.shape()); continue; }
        const Tensor& v = it->second;
        if (v.shape() != p.shape() || v.dtype() != p.dtype())
            errors += "\n  '" + name + "': expected " + shape_str(p.shape()) + " " + dtype_name(p.dtype()) + ", got " +
                      shape_str(v.shape()) + " " + dtype_name(v.dtype());
    }
    // Unexpected names are listed up to a point: a file of 200,000 foreign
    // tensors made a message of megabytes.
    constexpr size_t kListed = 20;
    size_t unexpected = 0;
    for (auto& [name, v] : values)
        if (!known.count(name) && unexpected++ < kListed)
            errors += "\n  unexpected parameter '" + name + "' " + shape_str(v.shape());
    if (unexpected > kListed) errors += "\n  ... and " + std::to_string(unexpected - kListed) + " more unexpected";
    if (!errors.empty()) throw std::invalid_argument("load_parameters: mismatch:" + errors);
    NoGradGuard ng;
    for (auto& [name, p] : params) raw::copy_(p, values.at(name));
}

void Module::train(bool on) {
    training_ = on;
    for (auto& [n, m] : children_) m->train(on);
}

}  // namespace miras
