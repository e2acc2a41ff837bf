#include "train/probe.h"

#include <cstring>
#include <stdexcept>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "nn/loss.h"
#include "tensor/ops.h"
#include "train/safetensors.h"

namespace miras {

namespace {

StEntry to_entry(const std::string& name, const Tensor& t) {
    Tensor c = raw::contiguous(t);
    StEntry e;
    e.name = name;
    e.dtype = c.dtype() == DType::f32 ? "F32" : "F64";
    e.shape = c.shape();
    e.bytes.resize((size_t)c.numel() * dtype_size(c.dtype()));
    dispatch(c.dtype(), [&]<class T>() {
        if (!e.bytes.empty()) std::memcpy(e.bytes.data(), c.data<T>(), e.bytes.size());
    });
    return e;
}

// Integer entries of any width, signed or not, as int64 ids.
bool read_integers(const StEntry& e, std::vector<int64_t>& out) {
    const size_t n = e.bytes.size() / std::max<size_t>(1, st_dtype_size(e.dtype));
    out.resize(n);
    auto copy = [&]<class I>() {
        for (size_t i = 0; i < n; ++i) {
            I v;
            std::memcpy(&v, e.bytes.data() + i * sizeof(I), sizeof(I));
            out[i] = (int64_t)v;
        }
    };
    if (e.dtype == "I64") copy.template operator()<int64_t>();
    else if (e.dtype == "I32") copy.template operator()<int32_t>();
    else if (e.dtype == "I16") copy.template operator()<int16_t>();
    else if (e.dtype == "I8") copy.template operator()<int8_t>();
    else if (e.dtype == "U8") copy.template operator()<uint8_t>();
    else if (e.dtype == "U16") copy.template operator()<uint16_t>();
    else if (e.dtype == "U32") copy.template operator()<uint32_t>();
    else return false;
    return true;
}

// The gradients of `loss` with respect to `inputs`, zeros where it does not reach.
void add_grads(TensorMap& out, const Tensor& loss, const std::vector<std::pair<std::string, Tensor>>& inputs) {
    TensorList xs;
    for (const auto& [n, t] : inputs) xs.push_back(t);
    TensorList gs = grad({loss}, xs, {}, {.allow_unused = true});
    for (size_t i = 0; i < inputs.size(); ++i)
        out["grad." + inputs[i].first] = gs[i].defined() ? detach(gs[i]) : zeros_like(inputs[i].second);
}

}  // namespace

void write_tensor_file(const std::string& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata) {
    StFile f;
    f.metadata = metadata;
    for (const auto& [name, t] : tensors) f.entries.push_back(to_entry(name, t));
    write_safetensors(path, f);
}

TensorFile read_tensor_file(const std::string& path) {
    StFile f = read_safetensors(path);
    TensorFile r;
    for (const StEntry& e : f.entries) {
        if (e.dtype == "F32" || e.dtype == "F64") {
            const DType dt = e.dtype == "F32" ? DType::f32 : DType::f64;
            Tensor t = Tensor::empty(e.shape, dt);
            dispatch(dt, [&]<class T>() {
                if (!e.bytes.empty()) std::memcpy(t.data<T>(), e.bytes.data(), e.bytes.size());
            });
            r.tensors[e.name] = t;
            continue;
        }
        std::vector<int64_t> ids;
        if (!read_integers(e, ids))
            throw std::runtime_error(path + ": tensor '" + e.name + "' has dtype " + e.dtype +
                                     "; expected F32/F64 values or integer ids (I8, I16, I32, I64, U8, U16, U32)");
        r.indices[e.name] = IndexTensor(e.shape, std::move(ids));
    }
    return r;
}

TensorMap parameter_map(const Module& m) {
    TensorMap r;
    for (const auto& [n, p] : m.named_parameters()) r[n] = raw::clone(p);
    return r;
}

void check_pytorch_layout(const std::string& path, const std::map<std::string, std::string>& metadata) {
    auto layout = metadata.find(kLayoutKey);
    auto format = metadata.find("format");
    if (layout != metadata.end()) {
        if (layout->second == kPytorchLayout) return;
        throw std::runtime_error(path + ": __metadata__ \"layout\" is \"" + layout->second +
                                 "\"; parameter files must be in the \"pytorch\" layout");
    }
    if (format != metadata.end() && format->second == "pt") return;
    throw std::runtime_error(
        path + ": the file does not say how its matrices are laid out: its __metadata__ has no \"layout\": "
               "\"pytorch\" (nor \"format\": \"pt\"). Parameters are read in PyTorch's layout (nn.Linear "
               "weights (out, in), docs/training.md); files written by miras before that layout held (in, out). "
               "Save with metadata={\"layout\": \"pytorch\"} (safetensors.torch.save_file) once the weights are "
               "(out, in)");
}

TensorMap to_stored_layout(const TensorMap& tensors, const Module& m, const std::string& prefix) {
    TensorMap out = tensors;
    for (const auto& [name, l] : m.parameter_layouts()) {
        auto it = out.find(prefix + name);
        if (it != out.end()) it->second = to_stored(l, it->second);
    }
    return out;
}

TensorMap from_stored_layout(const std::string& path, const TensorMap& tensors, const Module& m) {
    TensorMap out = tensors;
    const auto layouts = m.parameter_layouts();
    for (const auto& [name, p] : m.named_parameters()) {
        auto l = layouts.find(name);
        auto it = out.find(name);
        if (l == layouts.end() || it == out.end()) continue;  // load_parameters checks the rest
        const Shape want = stored_shape(l->second, p.shape());
        if (it->second.shape() != want)
            throw std::runtime_error(path + ": tensor '" + name + "' is " + shape_str(it->second.shape()) +
                                     "; the parameter (" + layout_name(l->second) + ", held " + shape_str(p.shape()) +
                                     ") is stored " + shape_str(want) + " in PyTorch's layout");
        it->second = from_stored(l->second, it->second);
    }
    return out;
}

TensorMap probe_layer(MirasLayer& layer, const Tensor& x_in, const Tensor& R_in, bool grads, ScanMode mode) {
    const MemoryConfig& c = layer.config();
    if (x_in.dim() != 3 || x_in.shape()[2] != c.d)
        throw std::invalid_argument("probe_layer: x must be (B, T, d = " + std::to_string(c.d) + "), got " +
                                    shape_str(x_in.shape()));
    if (x_in.dtype() != c.dtype)
        throw std::invalid_argument("probe_layer: x is " + std::string(dtype_name(x_in.dtype())) +
                                    ", but the layer computes in " + dtype_name(c.dtype) + " (x must be " +
                                    dtype_name(c.dtype) + ")");
    Tensor R = R_in.defined() ? R_in : ones(x_in.shape(), c.dtype);
    if (R.shape() != x_in.shape() || R.dtype() != c.dtype)
        throw std::invalid_argument("probe_layer: R must match x " + shape_str(x_in.shape()) + " " +
                                    dtype_name(c.dtype) + ", got " + shape_str(R.shape()) + " " +
                                    dtype_name(R.dtype()));
    EnableGradGuard eg;
    Tensor x = raw::clone(x_in);
    set_requires_grad(x, grads);
    Tensor o = layer.forward(x, nullptr, mode);  // (B, T, d)
    Tensor loss = sum(mul(o, R));                // []
    TensorMap out{{"out", detach(o)}, {"loss", detach(loss)}};
    if (grads) {
        auto inputs = layer.named_parameters();
        inputs.emplace_back("x", x);
        add_grads(out, loss, inputs);
    }
    return out;
}

TensorMap probe_model(Transformer& model, const IndexTensor& tokens, const IndexTensor& targets, bool grads) {
    if (tokens.dim() != 2) throw std::invalid_argument("probe_model: tokens must be (B, T), got " + shape_str(tokens.shape));
    const bool has_targets = targets.numel() > 0 || !targets.shape.empty();
    if (has_targets && targets.shape != tokens.shape)
        throw std::invalid_argument("probe_model: targets " + shape_str(targets.shape) + " must match tokens " +
                                    shape_str(tokens.shape));
    if (grads && !has_targets) throw std::invalid_argument("probe_model: gradients need \"targets\" for the loss");
    EnableGradGuard eg;
    Tensor logits = model.forward(tokens);  // (B, T, V)
    TensorMap out{{"out", detach(logits)}};
    if (!has_targets) return out;
    Tensor loss = cross_entropy(logits, targets).loss;
    out["loss"] = detach(loss);
    if (grads) add_grads(out, loss, model.named_parameters());
    return out;
}

}  // namespace miras
