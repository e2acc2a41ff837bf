// libFuzzer harness: read_checkpoint (train/checkpoint.h) on arbitrary bytes,
// then what `miras eval` / `miras train --resume` do with the result: rebuild
// the run from the stored config (with a small model: build it, load the
// parameters and the optimizer state, run one batch). Mutated bytes almost
// never keep the hash right, so a file that parses as safetensors is also
// re-signed with its correct hash (sign_checkpoint) and read again, which
// reaches the code behind the hash test. Only std::exceptions may come out.
//   make fuzz && tests/fuzz/run.sh checkpoint
#include <cstdlib>
#include <exception>

#include "tests/fuzz/fuzz_util.h"
#include "train/checkpoint.h"
#include "train/probe.h"

using namespace miras;

namespace {

void use(const std::string& path) {
    Checkpoint ck;
    try {
        ck = read_checkpoint(path);
    } catch (const std::exception&) {
        return;
    }
    try {
        RunConfig rc = run_config_from_string(ck.config_toml, path + " (stored config)");
        if (rc.data.task == "bytes" || !fuzz::small_model(rc.model) || rc.data.seq_len > 256) return;
        auto model = build_model(rc.model);
        auto opt = make_optimizer(rc.optim, *model);
        load_model_state(ck, *model, path);
        load_optimizer_state(ck, *opt, path);
        TokenBatch b = TaskData(rc.data).train_batch(ck.step, 1);
        probe_model(*model, IndexTensor({b.batch, b.seq_len}, b.inputs), IndexTensor({b.batch, b.seq_len}, b.targets),
                    false);
    } catch (const std::exception&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = fuzz::write_input("ck", data, size);
    use(path);
    StFile f;
    try {
        f = read_safetensors(path);
    } catch (const std::exception&) {
        return 0;
    }
    auto it = f.metadata.find("sha256");
    if (it == f.metadata.end()) return 0;
    const std::string stored = it->second;
    const std::string signed_path = path + ".signed";
    try {
        sign_checkpoint(signed_path, f);
        if (f.metadata["sha256"] == stored) return 0;  // already read above
        write_safetensors(signed_path, f);
    } catch (const std::exception&) {
        return 0;
    }
    use(signed_path);
    return 0;
}
