// The safetensors checkpoint format (https://github.com/huggingface/safetensors):
//
//   [u64 little-endian N] [N bytes of JSON header] [data section]
//
// The header maps each tensor name to {"dtype", "shape", "data_offsets":
// [begin, end]} (offsets relative to the start of the data section), plus an
// optional "__metadata__" object of string -> string. Tensor data is raw
// little-endian, C order.
//
// This layer knows nothing about tensors: an entry is a name, a dtype string,
// a shape and the raw bytes, so it can be tested (and trusted) on its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace miras {

struct StEntry {
    std::string name;
    std::string dtype;           // "F32", "F64", "I64", "I32", "U8", ... (see st_dtype_size)
    std::vector<int64_t> shape;  // empty = scalar (one element)
    std::vector<uint8_t> bytes;  // product(shape) * st_dtype_size(dtype) bytes
};

struct StFile {
    // read_safetensors: in the order of their data in the file (which is name
    // order for files write_safetensors wrote). write_safetensors: any order.
    std::vector<StEntry> entries;
    std::map<std::string, std::string> metadata;

    // nullptr when no entry has this name.
    const StEntry* find(const std::string& name) const;
};

// Bytes per element of a safetensors dtype, 0 if the dtype is unknown.
size_t st_dtype_size(const std::string& dtype);

// Writes atomically (train/atomic_file.h): the data goes to "<path>.tmp.<pid>", is fsync'ed and then
// renamed over `path`, so a crash or a full disk never destroys an older
// checkpoint at `path`. Entries are laid out sorted by name. Throws
// std::runtime_error (bad entry, I/O failure), leaving no temporary behind.
void write_safetensors(const std::string& path, const StFile& file);

// The start of the file write_safetensors writes for `file`: the 8-byte
// header length and the padded JSON header. The data section that follows
// is the entries' bytes in name order. Throws as write_safetensors.
std::string safetensors_head(const std::string& path, const StFile& file);

// Reads and fully validates a file; any inconsistency (truncation, bad JSON,
// unknown dtype, offsets that overlap, leave gaps or disagree with the shape,
// duplicate names, ...) throws std::runtime_error naming the file and the
// offending entry or byte offset. Corrupt input never crashes.
// With `header_text`, also the JSON header exactly as stored, padding
// included: with the entries' bytes in their order, every byte of the file
// (what a hash of the file covers).
StFile read_safetensors(const std::string& path, std::string* header_text = nullptr);

}  // namespace miras
