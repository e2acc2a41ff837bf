#include "train/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

#include "tensor/shape.h"
#include "train/atomic_file.h"

namespace miras {

namespace {

using nlohmann::json;

// The reference implementation refuses larger headers; so do we, which also
// bounds what a corrupt length field can make us allocate.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// A valid header nests three deep (header, entry, shape); deeper JSON is
// refused while parsing, which also keeps the recursive json::dump of the
// error messages within the stack.
constexpr int kMaxHeaderDepth = 16;
const char* const kMetadataKey = "__metadata__";

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw std::runtime_error(path + ": " + what);
}

std::string errno_text() { return std::strerror(errno); }

// Closes the descriptor on every exit path, including exceptions.
struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

// pread until `n` bytes arrived; false on EOF or error.
bool read_exact(int fd, void* buf, size_t n, uint64_t offset) {
    auto* p = static_cast<uint8_t*>(buf);
    while (n > 0) {
        ssize_t got = ::pread(fd, p, n, static_cast<off_t>(offset));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return false;
        p += got;
        n -= static_cast<size_t>(got);
        offset += static_cast<uint64_t>(got);
    }
    return true;
}

// product(shape) * elem_size, or false on overflow. The shape must also be
// one a tensor can have (shape_fits: e.g. [0, 2^62, 2^62] holds no bytes but
// its strides overflow int64).
bool byte_size(const std::vector<int64_t>& shape, size_t elem_size, uint64_t& out) {
    if (!shape_fits(shape)) return false;
    uint64_t n = elem_size;
    for (int64_t d : shape)
        if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
    out = n;
    return true;
}

// A JSON value for a message: at most 64 characters of it.
std::string excerpt(const json& j) {
    std::string s = j.dump();
    return s.size() <= 64 ? s : s.substr(0, 60) + " ...";
}

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

// Builds the header's DOM with nlohmann's own SAX builder and checks two
// things on the way: the nesting depth, and duplicated keys at any level
// (nlohmann would silently keep the last one). One set of keys per open
// object makes the whole parse O(n log n) in the header's size. (A callback
// given to json::parse would do the same checks, but nlohmann's callback
// parser scans the parent object each time a child object ends, which is
// quadratic: 40,000 entries took 101 s.)
class HeaderSax {
public:
    using Dom = nlohmann::detail::json_sax_dom_parser<json>;
    HeaderSax(const std::string& path, json& root) : path_(path), dom_(root) {}

