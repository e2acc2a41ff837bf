// The training loop, evaluation and sampling.
//
// One step s (0-based) is:
//   batch_s = the task's batch for (data.seed, s)      -- nothing else: resumable
//   logits  = model(inputs)                              (B, T, V)
//   loss    = cross_entropy(logits, targets)             mean over the counted targets
//   backward(loss); clip the global gradient norm; lr = lr_at(s, ...); optimizer step
// A run resumed from the checkpoint of step s therefore repeats the losses of
// an uninterrupted run bit for bit: the batch depends only on (seed, s), and
// the parameters and optimizer state are restored exactly.
//
// Output, in the run folder: metrics.jsonl (one JSON object per line: train
// lines every train.log_every steps, eval lines at each evaluation),
// config.toml (the effective config) and checkpoint.safetensors (see
// train/checkpoint.h). On a terminal a live progress line is redrawn in place;
// otherwise plain lines are printed every train.log_every steps.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

#include "nn/optim.h"
#include "nn/transformer.h"
#include "train/checkpoint.h"
#include "train/model_config.h"
#include "train/tasks.h"

namespace miras {

// The data of a run: training batches by step, a fixed evaluation set.
class TaskData {
public:
    explicit TaskData(const DataConfig& cfg);  // loads the corpus for task "bytes"

    // The batch of step `step`: a function of (data.seed, step, batch) only.
    TokenBatch train_batch(int64_t step, int64_t batch) const;

    // An evaluation set at one sequence length.
    struct EvalSet {
        int64_t seq_len = 0;
        std::vector<TokenBatch> batches;
        // bytes: windows evaluated and windows in the held-out split; 0 for mqar/passkey
        int64_t windows = 0, total_windows = 0;
        std::string coverage() const;  // "1738 of 1738 held-out windows (all)", "256 rows", ...
    };
    // One set per length of data.eval_seq_lens(): `batches` batches of `batch`
    // rows, drawn from a stream disjoint from the training one (mqar,
    // passkey), or windows of the held-out split (bytes): `batches · batch`
    // of them spread evenly over it, or, with `whole`, all of them.
    std::vector<EvalSet> eval_sets(int64_t batches, int64_t batch, bool whole = false) const;
    // Names of the accuracy groups of the task's targets (TokenBatch::groups).
    const std::vector<std::string>& group_names() const;

