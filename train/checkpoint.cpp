#include "train/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <nlohmann/json.hpp>

#include "train/safetensors.h"
#include "train/sha256.h"

namespace miras {

namespace {

const char* const kOptimPrefix = "optim.";
const char* const kStepName = "train.step";
const char* const kSeedName = "train.data_seed";

std::string st_dtype(DType dt) { return dt == DType::f32 ? "F32" : "F64"; }

StEntry to_entry(const std::string& name, const Tensor& t) {
    Tensor c = raw::contiguous(t);
    StEntry e;
    e.name = name;
    e.dtype = st_dtype(c.dtype());
    e.shape = c.shape();
    e.bytes.resize((size_t)c.numel() * dtype_size(c.dtype()));
    dispatch(c.dtype(), [&]<class T>() {
        if (!e.bytes.empty()) std::memcpy(e.bytes.data(), c.data<T>(), e.bytes.size());
    });
    return e;
}

Tensor to_tensor(const std::string& path, const StEntry& e) {
    DType dt;
    if (e.dtype == "F32")
        dt = DType::f32;
    else if (e.dtype == "F64")
        dt = DType::f64;
    else
        throw std::runtime_error(path + ": tensor '" + e.name + "' has dtype " + e.dtype +
                                 "; parameters and optimizer state must be F32 or F64");
    Tensor t = Tensor::empty(e.shape, dt);
    dispatch(dt, [&]<class T>() {
        if (!e.bytes.empty()) std::memcpy(t.data<T>(), e.bytes.data(), e.bytes.size());
    });
    return t;
}

template <class I> StEntry scalar_entry(const std::string& name, const char* dtype, I value) {
    StEntry e;
    e.name = name;
    e.dtype = dtype;
    e.bytes.resize(sizeof(I));
    std::memcpy(e.bytes.data(), &value, sizeof(I));  // little-endian hosts only, like the rest of the format code
    return e;
}

template <class I> I scalar_value(const std::string& path, const StFile& f, const std::string& name, const char* dtype) {
    const StEntry* e = f.find(name);
    if (!e) throw std::runtime_error(path + ": not a miras checkpoint: the tensor '" + name + "' is missing");
    if (e->dtype != dtype || !e->shape.empty() || e->bytes.size() != sizeof(I))
        throw std::runtime_error(path + ": tensor '" + name + "' must be a " + dtype + " scalar");
    I v;
    std::memcpy(&v, e->bytes.data(), sizeof(I));
    return v;
}

// The parameter an optimizer buffer "<kind>.<buffer>.<param name>" belongs
// to ("" for "<kind>.step").
std::string buffer_param(const std::string& optim_name) {
    const size_t a = optim_name.find('.');
    const size_t b = a == std::string::npos ? a : optim_name.find('.', a + 1);
    return b == std::string::npos ? "" : optim_name.substr(b + 1);
}

StoredLayout layout_of(const Checkpoint& ck, const std::string& param) {
    auto it = ck.layouts.find(param);
    return it == ck.layouts.end() ? StoredLayout::same : it->second;
}

// The "layouts" metadata: "<tensor name>=<layout>" lines.
std::map<std::string, std::string> parse_layouts(const std::string& path, const std::string& text) {
    std::map<std::string, std::string> out;
    size_t at = 0;
    while (at < text.size()) {
        size_t end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        const std::string line = text.substr(at, end - at);
        at = end + 1;
        const size_t eq = line.rfind('=');
        if (eq == std::string::npos || eq == 0)
            throw std::runtime_error(path + ": checkpoint metadata 'layouts': line '" + line +
                                     "' is not '<tensor name>=<layout>'");
        out[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return out;
}

// Converts the tensors of a "miras-checkpoint-3" file (by file name) from
// their stored layout, as `text` (the "layouts" metadata) gives it, to the
// memory layout, in place; records the parameters' layouts in ck.layouts.
void read_layouts(const std::string& path, const std::string& text, std::map<std::string, Tensor>& tensors,
                  Checkpoint& ck) {
    for (const auto& [name, lname] : parse_layouts(path, text)) {
        StoredLayout l;
        if (!parse_layout(lname, l))
            throw std::runtime_error(path + ": tensor '" + name + "': unknown stored layout '" + lname +
                                     "' (known: same, linear, depthwise)");
        auto it = tensors.find(name);
        if (it == tensors.end())
            throw std::runtime_error(path + ": metadata 'layouts' names tensor '" + name + "', which the file lacks");
        try {
            it->second = from_stored(l, it->second);
        } catch (const std::invalid_argument& e) {
            throw std::runtime_error(path + ": tensor '" + name + "': " + e.what());
        }
        if (l != StoredLayout::same && name.rfind(kOptimPrefix, 0) != 0) ck.layouts[name] = l;
    }
}

const char* const kHashKey = "sha256";
const std::string kHashPlaceholder(64, '0');

// The stored hash's value as it appears in the header text: the writer's
// compact JSON, so `"sha256":"<64 hex digits>"` (the key cannot occur inside
// a string, where its quotes would be escaped).
std::string hash_field(const std::string& hex) { return std::string("\"") + kHashKey + "\":\"" + hex + "\""; }

// FNV-1a 64 over every entry's name, dtype, shape and bytes in name order:
// the checksum of miras-checkpoint-1 files, which covers neither the
// metadata nor the header. Still read, never written.
std::string legacy_checksum(const StFile& f) {
    std::map<std::string, const StEntry*> sorted;
    for (const StEntry& e : f.entries) sorted[e.name] = &e;
    uint64_t h = 0xcbf29ce484222325ull;
    auto add = [&](const void* p, size_t n) {
        const auto* b = static_cast<const uint8_t*>(p);
        for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
    };
    for (const auto& [name, e] : sorted) {
        add(name.data(), name.size());
        add("", 1);
        add(e->dtype.data(), e->dtype.size());
        add("", 1);
        for (int64_t d : e->shape) add(&d, sizeof d);
        add(e->bytes.data(), e->bytes.size());
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
    return buf;
}

// Checks the hash of a file read by read_safetensors (entries in data order,
// `header_text` as stored): SHA-256 of every byte of the file, with the 64
// digits of the stored hash read as '0's.
void verify_hash(const std::string& path, const StFile& f, const std::string& header_text, const std::string& stored) {
    const std::string field = hash_field(stored);
    const size_t at = header_text.find(field);
    if (stored.size() != 64 || stored.find_first_not_of("0123456789abcdef") != std::string::npos ||
        at == std::string::npos)
        throw std::runtime_error(path + ": checkpoint is corrupted: the stored sha256 is not 64 hex digits in the "
                                 "header's written form");
    std::string header = header_text;
    header.replace(at + field.size() - 1 - 64, 64, kHashPlaceholder);  // the digits, before the closing quote
    char len_le[8];
    for (int i = 0; i < 8; ++i) len_le[i] = static_cast<char>(static_cast<uint64_t>(header.size()) >> (8 * i));
    Sha256 h;
    h.add(len_le, 8);
    h.add(header);
    for (const StEntry& e : f.entries) h.add(e.bytes.data(), e.bytes.size());
    const std::string actual = h.hex();
    if (actual != stored)
        throw std::runtime_error(path + ": checkpoint is corrupted: its SHA-256 " + actual +
                                 " does not match the stored " + stored);
}

// "" when every value of `t` is finite, else what is wrong, for a message.
std::string non_finite(const Tensor& t) {
    const std::vector<double> x = raw::contiguous(t).to_vector();
    int64_t bad = 0, first = -1;
    for (size_t i = 0; i < x.size(); ++i)
        if (!std::isfinite(x[i]) && bad++ == 0) first = (int64_t)i;
    if (bad == 0) return "";
    return std::to_string(bad) + " of " + std::to_string(x.size()) + " values are not finite (the first, " +
           std::to_string(x[(size_t)first]) + ", at flat index " + std::to_string(first) + ")";
}

}  // namespace

Checkpoint make_checkpoint(const Module& model, const Optimizer* opt, int64_t step, uint64_t data_seed,
                           const std::string& config_toml, const std::string& data_fingerprint) {
    Checkpoint ck;
    for (const auto& [name, p] : model.named_parameters()) ck.params[name] = raw::clone(p);
    ck.layouts = model.parameter_layouts();
    if (opt) {
        ck.optim = opt->state_dict();  // already copies
        for (const auto& [name, t] : ck.optim) {
            ck.optim_kind = name.substr(0, name.find('.'));
            break;
        }
    }
    ck.step = step;
    ck.data_seed = data_seed;
    ck.config_toml = config_toml;
    ck.data_fingerprint = data_fingerprint;
    return ck;
}

void sign_checkpoint(const std::string& path, StFile& f) {
    f.metadata[kHashKey] = kHashPlaceholder;
    Sha256 h;
    h.add(safetensors_head(path, f));
    std::vector<const StEntry*> order;  // the data order of write_safetensors
    for (const StEntry& e : f.entries) order.push_back(&e);
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->name < b->name; });
    for (const StEntry* e : order) h.add(e->bytes.data(), e->bytes.size());
    f.metadata[kHashKey] = h.hex();  // as long as the placeholder: the header keeps its length
}

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
    // A diverged state is never written: the file at `path` stays the last good one.
    for (const auto& [name, t] : ck.params)
        if (std::string bad = non_finite(t); !bad.empty())
            throw std::runtime_error(path + ": not saved: parameter '" + name + "': " + bad +
                                     "; the file keeps the previous checkpoint");
    for (const auto& [name, t] : ck.optim)
        if (std::string bad = non_finite(t); !bad.empty())
            throw std::runtime_error(path + ": not saved: optimizer state '" + name + "': " + bad +
                                     "; the file keeps the previous checkpoint");
    StFile f;
    std::string layouts;  // "name=layout" lines, in name order
    auto add = [&](const std::string& name, const Tensor& t, StoredLayout l) {
        f.entries.push_back(to_entry(name, to_stored(l, t)));
        if (l != StoredLayout::same) layouts += name + "=" + layout_name(l) + "\n";
    };
    for (const auto& [name, t] : ck.params) {
        if (name.rfind(kOptimPrefix, 0) == 0 || name == kStepName || name == kSeedName)
            throw std::invalid_argument("save_checkpoint: parameter name '" + name + "' collides with a reserved name");
        add(name, t, layout_of(ck, name));
    }
    // A buffer is stored like its parameter, so that resuming converts both
    // the same way and stays bit-exact.
    for (const auto& [name, t] : ck.optim) {
        const std::string param = buffer_param(name);
        auto p = ck.params.find(param);
        const bool follows = p != ck.params.end() && p->second.shape() == t.shape();
        add(kOptimPrefix + name, t, follows ? layout_of(ck, param) : StoredLayout::same);
    }
    f.entries.push_back(scalar_entry<int64_t>(kStepName, "I64", ck.step));
    f.entries.push_back(scalar_entry<uint64_t>(kSeedName, "U64", ck.data_seed));
    f.metadata["format"] = kCheckpointFormat;
    f.metadata["layout"] = "pytorch";
    f.metadata["layouts"] = layouts;
    f.metadata["config"] = ck.config_toml;
    f.metadata["step"] = std::to_string(ck.step);
    f.metadata["optimizer"] = ck.optim_kind.empty() ? "none" : ck.optim_kind;
    if (!ck.data_fingerprint.empty()) f.metadata["data"] = ck.data_fingerprint;
    f.metadata["loop"] = nlohmann::json{{"loss_ema", ck.loop.loss_ema},
                                        {"loss_ema_steps", ck.loop.loss_ema_steps},
                                        {"elapsed_s", ck.loop.elapsed_s},
                                        {"cpu_s", ck.loop.cpu_s}}
                             .dump();
    sign_checkpoint(path, f);
    write_safetensors(path, f);
}

namespace {

// The "loop" metadata: every figure present, a finite number (a count >= 0).
Checkpoint::Loop read_loop(const std::string& path, const std::string& text) {
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    auto bad = [&](const std::string& why) {
        return std::runtime_error(path + ": checkpoint metadata 'loop' " + why);
    };
    if (!j.is_object()) throw bad("is not a JSON object");
    auto number = [&](const char* key) {
        if (!j.contains(key) || !j[key].is_number() || !std::isfinite(j[key].get<double>()))
            throw bad(std::string("has no finite number '") + key + "'");
        return j[key].get<double>();
    };
    Checkpoint::Loop l;
    l.loss_ema = number("loss_ema");
    l.elapsed_s = number("elapsed_s");
    l.cpu_s = number("cpu_s");
    if (!j.contains("loss_ema_steps") || !j["loss_ema_steps"].is_number_integer() || j["loss_ema_steps"].get<int64_t>() < 0)
        throw bad("has no count 'loss_ema_steps' >= 0");
    l.loss_ema_steps = j["loss_ema_steps"].get<int64_t>();
    return l;
}

}  // namespace

Checkpoint read_checkpoint(const std::string& path) {
    std::string header_text;
    StFile f = read_safetensors(path, &header_text);  // throws on a missing, truncated or malformed container
    auto meta = [&](const std::string& key) -> const std::string& {
        auto it = f.metadata.find(key);
        if (it == f.metadata.end())
            throw std::runtime_error(path + ": not a miras checkpoint: __metadata__ has no '" + key + "'");
        return it->second;
    };
    const std::string format = meta("format");
    if (format == kCheckpointFormat || format == kHeldLayoutCheckpointFormat) {
        verify_hash(path, f, header_text, meta(kHashKey));
    } else if (meta("format") == kLegacyCheckpointFormat) {
        const std::string stored = meta("checksum"), actual = legacy_checksum(f);
        if (stored != actual)
            throw std::runtime_error(path + ": checkpoint is corrupted: checksum " + actual +
                                     " does not match the stored " + stored);
    } else {
        throw std::runtime_error(path + ": unsupported checkpoint format '" + format + "' (expected '" +
                                 kCheckpointFormat + "', or the older '" + kHeldLayoutCheckpointFormat + "' or '" +
                                 kLegacyCheckpointFormat + "')");
    }
    Checkpoint ck;
    ck.config_toml = meta("config");
    if (auto it = f.metadata.find("data"); it != f.metadata.end()) ck.data_fingerprint = it->second;
    if (auto it = f.metadata.find("loop"); it != f.metadata.end()) ck.loop = read_loop(path, it->second);
    ck.step = scalar_value<int64_t>(path, f, kStepName, "I64");
    ck.data_seed = scalar_value<uint64_t>(path, f, kSeedName, "U64");
    if (ck.step < 0) throw std::runtime_error(path + ": '" + kStepName + "' is negative");
    ck.optim_kind = meta("optimizer") == "none" ? "" : meta("optimizer");
    std::map<std::string, Tensor> tensors;  // as stored, by file name
    for (const StEntry& e : f.entries)
        if (e.name != kStepName && e.name != kSeedName) tensors[e.name] = to_tensor(path, e);
    // The older formats hold the memory layout: nothing to convert.
    ck.layouts_recorded = format == kCheckpointFormat;
    if (ck.layouts_recorded) read_layouts(path, meta("layouts"), tensors, ck);
    for (auto& [name, t] : tensors) {
        if (name.rfind(kOptimPrefix, 0) == 0)
            ck.optim[name.substr(std::strlen(kOptimPrefix))] = t;
        else
            ck.params[name] = t;
    }
    return ck;
}

void load_model_state(const Checkpoint& ck, Module& model, const std::string& path) {
    for (const auto& [name, t] : ck.params)
        if (std::string bad = non_finite(t); !bad.empty())
            throw std::runtime_error(path + ": parameter '" + name + "': " + bad);
    // A square matrix fits in either layout: the recorded one must be the model's.
    if (ck.layouts_recorded) {
        const auto want = model.parameter_layouts();
        for (const auto& [name, p] : model.named_parameters()) {
            if (!ck.params.count(name)) continue;  // load_parameters lists it
            auto w = want.find(name);
            const StoredLayout a = layout_of(ck, name), b = w == want.end() ? StoredLayout::same : w->second;
            if (a != b)
                throw std::runtime_error(path + ": parameter '" + name + "' is stored in layout '" + layout_name(a) +
                                         "', but the model stores it as '" + layout_name(b) + "'");
        }
    }
    try {
        model.load_parameters(ck.params);
    } catch (const std::exception& e) {
        throw std::runtime_error(path + ": the checkpoint does not fit the model: " + e.what());
    }
}

void load_optimizer_state(const Checkpoint& ck, Optimizer& opt, const std::string& path) {
    try {
        opt.load_state_dict(ck.optim);
    } catch (const std::exception& e) {
        throw std::runtime_error(path + ": the checkpoint's optimizer state does not fit: " + e.what());
    }
}

}  // namespace miras
