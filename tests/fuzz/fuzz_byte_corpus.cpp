// libFuzzer harness: the data file of data.task = "bytes" (ByteCorpus,
// train/tasks.h) through TaskData as `miras train` uses it. The first three
// input bytes choose data.seq_len and data.bytes.heldout_fraction, the rest
// is the corpus. Only std::exceptions may come out.
//   make fuzz && tests/fuzz/run.sh byte_corpus
#include <exception>

#include "tests/fuzz/fuzz_util.h"

using namespace miras;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 3) return 0;
    DataConfig d;
    d.task = "bytes";
    d.seq_len = 1 + data[0] % 64;
    d.heldout_fraction = 0.001 + (double)(data[1] | data[2] << 8) / 65535.0 * 0.899;
    d.bytes_path = fuzz::write_input("bytes", data + 3, size - 3);
    try {
        TaskData task(d);
        task.train_batch(7, 3);
        task.eval_sets(2, 3);
    } catch (const std::exception&) {
    }
    return 0;
}
