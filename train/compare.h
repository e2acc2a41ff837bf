// `miras compare RUN [RUN...]`: what a set of run folders did, side by side
// (docs/training.md, "Comparing runs").
//
//   compare.md  one table: a row per run, or per group of runs that differ
//               only in their seeds (model.seed, data.seed) with the mean ±
//               standard deviation over them; columns: the config keys that
//               differ between the rows, parameters, tokens, the final and
//               the best evaluation figure, tokens per second and per CPU
//               second, CPU seconds
//   loss.svg    the training loss (smoothed, loss_ema) of every row
//   eval.svg    the evaluation figure of every row
// both on shared axes: x is the step, or the tokens seen when the runs'
// tokens per step differ. The figure is the recall accuracy (%) for the
// recall tasks and bits per byte for a byte corpus; runs of both kinds are
// not compared.
//
// A RUN is a run folder (one holding metrics.jsonl and config.toml) or a
// folder whose sub-folders hold runs (a sweep's --out): every run found
// below it, in name order.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace miras {

// What compare reads of one run folder.
struct RunSummary {
    std::string dir;
    std::string made_from;                      // config.toml's "# made from:" line, if any
    std::map<std::string, std::string> config;  // every key of config.toml -> its TOML value
    bool bytes = false;                         // data.task = "bytes": the figure is bits/byte
    int64_t params = 0, steps = 0, tokens_per_step = 0;
    double elapsed_s = 0, cpu_s = 0;            // of the last train line (0 if none)
    std::vector<std::pair<double, double>> train_curve;  // (step, loss_ema, or loss in older files)
    // (step, figure) per evaluation, pooled over its lengths (weighted by the targets counted)
    std::vector<std::pair<double, double>> eval_curve;
    bool has_final = false;                     // an eval line marked "final"
    int64_t skipped_lines = 0;                  // lines of metrics.jsonl that were not JSON objects

    int64_t tokens() const { return steps * tokens_per_step; }
};

// Reads a run folder; std::runtime_error naming the folder when it is not one.
RunSummary read_run_summary(const std::string& dir);

// The run folders named by `args` (each a run, or a folder with runs below
// it), in the order given; throws when an argument holds none.
std::vector<std::string> find_runs(const std::vector<std::string>& args);

struct CompareOptions {
    std::string out_dir;  // where compare.md and the SVGs go; empty = "<common parent of the runs>/compare"
    bool group_seeds = true;
};

// Writes compare.md, loss.svg and eval.svg (train/plot.h) and prints the
// table to `out`; returns the folder written to.
std::string compare_runs(const std::vector<std::string>& run_dirs, const CompareOptions& options, std::ostream& out);

}  // namespace miras
