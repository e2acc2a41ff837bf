// The page of `miras suite` (train/suite.h): a table per task, model by
// model, over the seeds, and SVG figures next to it (train/plot.h).
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>

#include "train/atomic_file.h"
#include "train/plot.h"
#include "train/stats.h"
#include "train/suite.h"

namespace miras {
namespace fs = std::filesystem;
namespace {

std::string fmt(const char* f, double v) {
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

// 12345 -> "12.3k", 1.2e6 -> "1.20M".
std::string count(double v) {
    if (v >= 1e6) return fmt("%.2fM", v / 1e6);
    if (v >= 1e4) return fmt("%.1fk", v / 1e3);
    return fmt("%.0f", v);
}

std::string machine() {
    std::string cpu;
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("model name", 0) == 0) {
            cpu = line.substr(line.find(':') + 2);
            break;
        }
    utsname u{};
    uname(&u);
    return (cpu.empty() ? std::string(u.machine) : cpu) + ", " + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) +
           " cores, " + u.sysname + " " + u.release;
}

std::string load_average() {
    double l[3] = {0, 0, 0};
    if (getloadavg(l, 3) != 3) return "unknown";
    return fmt("%.2f", l[0]) + " " + fmt("%.2f", l[1]) + " " + fmt("%.2f", l[2]);
}

struct Cell {
    std::vector<nlohmann::json> ok;  // finished runs
    std::vector<std::string> failed;
};

// The results of one task, by preset, from the result.json files.
std::map<std::string, Cell> collect(const SuiteTask& task, const SuiteSpec& spec, const SuiteOptions& opt) {
    std::map<std::string, Cell> cells;
    const std::vector<int64_t>& seeds = suite_seeds(spec, opt);
    for (const std::string& p : spec.presets)
        for (int64_t s : seeds) {
            const fs::path res = fs::path(opt.out_dir) / task.name / p / ("seed" + std::to_string(s)) / "result.json";
            std::ifstream in(res);
            if (!in) continue;
            nlohmann::json r = nlohmann::json::parse(in, nullptr, false);
            if (!r.is_object() || r.value("overrides", nlohmann::json()) != nlohmann::json(suite_overrides(task, p, s, opt.quick)))
                continue;  // another size's or an older config's run
            if (r.value("ok", false)) cells[p].ok.push_back(r);
            else cells[p].failed.push_back("seed " + std::to_string(s) + ": " + r.value("error", std::string("?")));
        }
    return cells;
}

// The mean over seeds of a curve column, at the steps every seed logged.
std::vector<std::pair<double, double>> mean_curve(const std::vector<nlohmann::json>& runs, const char* key, int col) {
    std::map<double, std::vector<double>> at;
    for (const nlohmann::json& r : runs)
        if (r.contains(key))
            for (const nlohmann::json& p : r[key])
                if (p.size() > (size_t)col && p[col].is_number()) at[p[0].get<double>()].push_back(p[col].get<double>());
    std::vector<std::pair<double, double>> out;
    for (auto& [step, v] : at)
        if (v.size() == runs.size()) out.push_back({step, mean(v)});
    return out;
}

void figure(const fs::path& dir, const std::string& file, const LineChart& c, std::ostringstream& md, const std::string& rel) {
    bool any = false;
    for (const LineSeries& s : c.series) any |= !s.points.empty();
    if (!any) return;
    write_file_atomically((dir / file).string(), {svg_line_chart(c)});
    md << "![" << c.title << "](" << rel << "/" << file << ")\n\n";
}

}  // namespace

