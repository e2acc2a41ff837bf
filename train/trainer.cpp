#include "train/trainer.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "nn/loss.h"
#include "tensor/threads.h"
#include "train/atomic_file.h"
#include "train/checkpoint.h"
#include "train/diagnose.h"
#include "train/loop_figures.h"

namespace miras {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- data

uint64_t batch_seed(uint64_t seed, uint64_t index) {
    uint64_t s = seed;
    uint64_t z = splitmix64(s) + index;
    return splitmix64(z);
}

namespace {

// Evaluation batches come from indices far above any training step, so the
// two streams never share a batch.
constexpr uint64_t kEvalStream = 1ull << 62;

IndexTensor inputs_of(const TokenBatch& b) { return IndexTensor({b.batch, b.seq_len}, b.inputs); }
IndexTensor targets_of(const TokenBatch& b) { return IndexTensor({b.batch, b.seq_len}, b.targets); }

}  // namespace

std::string TaskData::fingerprint() const { return corpus_ ? corpus_->fingerprint() : ""; }

void check_same_data(const Checkpoint& ck, const TaskData& data, const std::string& path, bool allow_change) {
    if (allow_change || ck.data_fingerprint.empty()) return;
    const std::string now = data.fingerprint();
    if (now != ck.data_fingerprint)
        throw std::runtime_error(path + ": the data differs from the data this checkpoint was trained on (then: " +
                                 ck.data_fingerprint + "; now: " + (now.empty() ? data.describe() : now) +
                                 "); give --allow-data-change to use it anyway");
}

TaskData::TaskData(const DataConfig& cfg) : cfg_(cfg) {
    if (is_bytes()) {
        corpus_ = std::make_shared<ByteCorpus>(cfg.bytes_path, cfg.heldout_fraction, cfg.valid_path);
        int64_t longest = cfg.seq_len;
        for (int64_t T : cfg.eval_seq_lens()) longest = std::max(longest, T);
        if (corpus_->size(Split::kTrain) < cfg.seq_len + 1 || corpus_->size(Split::kHeldout) < longest + 1)
            throw std::runtime_error(corpus_->describe() + ": the training split needs at least data.seq_len + 1 = " +
                                     std::to_string(cfg.seq_len + 1) + " bytes and the held-out split " +
                                     std::to_string(longest + 1) +
                                     "; use a longer file, a shorter data.seq_len or data.eval_lengths, or another "
                                     "data.bytes.heldout_fraction");
    }
}

TokenBatch TaskData::train_batch(int64_t step, int64_t batch) const {
    const uint64_t seed = batch_seed(cfg_.seed, (uint64_t)step);
    const DataConfig d = cfg_.at_train_step(step);  // cfg_ itself but within a length curriculum
    if (d.task == "mqar") return make_mqar(d.mqar, batch, seed);
    if (d.task == "passkey") return make_passkey(d.passkey, batch, seed);
    return corpus_->sample(Split::kTrain, batch, d.seq_len, seed);
}

std::string TaskData::EvalSet::coverage() const {
    int64_t rows = 0;
    for (const TokenBatch& b : batches) rows += b.batch;
    if (total_windows == 0) return std::to_string(rows) + " rows of " + std::to_string(seq_len) + " tokens";
    return std::to_string(windows) + " of " + std::to_string(total_windows) + " held-out windows of " +
           std::to_string(seq_len) + " bytes" + (windows == total_windows ? " (all)" : " (spread evenly)");
}

std::vector<TaskData::EvalSet> TaskData::eval_sets(int64_t batches, int64_t batch, bool whole) const {
    std::vector<EvalSet> sets;
    const std::vector<int64_t> lengths = cfg_.eval_seq_lens();
    for (size_t li = 0; li < lengths.size(); ++li) {
        EvalSet set;
        set.seq_len = lengths[li];
        if (is_bytes()) {
            set.total_windows = corpus_->num_windows(Split::kHeldout, set.seq_len);
            const std::vector<int64_t> idx =
                spread_indices(set.total_windows, whole ? set.total_windows : batches * batch);
            set.windows = (int64_t)idx.size();
            for (size_t first = 0; first < idx.size(); first += (size_t)batch) {
                const size_t n = std::min(idx.size() - first, (size_t)batch);
                set.batches.push_back(corpus_->windows(Split::kHeldout, set.seq_len,
                                                       std::vector<int64_t>(idx.begin() + (long)first,
                                                                            idx.begin() + (long)(first + n))));
            }
        } else {
            // The first length draws the same rows as a single-length evaluation.
            const DataConfig d = cfg_.at_length(set.seq_len);
            for (int64_t i = 0; i < batches; ++i) {
                const uint64_t seed = batch_seed(cfg_.seed, kEvalStream + ((uint64_t)li << 32) + (uint64_t)i);
                set.batches.push_back(cfg_.task == "mqar" ? make_mqar(d.mqar, batch, seed)
                                                          : make_passkey(d.passkey, batch, seed));
            }
        }
        sets.push_back(std::move(set));
    }
    return sets;
}

const std::vector<std::string>& TaskData::group_names() const {
    static const std::vector<std::string> none;
    if (cfg_.task == "mqar") return mqar_group_names();
    if (cfg_.task == "passkey") return passkey_group_names();
    return none;
}

std::string TaskData::describe() const {
    std::string text = cfg_.task == "mqar"      ? miras::describe(cfg_.mqar)
                       : cfg_.task == "passkey" ? miras::describe(cfg_.passkey)
                                                : corpus_->describe() + ", seq_len " + std::to_string(cfg_.seq_len);
    // "; curriculum: 600 steps at 64 tokens (8 pairs), then 256 tokens"
    const size_t n = cfg_.curriculum_lengths.size();
    if (n == 0) return text;
    for (size_t i = 0; i <= n; ++i) {
        const DataConfig d = cfg_.curriculum_stage(i);
        text += std::string(i == 0 ? "; curriculum: " : ", then ") +
                (i < n ? std::to_string(cfg_.curriculum_steps[i]) + " steps at " : "") + std::to_string(d.seq_len) +
                " tokens" + (d.task == "mqar" ? " (" + std::to_string(d.mqar.num_pairs) + " pairs)" : "");
    }
    return text;
}

// ---------------------------------------------------------------- evaluation

double EvalResult::bits_per_token() const { return loss / std::log(2.0); }

EvalResult evaluate(Transformer& model, const std::vector<TokenBatch>& batches) {
    const bool was_training = model.is_training();
    model.eval();
    NoGradGuard no_grad;
    EvalResult r;
    double nats = 0;
    for (const TokenBatch& b : batches) {
        const IndexTensor targets = targets_of(b);
        Tensor logits = model.forward(inputs_of(b));  // (B, T, V)
        CrossEntropyResult ce = cross_entropy(logits, targets);
        nats += ce.loss.item() * (double)ce.count;  // undo the mean: batches may count different targets
        const IndexTensor pred = raw::max_dim(logits, -1).indices;  // (B, T): first maximum on ties
        for (size_t i = 0; i < b.targets.size(); ++i) {
            if (b.targets[i] == kIgnoreIndex) continue;
            const bool ok = pred.data[i] == b.targets[i];
            ++r.count;
            r.correct += ok;
            if (b.groups.empty() || b.groups[i] < 0) continue;
            const size_t g = (size_t)b.groups[i];
            if (r.group_count.size() <= g) r.group_count.resize(g + 1, 0), r.group_correct.resize(g + 1, 0);
            ++r.group_count[g];
            r.group_correct[g] += ok;
        }
    }
    r.loss = r.count ? nats / (double)r.count : 0.0;
    model.train(was_training);
    return r;
}

EvalResult pooled(const std::vector<EvalResult>& results) {
    EvalResult p;
    double nats = 0;
    for (const EvalResult& r : results) {
        nats += r.loss * (double)r.count;
        p.count += r.count;
        p.correct += r.correct;
        if (p.group_count.size() < r.group_count.size()) {
            p.group_count.resize(r.group_count.size(), 0);
            p.group_correct.resize(r.group_count.size(), 0);
        }
        for (size_t g = 0; g < r.group_count.size(); ++g) {
            p.group_count[g] += r.group_count[g];
            p.group_correct[g] += r.group_correct[g];
        }
    }
    p.loss = p.count ? nats / (double)p.count : 0.0;
    return p;
}

EvalReport evaluate_sets(Transformer& model, const std::vector<TaskData::EvalSet>& sets,
                         const std::vector<std::string>& group_names) {
    EvalReport r;
    for (const TaskData::EvalSet& set : sets) {
        r.per_length.push_back(evaluate(model, set.batches));
        r.seq_lens.push_back(set.seq_len);
        r.coverage.push_back(set.coverage());
    }
    r.all = pooled(r.per_length);
    r.group_names = group_names;
    return r;
}

nlohmann::json eval_json(const EvalResult& e, const std::vector<std::string>& group_names) {
    nlohmann::json j = {{"loss", e.loss}, {"accuracy", e.accuracy()}, {"count", e.count},
                        {"bits_per_byte", e.bits_per_token()}};
    if (!e.group_count.empty()) {
        nlohmann::json g = nlohmann::json::object();
        for (size_t i = 0; i < e.group_count.size() && i < group_names.size(); ++i)
            if (e.group_count[i] > 0) g[group_names[i]] = (double)e.group_correct[i] / (double)e.group_count[i];
        j["accuracy_by_group"] = g;
    }
    return j;
}

std::unique_ptr<Optimizer> make_optimizer(const OptimConfig& cfg, const Module& model) {
    if (cfg.name == "sgd") {
        SGDOptions o;
        o.lr = cfg.lr;
        o.momentum = cfg.momentum;
        return std::make_unique<SGD>(model.named_parameters(), o);
    }
    AdamWOptions o;
    o.lr = cfg.lr;
    o.beta1 = cfg.beta1;
    o.beta2 = cfg.beta2;
    o.eps = cfg.eps;
    o.weight_decay = cfg.weight_decay;
    return std::make_unique<AdamW>(model.named_parameters(), o);
}

// ---------------------------------------------------------------- SIGINT

namespace {

volatile std::sig_atomic_t g_stop_requested = 0;

// SIGINT (Ctrl-C) and SIGTERM (what schedulers and `kill` send) alike.
extern "C" void on_sigint(int sig) {
    g_stop_requested = 1;
    std::signal(sig, SIG_DFL);  // a second one kills at once
}

// Installs the handler for the lifetime of a run and restores the previous ones.
class SigintGuard {
public:
    explicit SigintGuard(bool enable) : enabled_(enable) {
        g_stop_requested = 0;
        if (!enabled_) return;
        struct sigaction sa {};
        sa.sa_handler = on_sigint;
        sa.sa_flags = SA_RESTART;  // output to a pipe or terminal must not fail with EINTR
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_);
        sigaction(SIGTERM, &sa, &old_term_);
    }
    ~SigintGuard() {
        if (!enabled_) return;
        sigaction(SIGINT, &old_, nullptr);
        sigaction(SIGTERM, &old_term_, nullptr);
    }
    SigintGuard(const SigintGuard&) = delete;
    SigintGuard& operator=(const SigintGuard&) = delete;
    bool stop() const { return g_stop_requested != 0; }

private:
    bool enabled_;
    struct sigaction old_ {}, old_term_ {};
};

// ---------------------------------------------------------------- run folder

const char* const kLockName = ".lock";
// The files that make a folder a run's.
const char* const kRunFiles[] = {"checkpoint.safetensors", "metrics.jsonl", "config.toml"};


// Removes "<name>.tmp.<pid>" files (train/atomic_file.h) of processes that
// no longer exist: what an interrupted save leaves behind.
void remove_stale_temporaries(const std::string& dir, std::ostream& out) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        const size_t tmp = name.rfind(".tmp.");
        if (tmp == std::string::npos || tmp == 0) continue;
        const std::string digits = name.substr(tmp + 5);
        if (digits.empty() || digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); }))
            continue;
        const pid_t pid = (pid_t)std::stol(digits);
        if (pid <= 0 || pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
        std::error_code rm;
        if (it->is_regular_file(rm) && fs::remove(it->path(), rm))
            out << "removed " << it->path().string() << ", left by an interrupted save of process " << pid << "\n";
    }
}

