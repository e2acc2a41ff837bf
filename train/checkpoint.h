// Training checkpoints as safetensors files (train/safetensors.h).
//
// One file holds everything a run needs to continue bit-exactly:
//   "<param name>"             every model parameter under its Module name
//                              ("embed.weight", "blocks.0.mixer.W_Q", ...), F32/F64,
//                              in PyTorch's layout (nn/module.h StoredLayout): a
//                              Linear weight held (in, out) is stored (out, in)
//   "optim.<state name>"       the optimizer state ("optim.adam.step",
//                              "optim.adam.m.embed.weight", ...; see nn/optim.h),
//                              each buffer in the layout of its parameter
//   "train.step"               I64 scalar: updates taken so far
//   "train.data_seed"          U64 scalar: the data stream's seed; the batch of
//                              step s is a function of (data_seed, s) only, so
//                              (seed, step) is the whole data-stream state
//   __metadata__:
//     "format"    "miras-checkpoint-3"
//     "layout"    "pytorch"
//     "layouts"   one line "<tensor name>=<layout>" for every stored tensor
//                 whose layout is not "same" ("blocks.0.mixer.W_Q=linear",
//                 "optim.adam.m.blocks.0.mixer.W_Q=linear", ...), so the file
//                 says how to read it back without the model
//     "config"    the effective config (ConfigReader::dump_toml), to rebuild the model
//     "step", "optimizer"  human-readable copies
//     "data"      the byte corpus's fingerprint (ByteCorpus::fingerprint), if any
//     "loop"      {"loss_ema", "loss_ema_steps", "elapsed_s", "cpu_s"}: Checkpoint::loop
//     "sha256"    SHA-256 (hex) of the whole file, header, metadata and data,
//                 with these 64 digits taken as '0's: any accidental change
//                 of a byte (a flipped bit, a cut, a stray edit) is caught,
//                 in the stored config as much as in the tensors. It is no
//                 seal: whoever edits a file on purpose can recompute it.
//   Older files are still read: "miras-checkpoint-2" (the same, but every
//   tensor in the layout held in memory, Linear weights (in, out)) and
//   "miras-checkpoint-1" (that layout, and an FNV-1a "checksum" of the
//   tensors only). Their format string says their layout, so nothing is
//   guessed; they are converted on load (to nothing: they hold the memory
//   layout already).
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

inline constexpr const char* kCheckpointFormat = "miras-checkpoint-3";
// Formats of files whose tensors are in the memory layout (Linear (in, out)).
inline constexpr const char* kHeldLayoutCheckpointFormat = "miras-checkpoint-2";
inline constexpr const char* kLegacyCheckpointFormat = "miras-checkpoint-1";

// Tensors in memory are in the layout the model holds (the file's PyTorch
// layout is converted on read and write).
struct Checkpoint {
    std::map<std::string, Tensor> params;  // by Module name
    StateDict optim;                       // by Optimizer::state_dict() name (empty: none saved)
    // The stored layout of each parameter that is not `same` (by Module name;
    // the optimizer's buffers follow their parameter). make_checkpoint takes
    // it from the model; read_checkpoint from the file.
    std::map<std::string, StoredLayout> layouts;
    // False for files of the older formats, which record no layouts: loading
    // then does not compare them with the model's.
    bool layouts_recorded = true;
    std::string optim_kind;                // "adam", "sgd" or "" (none)
    int64_t step = 0;
    uint64_t data_seed = 0;
    std::string config_toml;
    // TaskData::fingerprint() of the data trained on ("" for the synthetic
    // tasks, whose data the config determines, and for older checkpoints).
    std::string data_fingerprint;
    // The loop's running figures at `step`, so that a resumed run continues
    // them instead of starting them again (metadata "loop", JSON): the
    // smoothed loss (its average and how many steps it holds) and the wall
    // and CPU seconds spent on the steps so far. 0 in files without them.
    struct Loop {
        double loss_ema = 0, elapsed_s = 0, cpu_s = 0;
        int64_t loss_ema_steps = 0;
    } loop;
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

// Strict loads (every name, shape, dtype and stored layout must match, every value be
// finite, and the optimizer state valid, see Optimizer::load_state_dict; the
// message lists each mismatch and names `path`). Nothing is written unless
// everything matches.
void load_model_state(const Checkpoint& ck, Module& model, const std::string& path);
void load_optimizer_state(const Checkpoint& ck, Optimizer& opt, const std::string& path);

}  // namespace miras
