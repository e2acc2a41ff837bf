// Sweeps over seeds and keys (train/sweep.h).
#include "train/sweep.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>
#include <ostream>
#include <set>
#include <stdexcept>

#include "train/stats.h"
#include "train/trainer.h"

namespace miras {
namespace fs = std::filesystem;
namespace {

std::string trim(const std::string& s) {
    const size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// A value as a folder name: letters, digits and ._+-,= kept, the rest '_'
// (a '/' would make a folder of its own).
std::string folder_name(const std::string& text) {
    std::string out = text;
    for (char& c : out)
        if (!(std::isalnum((unsigned char)c) || std::string("._+-,=").find(c) != std::string::npos)) c = '_';
    return out;
}

// The key of "key=value" (as ConfigReader reads it: trimmed, before the first '=').
std::string key_of(const std::string& assignment) { return trim(assignment.substr(0, assignment.find('='))); }

bool holds_run(const fs::path& dir) {
    for (const char* f : {"checkpoint.safetensors", "metrics.jsonl", "config.toml"})
        if (fs::exists(dir / f)) return true;
    return false;
}

// Refuses --set keys that the sweep sets too: which value would win is not
// what anyone meant.
void check_no_clash(const SweepSpec& spec, const std::vector<std::string>& sets) {
    for (const std::string& s : sets) {
        const std::string k = key_of(s);
        for (const auto& [key, values] : spec.keys)
            if (key == k) throw std::runtime_error("--sweep " + key + " and --set '" + s + "' set the same key; give one");
        if (!spec.seeds.empty() && (k == "model.seed" || k == "data.seed"))
            throw std::runtime_error("--seeds sets model.seed and data.seed (seed s: s and 1 + s), so --set '" + s +
                                     "' would be overridden; give one");
    }
}

std::string describe(const SweepPoint& p) {
    std::string s = p.label;
    if (p.seed >= 0) s += (s.empty() ? "" : ", ") + std::string("seed ") + std::to_string(p.seed);
    return s;
}

// The final figures of a point's runs, then one line per point.
struct Finished {
    std::string label;
    std::vector<double> values;
    int failed = 0;
};

void print_summary(const std::vector<Finished>& points, bool bytes, const SweepResult& r, std::ostream& out) {
    const char* f = bytes ? "%.3f" : "%.1f";
    auto num = [&](double v) {
        char b[32];
        std::snprintf(b, sizeof b, f, v);
        return std::string(b);
    };
    out << "\nsweep: " << r.runs << " run" << (r.runs == 1 ? "" : "s") << ", " << r.failed << " failed"
        << (r.interrupted ? ", interrupted" : "") << "; final " << (bytes ? "bits/byte" : "recall accuracy (%)")
        << ", mean ± standard deviation over the seeds [range]:\n";
    auto name = [](const Finished& p) { return p.label.empty() ? std::string("all seeds") : p.label; };
    size_t width = 0;
    for (const Finished& p : points) width = std::max(width, name(p).size());
    for (const Finished& p : points) {
        std::string line = "  " + name(p);
        line.resize(width + 4, ' ');
        if (p.values.empty()) {
            line += "no finished run";
        } else {
            const auto [lo, hi] = std::minmax_element(p.values.begin(), p.values.end());
            line += num(mean(p.values)) + " ± " + num(stdev(p.values)) + "  [" + num(*lo) + ", " + num(*hi) + "]  " +
                    std::to_string(p.values.size()) + " run" + (p.values.size() == 1 ? "" : "s");
        }
        if (p.failed > 0) line += ", " + std::to_string(p.failed) + " failed";
        out << line << "\n";
    }
    out << "compare them: build/miras compare " << r.dir << "\n";
}

}  // namespace

std::pair<std::string, std::vector<std::string>> parse_sweep(const std::string& text) {
    const size_t eq = text.find('=');
    if (eq == std::string::npos || trim(text.substr(0, eq)).empty())
        throw std::runtime_error("--sweep '" + text + "' must look like key=value1,value2");
    std::pair<std::string, std::vector<std::string>> out{trim(text.substr(0, eq)), {}};
    int depth = 0;
    char quote = 0;
    std::string cur;
    auto push = [&] {
        const std::string v = trim(cur);
        if (v.empty()) throw std::runtime_error("--sweep '" + text + "' has an empty value");
        if (std::find(out.second.begin(), out.second.end(), v) != out.second.end())
            throw std::runtime_error("--sweep '" + text + "' gives the value " + v + " twice");
        out.second.push_back(v);
        cur.clear();
    };
    for (size_t i = eq + 1; i < text.size(); ++i) {
        const char c = text[i];
        if (quote) {
            if (c == quote) quote = 0;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '[' || c == '{') {
            ++depth;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        } else if (c == ',' && depth == 0) {
            push();
            continue;
        }
        cur += c;
    }
    push();
    return out;
}

std::vector<SweepPoint> sweep_points(const SweepSpec& spec) {
    std::set<std::string> keys;
    for (const auto& [k, v] : spec.keys)
        if (!keys.insert(k).second) throw std::runtime_error("--sweep " + k + " is given twice; give its values once");
    std::set<int64_t> seeds;
    for (int64_t s : spec.seeds)
        if (!seeds.insert(s).second) throw std::runtime_error("--seeds gives seed " + std::to_string(s) + " twice");
    // Every combination of the keys' values, the first key outermost.
    std::vector<std::vector<size_t>> combos{{}};
    for (const auto& [k, values] : spec.keys) {
        std::vector<std::vector<size_t>> next;
        for (const auto& c : combos)
            for (size_t i = 0; i < values.size(); ++i) {
                next.push_back(c);
                next.back().push_back(i);
            }
        combos = std::move(next);
    }
    std::vector<int64_t> seed_axis = spec.seeds;
    if (seed_axis.empty()) seed_axis = {-1};
    std::vector<SweepPoint> points;
    std::set<std::string> dirs;
    for (int64_t seed : seed_axis)
        for (const auto& c : combos) {
            SweepPoint p;
            p.seed = seed;
            for (size_t k = 0; k < c.size(); ++k) {
                const std::string a = spec.keys[k].first + "=" + spec.keys[k].second[c[k]];
                p.overrides.push_back(a);
                p.label += (k ? " " : "") + a;
                p.sub_dir += (k ? "/" : "") + folder_name(a);
            }
            if (seed >= 0) {
                p.overrides.push_back("model.seed=" + std::to_string(seed));
                p.overrides.push_back("data.seed=" + std::to_string(seed + 1));
                p.sub_dir += (p.sub_dir.empty() ? "" : "/") + std::string("seed") + std::to_string(seed);
            }
            if (!dirs.insert(p.sub_dir).second)
                throw std::runtime_error("--sweep: two points would share the folder '" + p.sub_dir +
                                         "' (values that differ only in characters a folder name cannot hold)");
            points.push_back(std::move(p));
        }
    return points;
}

SweepResult run_sweep(const SweepSpec& spec, const SweepOptions& opt, std::ostream& out) {
    check_no_clash(spec, opt.sets);
    const std::vector<SweepPoint> points = sweep_points(spec);
    // Every config first: a typo in the last value must not wait for the first runs.
    std::vector<RunConfig> configs;
    for (const SweepPoint& p : points) {
        try {
            configs.push_back(opt.load(p.overrides));
        } catch (const std::exception& e) {
            throw std::runtime_error("sweep point " + describe(p) + ": " + e.what());
        }
    }
    SweepResult result;
    result.dir = opt.out_dir.empty() ? configs[0].output.dir : opt.out_dir;
    if (holds_run(result.dir))
        throw std::runtime_error("the sweep's folder '" + result.dir + "' holds a run itself; give another --out (the " +
                                 "sweep's runs go in sub-folders of it)");
    std::vector<std::string> taken;
    for (const SweepPoint& p : points)
        if (holds_run(fs::path(result.dir) / p.sub_dir)) taken.push_back((fs::path(result.dir) / p.sub_dir).string());
    if (!taken.empty() && !opt.force) {
        std::string list;
        for (size_t i = 0; i < taken.size() && i < 3; ++i) list += (i ? ", " : "") + taken[i];
        if (taken.size() > 3) list += ", and " + std::to_string(taken.size() - 3) + " more";
        throw std::runtime_error(std::to_string(taken.size()) + " of the sweep's folders hold a run already (" + list +
                                 "); give another --out, or --force to move them aside");
    }

    out << "sweep: " << points.size() << " runs into " << result.dir << "\n";
    std::vector<Finished> finished;
    std::map<std::string, size_t> index;  // label -> finished
    const bool bytes = configs[0].data.task == "bytes";
    for (size_t i = 0; i < points.size() && !result.interrupted; ++i) {
        const SweepPoint& p = points[i];
        auto [at, fresh] = index.emplace(p.label, finished.size());
        if (fresh) finished.push_back({p.label, {}, 0});
        Finished& f = finished[at->second];
        TrainOptions o;
        o.out_dir = (fs::path(result.dir) / p.sub_dir).string();
        o.out = &out;
        o.force = opt.force;
        out << "\n== run " << i + 1 << "/" << points.size() << ": " << (describe(p).empty() ? "-" : describe(p))
            << " -> " << o.out_dir << "\n";
        ++result.runs;
        try {
            const TrainResult r = train(configs[i], o);
            result.interrupted = r.interrupted;
            if (!r.interrupted)
                f.values.push_back(bytes ? r.last_eval.bits_per_token() : 100 * r.last_eval.accuracy());
        } catch (const std::exception& e) {
            out << "run failed: " << e.what() << "\n";
            ++result.failed;
            ++f.failed;
        }
    }
    print_summary(finished, bytes, result, out);
    return result;
}

}  // namespace miras