// Creates and locks the run folder. A fresh run into a folder that holds
// another run is refused unless `force`, which renames the old folder to
// "<dir>.old-<n>" first (its lock held meanwhile, so no live run is moved).
std::unique_ptr<RunLock> claim_run_folder(const std::string& dir, bool fresh, bool force, std::ostream& out) {
    auto create = [&] {
        std::error_code ec;
        fs::create_directories(dir, ec);
        if (ec || !fs::is_directory(dir))
            throw std::runtime_error("cannot create the run folder '" + dir + "': " +
                                     (ec ? ec.message() : "a file of that name exists"));
        return std::make_unique<RunLock>(dir);
    };
    std::unique_ptr<RunLock> lock = create();
    if (fresh) {
        std::string found;
        for (const char* f : kRunFiles)
            if (fs::exists(fs::path(dir) / f)) found += (found.empty() ? "" : ", ") + std::string(f);
        if (!found.empty()) {
            if (!force)
                throw std::runtime_error("the run folder '" + dir + "' holds another run (" + found +
                                         "); continue it with --resume " + dir +
                                         ", give another --out, or start over with --force (which renames the old "
                                         "folder to " + dir + ".old-<n>)");
            std::string aside;
            for (int n = 1;; ++n) {
                aside = dir + ".old-" + std::to_string(n);
                if (!fs::exists(aside)) break;
            }
            std::error_code ec;
            fs::rename(dir, aside, ec);
            if (ec)
                throw std::runtime_error("--force: cannot rename the run folder '" + dir + "' to '" + aside +
                                         "': " + ec.message());
            out << "--force: the previous run in " << dir << " was moved to " << aside << "\n";
            std::unique_ptr<RunLock> old = std::move(lock);
            lock = create();
        }
    }
    remove_stale_temporaries(dir, out);
    return lock;
}

