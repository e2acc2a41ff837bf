// One experiment = one TOML file (train/configs/*.toml), read into a RunConfig.
//
//   [model]   the network: width, depth, mixer, dtype, seed
//   [memory]  the Miras memory layer (miras/config.h), with every mixer but "attn"
//   [data]    the task: mqar | passkey | bytes, sequence length, data seed
//   [optim]   adamw | sgd, learning-rate schedule, gradient clipping
//   [train]   steps, batch size, evaluation and logging cadence, BLAS threads
//   [output]  the run folder and checkpoint cadence
//
// Every key has a default (an empty file is the default experiment), a type
// and a range; docs/training.md lists them all. Reading is strict: an unknown
// key, a wrong type, a value out of range or an inconsistent combination
// throws std::runtime_error naming the file and the key.
//
//   RunConfig rc = load_run_config("train/configs/default.toml", {"optim.lr=1e-3"});
//   auto model = build_model(rc.model);
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "miras/config.h"
#include "nn/transformer.h"
#include "train/config.h"
#include "train/tasks.h"

namespace miras {

struct ModelConfig {
    std::string mixer = "lmm";   // "attn" | "lmm" | "mag" | "mal" | "mac" (docs/math.md §2, miras/mixers.h)
    int64_t vocab = 0;           // 0: the task's vocabulary; resolved by read_run_config
    int64_t d = 64;
    int64_t heads = 4;
    int64_t layers = 2;
    int64_t mlp_hidden = 0;      // 0: 8d/3 rounded up to a multiple of 8
    // > 0: mlp_hidden is chosen so that the model's parameter count is the
    // nearest to this (mlp_hidden_for_params); mlp_hidden must then be 0.
    int64_t params_target = 0;
    int64_t window = 0;          // attn, mag, mal: sliding window (0 = full causal)
    int64_t n_persistent = 0;    // attn, mag, mal, mac: persistent tokens N_p
    int64_t attn_conv = 0;       // attn, mag, mal, mac: taps of the attention's conv on q, k, v (0: none)
    int64_t segment = 32;        // mac: segment length C (read, attend, write per segment)
    std::string mac_write = "attention";  // mac: what the memory writes, "attention" (y, Eq. 24) | "input" (S)
    bool tie_embeddings = true;
    DType dtype = DType::f32;
    uint64_t seed = 0;
    MemoryConfig memory;         // lmm: d, heads, dtype, seed are filled per layer from the fields above
    bool memory_sequential = false;  // lmm: the token-by-token reference scan instead of the chunked one

    TransformerConfig transformer() const;
};

struct DataConfig {
    std::string task = "mqar";  // "mqar" | "passkey" | "bytes"
    int64_t seq_len = 32;
    uint64_t seed = 1;
    MqarSpec mqar{64, 32, 8, 0};        // vocab, seq_len (= seq_len above), pairs, queries
    PasskeySpec passkey{64, 32, 5, 0.5};  // vocab, seq_len (= seq_len above), digits, depth
    std::string bytes_path;
    double heldout_fraction = 0.1;
    std::string valid_path;              // bytes: a separate held-out file or folder (heldout_fraction unused)
    std::vector<int64_t> eval_lengths;   // evaluation sequence lengths; empty = {seq_len}
    // A length curriculum (docs/training.md): the first curriculum_steps[0]
    // steps train at curriculum_lengths[0], the next curriculum_steps[1] at
    // curriculum_lengths[1], ..., then the rest at seq_len. Empty: none.
    std::vector<int64_t> curriculum_lengths, curriculum_steps;