void write_results_page(const SuiteSpec& spec, const SuiteOptions& opt, std::ostream& out) {
    const fs::path page(opt.results);
    const fs::path fig_dir = page.parent_path() / page.stem();
    const std::string rel = page.stem().string();
    fs::create_directories(fig_dir);
    const std::vector<int64_t>& seeds = suite_seeds(spec, opt);
    std::time_t now = std::time(nullptr);
    char date[64];
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));

    std::ostringstream md;
    md << "# Results of the suite" << (opt.quick ? " (quick size)" : "") << "\n\n";
    md << "Written by `" << (opt.command.empty() ? "miras suite" : opt.command) << "` on " << date << ", on "
       << machine() << " (load average at the end: " << load_average() << ")"
       << (opt.page_only ? ", from the runs that earlier `miras suite` commands (e.g. one per --shard) trained there" : "")
       << ". Suite file: `" << spec.source
       << "`; the suite's seeds: " ;
    for (size_t i = 0; i < seeds.size(); ++i) md << (i ? ", " : "") << seeds[i];
    md << " (run s: model.seed = s, data.seed = 1 + s); the seeds column says how many of them finished. Each cell is "
          "the mean ± standard deviation over those, with their range; tokens/s is wall-clock on one thread and depends on what else the "
          "machine ran. A model that stopped (e.g. a NaN loss) is listed with its message. The run folders (configs, "
          "metrics.jsonl, checkpoints, result.json) are under `"
       << opt.out_dir << "`.\n\n";

    for (const SuiteTask& task : spec.tasks) {
        if (!opt.tasks.empty() && std::find(opt.tasks.begin(), opt.tasks.end(), task.name) == opt.tasks.end()) continue;
        const bool acc = task.metric == "accuracy";
        std::map<std::string, Cell> cells = collect(task, spec, opt);
        md << "## " << task.name << "\n\n" << task.what << "\n\n";
        // The task's overrides as a run sees them (each key once), without the per-run keys.
        md << "Overrides on each preset: `";
        bool first = true;
        for (const std::string& o : suite_overrides(task, "", 0, opt.quick)) {
            const std::string key = o.substr(0, o.find('='));
            if (key == "model.seed" || key == "data.seed" || key == "output.checkpoint_every") continue;
            md << (first ? "" : " ") << o;
            first = false;
        }
        md << "`";
        for (const auto& [p, l] : task.set_for) {
            md << "; " << p << ": `";
            for (size_t i = 0; i < l.size(); ++i) md << (i ? " " : "") << l[i];
            md << "`";
        }
        md << ".\n\n";
        double bigram = NAN;
        for (auto& [p, c] : cells)
            if (!c.ok.empty() && c.ok[0].contains("bigram_bits_per_byte")) bigram = c.ok[0]["bigram_bits_per_byte"].get<double>();
        if (!std::isnan(bigram))
            md << "Bigram baseline of this corpus (training split's byte-pair counts, add-one): **" << fmt("%.3f", bigram)
               << " bits/byte**; a model that does not beat it has not learned.\n\n";

        md << "| model | " << (acc ? "accuracy (%)" : "bits/byte") << " | range | seeds | parameters | tokens | tokens/s |\n";
        md << "|---|---:|---:|---:|---:|---:|---:|\n";
        std::vector<std::string> notes;
        for (const std::string& p : spec.presets) {
            if (!opt.presets.empty() && std::find(opt.presets.begin(), opt.presets.end(), p) == opt.presets.end()) continue;
            const Cell& c = cells[p];
            std::vector<double> v, tps;
            for (const nlohmann::json& r : c.ok) {
                v.push_back(r["value"].get<double>() * (acc ? 100 : 1));
                tps.push_back(r.value("tokens_per_s", 0.0));
            }
            for (const std::string& f : c.failed) notes.push_back(p + ", " + f);
            md << "| " << p << " | ";
            if (v.empty()) md << (c.failed.empty() ? "not run" : "**failed**") << " | | ";
            else
                md << fmt(acc ? "%.1f" : "%.3f", mean(v)) << " ± " << fmt(acc ? "%.1f" : "%.3f", stdev(v)) << " | "
                   << fmt(acc ? "%.1f" : "%.3f", *std::min_element(v.begin(), v.end())) << "–"
                   << fmt(acc ? "%.1f" : "%.3f", *std::max_element(v.begin(), v.end())) << " | ";
            md << v.size() << (c.failed.empty() ? "" : " (+" + std::to_string(c.failed.size()) + " failed)") << " | ";
            md << (c.ok.empty() ? "" : count(c.ok[0].value("params", 0.0))) << " | "
               << (c.ok.empty() ? "" : count(c.ok[0].value("tokens", 0.0))) << " | " << (tps.empty() ? "" : count(mean(tps)))
               << " |\n";
        }
        md << "\n";
        for (const std::string& n : notes) md << "- failed: " << n << "\n";
        if (!notes.empty()) md << "\n";

        // Accuracy by group (query quarter, needle depth) and by length.
        std::vector<std::string> groups;
        for (auto& [p, c] : cells)
            if (!c.ok.empty() && c.ok[0]["final"].contains("accuracy_by_group"))
                for (auto& [g, x] : c.ok[0]["final"]["accuracy_by_group"].items())
                    if (std::find(groups.begin(), groups.end(), g) == groups.end()) groups.push_back(g);
        std::sort(groups.begin(), groups.end());
        LineChart by_group{task.name + ": accuracy by group", "group (1 = " + (groups.empty() ? "" : groups.front()) +
                                                                   ", " + std::to_string(groups.size()) + " = " +
                                                                   (groups.empty() ? "" : groups.back()) + ")",
                           "accuracy (%)", {}};
        if (!groups.empty()) {
            md << "Accuracy (%) by group, mean over seeds:\n\n| model |";
            for (const std::string& g : groups) md << " " << g << " |";
            md << "\n|---|";
            for (size_t i = 0; i < groups.size(); ++i) md << "---:|";
            md << "\n";
            for (const std::string& p : spec.presets) {
                const Cell& c = cells[p];
                if (c.ok.empty()) continue;
                md << "| " << p << " |";
                LineSeries s{p, {}};
                for (size_t gi = 0; gi < groups.size(); ++gi) {
                    std::vector<double> v;
                    for (const nlohmann::json& r : c.ok)
                        if (r["final"].contains("accuracy_by_group") && r["final"]["accuracy_by_group"].contains(groups[gi]))
                            v.push_back(100 * r["final"]["accuracy_by_group"][groups[gi]].get<double>());
                    md << " " << (v.empty() ? "" : fmt("%.1f", mean(v))) << " |";
                    if (!v.empty()) s.points.push_back({(double)gi + 1, mean(v)});
                }
                md << "\n";
                by_group.series.push_back(s);
            }
            md << "\n";
        }
        // The loss curves (train, mean over seeds) and the accuracy by length.
        LineChart loss{task.name + ": training loss (mean over seeds)", "step", acc ? "loss (nats)" : "loss (bits/byte)", {}};
        loss.log_y = true;
        LineChart by_len{task.name + ": accuracy by evaluation length", "sequence length", "accuracy (%)", {}};
        size_t lengths = 0;
        for (const std::string& p : spec.presets) {
            const Cell& c = cells[p];
            if (c.ok.empty()) continue;
            LineSeries s{p, mean_curve(c.ok, "train_curve", 1)};
            if (!acc)
                for (auto& pt : s.points) pt.second /= std::log(2.0);
            loss.series.push_back(s);
            LineSeries l{p, {}};
            for (auto& [len, e] : c.ok[0]["by_length"].items()) {
                std::vector<double> v;
                for (const nlohmann::json& r : c.ok)
                    if (r["by_length"].contains(len)) v.push_back(100 * r["by_length"][len]["accuracy"].get<double>());
                l.points.push_back({std::stod(len), mean(v)});
            }
            std::sort(l.points.begin(), l.points.end());
            lengths = std::max(lengths, l.points.size());
            by_len.series.push_back(l);
        }
        figure(fig_dir, task.name + "-loss.svg", loss, md, rel);
        if (acc && !groups.empty()) figure(fig_dir, task.name + "-by-group.svg", by_group, md, rel);
        if (acc && lengths > 1) figure(fig_dir, task.name + "-by-length.svg", by_len, md, rel);
    }
    write_file_atomically(opt.results, {md.str()});
    out << "wrote " << opt.results << " and its figures in " << fig_dir.string() << "/\n";
}

}  // namespace miras