// ---------------------------------------------------------------- reporting

std::string human_rate(double per_s) {
    char buf[32];
    if (per_s >= 1e6)
        std::snprintf(buf, sizeof buf, "%.2fM", per_s / 1e6);
    else if (per_s >= 1e3)
        std::snprintf(buf, sizeof buf, "%.1fk", per_s / 1e3);
    else
        std::snprintf(buf, sizeof buf, "%.0f", per_s);
    return buf;
}

std::string fixed(double x, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, x);
    return buf;
}

// Newlines (a file name may hold one) would break the comment line of config.toml.
std::string one_line(std::string s) {
    std::replace(s.begin(), s.end(), '\n', ' ');
    return s;
}

// "acc 93.1%" for the recall tasks, "1.234 bits/byte" for a byte corpus.
std::string metric_text(bool bytes, double loss, double acc) {
    return bytes ? fixed(loss / std::log(2.0), 3) + " bits/byte" : "acc " + fixed(100 * acc, 1) + "%";
}

// One forward and backward of the batch of `step`, timed, without an update
// (the gradients are dropped, so the run is the same as without it): what a
// step will cost, known before the first one.
double warmup_seconds(Transformer& model, Optimizer& opt, const TaskData& data, int64_t step, int64_t batch) {
    const TokenBatch b = data.train_batch(step, batch);
    const auto t0 = std::chrono::steady_clock::now();
    {
        Tensor logits = model.forward(inputs_of(b));  // (B, T, V)
        backward(cross_entropy(logits, targets_of(b)).loss);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    opt.zero_grad();
    return seconds;
}

// Appends JSON lines, flushed one by one so a killed run keeps what it logged.
class MetricsLog {
public:
    // Drops lines beyond `keep_through_step` (a resumed run rewrites them).
    MetricsLog(const std::string& path, int64_t keep_through_step) : path_(path) {
        if (keep_through_step >= 0 && fs::exists(path)) {
            std::ifstream in(path);
            std::string line, kept;
            while (std::getline(in, line)) {
                auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
                if (j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
                    j["step"].get<int64_t>() <= keep_through_step)
                    kept += line + "\n";
            }
            in.close();
            write_file_atomically(path, {kept}, "cannot write the metrics file");  // a crash keeps the old log
        } else if (keep_through_step < 0) {
            std::ofstream truncate(path, std::ios::trunc);  // a fresh run starts a fresh log
        }
        out_.open(path, std::ios::app);
        if (!out_) throw std::runtime_error("cannot write the metrics file '" + path + "'");
    }
    void write(const nlohmann::json& j) {
        errno = 0;
        out_ << j.dump() << "\n";
        out_.flush();
        if (!out_)
            throw std::runtime_error("cannot write the metrics file '" + path_ + "'" +
                                     (errno ? std::string(": ") + std::strerror(errno) : std::string()));
    }

private:
    std::string path_;
    std::ofstream out_;
};


}  // namespace

