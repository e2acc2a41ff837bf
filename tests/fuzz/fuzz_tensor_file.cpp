// libFuzzer harness: the files of `miras forward` / `miras grad` (--params P,
// --input X): read_tensor_file (train/probe.h) on arbitrary bytes, then the
// result used as parameters (from_stored_layout, Module::load_parameters) and as input of a small
// model ("tokens", "targets") and memory layer ("x", "R"), as cmd_probe in
// train/cli.cpp does. Only std::exceptions may come out.
//   make fuzz && tests/fuzz/run.sh tensor_file
#include <exception>

#include "tests/fuzz/fuzz_util.h"
#include "train/probe.h"

using namespace miras;

namespace {

struct Targets {
    RunConfig rc = run_config_from_string(fuzz::kTinyConfig, "tiny");
    std::shared_ptr<Transformer> model = build_model(rc.model);
    MemoryConfig layer_cfg = [this] {
        MemoryConfig mc = rc.model.memory;
        mc.dtype = DType::f64;
        return mc;
    }();
    MirasLayer layer{layer_cfg};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static Targets t;
    const std::string path = fuzz::write_input("tf", data, size);
    TensorFile in;
    try {
        in = read_tensor_file(path);
    } catch (const std::exception&) {
        return 0;
    }
    try {
        t.model->load_parameters(from_stored_layout(path, in.tensors, *t.model));
    } catch (const std::exception&) {
    }
    try {
        t.layer.load_parameters(from_stored_layout(path, in.tensors, t.layer));
    } catch (const std::exception&) {
    }
    if (in.indices.count("tokens")) {
        IndexTensor targets = in.indices.count("targets") ? in.indices.at("targets") : IndexTensor{};
        try {
            probe_model(*t.model, in.indices.at("tokens"), targets, true);
        } catch (const std::exception&) {
        }
    }
    if (in.tensors.count("x")) {
        Tensor R = in.tensors.count("R") ? in.tensors.at("R") : Tensor{};
        try {
            probe_layer(t.layer, in.tensors.at("x"), R, true);
        } catch (const std::exception&) {
        }
    }
    return 0;
}
