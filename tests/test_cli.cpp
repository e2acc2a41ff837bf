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
#include "train/safetensors.h"

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
    for (const char* cmd : {"train", "eval", "generate", "info", "compare"}) BOOST_TEST(contains(top.out, cmd), cmd);

    const std::vector<std::pair<std::string, std::vector<std::string>>> expected = {
        {"train", {"--set", "--out", "--resume", "--force", "--allow-data-change", "config", "--seeds", "--sweep"}},
        {"eval", {"checkpoint", "--set", "--batches", "--allow-data-change"}},
        {"generate", {"--temperature", "--top-k", "--prompt", "--length", "--seed", "--windowed"}},
        {"info", {"config", "--set", "--params-target"}},
        {"compare", {"runs", "--out", "--no-group"}},
    };
    for (const auto& [cmd, options] : expected) {
        Run r = run_miras({cmd, "--help"});
        BOOST_TEST(r.code == 0, cmd);
        for (const std::string& o : options) BOOST_TEST(contains(r.out, o), cmd << " --help lacks " << o);
    }
}

// Exit status 2 for every usage error (train/cli.h), not CLI11's own codes.
BOOST_AUTO_TEST_CASE(usage_errors) {
    Run none = run_miras({});
    BOOST_TEST(none.code == 2);
    Run unknown = run_miras({"fly"});
    BOOST_TEST(unknown.code == 2);
    BOOST_TEST(contains(unknown.err, "fly"), unknown.err);
    Run missing = run_miras({"eval"});
    BOOST_TEST(missing.code == 2);
    BOOST_TEST(contains(missing.err, "checkpoint"), missing.err);
    Run flag = run_miras({"train", "--bogus"});
    BOOST_TEST(flag.code == 2);
    BOOST_TEST(contains(flag.err, "--bogus"), flag.err);
    Run extra = run_miras({"info", "--set"});
    BOOST_TEST(extra.code == 2);
}

// Option values are read in base 10 and checked whole: no octal, no silent
// saturation or wrap-around, no NaN; the message names the option and the range.
BOOST_AUTO_TEST_CASE(option_values_are_checked) {
    TempDir tmp;  // nothing should be written, but a regression must not write into the working folder
    const std::string o = tmp.file("o.st");
    auto usage_error = [](const std::vector<std::string>& args, const std::string& part) {
        Run r = run_miras(args);
        BOOST_TEST(r.code == 2, args[1]);
        BOOST_TEST(contains(r.err, part), r.err);
        BOOST_TEST(!contains(r.err, "1797693"), r.err);  // DBL_MAX as a bound
    };
    usage_error({"eval", "x", "--batches", "0"}, "--batches: must be an integer in [1, 1048576], got '0'");
    usage_error({"eval", "x", "--batches", "two"}, "got 'two'");
    usage_error({"eval", "x", "--batches", "1.5"}, "got '1.5'");
    usage_error({"generate", "x", "--length", "99999999999999999999"}, "--length: must be an integer");
    usage_error({"generate", "x", "--top-k", "-3"}, "--top-k: must be an integer");
    usage_error({"generate", "x", "--seed", "-1"}, "--seed: must be an integer in [0, 18446744073709551615]");
    usage_error({"generate", "x", "--temperature", "nan"}, "--temperature: must be a finite number >= 0, got 'nan'");
    usage_error({"generate", "x", "--temperature", "-0.5"}, "--temperature");
    usage_error({"forward", "--batch", "0", "--out", o}, "--batch: must be an integer in [1, 1048576]");
    usage_error({"forward", "--seq", "99999999999", "--out", o}, "--seq");
    usage_error({"train", "--set", "output.dir=" + tmp.file("run"), "--set", "train.steps=0", "--out", ""},
                "--out: must not be empty");
    usage_error({"forward", "--out", ""}, "--out: must not be empty");
    // --seed, --batch, --seq draw the input: with --input they would change nothing.
    usage_error({"forward", "--input", "x.st", "--seed", "3", "--out", o}, "excludes");
    usage_error({"grad", "--input", "x.st", "--batch", "3", "--out", o}, "excludes");
    Run seq = run_miras({"forward", "--seq", "5", "--out", o});  // a model's rows are data.seq_len
    BOOST_TEST(seq.code == 1);
    BOOST_TEST((contains(seq.err, "--seq") && contains(seq.err, "data.seq_len")), seq.err);
}

