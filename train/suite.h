// `miras suite`: every preset on every task of a suite file, a fixed budget
// and several seeds, and one page of results (docs/results.md).
//
// The suite file (train/configs/suite.toml):
//
//   [suite]
//   presets = ["attention", "gated-deltanet", "titans-lmm", ...]
//   seeds   = [0, 1, 2]                 # run s: model.seed = s, data.seed = 1 + s
//   quick_seeds = [0]                   # with --quick
//   [tasks.mqar]
//   what   = "MQAR, 8 pairs in 32 tokens"   # the page's description
//   metric = "accuracy"                # or "bits_per_byte"
//   set    = ["data.task=mqar", "train.steps=700"]   # overrides on the preset
//   quick  = ["train.steps=40"]        # applied after `set` with --quick
//   [tasks.mqar.set_for]               # per-preset overrides, after `set` (and quick)
//   titans-mac = ["model.segment=16"]
//
// A run's config is: the preset's file, then the task's `set`, then `quick`
// (with --quick), then `set_for.<preset>`, then the seeds, then
// output.checkpoint_every = 0; a key set twice takes the later value.
// Each run writes its folder <out>/<task>/<preset>/seed<s>/ (the usual run
// files plus result.json). A run whose result.json holds the same config is
// not run again, so an interrupted suite continues where it stopped and the
// page can be rewritten from finished runs alone. A run that stops with an
// error (a NaN loss, say) is recorded as failed with its message, and the
// suite goes on.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace miras {

inline constexpr const char* kSuitePath = "train/configs/suite.toml";

struct SuiteTask {
    std::string name, what, metric;  // metric: "accuracy" | "bits_per_byte"
    std::vector<std::string> set, quick;
    std::map<std::string, std::vector<std::string>> set_for;  // preset -> overrides
};

struct SuiteSpec {
    std::string source;
    std::vector<std::string> presets;
    std::vector<int64_t> seeds, quick_seeds;  // quick_seeds: of --quick (default: the first seed)
    std::vector<SuiteTask> tasks;  // in file order
};

// Reads and checks a suite file: every preset exists, every task's overrides
// parse, metrics are known. Errors name the file and the key.
SuiteSpec read_suite(const std::string& path);

struct SuiteOptions {
    std::string out_dir = "runs/suite";  // run folders
    std::string results;                 // the page to write; empty = none
    bool quick = false;
    bool page_only = false;   // no training: the page from the runs already in out_dir
    std::vector<std::string> tasks, presets;  // subsets (empty = all)
    std::vector<int64_t> seeds;               // replaces the file's seeds when not empty
    int shard = 0, shards = 1;                // run only runs with index % shards == shard (index in the whole suite)
    std::string command;                      // the command line, for the page
};

// The seeds a run of the suite uses: --seeds, else quick_seeds or seeds.
const std::vector<int64_t>& suite_seeds(const SuiteSpec& spec, const SuiteOptions& options);

// The config overrides of one run, in the order described above, each key once.
std::vector<std::string> suite_overrides(const SuiteTask& task, const std::string& preset, int64_t seed, bool quick);

// Runs the suite (or what of it is not done yet) and writes the page.
// A run folder without a matching result.json is moved aside to <folder>.old
// before training, unless another process holds its lock (a live run): then
// the run is skipped, with a message. Returns the number of runs that failed.
int run_suite(const SuiteSpec& spec, const SuiteOptions& options, std::ostream& out);

// The page (markdown) from the result.json files under out_dir, with its
// figures (SVG) written next to it in <results stem>/; used by run_suite.
void write_results_page(const SuiteSpec& spec, const SuiteOptions& options, std::ostream& out);

}  // namespace miras
