// `miras compare` (train/compare.h): reading run folders, grouping seeds,
// the table and the figures.
#include "train/compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "train/atomic_file.h"
#include "train/model_config.h"
#include "train/plot.h"
#include "train/stats.h"

namespace miras {
namespace fs = std::filesystem;
namespace {

std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// config.toml as ConfigReader::dump_toml writes it: "[table]" lines and
// "key = value" lines, one value per line. The values are kept as written,
// so they compare and print exactly as the run used them.
std::map<std::string, std::string> flat_config(const std::string& text, const std::string& where) {
    std::map<std::string, std::string> out;
    std::istringstream in(text);
    std::string line, table;
    for (int n = 1; std::getline(in, line); ++n) {
        if (line.empty() || line[0] == '#') continue;
        if (line.front() == '[' && line.back() == ']') {
            table = line.substr(1, line.size() - 2);
            continue;
        }
        const size_t eq = line.find(" = ");
        if (eq == std::string::npos)
            throw std::runtime_error(where + ": line " + std::to_string(n) + " is not 'key = value' (not a config.toml "
                                     "written by miras train)");
        out[(table.empty() ? "" : table + ".") + line.substr(0, eq)] = line.substr(eq + 3);
    }
    return out;
}

// The evaluation lines of one step pooled over their lengths, weighted by
// the targets each counted (as EvalReport::all).
struct Pool {
    double loss = 0, correct = 0, count = 0;
    void add(const nlohmann::json& j) {
        const double n = j.value("count", 0.0);
        loss += j.value("loss", 0.0) * n;
        correct += j.value("accuracy", 0.0) * n;
        count += n;
    }
    double figure(bool bytes) const {
        if (count <= 0) return NAN;
        return bytes ? loss / count / std::log(2.0) : 100 * correct / count;
    }
};

void read_metrics(const fs::path& path, RunSummary& r) {
    std::ifstream in(path);
    std::map<int64_t, Pool> evals;
    for (std::string line; std::getline(in, line);) {
        const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer() || !j.contains("split")) {
            ++r.skipped_lines;
            continue;
        }
        const int64_t step = j["step"].get<int64_t>();
        if (j["split"] == "train" && j.contains("loss") && j["loss"].is_number()) {
            const double loss = j.contains("loss_ema") && j["loss_ema"].is_number() ? j["loss_ema"].get<double>()
                                                                                     : j["loss"].get<double>();
            r.train_curve.emplace_back((double)step, r.bytes ? loss / std::log(2.0) : loss);
            r.steps = step;
            r.elapsed_s = j.value("elapsed_s", 0.0);
            r.cpu_s = j.value("cpu_s", 0.0);
        } else if (j["split"] == "eval" && j.contains("loss") && j["loss"].is_number()) {
            evals[step].add(j);
            r.has_final |= j.value("final", false);
        }
    }
    for (const auto& [step, pool] : evals) r.eval_curve.emplace_back((double)step, pool.figure(r.bytes));
}

bool is_run(const fs::path& dir) {
    return fs::is_regular_file(dir / "metrics.jsonl") && fs::is_regular_file(dir / "config.toml");
}

std::string fmt(const char* f, double v) {
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

// 12345 -> "12.3k", 1.2e6 -> "1.20M".
std::string count(double v) {
    if (!std::isfinite(v)) return "–";
    if (v >= 1e6) return fmt("%.2fM", v / 1e6);
    if (v >= 1e4) return fmt("%.1fk", v / 1e3);
    return fmt("%.0f", v);
}

// Keys that tell seeds apart, and the folder: never a difference between rows.
bool is_seed_key(const std::string& k) { return k == "model.seed" || k == "data.seed" || k == "output.dir"; }

// A row of the table: one run, or runs that differ only in their seeds.
struct Row {
    std::string label;
    std::vector<const RunSummary*> runs;
};

// The folders' names relative to their common parent, which is returned too.
std::pair<fs::path, std::vector<std::string>> relative_names(const std::vector<RunSummary>& runs) {
    std::vector<fs::path> dirs;
    for (const RunSummary& r : runs) dirs.push_back(fs::absolute(r.dir).lexically_normal());
    fs::path common = dirs[0].parent_path();
    for (const fs::path& d : dirs)
        while (common != common.root_path() && d.lexically_relative(common).string().rfind("..", 0) == 0)
            common = common.parent_path();
    std::vector<std::string> names;
    for (const fs::path& d : dirs) {
        std::string rel = d.lexically_relative(common).string();
        names.push_back(rel.empty() || rel == "." ? d.filename().string() : rel);
    }
    return {common, names};
}

std::vector<Row> make_rows(const std::vector<RunSummary>& runs, const std::vector<std::string>& names, bool group) {
    std::vector<Row> rows;
    std::map<std::map<std::string, std::string>, size_t> row_of;  // config without the seed keys -> row
    for (size_t i = 0; i < runs.size(); ++i) {
        std::map<std::string, std::string> key = runs[i].config;
        for (auto it = key.begin(); it != key.end();) it = is_seed_key(it->first) ? key.erase(it) : std::next(it);
        auto [at, fresh] = row_of.emplace(key, rows.size());
        if (!group || fresh) {
            rows.push_back({names[i], {&runs[i]}});
            continue;
        }
        rows[at->second].runs.push_back(&runs[i]);
    }
    // A group of a sweep's seed folders is named without them: "titans-lmm/seed0" -> "titans-lmm".
    static const std::regex seed_folder("(^|/)seed[0-9]+$");
    for (Row& row : rows) {
        if (row.runs.size() < 2) continue;
        const std::string base = std::regex_replace(row.label, seed_folder, "");
        row.label = base.empty() ? "seeds" : base;
        row.label += " (" + std::to_string(row.runs.size()) + " seeds: ";
        for (size_t i = 0; i < row.runs.size(); ++i) {
            auto s = row.runs[i]->config.find("model.seed");
            row.label += (i ? ", " : "") + (s == row.runs[i]->config.end() ? "?" : s->second);
        }
        row.label += ")";
    }
    return rows;
}

// Config keys whose value differs between rows (absent: "–").
std::vector<std::string> differing_keys(const std::vector<Row>& rows) {
    std::set<std::string> all;
    for (const Row& row : rows)
        for (const auto& [k, v] : row.runs[0]->config) all.insert(k);
    std::vector<std::string> out;
    for (const std::string& k : all) {
        if (is_seed_key(k)) continue;
        std::set<std::string> values;
        for (const Row& row : rows) {
            auto it = row.runs[0]->config.find(k);
            values.insert(it == row.runs[0]->config.end() ? "–" : it->second);
        }
        if (values.size() > 1) out.push_back(k);
    }
    return out;
}

// "93.1" for one value, "93.1 ± 2.0" for several.
std::string spread(const std::vector<double>& v, const char* f) {
    std::vector<double> finite;
    for (double x : v)
        if (std::isfinite(x)) finite.push_back(x);
    if (finite.empty()) return "–";
    std::string s = fmt(f, mean(finite));
    if (finite.size() > 1) s += " ± " + fmt(f, stdev(finite));
    return s;
}

// The final and the best evaluation figure of a run, with the best's step.
struct Figures {
    double final = NAN, best = NAN, best_step = NAN;
};
Figures figures(const RunSummary& r) {
    Figures f;
    for (const auto& [step, v] : r.eval_curve) {
        if (!std::isfinite(v)) continue;
        if (std::isnan(f.best) || (r.bytes ? v < f.best : v > f.best)) f.best = v, f.best_step = step;
    }
    if (!r.eval_curve.empty()) f.final = r.eval_curve.back().second;
    return f;
}

std::string table(const std::vector<Row>& rows, const std::vector<std::string>& keys, bool bytes) {
    const char* f = bytes ? "%.3f" : "%.1f";
    const std::string unit = bytes ? "bits/byte" : "acc (%)";
    std::ostringstream md;
    md << "| run |";
    for (const std::string& k : keys) md << " " << k << " |";
    md << " params | tokens | final " << unit << " | best " << unit << " (step) | tok/s | tok/CPU-s | CPU s |\n|---|";
    for (size_t i = 0; i < keys.size(); ++i) md << "---|";
    md << "---:|---:|---:|---:|---:|---:|---:|\n";
    for (const Row& row : rows) {
        md << "| " << row.label << " |";
        for (const std::string& k : keys) {
            auto it = row.runs[0]->config.find(k);
            md << " " << (it == row.runs[0]->config.end() ? "–" : it->second) << " |";
        }
        std::vector<double> fin, best, step, tps, tpc, cpu, params, tokens;
        for (const RunSummary* r : row.runs) {
            const Figures fg = figures(*r);
            fin.push_back(fg.final), best.push_back(fg.best), step.push_back(fg.best_step);
            tps.push_back(r->elapsed_s > 0 ? (double)r->tokens() / r->elapsed_s : NAN);
            tpc.push_back(r->cpu_s > 0 ? (double)r->tokens() / r->cpu_s : NAN);
            cpu.push_back(r->cpu_s > 0 ? r->cpu_s : NAN);
            params.push_back((double)r->params), tokens.push_back((double)r->tokens());
        }
        const auto [pmin, pmax] = std::minmax_element(params.begin(), params.end());
        md << " " << count(*pmin) << (*pmin != *pmax ? "–" + count(*pmax) : "") << " | " << count(mean(tokens))
           << " | " << spread(fin, f) << " | " << spread(best, f);
        if (row.runs.size() == 1 && std::isfinite(step[0])) md << " (" << fmt("%.0f", step[0]) << ")";
        md << " | " << count(mean(tps)) << " | " << count(mean(tpc)) << " | " << spread(cpu, "%.3g") << " |\n";
    }
    return md.str();
}

// The mean over a row's runs of a curve, at the x every run has.
std::vector<std::pair<double, double>> mean_curve(const Row& row, bool eval, bool by_tokens) {
    std::map<double, std::vector<double>> at;
    for (const RunSummary* r : row.runs)
        for (const auto& [step, y] : eval ? r->eval_curve : r->train_curve)
            at[by_tokens ? step * (double)r->tokens_per_step : step].push_back(y);
    std::vector<std::pair<double, double>> out;
    for (const auto& [x, ys] : at)
        if (ys.size() == row.runs.size()) out.emplace_back(x, mean(ys));
    return out;
}

// Writes a chart if it has a point to draw; returns the markdown line for it.
std::string chart(const fs::path& dir, const std::string& file, const LineChart& c) {
    for (const LineSeries& s : c.series)
        for (const auto& [x, y] : s.points)
            if (std::isfinite(x) && std::isfinite(y)) {
                write_file_atomically((dir / file).string(), {svg_line_chart(c)});
                return "![" + c.title + "](" + file + ")\n\n";
            }
    return "(" + c.title + ": no point to draw)\n\n";
}

}  // namespace

RunSummary read_run_summary(const std::string& dir) {
    if (!is_run(dir))
        throw std::runtime_error("'" + dir + "' is not a run folder (it needs metrics.jsonl and config.toml)");
    RunSummary r;
    r.dir = dir;
    const std::string where = (fs::path(dir) / "config.toml").string();
    const std::string text = read_text(where);
    r.config = flat_config(text, where);
    const std::string made = "# made from: ";
    if (const size_t at = text.find(made); at != std::string::npos)
        r.made_from = text.substr(at + made.size(), text.find('\n', at) - at - made.size());
    const RunConfig rc = run_config_from_string(text, where);
    r.bytes = rc.data.task == "bytes";
    r.params = build_model(rc.model)->num_parameters();
    r.tokens_per_step = rc.train.batch * rc.data.seq_len;
    read_metrics(fs::path(dir) / "metrics.jsonl", r);
    return r;
}

std::vector<std::string> find_runs(const std::vector<std::string>& args) {
    std::vector<std::string> out;
    for (const std::string& a : args) {
        if (is_run(a)) {
            out.push_back(a);
            continue;
        }
        if (!fs::is_directory(a)) throw std::runtime_error("'" + a + "' is not a folder");
        std::vector<std::string> below;
        for (const auto& e : fs::recursive_directory_iterator(a))
            if (e.is_directory() && is_run(e.path())) below.push_back(e.path().string());
        if (below.empty())
            throw std::runtime_error("'" + a + "' holds no run (no folder with metrics.jsonl and config.toml)");
        std::sort(below.begin(), below.end());
        out.insert(out.end(), below.begin(), below.end());
    }
    return out;
}

std::string compare_runs(const std::vector<std::string>& run_dirs, const CompareOptions& opt, std::ostream& out) {
    if (run_dirs.empty()) throw std::runtime_error("compare: no run given");
    std::vector<RunSummary> runs;
    for (const std::string& d : run_dirs) runs.push_back(read_run_summary(d));
    for (const RunSummary& r : runs)
        if (r.bytes != runs[0].bytes)
            throw std::runtime_error("compare: '" + r.dir + "' and '" + runs[0].dir + "' measure different things (bits " +
                                     "per byte of a byte corpus, accuracy of a recall task); compare them apart");
    const bool bytes = runs[0].bytes;
    auto [parent, names] = relative_names(runs);
    const std::vector<Row> rows = make_rows(runs, names, opt.group_seeds);
    const fs::path dir = opt.out_dir.empty() ? parent / "compare" : fs::path(opt.out_dir);
    fs::create_directories(dir);

    bool same_step = true;
    for (const RunSummary& r : runs) same_step &= r.tokens_per_step == runs[0].tokens_per_step;
    const std::string x = same_step ? "step" : "tokens seen";
    LineChart loss{"training loss (smoothed)", x, bytes ? "bits/byte" : "loss (nats)", {}};
    loss.log_y = true;
    LineChart eval{"evaluation", x, bytes ? "bits/byte" : "accuracy (%)", {}};
    for (const Row& row : rows) {
        loss.series.push_back({row.label, mean_curve(row, false, !same_step)});
        eval.series.push_back({row.label, mean_curve(row, true, !same_step)});
    }

    const std::string tab = table(rows, differing_keys(rows), bytes);
    std::ostringstream md;
    md << "# " << runs.size() << " runs compared\n\n"
       << "Rows: each run, or the runs that differ only in model.seed and data.seed (mean ± standard deviation over "
          "them, curves averaged). Columns: the config keys that differ between the rows, then the "
       << (bytes ? "bits per byte" : "recall accuracy") << " of the final and of the best evaluation; tok/s and "
          "tok/CPU-s are tokens trained per wall-clock and per CPU second (evaluations included).\n\n"
       << tab << "\n"
       << chart(dir, "loss.svg", loss) << chart(dir, "eval.svg", eval) << "Runs:\n\n";
    int64_t skipped = 0;
    for (size_t i = 0; i < runs.size(); ++i) {
        md << "- `" << runs[i].dir << "`" << (runs[i].made_from.empty() ? "" : ": " + runs[i].made_from)
           << (runs[i].has_final ? "" : " (no final evaluation: unfinished?)") << "\n";
        skipped += runs[i].skipped_lines;
    }
    if (skipped > 0) md << "\n" << skipped << " line(s) of metrics.jsonl that were not JSON objects were skipped.\n";
    write_file_atomically((dir / "compare.md").string(), {md.str()});
    out << tab << "\nwrote " << (dir / "compare.md").string() << ", loss.svg and eval.svg\n";
    return dir.string();
}

}  // namespace miras
