// What a researcher running a small study needs from the CLI (docs/training.md,
// "Studies"): a preset layered with task files, a run header that says what
// the run was made from, a width for a parameter budget, metrics that
// survive a shared machine, `miras compare` and sweeps over seeds and keys.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/cli_run.h"
#include "tests/temp_dir.h"
#include "train/compare.h"
#include "train/model_config.h"
#include "train/sweep.h"

using namespace miras;
namespace fs = std::filesystem;

namespace {

using Run = miras::testing::CliRun;
using miras::testing::run_miras;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

struct TempDir : miras::testing::TempDir {
    TempDir() : miras::testing::TempDir("exp") {}
};

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// A task file of the tiny MQAR every test here trains on: [data] and
// [train] only, so it layers on any preset without touching its model.
const char* kTinyTask = R"([data]
seq_len = 12
[data.mqar]
vocab = 13
num_pairs = 3
[train]
batch = 4
steps = 6
eval_every = 3
eval_batches = 1
log_every = 2
)";

// A preset made small enough to train in a fraction of a second.
std::vector<std::string> tiny_model() {
    return {"--set", "model.d=8", "--set", "model.heads=2", "--set", "model.layers=1"};
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// True if every tag of `xml` closes in order (a start tag, its end tag or
// "/>"): enough to say a file we wrote parses as XML.
bool balanced_xml(const std::string& xml) {
    std::vector<std::string> open;
    static const std::regex tag(R"(<(/?)([A-Za-z]+)[^>]*?(/?)>)");
    for (auto it = std::sregex_iterator(xml.begin(), xml.end(), tag); it != std::sregex_iterator(); ++it) {
        const std::smatch& m = *it;
        if (m[1] == "/") {
            if (open.empty() || open.back() != m[2]) return false;
            open.pop_back();
        } else if (m[3] != "/") {
            open.push_back(m[2]);
        }
    }
    return open.empty() && xml.rfind("<svg", 0) == 0;
}

size_t occurrences(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
    return n;
}

// Trains the tiny task with `preset` into `dir`, seed `seed`.
void train_tiny(const std::string& task, const std::string& preset, const std::string& dir, int seed) {
    Run r = run_miras(concat({"train", "--preset", preset, task, "--out", dir, "--set", "model.seed=" + std::to_string(seed),
                              "--set", "data.seed=" + std::to_string(seed + 1)},
                             tiny_model()));
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(experiments)

// `miras info bytes.toml --preset titans-lmm` said "give either a config
// file or --preset, not both". Now: the preset, then each file, then --set.
BOOST_AUTO_TEST_CASE(preset_is_the_base_of_config_files) {
    TempDir tmp;
    const std::string task = tmp.file("task.toml"), lr = tmp.file("lr.toml");
    write(task, kTinyTask);
    write(lr, "[optim]\nlr = 0.004\n[train]\nsteps = 5\n");
    const RunConfig rc = load_layered_config("titans-lmm", {task, lr}, {"train.steps=8"});
    BOOST_TEST(rc.model.memory.memory == "mlp");           // the preset
    BOOST_TEST(rc.model.memory.algorithm == "momentum");  // the preset
    BOOST_TEST(rc.data.seq_len == 12);                    // the task file
    BOOST_TEST(rc.optim.lr == 0.004);                     // the second file
    BOOST_TEST(rc.train.steps == 8);                      // --set over the second file
    BOOST_TEST(rc.output.dir == "runs/titans-lmm");       // the preset's, no file sets it
    BOOST_REQUIRE_EQUAL(rc.layer_notes.size(), 1u);
    BOOST_TEST(rc.layer_notes[0] == lr + " sets train.steps = 5 over 6 from " + task);

    // The same through the command line, in any order of the arguments.
    Run r = run_miras({"info", task, "--preset", "titans-lmm", lr, "--set", "train.steps=8"});
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    BOOST_TEST(contains(r.out, "config: preset titans-lmm (" + preset_path("titans-lmm") + ") + " + task + " + " + lr +
                                   ", --set train.steps=8\n"),
               r.out);
    BOOST_TEST(contains(r.out, "note:  " + lr + " sets train.steps = 5 over 6 from " + task + "\n"), r.out);
    BOOST_TEST(contains(r.out, "seq_len 12"), r.out);
    // A file that sets a model key over the preset's is said, not silent.
    write(tmp.file("attn.toml"), "[model]\nmixer = \"attn\"\n");
    r = run_miras({"info", "--preset", "titans-lmm", tmp.file("attn.toml")});
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    BOOST_TEST(contains(r.out, tmp.file("attn.toml") + " sets model.mixer = \"attn\" over \"lmm\" from " +
                                   preset_path("titans-lmm")),
               r.out);
    // --resume still takes no config: a resumed run uses its stored one.
    r = run_miras({"train", task, "--resume", tmp.file("nothing")});
    BOOST_TEST(r.code == 1);
    BOOST_TEST(contains(r.err, "give either a config file or --resume"), r.err);
}

// The header printed "model: lmm, d 64, ..." alike for gated-deltanet,
// titans-lmm and yaad, and nothing of the overrides.
BOOST_AUTO_TEST_CASE(run_header_names_preset_overrides_and_memory) {
    TempDir tmp;
    write(tmp.file("task.toml"), kTinyTask);
    Run r = run_miras(concat({"train", "--preset", "gated-deltanet", tmp.file("task.toml"), "--out", tmp.file("run"),
                              "--set", "optim.lr=0.003"},
                             tiny_model()));
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    const std::string origin = "config: preset gated-deltanet (" + preset_path("gated-deltanet") + ") + " +
                               tmp.file("task.toml") +
                               ", --set optim.lr=0.003 --set model.d=8 --set model.heads=2 --set model.layers=1\n";
    BOOST_TEST(contains(r.out, origin), r.out);
    BOOST_TEST(contains(r.out, "memory linear, bias l2, retention l2, gd, chunk 1\n"), r.out);
    // config.toml says the same, for whoever finds the folder later.
    BOOST_TEST(contains(read(tmp.file("run/config.toml")), "# made from: " + origin.substr(8)), read(tmp.file("run/config.toml")));

    r = run_miras(concat({"info", "--preset", "titans-lmm", "--set", "optim.lr=0.003"}, tiny_model()));
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    BOOST_TEST(contains(r.out, "--set optim.lr=0.003 --set model.d=8"), r.out);
    BOOST_TEST(contains(r.out, "memory mlp (depth 2), bias l2, retention l2, momentum, chunk 16"), r.out);
    // A resumed run says where its config came from and what --set changed.
    r = run_miras({"train", "--resume", tmp.file("run"), "--set", "train.steps=7"});
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    BOOST_TEST(contains(r.out, "config: " + tmp.file("run/checkpoint.safetensors") +
                                   " (stored config), --set train.steps=7\n"),
               r.out);
}

// Equal-parameter comparisons took trial and error over model.mlp_hidden.
BOOST_AUTO_TEST_CASE(params_target_chooses_the_nearest_width) {
    for (const char* preset : {"titans-lmm", "attention", "gated-deltanet", "titans-mac"})
        for (int64_t extra : {0, 12345, 200000}) {
            RunConfig at1 = load_layered_config(preset, {}, {"model.mlp_hidden=1"});
            const int64_t target = build_model(at1.model)->num_parameters() + extra;
            const RunConfig rc = load_layered_config(preset, {}, {"model.params_target=" + std::to_string(target)});
            const int64_t got = build_model(rc.model)->num_parameters();
            const int64_t tolerance = 3 * rc.model.d * rc.model.layers / 2;  // half a step of the width (documented)
            BOOST_TEST(std::llabs(got - target) <= tolerance, preset << " target " << target << " got " << got);
            // No other width comes nearer.
            for (int64_t h : {rc.model.mlp_hidden - 1, rc.model.mlp_hidden + 1}) {
                if (h < 1) continue;
                ModelConfig m = rc.model;
                m.mlp_hidden = h;
                BOOST_TEST(std::llabs(build_model(m)->num_parameters() - target) >= std::llabs(got - target), preset);
            }
            // The stored config reads back to the same width.
            BOOST_TEST(run_config_from_string(rc.toml, "stored").model.mlp_hidden == rc.model.mlp_hidden);
        }

    // From the command line: the width, the count and how far from the target.
    Run r = run_miras({"info", "--preset", "titans-lmm", "--params-target", "150000"});
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    const RunConfig rc = load_layered_config("titans-lmm", {}, {"model.params_target=150000"});
    const int64_t got = build_model(rc.model)->num_parameters();
    BOOST_TEST(contains(r.out, "params: model.mlp_hidden = " + std::to_string(rc.model.mlp_hidden) + " gives " +
                                   std::to_string(got) + " parameters, the nearest to model.params_target = 150000 ("),
               r.out);
    BOOST_TEST(contains(r.out, "mlp hidden " + std::to_string(rc.model.mlp_hidden) + ","), r.out);

    // What cannot be met says why and what to change.
    r = run_miras({"info", "--preset", "titans-lmm", "--params-target", "10"});
    BOOST_TEST(r.code == 1);
    BOOST_TEST(contains(r.err, "key 'model.params_target' = 10 is below the "), r.err);
    BOOST_TEST(contains(r.err, "with model.mlp_hidden = 1; make model.d or model.layers smaller"), r.err);
    r = run_miras({"info", "--params-target", "100000", "--set", "model.mlp_hidden=64"});
    BOOST_TEST(r.code == 1);
    BOOST_TEST(contains(r.err, "'model.params_target' = 100000 and 'model.mlp_hidden' = 64 are both set"), r.err);
    r = run_miras({"info", "--params-target", "100000", "--set", "model.layers=0"});
    BOOST_TEST(r.code == 1);
    BOOST_TEST(contains(r.err, "no MLP to size"), r.err);
    r = run_miras({"info", "--params-target", "9000000000000000000"});
    BOOST_TEST(r.code == 1);
    BOOST_TEST(contains(r.err, "with the largest model.mlp_hidden"), r.err);
    r = run_miras({"info", "--params-target", "0"});
    BOOST_TEST(r.code == 2);
}

// metrics.jsonl had loss in nats only, wall-clock time only, and the last
// step's loss of one batch; nothing said what a run would cost before it ran.
BOOST_AUTO_TEST_CASE(metrics_have_bits_cpu_time_and_a_smoothed_loss) {
    TempDir tmp;
    write(tmp.file("task.toml"), kTinyTask);
    Run r = run_miras(concat({"train", "--preset", "attention", tmp.file("task.toml"), "--out", tmp.file("run"), "--set",
                              "train.log_every=1"},
                             tiny_model()));
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    // The estimate comes from a timed warm-up step, before the first step.
    const size_t estimate = r.out.find("estimate: "), first = r.out.find("step 1/6");
    BOOST_TEST(estimate != std::string::npos, r.out);
    BOOST_TEST(estimate < first, r.out);
    BOOST_TEST(contains(r.out, " s per step (one warm-up step, timed), about "), r.out);
    BOOST_TEST(contains(r.out, " for the 6 steps to go, evaluations not included\n"), r.out);

    std::ifstream in(tmp.file("run/metrics.jsonl"));
    std::vector<nlohmann::json> train, eval;
    for (std::string line; std::getline(in, line);) {
        nlohmann::json j = nlohmann::json::parse(line);
        (j["split"] == "train" ? train : eval).push_back(j);
    }
    BOOST_REQUIRE_EQUAL(train.size(), 6u);
    double ema = 0, cpu = 0;
    for (size_t i = 0; i < train.size(); ++i) {
        const nlohmann::json& j = train[i];
        const double loss = j["loss"].get<double>();
        BOOST_TEST(j["bits_per_byte"].get<double>() == loss / std::log(2.0));
        // The documented EMA: decay 0.95 with the bias correction.
        ema = 0.95 * ema + (1 - 0.95) * loss;
        BOOST_TEST(j["loss_ema"].get<double>() == ema / (1 - std::pow(0.95, (double)(i + 1))), "step " << i + 1);
        BOOST_TEST(j["cpu_s"].get<double>() >= cpu);
        cpu = j["cpu_s"].get<double>();
        BOOST_TEST(j["tokens_per_cpu_s"].get<double>() > 0);
        BOOST_TEST(j["elapsed_s"].get<double>() >= 0);
    }
    BOOST_CHECK_CLOSE(train[0]["loss_ema"].get<double>(), train[0]["loss"].get<double>(), 1e-9);  // no pull toward 0
    BOOST_TEST(cpu > 0);
    BOOST_REQUIRE(!eval.empty());
    for (const nlohmann::json& j : eval)
        BOOST_TEST(j["bits_per_byte"].get<double>() == j["loss"].get<double>() / std::log(2.0));
}

// A study needed hand-made Python and gnuplot to put runs side by side.
BOOST_AUTO_TEST_CASE(compare_tables_and_plots_runs_grouping_seeds) {
    TempDir tmp;
    const std::string task = tmp.file("task.toml");
    write(task, kTinyTask);
    train_tiny(task, "gated-deltanet", tmp.file("study/gdn/seed0"), 0);
    train_tiny(task, "gated-deltanet", tmp.file("study/gdn/seed1"), 1);
    train_tiny(task, "attention", tmp.file("study/attn/seed0"), 0);

    // The study's folder: every run below it, seeds grouped.
    Run r = run_miras({"compare", tmp.file("study")});
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    const std::string md = read(tmp.file("study/compare/compare.md"));
    BOOST_TEST(contains(md, r.out.substr(0, r.out.find("\nwrote"))), "the printed table is the file's");
    // The keys that differ between the two rows (not the seeds, not the folder).
    BOOST_TEST(contains(md, "| run | memory.chunk | model.attn_conv | model.mixer | params | tokens | final acc (%) | "
                            "best acc (%) (step) | tok/s | tok/CPU-s | CPU s |"),
               md);
    BOOST_TEST(!contains(md, "| model.seed |"), md);
    BOOST_TEST(!contains(md, "output.dir"), md);
    const RunSummary gdn = read_run_summary(tmp.file("study/gdn/seed0"));
    const RunSummary attn = read_run_summary(tmp.file("study/attn/seed0"));
    BOOST_TEST(gdn.params == build_model(load_layered_config("gated-deltanet", {task}, {"model.d=8", "model.heads=2",
                                                                                          "model.layers=1"})
                                             .model)
                                 ->num_parameters());
    BOOST_TEST(gdn.tokens() == 6 * 4 * 12);
    BOOST_TEST(gdn.eval_curve.size() == 2u);  // steps 3 and 6
    BOOST_TEST(gdn.has_final);
    // One row per preset: the seeds as mean ± sd, params and tokens.
    const std::regex gdn_row("\\| gdn \\(2 seeds: 0, 1\\) \\| 1 \\| 0 \\| \"lmm\" \\| " + std::to_string(gdn.params) +
                             " \\| 288 \\| [0-9.]+ ± [0-9.]+ \\| [0-9.]+ ± [0-9.]+ \\| [0-9.k]+ \\| [0-9.k]+ \\| [0-9.e-]+ ± [0-9.e-]+ \\|\n");
    BOOST_TEST(std::regex_search(md, gdn_row), md);
    const std::regex attn_row("\\| attn/seed0 \\| 16 \\| 4 \\| \"attn\" \\| " + std::to_string(attn.params) +
                              " \\| 288 \\| [0-9.]+ \\| [0-9.]+ \\([36]\\) \\| [0-9.k]+ \\| [0-9.k]+ \\| [0-9.e-]+ \\|\n");
    BOOST_TEST(std::regex_search(md, attn_row), md);
    // The figures: well-formed SVG, one curve per row, linked from the table's page.
    for (const char* f : {"loss.svg", "eval.svg"}) {
        const std::string svg = read(tmp.file(std::string("study/compare/") + f));
        BOOST_TEST(balanced_xml(svg), f);
        BOOST_TEST(occurrences(svg, "<polyline class=\"series\"") == 2u, f);
        BOOST_TEST(contains(svg, "data-name=\"gdn (2 seeds: 0, 1)\""), f);
        BOOST_TEST(contains(md, std::string("](") + f + ")"), f);
    }
    // Each run listed with what it was made from.
    BOOST_TEST(contains(md, "`" + tmp.file("study/attn/seed0") + "`: preset attention ("), md);

    // A row per run when asked, into another folder; and runs named one by one.
    r = run_miras({"compare", tmp.file("study"), "--no-group", "--out", tmp.file("each")});
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    BOOST_TEST(occurrences(read(tmp.file("each/loss.svg")), "<polyline class=\"series\"") == 3u);
    BOOST_TEST(contains(r.out, "| gdn/seed1 |"), r.out);
    r = run_miras({"compare", tmp.file("study/gdn/seed0"), tmp.file("study/attn/seed0"), "--out", tmp.file("two")});
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    BOOST_TEST(occurrences(read(tmp.file("two/eval.svg")), "<polyline class=\"series\"") == 2u);

    // Not a run: said, naming the folder.
    r = run_miras({"compare", tmp.file("each")});
    BOOST_TEST(r.code == 1);
    BOOST_TEST(contains(r.err, "holds no run"), r.err);
}

BOOST_AUTO_TEST_CASE(sweep_values_and_grid) {
    using V = std::vector<std::string>;
    BOOST_TEST((parse_sweep("optim.lr=1e-3, 3e-3").second == V{"1e-3", "3e-3"}));
    BOOST_TEST(parse_sweep(" optim.lr =1e-3").first == "optim.lr");
    // Commas inside an array or a string do not split.
    BOOST_TEST((parse_sweep("data.eval_lengths=[12,16],[16]").second == V{"[12,16]", "[16]"}));
    BOOST_TEST((parse_sweep("data.bytes.path=\"a,b\",c").second == V{"\"a,b\"", "c"}));
    auto error = [](const std::string& text) {
        try {
            parse_sweep(text);
        } catch (const std::runtime_error& e) {
            return std::string(e.what());
        }
        return std::string("<no error>");
    };
    BOOST_TEST(error("optim.lr") == "--sweep 'optim.lr' must look like key=value1,value2");
    BOOST_TEST(error("optim.lr=1,,2") == "--sweep 'optim.lr=1,,2' has an empty value");
    BOOST_TEST(error("optim.lr=1,1") == "--sweep 'optim.lr=1,1' gives the value 1 twice");

    // Seed by seed, the first key outermost; a folder level per key, then the seed.
    SweepSpec spec;
    spec.keys = {parse_sweep("optim.lr=1e-3,3e-3"), parse_sweep("data.bytes.path=/a/b.txt")};
    spec.seeds = {0, 5};
    const std::vector<SweepPoint> p = sweep_points(spec);
    BOOST_REQUIRE_EQUAL(p.size(), 4u);
    BOOST_TEST(p[0].sub_dir == "optim.lr=1e-3/data.bytes.path=_a_b.txt/seed0");
    BOOST_TEST(p[1].sub_dir == "optim.lr=3e-3/data.bytes.path=_a_b.txt/seed0");
    BOOST_TEST(p[3].sub_dir == "optim.lr=3e-3/data.bytes.path=_a_b.txt/seed5");
    BOOST_TEST((p[3].overrides == V{"optim.lr=3e-3", "data.bytes.path=/a/b.txt", "model.seed=5", "data.seed=6"}));
    BOOST_TEST(p[3].label == "optim.lr=3e-3 data.bytes.path=/a/b.txt");
    BOOST_TEST(p[3].seed == 5);
    SweepSpec seeds_only;
    seeds_only.seeds = {2};
    BOOST_TEST(sweep_points(seeds_only)[0].sub_dir == "seed2");
    BOOST_TEST(sweep_points(seeds_only)[0].label.empty());
    SweepSpec clash;
    clash.keys = {parse_sweep("data.bytes.path=a/b,a_b")};
    BOOST_CHECK_THROW(sweep_points(clash), std::runtime_error);  // the same folder name
    clash.keys = {parse_sweep("optim.lr=1"), parse_sweep("optim.lr=2")};
    BOOST_CHECK_THROW(sweep_points(clash), std::runtime_error);
}

// Seeds and a sweep needed a shell script, and the mean ± spread by hand.
BOOST_AUTO_TEST_CASE(seeds_and_sweeps_from_the_command_line) {
    TempDir tmp;
    const std::string task = tmp.file("task.toml");
    write(task, kTinyTask);
    const std::string out = tmp.file("lr");
    std::vector<std::string> args = concat({"train", "--preset", "attention", task, "--out", out, "--seeds", "0,1",
                                            "--sweep", "optim.lr=0.001,0.003"},
                                           tiny_model());
    Run r = run_miras(args);
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    BOOST_TEST(contains(r.out, "sweep: 4 runs into " + out + "\n"), r.out);
    BOOST_TEST(contains(r.out, "== run 1/4: optim.lr=0.001, seed 0 -> " + out + "/optim.lr=0.001/seed0\n"), r.out);
    BOOST_TEST(contains(r.out, "== run 4/4: optim.lr=0.003, seed 1 -> " + out + "/optim.lr=0.003/seed1\n"), r.out);
    for (const char* lr : {"0.001", "0.003"})
        for (int seed : {0, 1}) {
            const std::string dir = out + "/optim.lr=" + lr + "/seed" + std::to_string(seed);
            const std::string cfg = read(dir + "/config.toml");
            BOOST_TEST(contains(cfg, std::string("lr = ") + lr + "\n"), dir);
            BOOST_TEST((contains(cfg, "[model]\n") && contains(cfg, "seed = " + std::to_string(seed) + "\n")), dir);
            BOOST_TEST(contains(cfg, "--set optim.lr=" + std::string(lr) + " --set model.seed="), dir);
        }
    // The summary: each point's final accuracy over its two seeds.
    const std::regex line("  optim\\.lr=0\\.001  [0-9.]+ ± [0-9.]+  \\[[0-9.]+, [0-9.]+\\]  2 runs\n");
    BOOST_TEST(std::regex_search(r.out, line), r.out);
    BOOST_TEST(contains(r.out, "sweep: 4 runs, 0 failed; final recall accuracy (%), mean ± standard deviation"), r.out);
    BOOST_TEST(contains(r.out, "compare them: build/miras compare " + out + "\n"), r.out);
    // compare groups the seeds: a row per learning rate.
    Run c = run_miras({"compare", out});
    BOOST_REQUIRE_MESSAGE(c.code == 0, c.err);
    BOOST_TEST(contains(c.out, "| optim.lr=0.001 (2 seeds: 0, 1) | 0.001 |"), c.out);
    BOOST_TEST(contains(c.out, "| optim.lr=0.003 (2 seeds: 0, 1) | 0.003 |"), c.out);
    BOOST_TEST(occurrences(read(out + "/compare/loss.svg"), "<polyline class=\"series\"") == 2u);

    // Again into the same folder: refused before anything trains, unless --force.
    r = run_miras(args);
    BOOST_TEST(r.code == 1);
    BOOST_TEST(contains(r.err, "4 of the sweep's folders hold a run already (" + out + "/optim.lr=0.001/seed0, "), r.err);
    BOOST_TEST(!contains(r.out, "== run"), r.out);
    args.push_back("--force");
    r = run_miras(args);
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    BOOST_TEST(fs::exists(out + "/optim.lr=0.001/seed0.old-1/config.toml"));

    // Clashes and bad points are refused before training.
    r = run_miras({"train", "--seeds", "0", "--set", "model.seed=3", "--out", tmp.file("x")});
    BOOST_TEST(r.code == 1);
    BOOST_TEST(contains(r.err, "--seeds sets model.seed and data.seed"), r.err);
    r = run_miras({"train", "--sweep", "optim.lr=1,20", "--out", tmp.file("x")});
    BOOST_TEST(r.code == 1);
    BOOST_TEST(contains(r.err, "sweep point optim.lr=20: "), r.err);
    BOOST_TEST(!fs::exists(tmp.file("x")));
    r = run_miras({"train", "--seeds", "0,-1"});
    BOOST_TEST(r.code == 2);
    r = run_miras({"train", "--seeds", "0", "--resume", out + "/optim.lr=0.001/seed0"});
    BOOST_TEST(r.code == 1);
    BOOST_TEST(contains(r.err, "resume one run of a sweep with --resume alone"), r.err);
    // The sweep's own folder must not be a run (compare would take it for one).
    r = run_miras({"train", "--seeds", "0", "--out", out + "/optim.lr=0.001/seed1"});
    BOOST_TEST(r.code == 1);
    BOOST_TEST(contains(r.err, "holds a run itself"), r.err);
}

// A run that fails is reported, and the others still run and are summed up.
BOOST_AUTO_TEST_CASE(a_failed_run_does_not_stop_the_sweep) {
    TempDir tmp;
    std::string text;
    for (int i = 0; i < 60; ++i) text += "the quick brown fox jumps over the lazy dog " + std::to_string(i) + "\n";
    write(tmp.file("corpus.txt"), text);
    Run r = run_miras(concat({"train", "--set", "model.mixer=attn", "--set", "data.task=bytes", "--set", "data.seq_len=16",
                              "--set", "train.steps=3", "--set", "train.batch=2", "--set", "train.eval_batches=1",
                              "--sweep", "data.bytes.path=" + tmp.file("none.txt") + "," + tmp.file("corpus.txt"),
                              "--out", tmp.file("sw")},
                             tiny_model()));
    BOOST_TEST(r.code == 1);
    BOOST_TEST(contains(r.out, "run failed: "), r.out);
    BOOST_TEST(contains(r.out, "sweep: 2 runs, 1 failed; final bits/byte"), r.out);
    BOOST_TEST(contains(r.out, "no finished run, 1 failed\n"), r.out);
    BOOST_TEST(std::regex_search(r.out, std::regex("corpus\\.txt  [0-9.]+ ± 0\\.000  \\[[0-9.]+, [0-9.]+\\]  1 run\n")),
               r.out);
}

BOOST_AUTO_TEST_SUITE_END()
