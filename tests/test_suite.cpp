// `miras suite` (train/suite.h): the suite file, the order of overrides, a
// small suite run end to end (results, reuse, a failing run, the page and its
// figures), the SVG charts (train/plot.h) and the bigram baseline.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "tests/cli_run.h"
#include "tests/temp_dir.h"
#include "train/plot.h"
#include "train/suite.h"
#include "train/tasks.h"
#include "train/trainer.h"

using namespace miras;
namespace fs = std::filesystem;

namespace {

struct TempDir : miras::testing::TempDir {
    TempDir() : miras::testing::TempDir("suite") {}
};

void write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
}
std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}
size_t occurrences(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
    return n;
}
std::string error_of(const std::string& path) {
    try {
        read_suite(path);
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

// A tiny MQAR on two presets, seconds in all; attention's lr makes it diverge
// when `failing` is set.
const char* kTiny = R"(
[suite]
presets = ["linear-attention", "attention"]
seeds = [0, 1]
[tasks.recall]
what = "tiny recall"
metric = "accuracy"
set = ["model.d=8", "model.heads=2", "model.layers=1", "data.seq_len=12", "data.mqar.vocab=13",
       "data.mqar.num_pairs=3", "train.batch=4", "train.steps=6", "train.log_every=2", "train.eval_every=3",
       "train.eval_batches=1", "data.eval_lengths=[12, 16]"]
quick = ["train.steps=4"]
)";

}  // namespace

BOOST_AUTO_TEST_SUITE(suite)

BOOST_AUTO_TEST_CASE(shipped_suite_file_is_valid) {
    // Every (task, preset) config of the shipped suite loads, full and quick.
    SuiteSpec s = read_suite(kSuitePath);
    BOOST_CHECK_GE(s.presets.size(), 15u);
    BOOST_CHECK_GE(s.seeds.size(), 3u);
    std::vector<std::string> names;
    for (const SuiteTask& t : s.tasks) names.push_back(t.name);
    BOOST_CHECK((names == std::vector<std::string>{"mqar", "mqar-long", "needle", "bytes"}));  // file order
}

BOOST_AUTO_TEST_CASE(overrides_in_documented_order_each_key_once) {
    SuiteTask t;
    t.set = {"train.steps=100", "optim.lr=1e-3"};
    t.quick = {"train.steps=5"};
    t.set_for["titans-mac"] = {"optim.lr=3e-3"};
    std::vector<std::string> o = suite_overrides(t, "titans-mac", 2, true);
    BOOST_CHECK((o == std::vector<std::string>{"train.steps=5", "optim.lr=3e-3", "model.seed=2", "data.seed=3",
                                               "output.checkpoint_every=0"}));
    o = suite_overrides(t, "attention", 0, false);
    BOOST_CHECK((o == std::vector<std::string>{"train.steps=100", "optim.lr=1e-3", "model.seed=0", "data.seed=1",
                                               "output.checkpoint_every=0"}));
}

