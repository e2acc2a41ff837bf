// The `miras suite` command of the CLI (train/cli.cpp registers it):
//
//   miras suite [--suite FILE] [--quick] [--out DIR] [--results PAGE]
//               [--tasks a,b] [--presets a,b] [--seeds 0,1] [--shard K/N] [--page-only]
//
// trains every preset of the suite file on every task (train/suite.h) and
// writes the page of results.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace miras {

struct SuiteArgs {
    std::string suite, out, results, shard;
    bool quick = false, page_only = false;
    std::vector<std::string> tasks, presets;
    std::vector<int64_t> seeds;
};

CLI::App* add_suite_command(CLI::App& app, SuiteArgs& a);
// Exit code: 0, or 1 when a run failed (the page is written either way).
int cmd_suite(const SuiteArgs& a, const std::vector<std::string>& argv, std::ostream& out);

}  // namespace miras
