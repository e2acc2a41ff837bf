// `miras suite`: reading the suite file and running its runs (train/suite.h).
// The page is written by train/suite_page.cpp.
#include "train/suite.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <toml.hpp>

#include "train/atomic_file.h"
#include "train/loop_figures.h"
#include "train/model_config.h"
#include "train/trainer.h"

namespace miras {
namespace fs = std::filesystem;
namespace {

// A string list at `key` of table `t` (absent: empty), with file and key in errors.
std::vector<std::string> string_list(const toml::value& t, const std::string& key, const std::string& where) {
    if (!t.is_table() || !t.contains(key)) return {};
    const toml::value& v = t.at(key);
    if (!v.is_array()) throw std::runtime_error(where + "." + key + " must be a list of strings");
    std::vector<std::string> out;
    for (const toml::value& x : v.as_array()) {
        if (!x.is_string()) throw std::runtime_error(where + "." + key + " must be a list of strings");
        out.push_back(x.as_string());
    }
    return out;
}

std::string text(const toml::value& t, const std::string& key, const std::string& where, const std::string& def) {
    if (!t.contains(key)) return def;
    if (!t.at(key).is_string()) throw std::runtime_error(where + "." + key + " must be a string");
    return t.at(key).as_string();
}

// "a.b=c" -> "a.b" (what a later override of the same key replaces).
std::string key_of(const std::string& o) { return o.substr(0, o.find('=')); }

// The curves of a finished run: train (step, loss) and eval (step, metric).
void read_curves(const std::string& metrics_path, nlohmann::json& r) {
    r["train_curve"] = nlohmann::json::array();
    r["eval_curve"] = nlohmann::json::array();
    std::ifstream in(metrics_path);
    std::string line;
    while (std::getline(in, line)) {
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_object() || !j.contains("split") || !j.contains("step")) continue;
        if (j["split"] == "train" && j["loss"].is_number())
            r["train_curve"].push_back({j["step"], j["loss"]});
        else if (j["split"] == "eval" && !j.contains("final") && j["loss"].is_number())
            r["eval_curve"].push_back({j["step"], j["loss"], j["accuracy"]});
    }
}

// A run stopped by SIGINT or SIGTERM: the suite stops (and continues when
// started again); any other error is the run's result.
struct SuiteInterrupted : std::runtime_error {
    SuiteInterrupted() : std::runtime_error("interrupted") {}
};

// One run into `dir`; its result.json. Throws only SuiteInterrupted.
nlohmann::json run_one(const SuiteTask& task, const std::string& preset, int64_t seed,
                       const std::vector<std::string>& overrides, const std::string& dir, std::ostream& out) {
    nlohmann::json r = {{"task", task.name}, {"preset", preset}, {"seed", seed}, {"overrides", overrides},
                        {"metric", task.metric}};
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = process_cpu_seconds();
    std::ostringstream log;
    try {
        RunConfig cfg = load_layered_config(preset, {}, overrides);  // its header and config.toml name the preset
        int64_t params = 0;
        for (auto& [name, n] : parameter_counts(*build_model(cfg.model))) params += n;
        r["params"] = params;
        r["tokens"] = cfg.data.train_tokens(cfg.train.steps, cfg.train.batch);
        if (cfg.data.task == "bytes") r["bigram_bits_per_byte"] = 
            ByteCorpus(cfg.data.bytes_path, cfg.data.heldout_fraction, cfg.data.valid_path).bigram_bits_per_byte();
        TrainOptions o;
        o.out_dir = dir;
        o.out = &log;
        o.live_progress = 0;
        TrainResult t = train(cfg, o);
        if (t.interrupted) throw SuiteInterrupted();
        r["ok"] = true;
        r["steps"] = t.step;
        const EvalReport& rep = t.last_report;
        r["final"] = eval_json(t.last_eval, rep.group_names);
        r["value"] = task.metric == "accuracy" ? t.last_eval.accuracy() : t.last_eval.bits_per_token();
        r["by_length"] = nlohmann::json::object();
        for (size_t i = 0; i < rep.per_length.size(); ++i)
            r["by_length"][std::to_string(rep.seq_lens[i])] = eval_json(rep.per_length[i], rep.group_names);
        read_curves(t.metrics_path, r);
    } catch (const SuiteInterrupted&) {
        throw;
    } catch (const std::exception& e) {
        r["ok"] = false;
        r["error"] = e.what();
        if (fs::exists(fs::path(dir) / "metrics.jsonl")) read_curves((fs::path(dir) / "metrics.jsonl").string(), r);
    }
    r["wall_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r["cpu_s"] = process_cpu_seconds() - c0;
    if (r.contains("tokens") && r.value("ok", false)) r["tokens_per_s"] = r["tokens"].get<double>() / r["wall_s"].get<double>();
    return r;
}

}  // namespace

SuiteSpec read_suite(const std::string& path) {
    SuiteSpec s;
    s.source = path;
    if (!fs::is_regular_file(path)) throw std::runtime_error("suite file '" + path + "' not found (or not a file)");
    toml::value v;
    try {
        v = toml::parse(path);
    } catch (const std::exception& e) {
        throw std::runtime_error("suite file '" + path + "': " + e.what());
    }
    const std::string w = path + ": suite";
    if (!v.contains("suite") || !v.at("suite").is_table()) throw std::runtime_error(path + ": needs a [suite] table");
    const toml::value& suite = v.at("suite");
    s.presets = string_list(suite, "presets", w);
    if (s.presets.empty()) throw std::runtime_error(w + ".presets must name at least one preset");
    for (const std::string& p : s.presets) preset_path(p);  // throws listing the known ones
    for (const char* key : {"seeds", "quick_seeds"}) {
        std::vector<int64_t>& list = key == std::string("seeds") ? s.seeds : s.quick_seeds;
        if (!suite.contains(key)) continue;
        const toml::value& seeds = suite.at(key);
        const std::string msg = w + "." + key + " must be a list of integers >= 0";
        if (!seeds.is_array()) throw std::runtime_error(msg);
        for (const toml::value& x : seeds.as_array()) {
            if (!x.is_integer() || x.as_integer() < 0) throw std::runtime_error(msg);
            list.push_back(x.as_integer());
        }
    }
    if (s.seeds.empty()) s.seeds = {0};
    if (s.quick_seeds.empty()) s.quick_seeds = {s.seeds.front()};
    for (const auto& [k, x] : suite.as_table())
        if (k != "presets" && k != "seeds" && k != "quick_seeds")
            throw std::runtime_error(w + ": unknown key '" + k + "' (presets, seeds, quick_seeds)");
    if (!v.contains("tasks") || !v.at("tasks").is_table() || v.at("tasks").as_table().empty())
        throw std::runtime_error(path + ": needs at least one [tasks.<name>] table");
    // toml11 keeps tables in a map; the page lists the tasks in file order.
    std::vector<std::pair<size_t, std::string>> order;
    for (const auto& [name, t] : v.at("tasks").as_table()) order.push_back({t.location().line(), name});
    std::sort(order.begin(), order.end());
    for (const auto& [line, name] : order) {
        const toml::value& t = v.at("tasks").at(name);
        const std::string tw = path + ": tasks." + name;
        if (!t.is_table()) throw std::runtime_error(tw + " must be a table");
        SuiteTask task;
        task.name = name;
        task.what = text(t, "what", tw, name);
        task.metric = text(t, "metric", tw, "accuracy");
        if (task.metric != "accuracy" && task.metric != "bits_per_byte")
            throw std::runtime_error(tw + ".metric must be \"accuracy\" or \"bits_per_byte\", got \"" + task.metric + "\"");
        task.set = string_list(t, "set", tw);
        task.quick = string_list(t, "quick", tw);
        for (const auto& [k, x] : t.as_table())
            if (k != "what" && k != "metric" && k != "set" && k != "quick" && k != "set_for")
                throw std::runtime_error(tw + ": unknown key '" + k + "' (what, metric, set, quick, set_for)");
        if (t.contains("set_for")) {
            if (!t.at("set_for").is_table()) throw std::runtime_error(tw + ".set_for must be a table of lists");
            for (const auto& [p, x] : t.at("set_for").as_table()) {
                preset_path(p);
                task.set_for[p] = string_list(t.at("set_for"), p, tw + ".set_for");
            }
        }
        for (const std::vector<std::string>* l : {&task.set, &task.quick})
            for (const std::string& o : *l)
                if (o.find('=') == std::string::npos || o.front() == '=')
                    throw std::runtime_error(tw + ": override '" + o + "' is not key=value");
        s.tasks.push_back(std::move(task));
    }
    // Every run's config must be valid before hours of training start.
    for (const SuiteTask& t : s.tasks)
        for (const std::string& p : s.presets)
            for (bool quick : {false, true}) {
                try {
                    load_run_config(preset_path(p), suite_overrides(t, p, s.seeds.front(), quick));
                } catch (const std::exception& e) {
                    throw std::runtime_error(path + ": task '" + t.name + "' with preset '" + p + "'" +
                                             (quick ? " (--quick)" : "") + ": " + e.what());
                }
            }
    return s;
}

std::vector<std::string> suite_overrides(const SuiteTask& task, const std::string& preset, int64_t seed, bool quick) {
    std::vector<std::string> all = task.set;
    if (quick) all.insert(all.end(), task.quick.begin(), task.quick.end());
    if (auto it = task.set_for.find(preset); it != task.set_for.end()) all.insert(all.end(), it->second.begin(), it->second.end());
    all.push_back("model.seed=" + std::to_string(seed));
    all.push_back("data.seed=" + std::to_string(1 + seed));
    all.push_back("output.checkpoint_every=0");
    // Each key once, at the place of its first mention, with its last value.
    std::vector<std::string> out;
    for (const std::string& o : all) {
        bool replaced = false;
        for (std::string& x : out)
            if (key_of(x) == key_of(o)) x = o, replaced = true;
        if (!replaced) out.push_back(o);
    }
    return out;
}

const std::vector<int64_t>& suite_seeds(const SuiteSpec& spec, const SuiteOptions& opt) {
    return !opt.seeds.empty() ? opt.seeds : opt.quick ? spec.quick_seeds : spec.seeds;
}

int run_suite(const SuiteSpec& spec, const SuiteOptions& opt, std::ostream& out) {
    auto chosen = [](const std::vector<std::string>& subset, const std::string& x) {
        return subset.empty() || std::find(subset.begin(), subset.end(), x) != subset.end();
    };
    for (const std::string& t : opt.tasks) {
        bool known = false;
        for (const SuiteTask& x : spec.tasks) known |= x.name == t;
        if (!known) throw std::runtime_error("--tasks: '" + t + "' is not a task of " + spec.source);
    }
    for (const std::string& p : opt.presets) preset_path(p);
    const std::vector<int64_t>& seeds = suite_seeds(spec, opt);
    int failed = 0, index = 0, done = 0, reused = 0, busy = 0;
    // Seed-major: a suite stopped early still has every cell's first seed.
    for (int64_t seed : seeds)
        for (const SuiteTask& task : spec.tasks)
            for (const std::string& preset : spec.presets) {
                // The shard of a run is fixed by its place in the whole suite, so
                // shards started with different --tasks/--presets never overlap.
                if (index++ % opt.shards != opt.shard) continue;
                if (opt.page_only || !chosen(opt.tasks, task.name) || !chosen(opt.presets, preset)) continue;
                const std::vector<std::string> ov = suite_overrides(task, preset, seed, opt.quick);
                const fs::path dir = fs::path(opt.out_dir) / task.name / preset / ("seed" + std::to_string(seed));
                const fs::path res = dir / "result.json";
                if (fs::exists(res)) {
                    std::ifstream in(res);
                    nlohmann::json old = nlohmann::json::parse(in, nullptr, false);
                    if (old.is_object() && old.value("overrides", nlohmann::json()) == nlohmann::json(ov)) {
                        ++reused;
                        continue;
                    }
                }
                // A folder without a matching result is an unfinished or older
                // run of this suite: moved aside, never trained into. Unless a
                // live run holds it (another suite process given the same
                // runs): then it is left alone and skipped.
                if (fs::exists(dir)) {
                    try {
                        RunLock held(dir.string());  // moved along with the folder
                        fs::path aside = dir.string() + ".old";
                        fs::remove_all(aside);
                        fs::rename(dir, aside);
                    } catch (const std::runtime_error& e) {
                        out << task.name << " / " << preset << " / seed " << seed << " ... skipped: " << e.what() << "\n";
                        ++busy;
                        continue;
                    }
                }
                fs::create_directories(dir);
                out << task.name << " / " << preset << " / seed " << seed << " ... " << std::flush;
                nlohmann::json r;
                try {
                    r = run_one(task, preset, seed, ov, dir.string(), out);
                } catch (const SuiteInterrupted&) {
                    out << "interrupted\n";
                    throw std::runtime_error("suite interrupted; run it again to continue");
                }
                write_file_atomically(res.string(), {r.dump(1) + "\n"});
                ++done;
                if (!r["ok"].get<bool>()) {
                    ++failed;
                    out << "FAILED: " << r["error"].get<std::string>() << "\n";
                } else {
                    out << (task.metric == "accuracy" ? "accuracy " : "bits/byte ") << r["value"].get<double>()
                        << " (" << (int64_t)r["wall_s"].get<double>() << " s)\n";
                }
            }
    out << done << " runs trained, " << reused << " already done, " << failed << " failed";
    if (busy > 0) out << ", " << busy << " skipped (in use by another process)";
    out << "\n";
    if (!opt.results.empty()) write_results_page(spec, opt, out);
    return failed;
}

}  // namespace miras
