// A validating TOML config layer.
//
// The schema is the code that reads the config: every getter names a key, its
// default and its allowed range. What the file (plus command-line overrides)
// holds beyond what the schema read is reported by check_no_unknown_keys(), so
// a misspelt key ("optim.lrr") fails loudly instead of silently using the
// default. dump_toml() returns exactly what was used, defaults included, to be
// stored next to a checkpoint.
//
//   ConfigReader cfg("train/configs/x.toml", {"optim.lr=3e-4"});
//   double lr = cfg.get_double("optim.lr", 1e-3, 0, 10);
//   std::string mixer = cfg.get_string("model.mixer", "lmm", {"attn", "lmm", "mag", "mal", "mac"});
//   cfg.check_no_unknown_keys();
//
// Every error is a std::runtime_error whose message names the file, the key,
// what was expected and what was found, e.g.
//   x.toml: key 'optim.lr' (line 3) must be a number in [0, 10], got string "abc"
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace miras {

class ConfigReader {
public:
    // Loads `path` ("config file 'x' not found" if missing) and applies the
    // overrides, each "dotted.key=value" where value is a TOML value (number,
    // bool, "quoted string", [array]); a value that is not valid TOML is taken
    // as a bare string, so model.mixer=mag works without quotes.
    explicit ConfigReader(const std::string& path, const std::vector<std::string>& overrides = {});
    // Several files layered in order: each later file's keys replace the same
    // keys of the ones before (tables merge key by key, so a file that sets
    // only [data] keeps the earlier files' [model]); then the overrides.
    // source() is the file names joined with " + ", and a message about a
    // key read from a file names that file and line.
    ConfigReader(const std::vector<std::string>& paths, const std::vector<std::string>& overrides);
    // Same from TOML text; `source_name` stands in for the file name in messages.
    static ConfigReader from_string(const std::string& toml_text, const std::string& source_name,
                                    const std::vector<std::string>& overrides = {});

    ConfigReader(ConfigReader&&) noexcept;
    ConfigReader& operator=(ConfigReader&&) noexcept;
    ~ConfigReader();

    // Typed getters: the value at the dotted key, or `def` when absent. Ranges
    // are inclusive; an integer in the file is accepted where a double is asked.
    double get_double(const std::string& key, double def, double lo, double hi);
    int64_t get_int(const std::string& key, int64_t def, int64_t lo, int64_t hi);
    bool get_bool(const std::string& key, bool def);
    // An empty `allowed` accepts any string.
    std::string get_string(const std::string& key, const std::string& def,
                           const std::vector<std::string>& allowed = {});
    std::vector<int64_t> get_int_list(const std::string& key, const std::vector<int64_t>& def, int64_t lo, int64_t hi);
    std::vector<double> get_double_list(const std::string& key, const std::vector<double>& def, double lo, double hi);

    // True if the file or an override sets `key` (does not count as reading
    // it, but makes `key` a known name for the suggestions of unknown keys).
    bool has(const std::string& key) const;

    // Throws one error listing every key set by the file or an override that no
    // getter asked for (nor has()), each with the nearest keys that were
    // asked for (nearest_keys): "'train.warmup' (line 4; did you mean 'optim.warmup'?)".
    void check_no_unknown_keys() const;

    // The effective config: every key read so far with the value used, as TOML
    // that from_string() reads back to the same values.
    std::string dump_toml() const;

    const std::string& source() const;

    // The keys a later file set again to another value, one line each, e.g.
    //   b.toml sets model.mixer = "attn" over "lmm" from a.toml
    // (layering is meant to override, but silently losing a preset's key to a
    // task file's copy of it is the mistake these lines show).
    const std::vector<std::string>& layer_notes() const;

private:
    struct Impl;
    ConfigReader();
    std::unique_ptr<Impl> impl_;
};

// The keys of `known` nearest to the unknown `key`, best first, at most
// three: a small edit distance (a typo: optim.lrr -> optim.lr), the same
// name in another table (train.warmup -> optim.warmup), or in the same table
// a name containing the other (model.hidden -> model.mlp_hidden). Empty when
// nothing is close. check_no_unknown_keys() suggests these.
std::vector<std::string> nearest_keys(const std::string& key, const std::vector<std::string>& known);

// Throws if two overrides set the same key: for the overrides a user typed,
// where `--set optim.lr=1e-3 ... --set optim.lr=3e-3` would silently take the
// last value. (ConfigReader itself applies overrides in order, so code may
// layer a list on a base list, the last value winning.)
void check_overrides_distinct(const std::vector<std::string>& overrides);

}  // namespace miras
