// The `miras` command line (build/miras), as a library function so tests can
// run it in-process:
//
//   miras train    [CONFIG...] [--preset NAME] [--set key=value]... [--out DIR] [--resume CKPT]
//                  [--seeds 0,1,2] [--sweep key=v1,v2]...      (a run per point: train/sweep.h)
//   miras eval     CKPT [--set key=value]... [--batches N]
//   miras generate CKPT [--prompt TEXT] [--length N] [--temperature X] [--top-k K] [--seed S] [--windowed]
//   miras info     [CONFIG...] [--preset NAME] [--set key=value]...
//   miras forward  [CONFIG...] [--preset NAME] [--set key=value]... [--layer] [--params P] [--input X | --seed S]
//                  [--out FILE] [--dump-params FILE]
//   miras grad     (the same options; also writes grad.<param> and, for --layer, grad.x)
//   miras suite    [--suite FILE] [--quick] [--out DIR] [--results PAGE] [--tasks ..] [--presets ..] [--seeds ..]
//   miras compare  RUN... [--out DIR] [--no-group]     (train/compare.h)
//
// `miras <command> --help` describes each. The config is layered: the preset
// (--preset NAME reads train/configs/presets/NAME.toml, train/model_config.h),
// then each CONFIG file in order, then the --set overrides; a later layer's
// key replaces an earlier one's. With neither a preset nor a file, train and
// info use train/configs/default.toml when it exists (relative to the working
// folder), else the built-in default (the same values). forward and grad are
// for checking against another implementation (train/probe.h).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace miras {

inline constexpr const char* kDefaultConfigPath = "train/configs/default.toml";

// Exit codes: 0 success, 1 an error (printed to `err` as "error: ..."), 2 a
// usage error, 130 training stopped by Ctrl-C (after saving a checkpoint).
// args[0] is the program name. Progress lines are redrawn in place only when
// `out` is std::cout on a terminal.
int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int run_cli(int argc, const char* const* argv);  // with std::cout / std::cerr

}  // namespace miras