    int64_t vocab() const;  // of the task: mqar/passkey as configured, bytes 256
    // The same data at sequence length T (the task specs follow).
    DataConfig at_length(int64_t T) const;
    // The lengths evaluation runs at: eval_lengths, or {seq_len}.
    std::vector<int64_t> eval_seq_lens() const;
    // The data of curriculum stage `stage` (curriculum_lengths.size() = the
    // last, at seq_len): its length, and for mqar the pairs (and min_pairs,
    // queries) scaled with it, so a row is as dense as at seq_len.
    DataConfig curriculum_stage(size_t stage) const;
    // The data that training step `step` (0-based) draws from.
    DataConfig at_train_step(int64_t step) const;
    // Tokens in the first `steps` training steps of `batch` rows.
    int64_t train_tokens(int64_t steps, int64_t batch) const;
};

struct OptimConfig {
    std::string name = "adamw";  // "adamw" | "sgd"
    double lr = 1e-2;
    double min_lr_ratio = 0.1;   // floor of the cosine decay, as a fraction of lr
    int64_t warmup = 50;
    double clip = 1.0;           // max global gradient norm; 0 = no clipping
    double beta1 = 0.9, beta2 = 0.98, eps = 1e-8, weight_decay = 0.1;  // adamw
    double momentum = 0.9;                                              // sgd
};

struct LoopConfig {
    int64_t steps = 700;
    int64_t batch = 32;
    int64_t eval_every = 100;  // 0: only at the end
    int64_t eval_batches = 4;
    int64_t log_every = 10;    // plain-text progress lines when not on a terminal
    bool final_eval_all = true;  // bytes: the last evaluation reads the whole held-out split (train.final_eval = "all")
    // BLAS (OpenBLAS) threads of the run's matmuls; applied by train() over
    // OPENBLAS_NUM_THREADS. 1: the matrices are small, and the result must
    // not depend on the machine's core count (tensor/threads.h).
    int64_t threads = 1;
};

struct OutputConfig {
    std::string dir = "runs/default";
    int64_t checkpoint_every = 100;  // 0: only at the end (and on Ctrl-C)
};

struct RunConfig {
    ModelConfig model;
    DataConfig data;
    OptimConfig optim;
    LoopConfig train;
    OutputConfig output;
    std::string source;  // file name(s) joined with " + ", or "<built-in default>"
    std::string toml;    // the effective config (every key with the value used), for checkpoints
    // Where it came from, for the run's header and config.toml: the preset's
    // name (if any), the files in layer order (the preset's first), the
    // overrides as given, and the keys a later file set over an earlier one
    // (ConfigReader::layer_notes).
    std::string preset;
    std::vector<std::string> files, overrides, layer_notes;
    // "preset titans-lmm (train/configs/presets/titans-lmm.toml) + x.toml, --set a=1 --set b=2"
    std::string origin() const;
};

// Reads every section from `cfg`, validates cross-key constraints and checks
// that no unknown key is left. Throws std::runtime_error naming cfg.source().
RunConfig read_run_config(ConfigReader& cfg);
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Layered: preset `preset` (none if empty) as the base, then each of `files`
// in order (a later file's key replaces an earlier one's), then `overrides`.
// The order of `miras train|info|forward|grad [CONFIG...] --preset P --set k=v`.
RunConfig load_layered_config(const std::string& preset, const std::vector<std::string>& files,
                              const std::vector<std::string>& overrides = {});
RunConfig run_config_from_string(const std::string& toml_text, const std::string& source_name,
                                 const std::vector<std::string>& overrides = {});

// The default experiment: train/configs/default.toml holds the same values.
inline const char* kBuiltinConfigName = "<built-in default>";
RunConfig default_run_config(const std::vector<std::string>& overrides = {});

// Named presets: train/configs/presets/<name>.toml, one per model of docs/math.md §3
// (titans-lmm, moneta, yaad, memora, linear-attention, retnet, deltanet,
// gated-deltanet, ttt-linear, ttt-mlp) and per Titans hybrid of docs/math.md §2
// (titans-mac, titans-mag, titans-mal). The folder is looked for relative to
// the working folder first, then in the source tree the program was built
// from (so `miras train --preset …` works from anywhere).
inline constexpr const char* kPresetDir = "train/configs/presets";
// The preset folder in use (see above); empty if there is none.
std::string preset_dir();
// The names found in preset_dir(), sorted (empty if there is no folder).
std::vector<std::string> preset_names();
// The file of preset `name`; throws std::runtime_error listing the known
// presets when there is none.
std::string preset_path(const std::string& name);

// "config: <origin>", then "note: <line>" for each layer note: the header of
// `miras train` and `miras info`, so a run says what it was made from.
void print_config_header(std::ostream& out, const RunConfig& rc);
// What tells the memory mixers apart, for the same header: ", memory mlp
// (depth 2), bias l2, retention l2, momentum, chunk 16"; "" for "attn".
std::string memory_text(const ModelConfig& m);

// The model.mlp_hidden (>= 1) whose model, `m` otherwise, has the parameter
// count nearest `target`. The count is affine in the width (each block's
// SwiGLU MLP has 3 · d weights per hidden unit), so the one chosen is within
// half a step, 3 · d · layers / 2 parameters, of the target. Throws
// std::runtime_error when the target is below the count at width 1, above
// the count at the largest width, or the model has no MLP (layers = 0).
int64_t mlp_hidden_for_params(const ModelConfig& m, int64_t target);

// The model described by `m` (vocab must be resolved, i.e. > 0).
std::shared_ptr<Transformer> build_model(const ModelConfig& m);

}  // namespace miras
