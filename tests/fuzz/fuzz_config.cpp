// libFuzzer harness: what `miras train CONFIG --set K=V ...` does before the
// first step, on arbitrary TOML. The input is the config file, optionally
// followed by '\0'-separated --set overrides. load_run_config (train/config.h,
// train/model_config.h) must accept or refuse it with a std::exception; an
// accepted config must survive its own dump (RunConfig::toml, stored in every
// checkpoint) unchanged, and for a small model the data task, the model and
// the optimizer are built and one batch is run forward.
//   make fuzz && tests/fuzz/run.sh config
#include <cstdlib>
#include <exception>

#include "tests/fuzz/fuzz_util.h"
#include "train/probe.h"

using namespace miras;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const size_t nul = text.find('\0');
    std::vector<std::string> sets;
    for (size_t at = nul; at != std::string::npos && sets.size() < 8;) {
        const size_t next = text.find('\0', at + 1);
        sets.push_back(text.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1));
        at = next;
    }
    const std::string toml = text.substr(0, nul);
    const std::string path = fuzz::write_input("cfg", reinterpret_cast<const uint8_t*>(toml.data()), toml.size(), ".toml");
    RunConfig rc;
    try {
        // model.params_target builds the model (a block of it) to size its
        // MLP: a large model is read with the target off, as it would take
        // gigabytes (its configs are not built below either).
        std::vector<std::string> no_target = sets;
        no_target.push_back("model.params_target=0");
        if (!fuzz::small_model(load_run_config(path, no_target).model)) sets = no_target;
        rc = load_run_config(path, sets);
    } catch (const std::exception&) {
        return 0;
    }
    // The dump reads back to itself: a checkpoint's stored config rebuilds the same run.
    RunConfig again = run_config_from_string(rc.toml, "dump");
    if (again.toml != rc.toml) {
        std::fprintf(stderr, "config dump does not read back to itself:\n%s\n---\n%s\n", rc.toml.c_str(),
                     again.toml.c_str());
        std::abort();
    }
    if (rc.data.task == "bytes" || !fuzz::small_model(rc.model) || rc.data.seq_len > 256) return 0;
    try {
        TaskData task(rc.data);
        auto model = build_model(rc.model);
        auto opt = make_optimizer(rc.optim, *model);
        TokenBatch b = task.train_batch(0, 1);
        probe_model(*model, IndexTensor({b.batch, b.seq_len}, b.inputs), IndexTensor({b.batch, b.seq_len}, b.targets),
                    false);
    } catch (const std::exception& e) {
        // An accepted config must build and run: an exception here is a bug too.
        std::fprintf(stderr, "accepted config fails to build or run: %s\n%s\n", e.what(), rc.toml.c_str());
        std::abort();
    }
    return 0;
}