BOOST_AUTO_TEST_CASE(suite_file_errors_name_the_key) {
    TempDir tmp;
    const std::string f = tmp.file("s.toml");
    write(f, "[suite]\npresets = [\"no-such\"]\n[tasks.a]\n");
    BOOST_CHECK(error_of(f).find("unknown preset 'no-such'") != std::string::npos);
    write(f, "[suite]\npresets = [\"attention\"]\nseed = [1]\n[tasks.a]\n");
    BOOST_CHECK(error_of(f).find("unknown key 'seed'") != std::string::npos);
    write(f, "[suite]\npresets = [\"attention\"]\n[tasks.a]\nmetric = \"loss\"\n");
    BOOST_CHECK(error_of(f).find("tasks.a.metric") != std::string::npos);
    write(f, "[suite]\npresets = [\"attention\"]\n[tasks.a]\nset = [\"optim.lrr=1\"]\n");
    std::string e = error_of(f);
    BOOST_CHECK_MESSAGE(e.find("task 'a' with preset 'attention'") != std::string::npos && e.find("optim.lrr") != std::string::npos, e);
    write(f, "[suite]\npresets = [\"attention\"]\n");
    BOOST_CHECK(error_of(f).find("[tasks.<name>]") != std::string::npos);
    BOOST_CHECK(error_of(tmp.file("none.toml")).find("not found") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(small_suite_end_to_end) {
    TempDir tmp;
    write(tmp.file("s.toml"), kTiny);
    SuiteSpec spec = read_suite(tmp.file("s.toml"));
    SuiteOptions o;
    o.out_dir = tmp.file("runs");
    o.results = tmp.file("page/results.md");
    std::ostringstream log;
    BOOST_CHECK_EQUAL(run_suite(spec, o, log), 0);
    BOOST_CHECK_MESSAGE(log.str().find("4 runs trained, 0 already done, 0 failed") != std::string::npos, log.str());
    for (const char* p : {"linear-attention", "attention"})
        for (int s : {0, 1}) {
            const fs::path r = fs::path(o.out_dir) / "recall" / p / ("seed" + std::to_string(s)) / "result.json";
            BOOST_REQUIRE_MESSAGE(fs::exists(r), r);
            nlohmann::json j = nlohmann::json::parse(read(r.string()));
            BOOST_CHECK(j["ok"].get<bool>());
            BOOST_CHECK_EQUAL(j["steps"].get<int64_t>(), 6);
            BOOST_CHECK_EQUAL(j["tokens"].get<int64_t>(), 6 * 4 * 12);
            BOOST_CHECK_GT(j["params"].get<int64_t>(), 0);
            const double v = j["value"].get<double>();
            BOOST_CHECK(v >= 0 && v <= 1);
            BOOST_CHECK_EQUAL(j["train_curve"].size(), 3u);  // steps 2, 4, 6
            BOOST_CHECK(j["by_length"].contains("12") && j["by_length"].contains("16"));
        }
    // The page: one row per preset with both seeds, and the figures it links.
    const std::string page = read(o.results);
    BOOST_CHECK(page.find("## recall") != std::string::npos);
    BOOST_CHECK(std::regex_search(page, std::regex(R"(\| linear-attention \| [0-9.]+ ± [0-9.]+ \| [0-9.]+–[0-9.]+ \| 2 \|)")));
    BOOST_CHECK(std::regex_search(page, std::regex(R"(\| attention \| [0-9.]+ ± [0-9.]+ \| [0-9.]+–[0-9.]+ \| 2 \|)")));
    for (const char* fig : {"recall-loss.svg", "recall-by-length.svg", "recall-by-group.svg"}) {
        BOOST_CHECK_MESSAGE(page.find(std::string("(results/") + fig + ")") != std::string::npos, fig);
        const std::string svg = read(tmp.file(std::string("page/results/") + fig));
        BOOST_CHECK(svg.rfind("<svg", 0) == 0 && svg.find("</svg>") != std::string::npos);
        BOOST_CHECK_EQUAL(occurrences(svg, "<polyline class=\"series\""), 2u);
    }

    // Again: nothing to train. A changed task trains again; a diverging run
    // is recorded as failed and the suite goes on.
    std::ostringstream again;
    BOOST_CHECK_EQUAL(run_suite(spec, o, again), 0);
    BOOST_CHECK_MESSAGE(again.str().find("0 runs trained, 4 already done") != std::string::npos, again.str());
    spec.tasks[0].set_for["attention"] = {"optim.lr=1e30", "optim.clip=0"};
    std::ostringstream third;
    BOOST_CHECK_EQUAL(run_suite(spec, o, third), 2);
    BOOST_CHECK_MESSAGE(third.str().find("2 runs trained, 2 already done, 2 failed") != std::string::npos, third.str());
    const std::string page2 = read(o.results);
    BOOST_CHECK(page2.find("| attention | **failed**") != std::string::npos);
    BOOST_CHECK(page2.find("- failed: attention, seed 0:") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_run_folder_in_use_is_skipped_not_moved) {
    // Another process (here: a lock held by this test) trains into one run's
    // folder: the suite leaves it alone, says so, and trains the others.
    TempDir tmp;
    write(tmp.file("s.toml"), kTiny);
    SuiteSpec spec = read_suite(tmp.file("s.toml"));
    SuiteOptions o;
    o.out_dir = tmp.file("runs");
    o.seeds = {0};
    const fs::path busy = fs::path(o.out_dir) / "recall" / "attention" / "seed0";
    fs::create_directories(busy);
    write((busy / "metrics.jsonl").string(), "{}\n");
    std::ostringstream log;
    {
        RunLock other(busy.string());
        BOOST_CHECK_EQUAL(run_suite(spec, o, log), 0);
    }
    BOOST_CHECK_MESSAGE(log.str().find("recall / attention / seed 0 ... skipped: the run folder") != std::string::npos,
                        log.str());
    BOOST_CHECK_MESSAGE(log.str().find("1 runs trained, 0 already done, 0 failed, 1 skipped (in use by another process)") !=
                            std::string::npos,
                        log.str());
    BOOST_CHECK(fs::exists(busy / "metrics.jsonl") && !fs::exists(busy / "result.json"));
    BOOST_CHECK(!fs::exists(busy.string() + ".old"));
    // Once it is free, the next suite moves the unfinished folder aside and trains it.
    std::ostringstream again;
    BOOST_CHECK_EQUAL(run_suite(spec, o, again), 0);
    BOOST_CHECK_MESSAGE(again.str().find("1 runs trained, 1 already done, 0 failed\n") != std::string::npos, again.str());
    BOOST_CHECK(fs::exists(busy / "result.json") && fs::exists(busy.string() + ".old"));
}

BOOST_AUTO_TEST_CASE(quick_and_shards_and_cli) {
    TempDir tmp;
    write(tmp.file("s.toml"), kTiny);
    // Shard 1 of 2 runs every second run (seed-major order): attention of seed 0, then of seed 1.
    namespace t = miras::testing;
    t::CliRun r = t::run_miras({"suite", "--suite", tmp.file("s.toml"), "--quick", "--seeds", "0,1", "--shard", "1/2",
                                "--out", tmp.file("q")});
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err + r.out);
    BOOST_CHECK(fs::exists(tmp.file("q/recall/attention/seed0/result.json")));
    BOOST_CHECK(fs::exists(tmp.file("q/recall/attention/seed1/result.json")));
    BOOST_CHECK(!fs::exists(tmp.file("q/recall/linear-attention/seed0")));
    nlohmann::json j = nlohmann::json::parse(read(tmp.file("q/recall/attention/seed0/result.json")));
    BOOST_CHECK_EQUAL(j["steps"].get<int64_t>(), 4);  // quick
    BOOST_CHECK(read(tmp.file("q/results.md")).find("(quick size)") != std::string::npos);
    // Shards count runs over the whole suite, whatever --presets selects: the
    // attention runs are shard 1's, so shard 0 restricted to attention has none.
    r = t::run_miras({"suite", "--suite", tmp.file("s.toml"), "--quick", "--seeds", "0,1", "--shard", "0/2",
                      "--presets", "attention", "--out", tmp.file("q2")});
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err + r.out);
    BOOST_CHECK(r.out.find("0 runs trained, 0 already done") != std::string::npos);
    BOOST_CHECK(!fs::exists(tmp.file("q2/recall")));
    // --page-only trains nothing.
    r = t::run_miras({"suite", "--suite", tmp.file("s.toml"), "--quick", "--page-only", "--out", tmp.file("q")});
    BOOST_CHECK_EQUAL(r.code, 0);
    BOOST_CHECK(!fs::exists(tmp.file("q/recall/linear-attention")));
    r = t::run_miras({"suite", "--suite", tmp.file("s.toml"), "--shard", "2/2"});
    BOOST_CHECK_EQUAL(r.code, 1);
    BOOST_CHECK(r.err.find("--shard") != std::string::npos);
    r = t::run_miras({"suite", "--suite", tmp.file("s.toml"), "--tasks", "nope"});
    BOOST_CHECK(r.err.find("'nope' is not a task") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(svg_chart) {
    LineChart c{"a <b>", "x", "y", {}};
    c.series.push_back({"one", {{0, 1}, {1, 2}, {2, NAN}}});
    c.series.push_back({"t&o", {{0, 3}, {2, 1}}});
    const std::string svg = svg_line_chart(c);
    BOOST_CHECK_EQUAL(occurrences(svg, "<polyline class=\"series\""), 2u);
    BOOST_CHECK(svg.find("a &lt;b&gt;") != std::string::npos);
    BOOST_CHECK(svg.find("data-name=\"t&amp;o\"") != std::string::npos);
    // The NaN point is skipped: the first polyline has two points.
    const size_t p = svg.find("points=\"") + 8;
    BOOST_CHECK_EQUAL(occurrences(svg.substr(p, svg.find('"', p) - p), ","), 2u);
    LineChart empty{"e", "x", "y", {{"none", {{0, NAN}}}}};
    BOOST_CHECK_THROW(svg_line_chart(empty), std::invalid_argument);
    LineChart logc{"l", "x", "y", {{"s", {{0, 0.0}, {1, 10}, {2, 100}}}}, true};
    BOOST_CHECK_NO_THROW(svg_line_chart(logc));  // y = 0 skipped on a log axis
}

BOOST_AUTO_TEST_CASE(bigram_baseline) {
    // Training text "abab...": after a, b (and after b, a) with probability
    // (n + 1)/(n + 256) under add-one smoothing; held-out text the same.
    TempDir tmp;
    std::string train(1000, 'a'), held(101, 'a');
    for (size_t i = 1; i < train.size(); i += 2) train[i] = 'b';
    for (size_t i = 1; i < held.size(); i += 2) held[i] = 'b';
    write(tmp.file("train.txt"), train);
    write(tmp.file("valid.txt"), held);
    ByteCorpus c(tmp.file("train.txt"), 0.1, tmp.file("valid.txt"));
    // 500 a->b and 499 b->a pairs in training.
    const double ab = std::log2((500.0 + 1) / (500 + 256)), ba = std::log2((499.0 + 1) / (499 + 256));
    const double want = -(50 * ab + 50 * ba) / 100;
    BOOST_CHECK_CLOSE(c.bigram_bits_per_byte(), want, 1e-9);
    BOOST_CHECK_LT(c.bigram_bits_per_byte(), 1.0);
}

BOOST_AUTO_TEST_SUITE_END()