// ---------------------------------------------------------------- run lock

RunLock::RunLock(const std::string& dir) : path_((fs::path(dir) / kLockName).string()) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("cannot create the lock file '" + path_ + "': " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        char buf[32] = {};
        const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
        std::string holder = n > 0 ? std::string(buf, (size_t)n) : "";
        holder.erase(std::remove_if(holder.begin(), holder.end(), [](char c) { return !std::isdigit((unsigned char)c); }),
                     holder.end());
        ::close(fd_);
        if (err == EWOULDBLOCK)
            throw std::runtime_error("the run folder '" + dir + "' is in use by another run (process " +
                                     (holder.empty() ? "unknown" : holder) + ", lock file '" + path_ +
                                     "'); wait for it to end or give another folder");
        throw std::runtime_error("cannot lock '" + path_ + "': " + std::strerror(err));
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != (ssize_t)pid.size()) {
        // The lock holds all the same; only the pid in messages is missing.
    }
}

RunLock::~RunLock() { ::close(fd_); }

// ---------------------------------------------------------------- training

TrainResult train(const RunConfig& cfg, const TrainOptions& options) {
    std::ostream& out = options.out ? *options.out : std::cout;
    const bool live = options.live_progress == 1 ||
                      (options.live_progress == -1 && &out == &std::cout && ::isatty(STDOUT_FILENO));

    // train.threads applies over OPENBLAS_NUM_THREADS (said below when they
    // differ), for this run only: the caller's count is back afterwards.
    const BlasThreadsScope blas_threads_of_run((int)cfg.train.threads);

    TaskData data(cfg.data);
    std::shared_ptr<Transformer> model = build_model(cfg.model);
    std::unique_ptr<Optimizer> opt = make_optimizer(cfg.optim, *model);

    int64_t step = 0;
    Checkpoint::Loop figures;  // the running figures of the steps so far (a resumed run continues them)
    if (!options.resume_from.empty()) {
        Checkpoint ck = read_checkpoint(options.resume_from);
        figures = ck.loop;
        load_model_state(ck, *model, options.resume_from);
        load_optimizer_state(ck, *opt, options.resume_from);
        check_same_data(ck, data, options.resume_from, options.allow_data_change);
        if (ck.data_seed != cfg.data.seed)
            throw std::runtime_error(options.resume_from + ": the checkpoint's data seed " +
                                     std::to_string(ck.data_seed) + " differs from data.seed = " +
                                     std::to_string(cfg.data.seed) + "; the resumed run would see other data");
        step = ck.step;
        // Nothing would run, and the log would show "step 800/500".
        if (step > cfg.train.steps)
            throw std::runtime_error(options.resume_from + ": the checkpoint is at step " + std::to_string(step) +
                                     ", past train.steps = " + std::to_string(cfg.train.steps) +
                                     "; set train.steps >= " + std::to_string(step) +
                                     " to train on (or evaluate it with miras eval)");
    }

    const std::string dir = options.out_dir.empty() ? cfg.output.dir : options.out_dir;
    const std::unique_ptr<RunLock> folder_lock = claim_run_folder(dir, options.resume_from.empty(), options.force, out);
    TrainResult result;
    result.checkpoint_path = (fs::path(dir) / "checkpoint.safetensors").string();
    result.metrics_path = (fs::path(dir) / "metrics.jsonl").string();
    write_file_atomically((fs::path(dir) / "config.toml").string(),
                          {"# effective config of this run (every key, defaults included)\n# made from: ",
                           one_line(cfg.origin()), "\n", cfg.toml});
    MetricsLog metrics(result.metrics_path, options.resume_from.empty() ? -1 : step);

    const LoopConfig& loop = cfg.train;
    const int64_t total = loop.steps, B = loop.batch, T = cfg.data.seq_len;
    const bool bytes = data.is_bytes();
    // Periodic evaluations read an even spread of the held-out set; the last
    // one all of it (train.final_eval = "all", bytes).
    const std::vector<TaskData::EvalSet> eval_sets = data.eval_sets(loop.eval_batches, B, false);
    std::vector<TaskData::EvalSet> final_sets;
    auto final_eval_sets = [&]() -> const std::vector<TaskData::EvalSet>& {
        if (!loop.final_eval_all || !bytes) return eval_sets;
        if (final_sets.empty()) final_sets = data.eval_sets(loop.eval_batches, B, true);
        return final_sets;
    };

    print_config_header(out, cfg);
    out << "model: " << cfg.model.mixer << ", d " << cfg.model.d << ", " << cfg.model.layers
        << (cfg.model.layers == 1 ? " layer, " : " layers, ") << cfg.model.heads << " heads, mlp hidden "
        << cfg.model.transformer().mlp_hidden_or_default()
        << (cfg.model.params_target > 0 ? " (for model.params_target = " + std::to_string(cfg.model.params_target) + ")"
                                        : std::string())
        << ", " << model->num_parameters() << " parameters ("
        << dtype_name(cfg.model.dtype) << ")" << memory_text(cfg.model) << "\n"
        << "data:  " << data.describe() << "\n"
        << "train: " << total << " steps of " << B << " x " << T << " tokens, " << cfg.optim.name << " lr "
        << cfg.optim.lr << ", " << blas_threads() << " BLAS thread" << (blas_threads() == 1 ? "" : "s")
        << "; run folder " << dir << "\n";
    const char* env_threads = std::getenv("OPENBLAS_NUM_THREADS");
    if (env_threads && *env_threads && std::string(env_threads) != std::to_string(cfg.train.threads))
        out << "note: OPENBLAS_NUM_THREADS=" << env_threads << " is not used: train.threads = " << cfg.train.threads
            << " sets the BLAS threads of a run\n";
    if (step > 0) out << "resuming from " << options.resume_from << " at step " << step << "\n";
    out.flush();

    const std::string data_fingerprint = data.fingerprint();  // stored with every checkpoint
    Clocks clocks(figures);
    auto save = [&](int64_t s) {
        try {
            Checkpoint ck = make_checkpoint(*model, opt.get(), s, cfg.data.seed, cfg.toml, data_fingerprint);
            ck.loop = figures;
            ck.loop.elapsed_s = clocks.elapsed_s();
            ck.loop.cpu_s = clocks.cpu_s();
            save_checkpoint(result.checkpoint_path, ck);
        } catch (const std::runtime_error& e) {
            throw std::runtime_error("step " + std::to_string(s) + ": " + e.what());
        }
    };
    // A failed metrics write (a full disk) stops the run, but the state of
    // the steps taken is saved first, so the run can be resumed.
    auto write_metrics = [&](const nlohmann::json& j) {
        try {
            metrics.write(j);
        } catch (const std::runtime_error& e) {
            std::string saved;
            try {
                save(step);
                saved = "; the checkpoint of step " + std::to_string(step) + " was saved first (resume with --resume " +
                        result.checkpoint_path + ")";
            } catch (const std::exception& s) {
                saved = std::string("; saving the checkpoint failed too: ") + s.what();
            }
            throw std::runtime_error(e.what() + saved);
        }
    };
    auto run_eval = [&](int64_t s, bool last) {
        const std::vector<TaskData::EvalSet>& sets = last ? final_eval_sets() : eval_sets;
        result.last_report = evaluate_sets(*model, sets, data.group_names());
        result.last_eval = result.last_report.all;
        result.last_eval_step = s;
        // A non-finite evaluation loss is divergence as much as a non-finite
        // training loss: stop before it is saved as the run's result.
        for (size_t i = 0; i < sets.size(); ++i)
            if (!std::isfinite(result.last_report.per_length[i].loss))
                throw std::runtime_error("the evaluation loss became " +
                                         std::to_string(result.last_report.per_length[i].loss) + " at step " +
                                         std::to_string(s) + " (seq_len " + std::to_string(sets[i].seq_len) +
                                         "); the model diverged, and the checkpoint keeps the last state saved "
                                         "before; try a lower optim.lr or optim.clip");
        for (size_t i = 0; i < sets.size(); ++i) {
            const EvalResult& e = result.last_report.per_length[i];
            nlohmann::json j = eval_json(e, data.group_names());
            j["step"] = s;
            j["split"] = "eval";
            j["seq_len"] = sets[i].seq_len;
            j["covered"] = sets[i].coverage();
            if (last) j["final"] = true;
            write_metrics(j);
            if (live) out << "\r\033[K";
            out << "eval  step " << s << "/" << total << (sets.size() > 1 ? "  T " + std::to_string(sets[i].seq_len) : "")
                << "  loss " << fixed(e.loss, 4) << "  " << metric_text(bytes, e.loss, e.accuracy())
                << (bytes ? "  acc " + fixed(100 * e.accuracy(), 1) + "%" : "") << "  (" << e.count
                << " targets; " << sets[i].coverage() << ")\n";
        }
        out.flush();
    };

    SigintGuard sigint(options.handle_sigint);
    const TensorList params = model->parameters();
    model->train();
    if (step < total) {
        const double timed_tokens = (double)(B * cfg.data.at_train_step(step).seq_len);
        const double to_go = (double)(cfg.data.train_tokens(total, B) - cfg.data.train_tokens(step, B));
        print_estimate(out, warmup_seconds(*model, *opt, data, step, B), total - step,
                       to_go / (timed_tokens * (double)(total - step)));
    }
    clocks.start();
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t first_step = step;
    double last_draw = -1;
    while (step < total && !sigint.stop()) {
        const TokenBatch batch = data.train_batch(step, B);
        const IndexTensor targets = targets_of(batch);
        opt->zero_grad();
        Tensor logits = model->forward(inputs_of(batch));  // (B, T, V)
        CrossEntropyResult ce = cross_entropy(logits, targets);
        const double loss = ce.loss.item();
        const double train_acc = accuracy(logits, targets).value();
        if (!std::isfinite(loss))
            throw std::runtime_error(non_finite_message("training loss", loss, step, *model, inputs_of(batch), false));
        backward(ce.loss);
        logits = Tensor();  // the graph is freed: only the values are needed below
        const double grad_norm = cfg.optim.clip > 0 ? clip_grad_norm(params, cfg.optim.clip)
                                                    : clip_grad_norm(params, HUGE_VAL);  // reports the norm only
        if (!std::isfinite(grad_norm))
            throw std::runtime_error(non_finite_message("gradient norm", grad_norm, step, *model, inputs_of(batch), true));
        opt->set_lr(lr_at(step, std::min(cfg.optim.warmup, total), total, cfg.optim.lr, cfg.optim.lr * cfg.optim.min_lr_ratio));
        opt->step();
        ++step;

        const double smooth = add_to_loss_ema(figures, loss);

        StepInfo info;
        info.step = step;
        info.loss = loss;
        info.lr = opt->lr();
        info.grad_norm = grad_norm;
        info.accuracy = train_acc;
        if (options.on_step) options.on_step(info);

        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        // In tokens, not steps: a length curriculum's steps differ in cost.
        const double tokens_done = (double)(cfg.data.train_tokens(step, B) - cfg.data.train_tokens(first_step, B));
        const double tokens_per_s = tokens_done / std::max(elapsed, 1e-9);
        const double eta =
            (double)(cfg.data.train_tokens(total, B) - cfg.data.train_tokens(step, B)) / std::max(tokens_per_s, 1e-9);
        if (step % loop.log_every == 0 || step == total) {
            const double cpu = clocks.cpu_s();
            write_metrics({{"step", step},
                           {"split", "train"},
                           {"loss", loss},
                           {"loss_ema", smooth},
                           {"bits_per_byte", loss / std::log(2.0)},
                           {"accuracy", info.accuracy},
                           {"lr", info.lr},
                           {"grad_norm", grad_norm},
                           {"tokens_per_s", tokens_per_s},
                           {"tokens_per_cpu_s", tokens_done / std::max(clocks.session_cpu_s(), 1e-9)},
                           {"elapsed_s", clocks.elapsed_s()},
                           {"cpu_s", cpu}});
        }
        const std::string line = "step " + std::to_string(step) + "/" + std::to_string(total) + "  loss " +
                                 fixed(loss, 4) + "  " + metric_text(bytes, loss, info.accuracy) + "  " +
                                 human_rate(tokens_per_s) + " tok/s  ETA " + human_duration(eta);
        if (live) {
            // Redrawn at most ~10 times a second: a terminal is slow to scroll through thousands of lines.
            if (elapsed - last_draw >= 0.1 || step == total) {
                out << "\r\033[K" << line << std::flush;
                last_draw = elapsed;
            }
        } else if (step % loop.log_every == 0 || step == total) {
            out << line << "\n" << std::flush;
        }

        const bool at_end = step == total;
        if ((loop.eval_every > 0 && step % loop.eval_every == 0) || at_end) run_eval(step, at_end);
        const bool stopping = sigint.stop() && !at_end;
        if ((cfg.output.checkpoint_every > 0 && step % cfg.output.checkpoint_every == 0) || at_end || stopping)
            save(step);
    }
    if (live) out << "\r\033[K";

    result.step = step;
    result.interrupted = step < total;
    if (step == first_step) {  // nothing to do (already at train.steps, or stopped before the first step)
        save(step);
        run_eval(step, true);
    }
    if (result.interrupted) out << "interrupted at step " << step << "/" << total << "\n";
    out.flush();
    return result;
}