    bool null() { return dom_.null(); }
    bool boolean(bool v) { return dom_.boolean(v); }
    bool number_integer(json::number_integer_t v) { return dom_.number_integer(v); }
    bool number_unsigned(json::number_unsigned_t v) { return dom_.number_unsigned(v); }
    bool number_float(json::number_float_t v, const json::string_t& s) { return dom_.number_float(v, s); }
    bool string(json::string_t& v) { return dom_.string(v); }
    bool binary(json::binary_t& v) { return dom_.binary(v); }
    bool start_object(std::size_t n) {
        enter();
        keys_.emplace_back();
        return dom_.start_object(n);
    }
    bool key(json::string_t& k) {
        if (!keys_.back().insert(k).second) fail(path_, "duplicate key '" + k + "' in header");
        return dom_.key(k);
    }
    bool end_object() {
        keys_.pop_back();
        --depth_;
        return dom_.end_object();
    }
    bool start_array(std::size_t n) {
        enter();
        return dom_.start_array(n);
    }
    bool end_array() {
        --depth_;
        return dom_.end_array();
    }
    template <class Exception> bool parse_error(std::size_t pos, const std::string& token, const Exception& e) {
        return dom_.parse_error(pos, token, e);  // throws e
    }

private:
    void enter() {
        if (depth_++ >= kMaxHeaderDepth)
            fail(path_, "header nests JSON arrays or objects more than " + std::to_string(kMaxHeaderDepth) +
                            " levels deep");
    }
    const std::string& path_;
    Dom dom_;
    std::vector<std::set<std::string>> keys_;  // the keys of each open object, innermost last
    int depth_ = 0;
};

json parse_header(const std::string& path, const std::string& text) {
    json header;
    HeaderSax sax(path, header);
    try {
        json::sax_parse(text, &sax);
    } catch (const json::parse_error& e) {
        // e.byte is 1-based within the header; the header starts at file byte 8.
        fail(path, "header is not valid JSON (near file byte " + std::to_string(8 + e.byte - 1) + "): " + e.what());
    }
    if (!header.is_object()) fail(path, "header must be a JSON object, got " + std::string(header.type_name()));
    return header;
}

struct Slot {
    StEntry entry;
    uint64_t begin = 0, end = 0;
};

Slot parse_entry(const std::string& path, const std::string& name, const json& j) {
    const std::string where = "entry '" + name + "': ";
    if (!j.is_object()) fail(path, where + "must be a JSON object");
    for (const auto& [key, _] : j.items()) {
        if (key != "dtype" && key != "shape" && key != "data_offsets")
            fail(path, where + "unexpected field '" + key + "'");
    }
    if (!j.contains("dtype") || !j.contains("shape") || !j.contains("data_offsets"))
        fail(path, where + "needs the fields dtype, shape and data_offsets");

    Slot s;
    s.entry.name = name;
    if (!j["dtype"].is_string()) fail(path, where + "dtype must be a string");
    s.entry.dtype = j["dtype"].get<std::string>();
    size_t elem = st_dtype_size(s.entry.dtype);
    if (elem == 0) fail(path, where + "unknown dtype '" + s.entry.dtype + "'");

    const json& shape = j["shape"];
    if (!shape.is_array()) fail(path, where + "shape must be an array");
    for (const json& d : shape) {
        // is_number_unsigned excludes negatives and floats such as 2.0 or 1e3.
        if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
            fail(path, where + "shape must hold non-negative integers, got " + excerpt(d));
        s.entry.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    }

    const json& off = j["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
        fail(path, where + "data_offsets must be [begin, end] with non-negative integers, got " + excerpt(off));
    s.begin = off[0].get<uint64_t>();
    s.end = off[1].get<uint64_t>();
    if (s.begin > s.end) fail(path, where + "data_offsets " + off.dump() + " has begin > end");

    uint64_t need = 0;
    if (!byte_size(s.entry.shape, elem, need))
        fail(path, where + "shape " + shape_str(s.entry.shape) + " is too large");
    if (need != s.end - s.begin)
        fail(path, where + "data_offsets " + off.dump() + " span " + std::to_string(s.end - s.begin) +
                       " bytes but shape " + shape_str(s.entry.shape) + " of " + s.entry.dtype + " needs " +
                       std::to_string(need));
    return s;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& j) {
    if (!j.is_object()) fail(path, "__metadata__ must be a JSON object");
    std::map<std::string, std::string> out;
    for (const auto& [key, value] : j.items()) {
        if (!value.is_string()) fail(path, "__metadata__ value for '" + key + "' must be a string");
        out[key] = value.get<std::string>();
    }
    return out;
}

}  // namespace

const StEntry* StFile::find(const std::string& name) const {
    for (const StEntry& e : entries)
        if (e.name == name) return &e;
    return nullptr;
}

size_t st_dtype_size(const std::string& dtype) {
    static const std::map<std::string, size_t> sizes = {
        {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
        {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"I64", 8},     {"U64", 8}, {"F64", 8}};
    auto it = sizes.find(dtype);
    return it == sizes.end() ? 0 : it->second;
}

namespace {

// Validates `file` and returns its entries in name order (the data order).
std::vector<const StEntry*> entries_in_order(const std::string& path, const StFile& file) {
    std::vector<const StEntry*> order;
    for (const StEntry& e : file.entries) {
        const std::string where = "cannot write entry '" + e.name + "': ";
        if (e.name == kMetadataKey) fail(path, where + "the name is reserved");
        size_t elem = st_dtype_size(e.dtype);
        if (elem == 0) fail(path, where + "unknown dtype '" + e.dtype + "'");
        uint64_t need = 0;
        if (!byte_size(e.shape, elem, need)) fail(path, where + "invalid shape " + shape_str(e.shape));
        if (need != e.bytes.size())
            fail(path, where + "shape " + shape_str(e.shape) + " of " + e.dtype + " needs " + std::to_string(need) +
                           " bytes, got " + std::to_string(e.bytes.size()));
        order.push_back(&e);
    }
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->name < b->name; });
    for (size_t i = 1; i < order.size(); ++i)
        if (order[i]->name == order[i - 1]->name) fail(path, "cannot write: duplicate entry '" + order[i]->name + "'");
    return order;
}

std::string head_of(const std::string& path, const StFile& file, const std::vector<const StEntry*>& order) {
    // Metadata first, then entries in name order with consecutive offsets.
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!file.metadata.empty()) header[kMetadataKey] = file.metadata;
    uint64_t offset = 0;
    for (const StEntry* e : order) {
        header[e->name] = {
            {"dtype", e->dtype}, {"shape", e->shape}, {"data_offsets", {offset, offset + e->bytes.size()}}};
        offset += e->bytes.size();
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception& e) {
        fail(path, std::string("cannot write: names and metadata must be valid UTF-8 (") + e.what() + ")");
    }
    // Like the reference writer: pad with spaces so the data section starts
    // 8-byte aligned, which lets readers map f64/i64 data in place.
    text.append((8 - text.size() % 8) % 8, ' ');
    std::string head(8, '\0');
    for (int i = 0; i < 8; ++i) head[i] = static_cast<char>(static_cast<uint64_t>(text.size()) >> (8 * i));
    return head + text;
}

}  // namespace

