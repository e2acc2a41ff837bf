#pragma once
// Shared by the libFuzzer harnesses of tests/fuzz/: the readers take file
// names, so each input is written to a file of its own (per process, reused
// across inputs) before the reader runs.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "train/model_config.h"
#include "train/safetensors.h"
#include "train/trainer.h"

namespace miras::fuzz {

// "<tmp>/miras_fuzz_<tag>_<pid><suffix>", holding the input bytes.
inline std::string write_input(const std::string& tag, const uint8_t* data, size_t size,
                               const std::string& suffix = "") {
    static const std::string dir = std::filesystem::temp_directory_path().string();
    const std::string path = dir + "/miras_fuzz_" + tag + "_" + std::to_string(::getpid()) + suffix;
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (size && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
    return path;
}

// A model small enough to build and run for every input; make_seeds writes
// checkpoints and tensor files of it, so mutated names and shapes start from
// ones that fit.
inline const char* const kTinyConfig = R"(
[model]
mixer = "lmm"
d = 8
heads = 2
layers = 1
mlp_hidden = 16
[memory]
chunk = 4
[data]
task = "mqar"
seq_len = 8
[data.mqar]
vocab = 16
num_pairs = 2
[train]
steps = 2
batch = 2
eval_batches = 1
[output]
dir = "runs/fuzz"
)";

// True when building `m` and running it on a few tokens costs at most a few
// milliseconds (the configs a harness reaches can ask for far larger models,
// which are valid, only slow).
inline bool small_model(const ModelConfig& m) {
    const MemoryConfig& mc = m.memory;
    return m.vocab <= 1024 && m.d <= 64 && m.layers <= 2 && m.mlp_hidden <= 256 && m.n_persistent <= 64 &&
           mc.depth <= 4 && mc.expansion <= 8;
}

}  // namespace miras::fuzz