    int64_t vocab() const { return cfg_.vocab(); }
    bool is_bytes() const { return cfg_.task == "bytes"; }
    const DataConfig& config() const { return cfg_; }
    std::string describe() const;
    // ByteCorpus::fingerprint() for a byte corpus; "" for the synthetic
    // tasks, whose data the config determines.
    std::string fingerprint() const;

private:
    DataConfig cfg_;
    std::shared_ptr<ByteCorpus> corpus_;
};

// Seed of batch `index` of a stream: splitmix64 mixing of (seed, index).
uint64_t batch_seed(uint64_t seed, uint64_t index);

struct EvalResult {
    double loss = 0;   // mean cross-entropy (nats) over the counted targets
    int64_t correct = 0, count = 0;
    // Per accuracy group (TokenBatch::groups): counted targets and correct ones.
    std::vector<int64_t> group_correct, group_count;
    double accuracy() const { return count ? (double)correct / (double)count : 0.0; }
    double bits_per_token() const;  // loss / ln 2: bits per byte for a byte corpus
};

// Loss and top-1 accuracy on `batches`, in eval mode without a graph.
EvalResult evaluate(Transformer& model, const std::vector<TokenBatch>& batches);
// The results of several sets pooled as one (losses weighted by their counts).
EvalResult pooled(const std::vector<EvalResult>& results);

// An evaluation at every length of a run.
struct EvalReport {
    std::vector<int64_t> seq_lens;
    std::vector<std::string> coverage;     // TaskData::EvalSet::coverage() per length
    std::vector<EvalResult> per_length;
    EvalResult all;                        // pooled over the lengths
    std::vector<std::string> group_names;  // of EvalResult::group_count
};
EvalReport evaluate_sets(Transformer& model, const std::vector<TaskData::EvalSet>& sets,
                         const std::vector<std::string>& group_names);
// loss, accuracy, count, bits_per_byte and accuracy_by_group (name -> accuracy) of a result.
nlohmann::json eval_json(const EvalResult& e, const std::vector<std::string>& group_names);

// Throws unless `data` is the data the checkpoint at `path` was trained on:
// the byte corpus's fingerprint must match the stored one (replacing the
// corpus before a resume or an eval went unnoticed). Nothing is compared for
// the synthetic tasks, for a checkpoint without a fingerprint, or with
// `allow_change` (--allow-data-change).
void check_same_data(const Checkpoint& ck, const TaskData& data, const std::string& path, bool allow_change);

// AdamW or SGD over model.named_parameters(), as configured (lr = optim.lr).
std::unique_ptr<Optimizer> make_optimizer(const OptimConfig& cfg, const Module& model);

// What the loop reports after each step (for tests and callers).
struct StepInfo {
    int64_t step = 0;  // updates taken so far (1 after the first)
    double loss = 0, accuracy = 0, lr = 0, grad_norm = 0;
};

struct TrainOptions {
    std::string out_dir;      // run folder; empty = output.dir of the config
    std::string resume_from;  // checkpoint to continue from; empty = a fresh run
    std::ostream* out = nullptr;  // progress and messages; nullptr = std::cout
    // -1: redraw a progress line in place when `out` is std::cout and stdout
    // is a terminal; 0: plain lines; 1: always redraw.
    int live_progress = -1;
    // SIGINT (Ctrl-C) and SIGTERM stop after the current step and save a checkpoint.
    bool handle_sigint = true;
    // A fresh run into a folder that holds another run (its checkpoint,
    // metrics or config) is refused; with `force` the old folder is first
    // renamed to "<dir>.old-<n>" (the first n free).
    bool force = false;
    // Resume although the byte corpus differs from the checkpoint's (check_same_data).
    bool allow_data_change = false;
    std::function<void(const StepInfo&)> on_step;
};

struct TrainResult {
    int64_t step = 0;          // updates taken when the run ended
    bool interrupted = false;  // stopped by SIGINT or SIGTERM before train.steps
    EvalResult last_eval;      // of the last evaluation, pooled over its lengths (count = 0 if none ran)
    EvalReport last_report;    // the same per length and group
    int64_t last_eval_step = -1;
    std::string checkpoint_path, metrics_path;
};

// An exclusive lock on a run folder while the object lives: flock on
// "<dir>/.lock", which then holds the holder's pid. The kernel drops the
// lock when the process ends, however it ends, so a lock is never stale.
// Throws std::runtime_error when another process holds it ("... is in use
// by another run (process <pid>, ...)") or the lock file cannot be made.
class RunLock {
public:
    explicit RunLock(const std::string& dir);
    ~RunLock();
    RunLock(const RunLock&) = delete;
    RunLock& operator=(const RunLock&) = delete;

private:
    std::string path_;
    int fd_ = -1;
};

// Trains as configured (or continues options.resume_from, whose model and
// optimizer must fit `cfg`), with the BLAS thread count set to train.threads
// for the run and the caller's count restored after it (tensor/threads.h).
// The run folder is locked for the run (flock on "<dir>/.lock", which holds
// the pid of the run): a second run into it is refused, naming that pid.
// Temporaries of interrupted saves ("*.tmp.<pid>" of a process that no longer
// exists) are removed when the run starts.
// Throws std::runtime_error on any problem (unwritable folder, corrupt
// checkpoint, non-finite loss, a folder in use or holding another run); a
// failed write of the metrics saves a checkpoint first.
TrainResult train(const RunConfig& cfg, const TrainOptions& options = {});

// Autoregressive sampling: extends `prompt` (ids in [0, V)) by `length`
// tokens. Each token comes from softmax(logits / temperature) restricted to
// the top_k most likely ids (top_k = 0: all); temperature 0 takes the argmax.
// Deterministic in `seed`. Returns the new tokens only; `on_token`, if given,
// also receives each one as soon as it is drawn (to print while generating).
// How the model reads the sequence:
//   - streamed, when every mixer can stream (Transformer::can_stream) and
//     `windowed` is false: the prompt is read once, in pieces of at most
//     `context` tokens, then one token per step against the carried state,
//     which holds the whole history (a windowed attention still sees only its
//     window);
//   - windowed otherwise: every step re-runs the model over the last
//     `context` tokens, nothing carried.
// While prompt + length <= context both read the same tokens, so they draw
// the same ones (to rounding of the logits).
std::vector<int64_t> sample_tokens(Transformer& model, const std::vector<int64_t>& prompt, int64_t length,
                                   double temperature, int64_t top_k, uint64_t seed, int64_t context,
                                   const std::function<void(int64_t)>& on_token = {}, bool windowed = false);

// Parameter counts grouped by top-level module ("embed", "blocks.0", ...,
// "norm", "head"), in registration order.
std::vector<std::pair<std::string, int64_t>> parameter_counts(const Module& model);

}  // namespace miras