std::string safetensors_head(const std::string& path, const StFile& file) {
    return head_of(path, file, entries_in_order(path, file));
}

void write_safetensors(const std::string& path, const StFile& file) {
    // Validate everything before touching the disk.
    const std::vector<const StEntry*> order = entries_in_order(path, file);
    const std::string head = head_of(path, file, order);
    // Temporary file, fsync, rename (train/atomic_file.h).
    std::vector<std::string_view> parts{head};
    for (const StEntry* e : order) parts.emplace_back(reinterpret_cast<const char*>(e->bytes.data()), e->bytes.size());
    write_file_atomically(path, parts);
}

StFile read_safetensors(const std::string& path, std::string* header_text) {
    // O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever
    // before the type check below could refuse it (no effect on regular files).
    Fd in(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (in.fd < 0) fail(path, "cannot open: " + errno_text());
    struct stat st {};
    if (::fstat(in.fd, &st) != 0) fail(path, "cannot stat: " + errno_text());
    if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
    const uint64_t file_size = static_cast<uint64_t>(st.st_size);
    if (file_size < 8)
        fail(path, "file is " + std::to_string(file_size) + " bytes, too short for the 8-byte header length");

    uint8_t len_le[8];
    if (!read_exact(in.fd, len_le, 8, 0)) fail(path, "cannot read the header length (bytes 0..7)");
    uint64_t header_len = 0;
    for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(len_le[i]) << (8 * i);
    if (header_len > file_size - 8)
        fail(path, "header length " + std::to_string(header_len) + " (bytes 0..7) exceeds the " +
                       std::to_string(file_size - 8) + " bytes that follow");
    if (header_len > kMaxHeaderBytes)
        fail(path, "header length " + std::to_string(header_len) + " exceeds the limit of " +
                       std::to_string(kMaxHeaderBytes));

    std::string text(header_len, '\0');
    if (!read_exact(in.fd, text.data(), text.size(), 8))
        fail(path, "cannot read the header (bytes 8.." + std::to_string(8 + header_len) + ")");
    const json header = parse_header(path, text);

    StFile out;
    std::vector<Slot> slots;
    for (const auto& [name, value] : header.items()) {
        if (name == kMetadataKey)
            out.metadata = parse_metadata(path, value);
        else
            slots.push_back(parse_entry(path, name, value));
    }

    // The data must be tiled exactly by the entries: no overlap, no gap, nothing
    // missing or left over (the reference implementation is equally strict).
    const uint64_t data_start = 8 + header_len;
    const uint64_t data_size = file_size - data_start;
    std::vector<Slot*> by_offset;  // stable: entries of equal offsets (empty ones) stay in name order
    for (Slot& s : slots) by_offset.push_back(&s);
    std::stable_sort(by_offset.begin(), by_offset.end(),
              [](auto* a, auto* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
    uint64_t expected = 0;
    const Slot* prev = nullptr;
    for (const Slot* s : by_offset) {
        const std::string range = "[" + std::to_string(s->begin) + ", " + std::to_string(s->end) + "]";
        if (s->end > data_size)
            fail(path, "entry '" + s->entry.name + "': data_offsets " + range + " run past the end of the " +
                           std::to_string(data_size) + "-byte data section at file byte " + std::to_string(data_start) +
                           " (truncated file?)");
        if (s->begin < expected)
            fail(path,
                 "entry '" + s->entry.name + "': data_offsets " + range + " overlap entry '" + prev->entry.name + "'");
        if (s->begin > expected)
            fail(path, "entry '" + s->entry.name + "': data_offsets " + range + " leave data bytes [" +
                           std::to_string(expected) + ", " + std::to_string(s->begin) + ") unused");
        expected = s->end;
        prev = s;
    }
    if (expected != data_size)
        fail(path, "data section at file byte " + std::to_string(data_start) + " has " + std::to_string(data_size) +
                       " bytes but the entries cover only " + std::to_string(expected));

    // Entries in data order (by_offset), each read from the file.
    for (Slot* p : by_offset) {
        Slot& s = *p;
        s.entry.bytes.resize(s.end - s.begin);
        if (!read_exact(in.fd, s.entry.bytes.data(), s.entry.bytes.size(), data_start + s.begin))
            fail(path, "entry '" + s.entry.name + "': cannot read its data at file byte " +
                           std::to_string(data_start + s.begin));
        out.entries.push_back(std::move(s.entry));
    }
    if (header_text) *header_text = std::move(text);
    return out;
}

}  // namespace miras
