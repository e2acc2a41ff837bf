// Sweeps: `miras train [CONFIG...] [--preset P] [--set k=v]... --seeds 0,1,2
// --sweep optim.lr=1e-3,3e-3 [--sweep key=a,b]... [--out DIR]` trains one run
// per point of the grid (docs/training.md, "Sweeps").
//
// The grid: every combination of the --sweep values (the first key
// outermost) for each seed, seed by seed, so a sweep stopped early has every
// point's first seed. Seed s sets model.seed = s and data.seed = 1 + s (as
// `miras suite` does). A point's config is the command's config (preset,
// files, --set) with the point's keys set on top.
//
// Each run trains into its own folder under DIR (default: output.dir of the
// config): DIR/<key>=<value>/.../seed<s>, e.g. runs/lr/optim.lr=1e-3/seed0 (a
// value's characters other than letters, digits and ._+-,= become '_').
// Before any training every point's config is read (an error names the
// point) and every folder checked: one that holds a run is refused unless
// --force, which moves it aside (as for a single run). A run that fails (a
// NaN loss) is reported and the sweep goes on; Ctrl-C stops the run and the
// sweep. At the end the final evaluation figure of each point is printed as
// mean ± standard deviation over its seeds, with its range; `miras compare
// DIR` tables and plots them.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "train/model_config.h"

namespace miras {

struct SweepSpec {
    std::vector<std::pair<std::string, std::vector<std::string>>> keys;  // each --sweep: key and values, as given
    std::vector<int64_t> seeds;                                          // --seeds; empty: no seed axis
};

// "optim.lr=1e-3,3e-3" -> {"optim.lr", {"1e-3", "3e-3"}}. A comma inside
// brackets or quotes does not split ("data.eval_lengths=[32,64],[64]").
// Throws std::runtime_error (naming --sweep and the text) on a missing '=',
// an empty value or a value given twice.
std::pair<std::string, std::vector<std::string>> parse_sweep(const std::string& text);

struct SweepPoint {
    std::vector<std::string> overrides;  // the point's keys, seeds included, as key=value
    std::string sub_dir;                 // under the sweep's folder: "optim.lr=1e-3/seed0"
    std::string label;                   // the point without its seed: "optim.lr=1e-3" ("" with seeds alone)
    int64_t seed = -1;                   // -1: no --seeds
};

// The grid in the order it runs. Throws when a key is swept twice, a seed
// given twice, or two values make the same folder name.
std::vector<SweepPoint> sweep_points(const SweepSpec& spec);

struct SweepOptions {
    // The config of a point: the command's config with `overrides` after its --set.
    std::function<RunConfig(const std::vector<std::string>& overrides)> load;
    std::vector<std::string> sets;  // the command's --set, refused when a sweep or seed key repeats one
    std::string out_dir;            // the sweep's folder; empty: output.dir of the config
    bool force = false;
};

struct SweepResult {
    std::string dir;           // the sweep's folder
    int runs = 0, failed = 0;  // runs trained (failed ones included)
    bool interrupted = false;  // stopped by Ctrl-C or SIGTERM
};

SweepResult run_sweep(const SweepSpec& spec, const SweepOptions& options, std::ostream& out);

}  // namespace miras
