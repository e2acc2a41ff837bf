#pragma once
// Runs the `miras` command line in-process (run_cli, train/cli.h) and keeps
// what it printed, for the CLI tests.
#include <sstream>
#include <string>
#include <vector>

#include "train/cli.h"

namespace miras::testing {

struct CliRun {
    int code;
    std::string out, err;
};

// args without the program name: run_miras({"info", "--preset", "moneta"}).
inline CliRun run_miras(std::vector<std::string> args) {
    args.insert(args.begin(), "miras");
    std::ostringstream out, err;
    int code = run_cli(args, out, err);
    return {code, out.str(), err.str()};
}

}  // namespace miras::testing
