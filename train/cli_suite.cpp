// `miras suite` (train/cli_suite.h).
#include "train/cli_suite.h"

#include <CLI/CLI.hpp>
#include <filesystem>
#include <ostream>
#include <stdexcept>

#include "train/model_config.h"
#include "train/suite.h"

namespace miras {

CLI::App* add_suite_command(CLI::App& app, SuiteArgs& a) {
    CLI::App* c = app.add_subcommand("suite", "Train every preset on every task of a suite and write a page of results");
    c->add_option("--suite", a.suite, "Suite file (default: " + std::string(kSuitePath) + ")");
    c->add_flag("--quick", a.quick, "The suite's quick size (each task's `quick` overrides): a few minutes in all");
    c->add_option("--out", a.out, "Folder of the runs (default: runs/suite, or runs/suite-quick with --quick)");
    c->add_option("--results", a.results, "The page to write (default: <out>/results.md), e.g. docs/results.md");
    c->add_option("--tasks", a.tasks, "Only these tasks (comma-separated)")->delimiter(',');
    c->add_option("--presets", a.presets, "Only these presets (comma-separated)")->delimiter(',');
    c->add_option("--seeds", a.seeds, "These seeds instead of the file's (comma-separated)")->delimiter(',');
    c->add_option("--shard", a.shard, "K/N: run only every N-th run from the K-th (0-based), to split a suite over processes");
    c->add_flag("--page-only", a.page_only, "Train nothing: write the page from the finished runs in --out");
    return c;
}

int cmd_suite(const SuiteArgs& a, const std::vector<std::string>& argv, std::ostream& out) {
    std::string path = a.suite;
    if (path.empty()) {
        path = kSuitePath;
        // Outside the repository: next to the presets the program was built with.
        if (!std::filesystem::exists(path) && !preset_dir().empty()) path = preset_dir() + "/../suite.toml";
    }
    SuiteSpec spec = read_suite(path);
    SuiteOptions o;
    o.quick = a.quick;
    o.page_only = a.page_only;
    o.out_dir = !a.out.empty() ? a.out : a.quick ? "runs/suite-quick" : "runs/suite";
    o.results = !a.results.empty() ? a.results : o.out_dir + "/results.md";
    o.tasks = a.tasks;
    o.presets = a.presets;
    for (int64_t s : a.seeds)
        if (s < 0) throw std::runtime_error("--seeds: seeds are integers >= 0, got " + std::to_string(s));
    o.seeds = a.seeds;
    if (!a.shard.empty()) {
        int k = -1, n = 0;
        char rest = 0;
        if (std::sscanf(a.shard.c_str(), "%d/%d%c", &k, &n, &rest) != 2 || n < 1 || k < 0 || k >= n)
            throw std::runtime_error("--shard: expected K/N with 0 <= K < N, got '" + a.shard + "'");
        o.shard = k, o.shards = n;
    }
    for (size_t i = 0; i < argv.size(); ++i) o.command += (i ? " " : "") + (i == 0 ? std::string("miras") : argv[i]);
    return run_suite(spec, o, out) == 0 ? 0 : 1;
}

}  // namespace miras
