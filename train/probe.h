// Checking the framework from outside: run one memory layer (or a whole
// model) on given parameters and input and report its output, a scalar loss
// and the gradient of that loss with respect to every parameter, as tensors
// named like tests/torch_ref/compare.py's, so another implementation can be
// diffed against ours (`miras forward` / `miras grad`, docs/training.md).
//
// Layer mode (one MirasLayer of docs/math.md §1, f64):
//   input   "x" (B, T, d), optional "R" (B, T, d), the cotangent (default: ones)
//   result  "out" o (B, T, d), "loss" sum(o * R) (shape []),
//           with grads: "grad.<param>" for every layer parameter (miras/layer.h
//           names), "grad.x" (B, T, d)
// Model mode (the Transformer of build_model):
//   input   "tokens" (B, T) integer ids, optional "targets" (B, T)
//   result  "out" logits (B, T, V), "loss" cross-entropy (only with targets),
//           with grads (needs targets): "grad.<param>" by Module name
// A parameter the loss does not reach gets an all-zero gradient.
//
//   MirasLayer layer(cfg);                           // cfg.dtype = f64
//   auto r = probe_layer(layer, x, R, /*grads=*/true);
//   write_tensor_file("ours.safetensors", r);
#pragma once

#include <map>
#include <string>
#include <vector>

#include "miras/layer.h"
#include "nn/transformer.h"
#include "tensor/index.h"

namespace miras {

using TensorMap = std::map<std::string, Tensor>;

// safetensors <-> tensors. Reading takes F32/F64 entries as tensors and
// integer entries (I64, I32, U8, ...) as IndexTensors; throws
// std::runtime_error naming the file and the entry for anything else.
void write_tensor_file(const std::string& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata = {});
struct TensorFile {
    TensorMap tensors;
    std::map<std::string, IndexTensor> indices;
};
TensorFile read_tensor_file(const std::string& path);

// x (B, T, d) of the layer's dtype; R (B, T, d) or undefined (= ones).
TensorMap probe_layer(MirasLayer& layer, const Tensor& x, const Tensor& R, bool grads,
                      ScanMode mode = ScanMode::chunked);
// tokens (B, T); targets (B, T) or empty (then no loss, and grads throws).
TensorMap probe_model(Transformer& model, const IndexTensor& tokens, const IndexTensor& targets, bool grads);

// The parameters of a module by name, as a TensorMap (detached copies).
TensorMap parameter_map(const Module& m);

// Parameter files (`miras forward/grad --params` and `--dump-params`, and the
// gradients `miras grad --out` writes) hold every parameter in PyTorch's
// layout (nn/module.h StoredLayout: a Linear weight (out, in)) and say so in
// their __metadata__: "layout": "pytorch". A square matrix fits either
// layout, so a file that does not say is refused (check_pytorch_layout)
// rather than guessed; "format": "pt" (what safetensors.torch.save_model and
// transformers write) counts as saying it.
inline constexpr const char* kLayoutKey = "layout";
inline constexpr const char* kPytorchLayout = "pytorch";
// Throws std::runtime_error naming `path` unless `metadata` says PyTorch layout.
void check_pytorch_layout(const std::string& path, const std::map<std::string, std::string>& metadata);
// A copy of `tensors` with each one named `prefix` + <a parameter of m> in
// that parameter's stored layout; the others as they are.
TensorMap to_stored_layout(const TensorMap& tensors, const Module& m, const std::string& prefix = "");
// The inverse for parameters read from `path`: a tensor of the wrong shape
// for its parameter's stored layout throws std::runtime_error naming the
// file, the tensor, its shape and the one expected.
TensorMap from_stored_layout(const std::string& path, const TensorMap& tensors, const Module& m);

}  // namespace miras
