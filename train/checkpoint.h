// Training checkpoints as safetensors files (train/safetensors.h).
//
// One file holds everything a run needs to continue bit-exactly:
//   "<param name>"             every model parameter under its Module name
//                              ("embed.weight", "blocks.0.mixer.W_Q", ...), F32/F64
//   "optim.<state name>"       the optimizer state ("optim.adam.step",
//                              "optim.adam.m.embed.weight", ...; see nn/optim.h)
//   "train.step"               I64 scalar: updates taken so far
//   "train.data_seed"          U64 scalar: the data stream's seed; the batch of
//                              step s is a function of (data_seed, s) only, so
//                              (seed, step) is the whole data-stream state
//   __metadata__:
//     "format"    "miras-checkpoint-2"
//     "config"    the effective config (ConfigReader::dump_toml), to rebuild the model
//     "step", "optimizer"  human-readable copies
//     "data"      the byte corpus's fingerprint (ByteCorpus::fingerprint), if any
//     "sha256"    SHA-256 (hex) of the whole file, header, metadata and data,
//                 with these 64 digits taken as '0's: any accidental change
//                 of a byte (a flipped bit, a cut, a stray edit) is caught,
//                 in the stored config as much as in the tensors. It is no
//                 seal: whoever edits a file on purpose can recompute it.
//   Files of format "miras-checkpoint-1" (an FNV-1a "checksum" of the
//   tensors only) are still read.
//
// Writes go through write_safetensors (temporary file + rename). Reads
// validate the container, the format tag and the hash; loading into a
// model or optimizer checks every name, shape and dtype. Every problem is a
// std::runtime_error naming the file.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "nn/module.h"
#include "nn/optim.h"
#include "train/safetensors.h"

namespace miras {

inline constexpr const char* kCheckpointFormat = "miras-checkpoint-2";
inline constexpr const char* kLegacyCheckpointFormat = "miras-checkpoint-1";

struct Checkpoint {
    std::map<std::string, Tensor> params;  // by Module name
    StateDict optim;                       // by Optimizer::state_dict() name (empty: none saved)
    std::string optim_kind;                // "adam", "sgd" or "" (none)
    int64_t step = 0;
    uint64_t data_seed = 0;
    std::string config_toml;
    // TaskData::fingerprint() of the data trained on ("" for the synthetic
    // tasks, whose data the config determines, and for older checkpoints).
    std::string data_fingerprint;
};

// Snapshot of a model and (optionally) its optimizer.
Checkpoint make_checkpoint(const Module& model, const Optimizer* opt, int64_t step, uint64_t data_seed,
                           const std::string& config_toml, const std::string& data_fingerprint = "");

// Refuses (std::runtime_error, nothing written) parameters or optimizer
// state that hold a NaN or an infinity: a diverged run never replaces its
// last good checkpoint.
void save_checkpoint(const std::string& path, const Checkpoint& ck);
// Sets f.metadata["sha256"] to the hash of the file write_safetensors(path, f)
// writes (save_checkpoint does this; a test or a fuzzer re-signs an edit).
void sign_checkpoint(const std::string& path, StFile& f);
// Throws std::runtime_error on a missing, truncated or corrupted file or one
// that is not a miras checkpoint.
Checkpoint read_checkpoint(const std::string& path);

// Strict loads (every name, shape and dtype must match, every value be
// finite, and the optimizer state valid, see Optimizer::load_state_dict; the
// message lists each mismatch and names `path`). Nothing is written unless
// everything matches.
void load_model_state(const Checkpoint& ck, Module& model, const std::string& path);
void load_optimizer_state(const Checkpoint& ck, Optimizer& opt, const std::string& path);

}  // namespace miras
