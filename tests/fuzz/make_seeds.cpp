// Writes valid inputs of every reader into DIR/<target>/, the starting corpora
// of the harnesses in this folder (tests/fuzz/run.sh calls it):
//   build/fuzz/make_seeds DIR     (from the repository root: copies train/configs)
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "nn/module.h"
#include "tests/fuzz/fuzz_util.h"
#include "train/checkpoint.h"
#include "train/probe.h"

using namespace miras;
namespace fs = std::filesystem;

namespace {

void write_text(const fs::path& p, const std::string& s) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << s;
}

template <class T> StEntry entry(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
                                 const std::vector<T>& values) {
    StEntry e{name, dtype, std::move(shape), std::vector<uint8_t>(values.size() * sizeof(T))};
    if (!values.empty()) std::memcpy(e.bytes.data(), values.data(), e.bytes.size());
    return e;
}

void checkpoints(const fs::path& dir) {
    int n = 0;
    for (const std::vector<std::string>& sets :
         {std::vector<std::string>{}, {"optim.name=sgd"}, {"model.mixer=attn", "model.dtype=f64"},
          {"model.mixer=mac", "memory.memory=mlp", "memory.algorithm=momentum"}}) {
        RunConfig rc = run_config_from_string(fuzz::kTinyConfig, "tiny", sets);
        auto model = build_model(rc.model);
        auto opt = make_optimizer(rc.optim, *model);
        save_checkpoint((dir / ("ck" + std::to_string(n++) + ".safetensors")).string(),
                        make_checkpoint(*model, opt.get(), 3, rc.data.seed, rc.toml));
    }
}

void tensor_files(const fs::path& dir) {
    RunConfig rc = run_config_from_string(fuzz::kTinyConfig, "tiny");
    auto model = build_model(rc.model);
    write_tensor_file((dir / "params.safetensors").string(), parameter_map(*model));
    MemoryConfig mc = rc.model.memory;
    mc.dtype = DType::f64;
    MirasLayer layer(mc);
    write_tensor_file((dir / "layer_params.safetensors").string(), parameter_map(layer));
    Generator g(1);
    write_tensor_file((dir / "layer_input.safetensors").string(),
                      {{"x", randn({1, 4, mc.d}, g, DType::f64)}, {"R", randn({1, 4, mc.d}, g, DType::f64)}});
    StFile f;
    f.entries.push_back(entry<int64_t>("tokens", "I64", {1, 4}, {1, 2, 3, 4}));
    f.entries.push_back(entry<int64_t>("targets", "I64", {1, 4}, {2, 3, 4, -100}));
    write_safetensors((dir / "tokens.safetensors").string(), f);
    f.entries = {entry<int32_t>("tokens", "I32", {2, 2}, {5, 6, 7, 8}), entry<uint8_t>("targets", "U8", {2, 2}, {1, 2, 3, 4})};
    write_safetensors((dir / "tokens_i32.safetensors").string(), f);
}

void safetensors(const fs::path& dir) {
    write_safetensors((dir / "empty.safetensors").string(), StFile{});
    StFile f;
    f.metadata = {{"format", "pt"}, {"note", "seed"}};
    f.entries.push_back(entry<float>("a", "F32", {2, 3}, {1, 2, 3, 4, 5, 6}));
    f.entries.push_back(entry<double>("b.scalar", "F64", {}, {0.5}));
    f.entries.push_back(entry<int64_t>("c", "I64", {0, 4}, {}));
    f.entries.push_back(entry<uint16_t>("d", "BF16", {2}, {0x3f80, 0x4000}));
    f.entries.push_back(entry<uint8_t>("e", "BOOL", {1, 1, 3}, {0, 1, 1}));
    write_safetensors((dir / "mixed.safetensors").string(), f);
}

void configs(const fs::path& dir) {
    for (const fs::path& sub : {fs::path("train/configs"), fs::path("train/configs/presets")})
        if (fs::is_directory(sub))
            for (const auto& e : fs::directory_iterator(sub))
                if (e.path().extension() == ".toml") fs::copy_file(e.path(), dir / e.path().filename(), fs::copy_options::overwrite_existing);
    write_text(dir / "tiny.toml", fuzz::kTinyConfig);
    // Overrides follow the file, each after a '\0' (fuzz_config.cpp).
    write_text(dir / "tiny_sets.toml", std::string(fuzz::kTinyConfig) + '\0' + "model.mixer=mag" + '\0' +
                                           "memory.fixed_gates.eta=0.5" + '\0' + "data.task=\"passkey\"");
    write_text(dir / "inline.toml", "model = { d = 16, heads = [4][0] }\n");
    write_text(dir / "types.toml",
               "[data.passkey]\ndepth = 1e-1\ndepth_max = 1.0\n[model]\nseed = 0x10\n[output]\ndir = '''a\nb'''\n");
}

void byte_corpora(const fs::path& dir) {
    write_text(dir / "text", std::string("\x08\x10\x20", 3) + "the quick brown fox jumps over the lazy dog\n"
                                                               "pack my box with five dozen liquor jugs\n");
    write_text(dir / "short", std::string("\x03\xff\xff", 3) + "abcdefgh");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const fs::path root = argv[1];
    for (const char* t : {"safetensors", "checkpoint", "tensor_file", "config", "byte_corpus"})
        fs::create_directories(root / t);
    safetensors(root / "safetensors");
    checkpoints(root / "checkpoint");
    tensor_files(root / "tensor_file");
    configs(root / "config");
    byte_corpora(root / "byte_corpus");
    // Every container seeds the safetensors reader too.
    for (const char* t : {"checkpoint", "tensor_file"})
        for (const auto& e : fs::directory_iterator(root / t))
            fs::copy_file(e.path(), root / "safetensors" / (std::string(t) + "_" + e.path().filename().string()),
                          fs::copy_options::overwrite_existing);
    return 0;
}
