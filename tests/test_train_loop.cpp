// train/trainer.h: the data stream depends only on (seed, step); a short run
// of the baseline transformer on a tiny MQAR drives the loss down; Ctrl-C
// (SIGINT) stops after saving a checkpoint, and resuming from it repeats the
// uninterrupted run's losses and final parameters bit for bit; the metrics
// file holds parseable JSON lines without duplicates after a resume; a byte
// corpus reports bits per byte; sampling is deterministic in its seed;
// train.threads sets the BLAS threads of a run (and only of the run), and a
// run with one thread repeats its losses bit for bit.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tensor/threads.h"
#include "tests/op_test_util.h"
#include "tests/run_losses.h"
#include "tests/temp_dir.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

using namespace miras;
using miras::testing::run_losses;
namespace fs = std::filesystem;

namespace {

struct TempDir : miras::testing::TempDir {
    TempDir() : miras::testing::TempDir("tl") {}
};

// A tiny MQAR experiment that trains in well under a second per run.
RunConfig tiny_mqar(int64_t steps, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> sets = {
        "model.mixer=attn",   "model.d=16",         "model.heads=2",       "model.layers=2",      "model.mlp_hidden=16",
        "data.seq_len=12",    "data.mqar.vocab=13",  "data.mqar.num_pairs=3", "train.batch=16",
        "train.eval_every=0", "train.eval_batches=2", "train.log_every=5",   "optim.lr=1e-2",
        "optim.min_lr_ratio=0.1","optim.warmup=5",       "output.checkpoint_every=0",
        "train.steps=" + std::to_string(steps)};
    sets.insert(sets.end(), extra.begin(), extra.end());
    return default_run_config(sets);
}

std::vector<uint8_t> param_bits(const Checkpoint& ck) {
    std::vector<uint8_t> out;
    for (auto& [name, t] : ck.params) {
        Tensor c = raw::contiguous(t);
        const size_t n = (size_t)c.numel() * dtype_size(c.dtype());
        const size_t at = out.size();
        out.resize(at + n);
        dispatch(c.dtype(), [&]<class T>() { std::memcpy(out.data() + at, c.data<T>(), n); });
    }
    return out;
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
    std::vector<nlohmann::json> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(train_loop)

BOOST_AUTO_TEST_CASE(batches_depend_only_on_seed_and_step) {
    RunConfig cfg = tiny_mqar(1);
    TaskData a(cfg.data), b(cfg.data);
    BOOST_TEST((a.train_batch(7, 4).inputs == b.train_batch(7, 4).inputs));
    BOOST_TEST((a.train_batch(7, 4).inputs != a.train_batch(8, 4).inputs));
    // Row r of a batch does not depend on the batch size.
    TokenBatch small = a.train_batch(3, 2), big = a.train_batch(3, 5);
    BOOST_TEST((std::vector<int64_t>(small.inputs.begin(), small.inputs.end()) ==
                std::vector<int64_t>(big.inputs.begin(), big.inputs.begin() + (long)small.inputs.size())));
    // The evaluation set is fixed and apart from the training stream.
    BOOST_TEST((a.eval_sets(2, 4)[0].batches[1].inputs == b.eval_sets(2, 4)[0].batches[1].inputs));
    for (int64_t s = 0; s < 50; ++s) BOOST_TEST((a.train_batch(s, 4).inputs != a.eval_sets(1, 4)[0].batches[0].inputs));
    // Another data seed, other batches.
    RunConfig other = tiny_mqar(1, {"data.seed=2"});
    BOOST_TEST((TaskData(other.data).train_batch(7, 4).inputs != a.train_batch(7, 4).inputs));
}

BOOST_AUTO_TEST_CASE(baseline_transformer_learns_tiny_mqar) {
    TempDir tmp;
    TrainOptions opt;
    opt.out_dir = tmp.dir.string();
    opt.handle_sigint = false;
    TrainResult r;
    std::vector<double> losses = run_losses(tiny_mqar(80), opt, &r);
    BOOST_REQUIRE(losses.size() == 80u);
    double first = 0, last = 0;
    for (int i = 0; i < 10; ++i) {
        first += losses[(size_t)i] / 10;
        last += losses[losses.size() - 1 - (size_t)i] / 10;
    }
    BOOST_TEST_MESSAGE("mean loss of the first 10 steps " << first << ", of the last 10 " << last);
    BOOST_TEST(last < first - 0.3);
    // The final evaluation ran and beats the chance level 1/6 of 6 values.
    BOOST_TEST(r.last_eval.count == 2 * 16 * 3);
    BOOST_TEST(r.last_eval.accuracy() > 1.0 / 6);
    BOOST_TEST(!r.interrupted);
    BOOST_TEST(fs::exists(r.checkpoint_path));
    BOOST_TEST(fs::exists(tmp.file("config.toml")));
}

// For the baseline, the memory mixer and the three hybrids (none may keep any
// state outside its parameters).
BOOST_AUTO_TEST_CASE(sigint_then_resume_reproduces_the_run) {
  for (const std::string mixer : {"attn", "lmm", "mag", "mal", "mac"}) {
    BOOST_TEST_CONTEXT("model.mixer = " << mixer) {
    const int64_t steps = 12, stop_at = 5;
    const std::vector<std::string> sets = {"train.eval_every=4", "model.mixer=" + mixer};
    TempDir full_dir, split_dir;
    TrainOptions base;
    base.handle_sigint = false;

    // Uninterrupted.
    TrainOptions o1 = base;
    o1.out_dir = full_dir.dir.string();
    TrainResult full;
    const std::vector<double> ref = run_losses(tiny_mqar(steps, sets), o1, &full);
    BOOST_REQUIRE(ref.size() == (size_t)steps);

    // Ctrl-C during step `stop_at`: the loop finishes that step, saves and stops.
    TrainOptions o2 = base;
    o2.out_dir = split_dir.dir.string();
    o2.handle_sigint = true;
    o2.on_step = [&](const StepInfo& s) {
        if (s.step == stop_at) std::raise(SIGINT);
    };
    TrainResult part;
    const std::vector<double> head = run_losses(tiny_mqar(steps, sets), o2, &part);
    BOOST_TEST(part.interrupted);
    BOOST_TEST(part.step == stop_at);
    BOOST_TEST(head.size() == (size_t)stop_at);
    BOOST_TEST(read_checkpoint(part.checkpoint_path).step == stop_at);

    // Resumed: the same losses, bit for bit, and the same final parameters.
    TrainOptions o3 = base;
    o3.out_dir = split_dir.dir.string();
    o3.resume_from = part.checkpoint_path;
    TrainResult rest;
    const std::vector<double> tail = run_losses(tiny_mqar(steps, sets), o3, &rest);
    BOOST_REQUIRE(head.size() + tail.size() == ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
        const double got = i < head.size() ? head[i] : tail[i - head.size()];
        BOOST_TEST(std::memcmp(&got, &ref[i], sizeof got) == 0, "step " << i + 1 << ": " << got << " vs " << ref[i]);
    }
    BOOST_TEST((param_bits(read_checkpoint(rest.checkpoint_path)) == param_bits(read_checkpoint(full.checkpoint_path))));
    BOOST_TEST(rest.last_eval.loss == full.last_eval.loss);

    // The resumed run's metrics: valid JSON, each (step, split) once, the same as uninterrupted.
    auto lines = read_jsonl(rest.metrics_path), ref_lines = read_jsonl(full.metrics_path);
    std::set<std::pair<int64_t, std::string>> seen;
    for (auto& j : lines) BOOST_TEST(seen.insert({j["step"].get<int64_t>(), j["split"].get<std::string>()}).second);
    BOOST_TEST(lines.size() == ref_lines.size());
    BOOST_TEST(seen.count({12, "eval"}) == 1u);
    BOOST_TEST(seen.count({8, "eval"}) == 1u);
    BOOST_TEST(seen.count({10, "train"}) == 1u);
    // The smoothed loss goes on over the resume (the checkpoint carries its
    // state): the same values, bit for bit; the CPU seconds go on too.
    std::map<int64_t, nlohmann::json> ref_train;
    for (auto& j : ref_lines)
        if (j["split"] == "train") ref_train[j["step"].get<int64_t>()] = j;
    for (auto& j : lines)
        if (j["split"] == "train") {
            const nlohmann::json& r = ref_train.at(j["step"].get<int64_t>());
            BOOST_TEST(j["loss_ema"].get<double>() == r["loss_ema"].get<double>(), "step " << j["step"]);
        }
    const double cpu_at_stop = read_checkpoint(part.checkpoint_path).loop.cpu_s;
    BOOST_TEST(cpu_at_stop > 0);
    BOOST_TEST(read_checkpoint(rest.checkpoint_path).loop.cpu_s >= cpu_at_stop);
    BOOST_TEST(read_checkpoint(rest.checkpoint_path).loop.loss_ema_steps == steps);
    }
  }
}

BOOST_AUTO_TEST_CASE(resume_rejects_a_checkpoint_of_another_model) {
    TempDir tmp;
    TrainOptions opt;
    opt.out_dir = tmp.dir.string();
    opt.handle_sigint = false;
    TrainResult r;
    run_losses(tiny_mqar(2), opt, &r);
    opt.resume_from = r.checkpoint_path;
    try {
        run_losses(tiny_mqar(4, {"model.d=32"}), opt);
        BOOST_FAIL("no error");
    } catch (const std::runtime_error& e) {
        BOOST_TEST(std::string(e.what()).find(r.checkpoint_path) != std::string::npos, e.what());
    }
}

// A checkpoint with a negative Adam second moment resumed, wrote NaN weights
// over the good checkpoint and exited 0; weights that overflow the forward
// gave an evaluation loss of NaN, reported as a result. Both stop the run
// with an error, and the checkpoint on disk stays what it was.
BOOST_AUTO_TEST_CASE(diverged_or_impossible_state_stops_the_run_and_keeps_the_checkpoint) {
    TempDir tmp;
    TrainOptions opt;
    opt.out_dir = tmp.dir.string();
    opt.handle_sigint = false;
    TrainResult r;
    run_losses(tiny_mqar(2), opt, &r);
    auto crafted = [&](const std::function<void(Checkpoint&)>& edit) {
        Checkpoint ck = read_checkpoint(r.checkpoint_path);
        edit(ck);
        const std::string path = tmp.file("crafted.safetensors");
        // save_checkpoint refuses non-finite values, not finite impossible ones
        save_checkpoint(path, ck);
        return path;
    };
    auto bytes = [](const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        return std::vector<char>{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    };

    const std::string negative = crafted([](Checkpoint& ck) {
        for (auto& [name, t] : ck.optim)
            if (name.rfind("adam.v.", 0) == 0) t.data<float>()[0] = -1.0f;
    });
    const std::vector<char> before = bytes(negative);
    opt.resume_from = negative;
    opt.out_dir = tmp.file("resumed");
    const std::string msg = miras::test::error_of<std::runtime_error>([&] { run_losses(tiny_mqar(3), opt); });
    BOOST_TEST((msg.find(negative + ": the checkpoint's optimizer state does not fit") == 0 &&
                msg.find("values are negative or not finite") != std::string::npos),
               msg);
    BOOST_TEST((bytes(negative) == before));
    BOOST_TEST(!fs::exists(tmp.file("resumed/checkpoint.safetensors")));

    // Finite weights whose forward overflows: the evaluation loss is NaN.
    const std::string huge = crafted([](Checkpoint& ck) {
        for (auto& [name, t] : ck.params) {
            float* p = t.data<float>();
            for (int64_t i = 0; i < t.numel(); ++i) p[i] = 1e10f;  // its squares overflow f32
        }
    });
    opt.resume_from = huge;
    opt.out_dir = tmp.file("huge");
    const std::string eval_msg = miras::test::error_of<std::runtime_error>([&] { run_losses(tiny_mqar(2), opt); });
    BOOST_TEST(eval_msg.find("the evaluation loss became") == 0u, eval_msg);
    BOOST_TEST(eval_msg.find("at step 2") != std::string::npos, eval_msg);
}

// `train --out <finished run>` truncated the run's metrics (153 lines to 4)
// and replaced its config while the checkpoint stayed the old run's. A fresh
// run into a folder holding a run is refused; --force moves the old one aside.
BOOST_AUTO_TEST_CASE(a_fresh_run_never_overwrites_another_run) {
    TempDir tmp;
    const std::string dir = tmp.file("run");
    TrainOptions opt;
    opt.out_dir = dir;
    opt.handle_sigint = false;
    TrainResult first;
    run_losses(tiny_mqar(6), opt, &first);
    auto bytes = [](const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        return std::string{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    };
    const std::string ck = bytes(first.checkpoint_path), metrics = bytes(first.metrics_path),
                      config = bytes(dir + "/config.toml");
    const std::string msg = miras::test::error_of<std::runtime_error>([&] { run_losses(tiny_mqar(3), opt); });
    BOOST_TEST(msg.find("the run folder '" + dir + "' holds another run (checkpoint.safetensors, metrics.jsonl, "
                        "config.toml); continue it with --resume " + dir) == 0u,
               msg);
    BOOST_TEST(bytes(first.checkpoint_path) == ck);
    BOOST_TEST(bytes(first.metrics_path) == metrics);
    BOOST_TEST(bytes(dir + "/config.toml") == config);

    // --force: the old run, whole, in run.old-1, then run.old-2.
    opt.force = true;
    for (int n = 1; n <= 2; ++n) {
        std::ostringstream log;
        opt.out = &log;
        train(tiny_mqar(3), opt);
        BOOST_TEST(log.str().find("the previous run in " + dir + " was moved to " + dir + ".old-" + std::to_string(n)) !=
                   std::string::npos);
        BOOST_TEST(read_checkpoint(first.checkpoint_path).step == 3);
    }
    BOOST_TEST(bytes(dir + ".old-1/checkpoint.safetensors") == ck);
    BOOST_TEST(bytes(dir + ".old-1/metrics.jsonl") == metrics);
    BOOST_TEST(read_checkpoint(dir + ".old-2/checkpoint.safetensors").step == 3);
    // A resumed run writes into its folder as before.
    opt.force = false;
    opt.out = nullptr;
    opt.resume_from = first.checkpoint_path;
    std::ostringstream log;
    opt.out = &log;
    BOOST_CHECK_NO_THROW(train(tiny_mqar(4), opt));
}

// Two trainers on one folder both exited 0, with interleaved metrics and the
// checkpoint of whichever saved last. The folder is locked for a run.
BOOST_AUTO_TEST_CASE(a_run_folder_in_use_is_refused_naming_the_holder) {
    TempDir tmp;
    const std::string dir = tmp.file("run");
    fs::create_directories(dir);
    TrainOptions opt;
    opt.out_dir = dir;
    opt.handle_sigint = false;
    {
        // Another process's lock (flock locks of separate opens conflict within a process too).
        const int fd = ::open((dir + "/.lock").c_str(), O_RDWR | O_CREAT, 0644);
        BOOST_REQUIRE(fd >= 0);
        BOOST_REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
        BOOST_REQUIRE(::write(fd, "4242\n", 5) == 5);
        const std::string msg = miras::test::error_of<std::runtime_error>([&] { run_losses(tiny_mqar(2), opt); });
        BOOST_TEST(msg == "the run folder '" + dir + "' is in use by another run (process 4242, lock file '" + dir +
                              "/.lock'); wait for it to end or give another folder",
                   msg);
        BOOST_TEST(!fs::exists(dir + "/metrics.jsonl"));
        ::close(fd);
    }
    // Unlocked, the folder (holding only the lock file) takes a run; a second
    // trainer started while it runs is refused with its pid.
    std::string second;
    TrainOptions inner = opt;
    opt.on_step = [&](const StepInfo& s) {
        if (s.step == 1) second = miras::test::error_of<std::runtime_error>([&] { run_losses(tiny_mqar(2), inner); });
    };
    TrainResult r;
    run_losses(tiny_mqar(2), opt, &r);
    BOOST_TEST(second.find("is in use by another run (process " + std::to_string(::getpid()) + ",") !=
                   std::string::npos,
               second);
    BOOST_TEST(read_checkpoint(r.checkpoint_path).step == 2);
}

// Interrupted saves left "checkpoint.safetensors.tmp.<pid>" forever (41 MB seen).
BOOST_AUTO_TEST_CASE(temporaries_of_dead_processes_are_removed) {
    TempDir tmp;
    TrainOptions opt;
    opt.out_dir = tmp.dir.string();
    opt.handle_sigint = false;
    TrainResult r;
    run_losses(tiny_mqar(2), opt, &r);
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    BOOST_REQUIRE(child > 0);
    ::waitpid(child, nullptr, 0);  // now a pid of no process
    const std::string dead = r.checkpoint_path + ".tmp." + std::to_string(child);
    const std::string alive = r.checkpoint_path + ".tmp.1";  // init: alive
    const std::string other = tmp.file("notes.tmp.x");
    for (const std::string& f : {dead, alive, other}) std::ofstream(f) << "partial";
    opt.resume_from = r.checkpoint_path;
    std::ostringstream log;
    opt.out = &log;
    train(tiny_mqar(3), opt);
    BOOST_TEST(!fs::exists(dead));
    BOOST_TEST(fs::exists(alive));
    BOOST_TEST(fs::exists(other));
    BOOST_TEST(log.str().find("removed " + dead + ", left by an interrupted save of process " + std::to_string(child)) !=
                   std::string::npos,
               log.str());
}

namespace {
volatile std::sig_atomic_t g_fallback_term = 0;
extern "C" void fallback_term(int) { g_fallback_term = 1; }
}  // namespace

// SIGTERM (what schedulers send) killed the run and lost its progress, while
// SIGINT saved. Both stop after the step and save.
BOOST_AUTO_TEST_CASE(sigterm_saves_like_sigint) {
    TempDir tmp;
    // Without the run's handler SIGTERM would end the test program: a fallback
    // that only records it, which the run replaces and restores.
    struct sigaction fallback {}, old {};
    fallback.sa_handler = fallback_term;
    sigemptyset(&fallback.sa_mask);
    sigaction(SIGTERM, &fallback, &old);
    g_fallback_term = 0;
    TrainOptions opt;
    opt.out_dir = tmp.dir.string();
    opt.handle_sigint = true;
    opt.on_step = [](const StepInfo& s) {
        if (s.step == 3) std::raise(SIGTERM);
    };
    TrainResult r;
    const std::vector<double> losses = run_losses(tiny_mqar(8), opt, &r);
    sigaction(SIGTERM, &old, nullptr);
    BOOST_TEST(g_fallback_term == 0);
    BOOST_TEST(r.interrupted);
    BOOST_TEST(losses.size() == 3u);
    BOOST_TEST(read_checkpoint(r.checkpoint_path).step == 3);
}

// A metrics write that failed on a full disk stopped the run without saving
// its steps. The checkpoint is saved first, and the message says why.
BOOST_AUTO_TEST_CASE(a_failed_metrics_write_saves_first) {
    TempDir tmp;
    TrainOptions opt;
    opt.out_dir = tmp.dir.string();
    opt.handle_sigint = false;
    const fs::path metrics = fs::canonical(tmp.dir) / "metrics.jsonl";
    // From step 4 on the log's descriptor writes to /dev/full (ENOSPC); the
    // next log line is at step 5 (train.log_every = 5).
    opt.on_step = [&](const StepInfo& s) {
        if (s.step != 4) return;
        for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
            std::error_code ec;
            if (fs::read_symlink(e.path(), ec) != metrics) continue;
            const int full = ::open("/dev/full", O_WRONLY);
            BOOST_REQUIRE(full >= 0);
            ::dup2(full, std::stoi(e.path().filename().string()));
            ::close(full);
        }
    };
    const std::string msg = miras::test::error_of<std::runtime_error>([&] { run_losses(tiny_mqar(8), opt); });
    BOOST_TEST(msg.find("cannot write the metrics file '") == 0u, msg);
    BOOST_TEST(msg.find("': No space left on device; the checkpoint of step 5 was saved first") != std::string::npos, msg);
    BOOST_TEST(read_checkpoint(tmp.file("checkpoint.safetensors")).step == 5);
}

BOOST_AUTO_TEST_CASE(byte_corpus_reports_bits_per_byte_and_samples_deterministically) {
    TempDir tmp;
    const std::string corpus = tmp.file("corpus.txt");
    {
        std::ofstream f(corpus);
        for (int i = 0; i < 60; ++i) f << "the quick brown fox jumps over the lazy dog. ";
    }
    RunConfig cfg = default_run_config({"model.mixer=attn", "data.task=bytes", "data.bytes.path=\"" + corpus + "\"", "data.seq_len=16",
                                        "model.d=16", "model.heads=2", "model.layers=1", "train.batch=8",
                                        "train.steps=30", "train.eval_every=0", "train.eval_batches=2",
                                        "optim.lr=1e-2", "optim.warmup=0"});
    BOOST_TEST(cfg.model.vocab == 256);
    TrainOptions opt;
    opt.out_dir = tmp.file("run");
    opt.handle_sigint = false;
    TrainResult r;
    std::vector<double> losses = run_losses(cfg, opt, &r);
    BOOST_TEST(losses.back() < losses.front() - 1.0);
    // Held-out: 16 windows of 16 bytes, each byte predicted once.
    BOOST_TEST(r.last_eval.count == 2 * 8 * 16);
    BOOST_TEST(r.last_eval.bits_per_token() < 8.0);  // better than a uniform guess over 256 bytes
    auto lines = read_jsonl(r.metrics_path);
    BOOST_TEST(lines.back()["split"].get<std::string>() == "eval");
    BOOST_TEST(lines.back().contains("bits_per_byte"));

    auto model = build_model(cfg.model);
    load_model_state(read_checkpoint(r.checkpoint_path), *model, r.checkpoint_path);
    const std::vector<int64_t> prompt = {'t', 'h', 'e'};
    auto a = sample_tokens(*model, prompt, 20, 1.0, 0, 7, 16), b = sample_tokens(*model, prompt, 20, 1.0, 0, 7, 16);
    auto c = sample_tokens(*model, prompt, 20, 1.0, 0, 8, 16);
    BOOST_TEST((a == b));
    BOOST_TEST((a != c));
    BOOST_TEST(a.size() == 20u);
    // on_token sees every token as it is drawn, in order: the same sequence.
    std::vector<int64_t> streamed;
    auto d = sample_tokens(*model, prompt, 20, 1.0, 0, 7, 16, [&](int64_t id) { streamed.push_back(id); });
    BOOST_TEST((d == a));
    BOOST_TEST((streamed == a));
    // top_k = 1 is greedy, whatever the temperature and seed.
    BOOST_TEST((sample_tokens(*model, prompt, 10, 2.0, 1, 1, 16) == sample_tokens(*model, prompt, 10, 0.0, 0, 2, 16)));
}

// Replacing the byte corpus before a resume went unnoticed: the checkpoint
// keeps the corpus's fingerprint and a resume onto other bytes is refused
// unless asked (--allow-data-change).
BOOST_AUTO_TEST_CASE(resume_onto_another_corpus_is_refused_unless_asked) {
    TempDir tmp;
    const std::string corpus = tmp.file("corpus.txt");
    auto write_corpus = [&](char c) {
        std::ofstream f(corpus);
        for (int i = 0; i < 40; ++i) f << "the quick brown fox jumps over the lazy dog" << c << ' ';
    };
    write_corpus('.');
    auto cfg = [&](int64_t steps) {
        return default_run_config({"model.mixer=attn", "data.task=bytes", "data.bytes.path=\"" + corpus + "\"",
                                   "data.seq_len=16", "model.d=16", "model.heads=2", "model.layers=1",
                                   "train.batch=4", "train.eval_every=0", "train.eval_batches=1",
                                   "train.steps=" + std::to_string(steps)});
    };
    TrainOptions opt;
    opt.out_dir = tmp.file("run");
    opt.handle_sigint = false;
    TrainResult r;
    run_losses(cfg(2), opt, &r);
    const Checkpoint ck = read_checkpoint(r.checkpoint_path);
    BOOST_TEST(ck.data_fingerprint.find(" bytes, sha256 ") != std::string::npos, ck.data_fingerprint);
    BOOST_TEST(TaskData(cfg(2).data).fingerprint() == ck.data_fingerprint);

    write_corpus('!');  // same size, other bytes
    BOOST_TEST(TaskData(cfg(2).data).fingerprint() != ck.data_fingerprint);
    opt.resume_from = r.checkpoint_path;
    const std::string msg = miras::test::error_of<std::runtime_error>([&] { run_losses(cfg(3), opt); });
    BOOST_TEST(msg.find(r.checkpoint_path + ": the data differs from the data this checkpoint was trained on (then: " +
                        ck.data_fingerprint + "; now: ") == 0u,
               msg);
    BOOST_TEST(msg.find("give --allow-data-change") != std::string::npos, msg);
    BOOST_TEST(read_checkpoint(r.checkpoint_path).step == 2);
    opt.allow_data_change = true;
    TrainResult resumed;
    run_losses(cfg(3), opt, &resumed);
    BOOST_TEST(read_checkpoint(r.checkpoint_path).step == 3);
    // The new checkpoint holds the new corpus's fingerprint.
    BOOST_TEST(read_checkpoint(r.checkpoint_path).data_fingerprint == TaskData(cfg(3).data).fingerprint());
}

BOOST_AUTO_TEST_CASE(threads_key_sets_the_blas_threads_of_the_run) {
    // The caller's count (2, as OpenBLAS picks on a 2-core machine) must not
    // leak into the run, and is back after it.
    const BlasThreadsScope caller(2);
    TempDir tmp;
    TrainOptions opt;
    opt.out_dir = tmp.dir.string();
    opt.handle_sigint = false;
    std::vector<int> seen;
    opt.on_step = [&](const StepInfo&) { seen.push_back(blas_threads()); };
    const RunConfig one = tiny_mqar(6, {"train.threads=1", "model.dtype=f64"});
    const std::vector<double> a = run_losses(one, opt);
    BOOST_TEST(blas_threads() == 2);
    BOOST_TEST((seen == std::vector<int>(6, 1)));
    // The same run again (in a folder of its own): the same losses, bit for bit.
    opt.out_dir = tmp.file("again");
    const std::vector<double> b = run_losses(one, opt);
    BOOST_REQUIRE(a.size() == 6u);
    BOOST_TEST(std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
    // Another count is applied as well (and reported in the header).
    seen.clear();
    std::ostringstream log;
    opt.out = &log;
    opt.out_dir = tmp.file("three");
    train(tiny_mqar(2, {"train.threads=3"}), opt);
    BOOST_TEST((seen == std::vector<int>{3, 3}));
    BOOST_TEST(log.str().find("3 BLAS threads") != std::string::npos, log.str());
    BOOST_TEST(blas_threads() == 2);
    // OPENBLAS_NUM_THREADS does not win over the key, and the run says so.
    const char* env = std::getenv("OPENBLAS_NUM_THREADS");
    const std::string saved = env ? env : "";
    ::setenv("OPENBLAS_NUM_THREADS", "4", 1);
    seen.clear();
    log.str("");
    opt.out_dir = tmp.file("env");
    train(tiny_mqar(1, {"train.threads=1"}), opt);
    if (env)
        ::setenv("OPENBLAS_NUM_THREADS", saved.c_str(), 1);
    else
        ::unsetenv("OPENBLAS_NUM_THREADS");
    BOOST_TEST((seen == std::vector<int>{1}));
    BOOST_TEST(log.str().find("OPENBLAS_NUM_THREADS=4 is not used: train.threads = 1") != std::string::npos, log.str());
}

BOOST_AUTO_TEST_CASE(parameter_counts_group_by_top_level_module) {
    RunConfig cfg = tiny_mqar(1, {"model.tie_embeddings=false"});
    auto model = build_model(cfg.model);
    auto groups = parameter_counts(*model);
    std::vector<std::string> names;
    int64_t total = 0;
    for (auto& [n, c] : groups) {
        names.push_back(n);
        total += c;
    }
    BOOST_TEST((names == std::vector<std::string>{"embed", "blocks.0", "blocks.1", "norm", "head"}));
    BOOST_TEST(total == model->num_parameters());
    BOOST_TEST(groups[0].second == 13 * 16);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(train_eval)

// Evaluation at several lengths, with accuracy by group (the query's quarter
// of the row), logged per length with what it covered.
BOOST_AUTO_TEST_CASE(eval_at_several_lengths_reports_groups_and_coverage) {
    TempDir tmp;
    RunConfig cfg = tiny_mqar(3, {"data.mqar.spread=true", "data.seq_len=24", "data.mqar.vocab=20",
                                  "data.mqar.filler_vocab=4", "data.eval_lengths=[24, 48]"});
    TrainOptions opt;
    opt.out_dir = tmp.dir.string();
    opt.handle_sigint = false;
    TrainResult r;
    run_losses(cfg, opt, &r);
    BOOST_REQUIRE(r.last_report.per_length.size() == 2u);
    BOOST_TEST(r.last_report.seq_lens[1] == 48);
    // 2 batches of 16 rows, 3 queries per row, at each length.
    BOOST_TEST(r.last_report.per_length[0].count == 2 * 16 * 3);
    BOOST_TEST(r.last_report.per_length[1].count == 2 * 16 * 3);
    BOOST_TEST(r.last_eval.count == 2 * 2 * 16 * 3);  // pooled
    int64_t in_groups = 0;
    for (int64_t n : r.last_report.per_length[1].group_count) in_groups += n;
    BOOST_TEST(in_groups == 2 * 16 * 3);  // every answer has its group
    BOOST_TEST(r.last_report.per_length[1].group_count.size() == 4u);
    auto lines = read_jsonl(r.metrics_path);
    std::vector<nlohmann::json> evals;
    for (auto& j : lines)
        if (j["split"] == "eval") evals.push_back(j);
    BOOST_REQUIRE(evals.size() == 2u);
    BOOST_TEST(evals[1]["seq_len"].get<int64_t>() == 48);
    BOOST_TEST(evals[1]["final"].get<bool>());
    BOOST_TEST(evals[1]["covered"].get<std::string>() == "32 rows of 48 tokens");
    BOOST_TEST(evals[1]["accuracy_by_group"].size() == 4u);
    // The first length draws the rows a single-length evaluation draws.
    TaskData one(tiny_mqar(3, {"data.mqar.spread=true", "data.seq_len=24", "data.mqar.vocab=20", "data.mqar.filler_vocab=4"}).data);
    TaskData two(cfg.data);
    BOOST_TEST((one.eval_sets(2, 16)[0].batches[1].inputs == two.eval_sets(2, 16)[0].batches[1].inputs));
    // An evaluation length the task cannot fill is an error naming the key.
    BOOST_TEST(miras::test::error_of<std::runtime_error>([&] { tiny_mqar(3, {"data.eval_lengths=[12, 8]"}); }).find("data.eval_lengths = 8") !=
               std::string::npos);
}

// Bytes: periodic evaluations read windows spread evenly over the held-out
// split, the last one all of them (train.final_eval = "all"), and say so.
BOOST_AUTO_TEST_CASE(final_byte_eval_covers_the_whole_heldout_split) {
    TempDir tmp;
    const std::string corpus = tmp.file("corpus.txt");
    {
        std::ofstream f(corpus);
        for (int i = 0; i < 400; ++i) f << "line " << i << " of a small corpus\n";
    }
    auto cfg_with = [&](const std::string& final_eval) {
        return default_run_config({"model.mixer=attn", "data.task=bytes", "data.bytes.path=\"" + corpus + "\"",
                                   "data.seq_len=16", "model.d=16", "model.heads=2", "model.layers=1", "train.batch=4",
                                   "train.steps=4", "train.eval_every=2", "train.eval_batches=1", "optim.warmup=0",
                                   "train.final_eval=" + final_eval});
    };
    RunConfig cfg = cfg_with("all");
    TaskData data(cfg.data);
    const int64_t total = ByteCorpus(corpus, 0.1).num_windows(Split::kHeldout, 16);
    BOOST_REQUIRE(total > 8);
    const auto spread = data.eval_sets(1, 4, false), all = data.eval_sets(1, 4, true);
    BOOST_TEST(spread[0].windows == 4);
    BOOST_TEST(all[0].windows == total);
    BOOST_TEST(all[0].coverage() == std::to_string(total) + " of " + std::to_string(total) + " held-out windows of 16 bytes (all)");
    BOOST_TEST(spread[0].coverage().find("(spread evenly)") != std::string::npos);
    // The spread windows are the tiling's windows i · total / 4, not the first four.
    BOOST_TEST((spread[0].batches[0].inputs ==
                ByteCorpus(corpus, 0.1).windows(Split::kHeldout, 16, spread_indices(total, 4)).inputs));
    TrainOptions opt;
    opt.out_dir = tmp.file("run");
    opt.handle_sigint = false;
    TrainResult r;
    run_losses(cfg, opt, &r);
    BOOST_TEST(r.last_eval.count == total * 16);
    auto lines = read_jsonl(r.metrics_path);
    int periodic = 0;
    for (auto& j : lines) {
        if (j["split"] != "eval") continue;
        BOOST_TEST(j.contains("bits_per_byte"));
        if (j.contains("final")) {
            BOOST_TEST(j["count"].get<int64_t>() == total * 16);
        } else {
            ++periodic;
            BOOST_TEST(j["count"].get<int64_t>() == 4 * 16);
        }
    }
    BOOST_TEST(periodic == 1);  // at step 2; step 4 is the final one
    opt.out_dir = tmp.file("run2");
    run_losses(cfg_with("sample"), opt, &r);
    BOOST_TEST(r.last_eval.count == 4 * 16);
}

BOOST_AUTO_TEST_SUITE_END()