BOOST_AUTO_TEST_CASE(bad_set_key_fails_with_a_message) {
    Run r = run_miras({"info", "--set", "optim.lrr=3e-4"});
    BOOST_TEST(r.code == 1);
    BOOST_TEST(contains(r.err, "error:"), r.err);
    BOOST_TEST(contains(r.err, "'optim.lrr'"), r.err);
    // The nearest valid key is suggested: train.warmup is optim.warmup.
    Run w = run_miras({"info", "--set", "train.warmup=2"});
    BOOST_TEST(w.code == 1);
    BOOST_TEST(contains(w.err, "'train.warmup' (from override 'train.warmup=2'; did you mean 'optim.warmup'?)"), w.err);
    Run t = run_miras({"info", "--set", "model.d=-4"});
    BOOST_TEST(t.code == 1);
    BOOST_TEST(contains(t.err, "'model.d'"), t.err);
    Run th = run_miras({"train", "--set", "train.threads=0"});
    BOOST_TEST(th.code == 1);
    BOOST_TEST((contains(th.err, "'train.threads'") && contains(th.err, "train.threads=0")), th.err);
    // The same key twice took the last value silently; every command that
    // takes --set refuses it (train, info, forward here; eval in the round trip).
    for (const char* cmd : {"train", "info", "forward"}) {
        Run twice = run_miras({cmd, "--set", "optim.lr=1e-3", "--set", "optim.lr=3e-3"});
        BOOST_TEST(twice.code == 1, cmd);
        BOOST_TEST(contains(twice.err, "error: --set 'optim.lr=3e-3': 'optim.lr' is already set by --set 'optim.lr=1e-3'"),
                   twice.err);
    }
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

// eval of a byte model on a corpus that changed since training is refused
// unless asked.
BOOST_AUTO_TEST_CASE(eval_refuses_a_changed_corpus_unless_asked) {
    TempDir tmp;
    const std::string corpus = tmp.file("corpus.txt"), run_dir = tmp.file("run");
    {
        std::ofstream f(corpus);
        for (int i = 0; i < 40; ++i) f << "the quick brown fox jumps over the lazy dog. ";
    }
    const std::vector<std::string> sets = {"--set", "model.mixer=attn", "--set", "data.task=bytes", "--set",
                                           "data.bytes.path=\"" + corpus + "\"", "--set", "data.seq_len=16",
                                           "--set", "model.d=16", "--set", "model.heads=2", "--set", "model.layers=1",
                                           "--set", "train.batch=4", "--set", "train.steps=2", "--set",
                                           "train.eval_batches=1"};
    Run t = run_miras(concat({"train", "--out", run_dir}, sets));
    BOOST_REQUIRE(t.code == 0);
    BOOST_TEST(run_miras({"eval", run_dir}).code == 0);
    std::ofstream(corpus, std::ios::app) << "one more sentence.";
    Run e = run_miras({"eval", run_dir});
    BOOST_TEST(e.code == 1);
    BOOST_TEST(contains(e.err, "the data differs from the data this checkpoint was trained on"), e.err);
    Run allowed = run_miras({"eval", run_dir, "--allow-data-change"});
    BOOST_TEST(allowed.code == 0, allowed.err);
    BOOST_TEST(contains(allowed.out, "bits/byte"), allowed.out);
    Run resumed = run_miras({"train", "--resume", run_dir, "--set", "train.steps=3"});
    BOOST_TEST(resumed.code == 1);
    BOOST_TEST(contains(resumed.err, "--allow-data-change"), resumed.err);
    resumed = run_miras({"train", "--resume", run_dir, "--set", "train.steps=3", "--allow-data-change"});
    BOOST_TEST(resumed.code == 0, resumed.err);
}

BOOST_AUTO_TEST_CASE(train_eval_and_generate) {
    TempDir tmp;
    const std::string run_dir = tmp.file("run");
    Run t = run_miras(concat({"train", "--out", run_dir}, tiny_sets()));
    BOOST_TEST(t.code == 0, t.err);
    BOOST_TEST(contains(t.out, "final: recall accuracy"), t.out);
    BOOST_TEST(contains(t.out, ", 1 BLAS thread;"), t.out);  // train.threads defaults to 1
    BOOST_TEST(contains(t.out, "model: attn, d 16, 1 layer, 2 heads"), t.out);
    BOOST_TEST(contains(t.out, run_dir + "/checkpoint.safetensors"), t.out);
    BOOST_TEST(contains(t.out, run_dir + "/metrics.jsonl"), t.out);
    BOOST_TEST(fs::exists(run_dir + "/checkpoint.safetensors"));
    // A fresh run into it is refused; --force moves the finished run aside.
    Run again = run_miras(concat({"train", "--out", run_dir}, tiny_sets()));
    BOOST_TEST(again.code == 1);
    BOOST_TEST(contains(again.err, "error: the run folder '" + run_dir + "' holds another run"), again.err);
    const std::string aside = tmp.file("aside");
    Run forced = run_miras(concat({"train", "--out", aside}, tiny_sets()));
    BOOST_TEST(forced.code == 0, forced.err);
    forced = run_miras(concat({"train", "--force", "--out", aside}, tiny_sets()));
    BOOST_TEST(forced.code == 0, forced.err);
    BOOST_TEST(contains(forced.out, "was moved to " + aside + ".old-1"), forced.out);
    BOOST_TEST(fs::exists(aside + ".old-1/checkpoint.safetensors"));

    // eval takes the file or the folder, and overrides of the stored config.
    Run e = run_miras({"eval", run_dir, "--batches", "2"});
    BOOST_TEST(e.code == 0, e.err);
    BOOST_TEST((contains(e.out, "recall accuracy") && contains(e.out, "over 48 answers")), e.out);
    Run e10 = run_miras({"eval", run_dir, "--batches", "010"});  // ten, not octal eight
    BOOST_TEST(e10.code == 0, e10.err);
    BOOST_TEST(contains(e10.out, "over 240 answers"), e10.out);
    Run bad = run_miras({"eval", run_dir, "--set", "model.d=32"});
    BOOST_TEST(bad.code == 1);
    BOOST_TEST(contains(bad.err, "embed.weight"), bad.err);
    Run twice = run_miras({"eval", run_dir, "--set", "data.seed=1", "--set", "data.seed=2"});
    BOOST_TEST(twice.code == 1);
    BOOST_TEST(contains(twice.err, "'data.seed' is already set by --set 'data.seed=1'"), twice.err);

    // A finished run resumed with more steps continues from its checkpoint.
    Run more = run_miras({"train", "--resume", run_dir, "--set", "train.steps=8"});
    BOOST_TEST(more.code == 0, more.err);
    BOOST_TEST((contains(more.out, "resuming from") && contains(more.out, "at step 6")), more.out);
    // A checkpoint past train.steps is refused, not "trained" to step 8/4.
    Run past = run_miras({"train", "--resume", run_dir, "--set", "train.steps=4"});
    BOOST_TEST(past.code == 1);
    BOOST_TEST(contains(past.err, "is at step 8, past train.steps = 4"), past.err);
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

    // A run folder that cannot be made says why.
    Run file_out = run_miras(concat({"train", "--out", junk}, tiny_sets()));
    BOOST_TEST(file_out.code == 1);
    BOOST_TEST((contains(file_out.err, "cannot create the run folder '" + junk + "': ") &&
                contains(file_out.err, "ot a directory")),
               file_out.err);

    // A checkpoint gives forward / grad a trained model's parameters (checksum checked).
    const std::string out_file = tmp.file("grad.safetensors");
    Run gr = run_miras(concat({"grad", "--params", run_dir + "/checkpoint.safetensors", "--batch", "2", "--out", out_file},
                              tiny_sets()));
    BOOST_TEST(gr.code == 0, gr.err);
    BOOST_TEST(contains(gr.out, "gradients"), gr.out);
    Run gl = run_miras(concat({"grad", "--layer", "--params", run_dir + "/checkpoint.safetensors", "--out", out_file},
                              tiny_sets()));
    BOOST_TEST(gl.code == 1);
    BOOST_TEST(contains(gl.err, "--layer needs the layer's own parameters"), gl.err);
}

// forward / grad: a wrong input or parameter file is named, with what is wrong in it.
BOOST_AUTO_TEST_CASE(probe_errors_name_the_file) {
    TempDir tmp;
    const std::vector<std::string> layer = {"--layer", "--set", "model.d=8", "--set", "model.heads=2"};
    const std::string out = tmp.file("out.safetensors");
    auto probe = [&](std::vector<std::string> args) {
        args.insert(args.end(), {"--out", out});
        return run_miras(args);
    };
    auto zeros = [](const std::string& name, const std::string& dtype, std::vector<int64_t> shape) {
        size_t n = dtype == "I64" ? 8 : 4;
        for (int64_t s : shape) n *= (size_t)s;
        return StEntry{name, dtype, shape, std::vector<uint8_t>(n, 0)};
    };
    auto ints = [&](const std::string& name, std::vector<int64_t> shape) { return zeros(name, "I64", shape); };
    auto f32 = [&](const std::string& name, std::vector<int64_t> shape) { return zeros(name, "F32", shape); };

    const std::string x32 = tmp.file("x32.st"), xint = tmp.file("xint.st"), tfloat = tmp.file("tfloat.st"),
                      tbig = tmp.file("tbig.st"), pint = tmp.file("pint.st");
    write_safetensors(x32, StFile{{f32("x", {1, 3, 8})}, {}});
    write_safetensors(xint, StFile{{ints("x", {1, 3, 8})}, {}});
    write_safetensors(tfloat, StFile{{f32("tokens", {1, 4})}, {}});
    StEntry big = ints("tokens", {1, 2});
    big.bytes[8] = 200;  // token 200 of a vocabulary of 64
    write_safetensors(tbig, StFile{{big}, {}});
    write_safetensors(pint, StFile{{ints("out_norm_w", {8})}, {}});

    Run r = probe(concat({"forward", "--input", x32}, layer));
    BOOST_TEST(r.code == 1);
    BOOST_TEST((contains(r.err, x32 + ": ") && contains(r.err, "x is f32")), r.err);
    r = probe(concat({"forward", "--input", xint}, layer));
    BOOST_TEST(contains(r.err, xint + ": tensor \"x\" holds integers"), r.err);  // not "needs a tensor x"
    r = probe({"forward", "--input", tfloat});
    BOOST_TEST(contains(r.err, tfloat + ": tensor \"tokens\" holds f32 values"), r.err);
    r = probe({"forward", "--input", tbig});
    BOOST_TEST((contains(r.err, tbig + ": ") && contains(r.err, "index 200")), r.err);
    r = probe(concat({"forward", "--params", pint}, layer));
    BOOST_TEST(contains(r.err, pint + ": tensor 'out_norm_w' (8,) holds integers"), r.err);  // not "missing"
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
    // Within data.seq_len (16) the windowed recompute sees what the stream
    // sees and draws the same bytes; past it, only the stream still sees the
    // start (full attention here), so the same random draws part.
    auto sample = [&](const std::string& length, bool windowed) {
        std::vector<std::string> args = {"generate", run_dir, "--prompt", "abc", "--length", length,
                                         "--temperature", "1", "--seed", "3"};
        if (windowed) args.push_back("--windowed");
        return run_miras(args);
    };
    Run s10 = sample("10", false), w10 = sample("10", true);
    BOOST_TEST(w10.code == 0, w10.err);
    BOOST_TEST(s10.out == w10.out);
    const std::string s60 = sample("60", false).out, w60 = sample("60", true).out;
    BOOST_TEST(s60.substr(0, 16) == w60.substr(0, 16));  // the first 13 new bytes still agree
    BOOST_TEST(s60 != w60);
}

BOOST_AUTO_TEST_SUITE_END()
