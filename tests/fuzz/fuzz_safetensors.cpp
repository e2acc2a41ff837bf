// libFuzzer harness: read_safetensors (train/safetensors.h) on arbitrary bytes.
// A std::exception is a clean refusal; a crash, sanitizer report, hang or an
// allocation beyond the file's size is a bug. A file that is accepted must
// write back and read back to the same entries.
//   make fuzz && tests/fuzz/run.sh safetensors
#include <cstdlib>
#include <exception>

#include "tests/fuzz/fuzz_util.h"
#include "train/safetensors.h"

using namespace miras;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = fuzz::write_input("st", data, size);
    StFile f;
    try {
        f = read_safetensors(path);
    } catch (const std::exception&) {
        return 0;
    }
    // Everything accepted holds no more bytes than the file.
    size_t total = 0;
    for (const StEntry& e : f.entries) total += e.bytes.size();
    if (total > size) std::abort();
    // Round trip: what was read writes and reads back identically.
    const std::string again = path + ".rt";
    try {
        write_safetensors(again, f);
    } catch (const std::exception&) {
        return 0;  // e.g. a name that is not valid UTF-8 is refused on writing
    }
    StFile g = read_safetensors(again);
    if (g.metadata != f.metadata || g.entries.size() != f.entries.size()) std::abort();
    for (const StEntry& e : f.entries) {
        const StEntry* h = g.find(e.name);
        if (!h || h->dtype != e.dtype || h->shape != e.shape || h->bytes != e.bytes) std::abort();
    }
    return 0;
}
