// train/cli.h, run in-process: --help of the program and of every command,
// usage errors, a bad --set key, and a tiny train -> eval -> info -> generate
// round through the same code as build/miras.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/cli_run.h"
#include "tests/temp_dir.h"
#include "train/cli.h"

using namespace miras;
namespace fs = std::filesystem;

namespace {

using Run = miras::testing::CliRun;
using miras::testing::run_miras;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

struct TempDir : miras::testing::TempDir {
    TempDir() : miras::testing::TempDir("cli") {}
};

// A model and task small enough to train in a fraction of a second.
std::vector<std::string> tiny_sets() {
    return {"--set", "model.mixer=attn",    "--set", "model.d=16",          "--set", "model.heads=2",       "--set", "model.layers=1",
            "--set", "data.seq_len=12",     "--set", "data.mqar.vocab=13",  "--set", "data.mqar.num_pairs=3",
            "--set", "train.batch=8",       "--set", "train.steps=6",       "--set", "train.eval_batches=1",
            "--set", "train.eval_every=3"};
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli)

BOOST_AUTO_TEST_CASE(help_of_program_and_every_command) {
    Run top = run_miras({"--help"});
    BOOST_TEST(top.code == 0);
    for (const char* cmd : {"train", "eval", "generate", "info"}) BOOST_TEST(contains(top.out, cmd), cmd);

    const std::vector<std::pair<std::string, std::vector<std::string>>> expected = {
        {"train", {"--set", "--out", "--resume", "config"}},
        {"eval", {"checkpoint", "--set", "--batches"}},
        {"generate", {"--temperature", "--top-k", "--prompt", "--length", "--seed"}},
        {"info", {"config", "--set"}},
    };
    for (const auto& [cmd, options] : expected) {
        Run r = run_miras({cmd, "--help"});
        BOOST_TEST(r.code == 0, cmd);
        for (const std::string& o : options) BOOST_TEST(contains(r.out, o), cmd << " --help lacks " << o);
    }
}

BOOST_AUTO_TEST_CASE(usage_errors) {
    Run none = run_miras({});
    BOOST_TEST(none.code != 0);
    Run unknown = run_miras({"fly"});
    BOOST_TEST(unknown.code != 0);
    BOOST_TEST(contains(unknown.err, "fly"), unknown.err);
    Run missing = run_miras({"eval"});
    BOOST_TEST(missing.code != 0);
    BOOST_TEST(contains(missing.err, "checkpoint"), missing.err);
}

BOOST_AUTO_TEST_CASE(bad_set_key_fails_with_a_message) {
    Run r = run_miras({"info", "--set", "optim.lrr=3e-4"});
    BOOST_TEST(r.code == 1);
    BOOST_TEST(contains(r.err, "error:"), r.err);
    BOOST_TEST(contains(r.err, "'optim.lrr'"), r.err);
    Run t = run_miras({"info", "--set", "model.d=-4"});
    BOOST_TEST(t.code == 1);
    BOOST_TEST(contains(t.err, "'model.d'"), t.err);
    Run th = run_miras({"train", "--set", "train.threads=0"});
    BOOST_TEST(th.code == 1);
    BOOST_TEST((contains(th.err, "'train.threads'") && contains(th.err, "train.threads=0")), th.err);
    Run m = run_miras({"train", (fs::temp_directory_path() / "miras_cli_missing.toml").string()});
    BOOST_TEST(m.code == 1);
    BOOST_TEST((contains(m.err, "miras_cli_missing.toml") && contains(m.err, "not found")), m.err);
}

BOOST_AUTO_TEST_CASE(info_counts_parameters_and_flops) {
    Run r = run_miras(concat({"info"}, tiny_sets()));
    BOOST_TEST(r.code == 0, r.err);
    for (const char* part : {"embed", "blocks.0", "norm", "total", "FLOPs per token", "forward"})
        BOOST_TEST(contains(r.out, part), part);
}

BOOST_AUTO_TEST_CASE(train_eval_and_generate) {
    TempDir tmp;
    const std::string run_dir = tmp.file("run");
    Run t = run_miras(concat({"train", "--out", run_dir}, tiny_sets()));
    BOOST_TEST(t.code == 0, t.err);
    BOOST_TEST(contains(t.out, "final: recall accuracy"), t.out);
    BOOST_TEST(contains(t.out, ", 1 BLAS thread;"), t.out);  // train.threads defaults to 1
    BOOST_TEST(contains(t.out, run_dir + "/checkpoint.safetensors"), t.out);
    BOOST_TEST(contains(t.out, run_dir + "/metrics.jsonl"), t.out);
    BOOST_TEST(fs::exists(run_dir + "/checkpoint.safetensors"));

    // eval takes the file or the folder, and overrides of the stored config.
    Run e = run_miras({"eval", run_dir, "--batches", "2"});
    BOOST_TEST(e.code == 0, e.err);
    BOOST_TEST((contains(e.out, "recall accuracy") && contains(e.out, "over 48 answers")), e.out);
    Run bad = run_miras({"eval", run_dir, "--set", "model.d=32"});
    BOOST_TEST(bad.code == 1);
    BOOST_TEST(contains(bad.err, "embed.weight"), bad.err);

    // A finished run resumed with more steps continues from its checkpoint.
    Run more = run_miras({"train", "--resume", run_dir, "--set", "train.steps=8"});
    BOOST_TEST(more.code == 0, more.err);
    BOOST_TEST((contains(more.out, "resuming from") && contains(more.out, "at step 6")), more.out);
    Run both = run_miras({"train", "some.toml", "--resume", run_dir});
    BOOST_TEST(both.code == 1);
    BOOST_TEST(contains(both.err, "--resume"), both.err);

    // generate needs a byte-level model.
    Run g = run_miras({"generate", run_dir});
    BOOST_TEST(g.code == 1);
    BOOST_TEST(contains(g.err, "byte-level"), g.err);

    // A corrupt checkpoint is an error message, not a crash.
    const std::string junk = tmp.file("junk.safetensors");
    std::ofstream(junk) << "not a checkpoint at all";
    Run j = run_miras({"eval", junk});
    BOOST_TEST(j.code == 1);
    BOOST_TEST(contains(j.err, junk), j.err);
}

BOOST_AUTO_TEST_CASE(generate_is_deterministic_in_its_seed) {
    TempDir tmp;
    const std::string corpus = tmp.file("text.txt");
    {
        std::ofstream f(corpus);
        for (int i = 0; i < 40; ++i) f << "abcabcabd ";
    }
    const std::string run_dir = tmp.file("lm");
    Run t = run_miras({"train", "--out", run_dir, "--set", "data.task=bytes", "--set", "model.mixer=attn", "--set", "data.bytes.path=" + corpus, "--set",
                 "data.seq_len=16", "--set", "model.d=16", "--set", "model.heads=2", "--set", "model.layers=1", "--set",
                 "train.batch=4", "--set", "train.steps=4", "--set", "train.eval_batches=1"});
    BOOST_TEST(t.code == 0, t.err);
    BOOST_TEST(contains(t.out, "bits/byte"), t.out);
    auto gen = [&](const std::string& seed) {
        return run_miras({"generate", run_dir, "--prompt", "abc", "--length", "24", "--seed", seed, "--top-k", "5"});
    };
    Run a = gen("1"), b = gen("1"), c = gen("2");
    BOOST_TEST(a.code == 0, a.err);
    BOOST_TEST(a.out == b.out);
    BOOST_TEST(a.out != c.out);
    BOOST_TEST(a.out.rfind("abc", 0) == 0u);         // the prompt, then
    BOOST_TEST(a.out.size() == 3u + 24u + 1u);        // 24 new bytes and a newline
}

BOOST_AUTO_TEST_SUITE_END()
