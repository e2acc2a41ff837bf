#include "nn/module.h"

#include <set>
#include <stdexcept>

namespace miras {

const char* layout_name(StoredLayout l) {
    switch (l) {
        case StoredLayout::same: return "same";
        case StoredLayout::linear: return "linear";
        case StoredLayout::depthwise: return "depthwise";
    }
    return "?";
}

bool parse_layout(const std::string& name, StoredLayout& out) {
    for (StoredLayout l : {StoredLayout::same, StoredLayout::linear, StoredLayout::depthwise})
        if (name == layout_name(l)) {
            out = l;
            return true;
        }
    return false;
}

Shape stored_shape(StoredLayout l, const Shape& held) {
    if (l == StoredLayout::same) return held;
    if (held.size() != 2)
        throw std::logic_error(std::string("stored_shape: layout '") + layout_name(l) + "' needs a matrix, got " +
                               shape_str(held));
    if (l == StoredLayout::linear) return {held[1], held[0]};  // (in, out) -> (out, in)
    return {held[0], 1, held[1]};                              // (C, K) -> (C, 1, K)
}

Tensor to_stored(StoredLayout l, const Tensor& held) {
    const Shape s = stored_shape(l, held.shape());
    if (l == StoredLayout::linear) return raw::clone(raw::transpose(held, 0, 1));
    return raw::reshape(raw::clone(held), s);
}

Tensor from_stored(StoredLayout l, const Tensor& stored) {
    const Shape& s = stored.shape();
    const bool ok = l == StoredLayout::same || (l == StoredLayout::linear && s.size() == 2) ||
                    (l == StoredLayout::depthwise && s.size() == 3 && s[1] == 1);
    if (!ok)
        throw std::invalid_argument(std::string("a '") + layout_name(l) + "' parameter is stored " +
                                    (l == StoredLayout::linear ? "(out, in)" : "(C, 1, K)") + ", got " + shape_str(s));
    if (l == StoredLayout::same) return raw::clone(stored);
    if (l == StoredLayout::linear) return raw::clone(raw::transpose(stored, 0, 1));
    return raw::reshape(raw::clone(stored), {s[0], s[2]});
}

Tensor Module::register_parameter(const std::string& name, Tensor t, StoredLayout layout) {
    for (auto& [n, _] : params_)
        if (n == name) throw std::logic_error("register_parameter: duplicate parameter name '" + name + "'");
    stored_shape(layout, t.shape());  // a layout that cannot hold this shape is a programming error
    set_requires_grad(t);
    params_.emplace_back(name, t);
    if (layout != StoredLayout::same) layouts_[name] = layout;
    return t;
}

std::map<std::string, StoredLayout> Module::parameter_layouts() const {
    std::map<std::string, StoredLayout> out;
    collect_layouts("", out);
    return out;
}

void Module::collect_layouts(const std::string& prefix, std::map<std::string, StoredLayout>& out) const {
    for (auto& [n, l] : layouts_) out[prefix + n] = l;
    for (auto& [n, m] : children_) m->collect_layouts(prefix + n + ".", out);
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