// ---------------------------------------------------------------- sampling

std::vector<int64_t> sample_tokens(Transformer& model, const std::vector<int64_t>& prompt, int64_t length,
                                   double temperature, int64_t top_k, uint64_t seed, int64_t context,
                                   const std::function<void(int64_t)>& on_token, bool windowed) {
    const int64_t V = model.config().vocab_size;
    if (prompt.empty()) throw std::invalid_argument("sample_tokens: the prompt must hold at least one token");
    if (context < 1) throw std::invalid_argument("sample_tokens: context must be >= 1");
    if (!(temperature >= 0) || !std::isfinite(temperature))
        throw std::invalid_argument("sample_tokens: temperature must be finite and >= 0");
    if (top_k < 0) throw std::invalid_argument("sample_tokens: top_k must be >= 0");
    for (int64_t id : prompt)
        if (id < 0 || id >= V)
            throw std::invalid_argument("sample_tokens: prompt token " + std::to_string(id) + " is outside [0, " +
                                        std::to_string(V) + ")");
    // Evaluation mode while sampling, and the caller's mode back afterwards,
    // also when a forward throws.
    struct ModeGuard {
        Transformer& m;
        bool was_training;
        ~ModeGuard() { m.train(was_training); }
    } mode{model, model.is_training()};
    model.eval();
    NoGradGuard no_grad;
    Rng rng(seed);
    std::vector<int64_t> out;
    std::vector<std::pair<double, int64_t>> ranked((size_t)V);
    // The next token from the last row of logits (1, T, V).
    auto draw = [&](const Tensor& logits) {
        const int64_t T = logits.size(1);
        const std::vector<double> all = raw::contiguous(logits).to_vector();
        const double* last = all.data() + (T - 1) * V;  // the prediction for the next token
        for (int64_t v = 0; v < V; ++v) ranked[(size_t)v] = {last[v], v};
        // Descending by logit, ties to the lower id: deterministic.
        std::stable_sort(ranked.begin(), ranked.end(), [](auto& a, auto& b) { return a.first > b.first; });
        int64_t next = ranked[0].second;
        if (temperature > 0) {
            const int64_t k = top_k > 0 ? std::min(top_k, V) : V;
            std::vector<double> p((size_t)k);
            for (int64_t i = 0; i < k; ++i) p[(size_t)i] = std::exp((ranked[(size_t)i].first - ranked[0].first) / temperature);
            const double total = std::accumulate(p.begin(), p.end(), 0.0);
            double u = rng.uniform() * total;
            next = ranked[(size_t)k - 1].second;
            for (int64_t i = 0; i < k; ++i) {
                if (u < p[(size_t)i]) {
                    next = ranked[(size_t)i].second;
                    break;
                }
                u -= p[(size_t)i];
            }
        }
        out.push_back(next);
        if (on_token) on_token(next);
        return next;
    };
    if (!windowed && model.can_stream()) {
        // The state carries the whole history: the prompt is read once, then
        // each drawn token is the only new input.
        TransformerStream stream = model.begin_stream(1);
        // The prompt in pieces of at most `context` tokens: one forward over
        // all of a long prompt costs, and with attention holds, its square (a
        // 43 KB prompt asked for 27.8 GiB); the stream gives the same logits.
        Tensor logits;
        for (size_t at = 0; at < prompt.size(); at += (size_t)context) {
            const size_t n = std::min(prompt.size() - at, (size_t)context);
            logits = model.forward_stream(
                IndexTensor({1, (int64_t)n}, std::vector<int64_t>(prompt.begin() + (long)at, prompt.begin() + (long)(at + n))),
                stream);
        }
        for (int64_t n = 0; n < length; ++n) {
            const int64_t next = draw(logits);
            if (n + 1 < length) logits = model.forward_stream(IndexTensor({1, 1}, {next}), stream);
        }
    } else {
        // No state: each token re-runs the model over the last `context` tokens.
        std::vector<int64_t> seq = prompt;
        for (int64_t n = 0; n < length; ++n) {
            const int64_t T = std::min<int64_t>(context, (int64_t)seq.size());
            IndexTensor ids({1, T}, std::vector<int64_t>(seq.end() - T, seq.end()));
            seq.push_back(draw(model.forward(ids)));  // logits (1, T, V)
        }
    }
    return out;
}

std::vector<std::pair<std::string, int64_t>> parameter_counts(const Module& model) {
    std::vector<std::pair<std::string, int64_t>> out;
    for (const auto& [name, p] : model.named_parameters()) {
        // "blocks.3.mixer.W_Q" -> "blocks.3"; "embed.weight" -> "embed"
        size_t cut = name.find('.');
        if (name.rfind("blocks.", 0) == 0) cut = name.find('.', cut + 1);
        const std::string group = name.substr(0, cut);
        if (out.empty() || out.back().first != group) out.emplace_back(group, 0);
        out.back().second += p.numel();
    }
    return out;
}

}  // namespace miras
