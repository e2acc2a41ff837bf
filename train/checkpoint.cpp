#include "train/checkpoint.h"

#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "train/safetensors.h"

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

// FNV-1a, 64 bit: cheap, and any single changed byte changes the hash.
struct Fnv {
    uint64_t h = 0xcbf29ce484222325ull;
    void add(const void* p, size_t n) {
        const auto* b = static_cast<const uint8_t*>(p);
        for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
    }
    void add(const std::string& s) {
        add(s.data(), s.size());
        add("\0", 1);
    }
};

std::string checksum(const StFile& f) {
    std::map<std::string, const StEntry*> sorted;
    for (const StEntry& e : f.entries) sorted[e.name] = &e;
    Fnv fnv;
    for (const auto& [name, e] : sorted) {
        fnv.add(name);
        fnv.add(e->dtype);
        for (int64_t d : e->shape) fnv.add(&d, sizeof d);
        fnv.add(e->bytes.data(), e->bytes.size());
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)fnv.h);
    return buf;
}

}  // namespace

Checkpoint make_checkpoint(const Module& model, const Optimizer* opt, int64_t step, uint64_t data_seed,
                           const std::string& config_toml) {
    Checkpoint ck;
    for (const auto& [name, p] : model.named_parameters()) ck.params[name] = raw::clone(p);
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
    return ck;
}

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
    StFile f;
    for (const auto& [name, t] : ck.params) {
        if (name.rfind(kOptimPrefix, 0) == 0 || name == kStepName || name == kSeedName)
            throw std::invalid_argument("save_checkpoint: parameter name '" + name + "' collides with a reserved name");
        f.entries.push_back(to_entry(name, t));
    }
    for (const auto& [name, t] : ck.optim) f.entries.push_back(to_entry(kOptimPrefix + name, t));
    f.entries.push_back(scalar_entry<int64_t>(kStepName, "I64", ck.step));
    f.entries.push_back(scalar_entry<uint64_t>(kSeedName, "U64", ck.data_seed));
    f.metadata["format"] = kCheckpointFormat;
    f.metadata["config"] = ck.config_toml;
    f.metadata["step"] = std::to_string(ck.step);
    f.metadata["optimizer"] = ck.optim_kind.empty() ? "none" : ck.optim_kind;
    f.metadata["checksum"] = checksum(f);
    write_safetensors(path, f);
}

Checkpoint read_checkpoint(const std::string& path) {
    StFile f = read_safetensors(path);  // throws on a missing, truncated or malformed container
    auto meta = [&](const std::string& key) -> const std::string& {
        auto it = f.metadata.find(key);
        if (it == f.metadata.end())
            throw std::runtime_error(path + ": not a miras checkpoint: __metadata__ has no '" + key + "'");
        return it->second;
    };
    if (meta("format") != kCheckpointFormat)
        throw std::runtime_error(path + ": unsupported checkpoint format '" + meta("format") + "' (expected '" +
                                 kCheckpointFormat + "')");
    const std::string stored = meta("checksum"), actual = checksum(f);
    if (stored != actual)
        throw std::runtime_error(path + ": checkpoint is corrupted: checksum " + actual + " does not match the stored " +
                                 stored);
    Checkpoint ck;
    ck.config_toml = meta("config");
    ck.step = scalar_value<int64_t>(path, f, kStepName, "I64");
    ck.data_seed = scalar_value<uint64_t>(path, f, kSeedName, "U64");
    if (ck.step < 0) throw std::runtime_error(path + ": '" + kStepName + "' is negative");
    ck.optim_kind = meta("optimizer") == "none" ? "" : meta("optimizer");
    for (const StEntry& e : f.entries) {
        if (e.name == kStepName || e.name == kSeedName) continue;
        if (e.name.rfind(kOptimPrefix, 0) == 0)
            ck.optim[e.name.substr(std::strlen(kOptimPrefix))] = to_tensor(path, e);
        else
            ck.params[e.name] = to_tensor(path, e);
    }
    return ck;
}

void load_model_state(const Checkpoint& ck, Module& model, const std::string& path) {
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
