// train/model_config.h: the experiment schema. Every error names the file and
// the key (unknown key, wrong type, out of range, missing file, inconsistent
// combinations); overrides apply; the effective config round-trips; the
// shipped configs are all valid and default.toml equals the built-in default.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "train/model_config.h"

using namespace miras;
namespace fs = std::filesystem;

namespace {

// Writes `text` to a fresh file named `name`; removed at scope end.
struct TempFile {
    std::string path;
    TempFile(const std::string& name, const std::string& text) {
        path = (fs::temp_directory_path() / ("miras_tc_" + std::to_string(::getpid()) + "_" + name)).string();
        std::ofstream(path) << text;
    }
    ~TempFile() { fs::remove(path); }
};

// The message of the runtime_error thrown by loading `text` as file `name`.
std::string load_error(const std::string& text, const std::vector<std::string>& sets = {}) {
    TempFile f("exp.toml", text);
    try {
        load_run_config(f.path, sets);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "<no error>";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(train_config)

BOOST_AUTO_TEST_CASE(empty_file_is_the_default_experiment) {
    RunConfig rc = run_config_from_string("", "empty.toml");
    BOOST_TEST(rc.model.mixer == "lmm");
    BOOST_TEST(rc.data.task == "mqar");
    BOOST_TEST(rc.model.vocab == rc.data.mqar.vocab_size);  // vocab 0 resolves to the task's
    BOOST_TEST(rc.optim.name == "adamw");
    BOOST_TEST(rc.source == "empty.toml");
    // Every key is in the effective config, defaults included.
    for (const char* key : {"model.d", "data.mqar.num_pairs", "optim.lr", "train.steps", "output.dir"}) {
        const std::string leaf = std::string(key).substr(std::string(key).rfind('.') + 1);
        BOOST_TEST(contains(rc.toml, leaf + " = "), key);
    }
}

BOOST_AUTO_TEST_CASE(unknown_key_names_file_and_key) {
    const std::string msg = load_error("[model]\nd = 32\ndd = 3\n");
    BOOST_TEST(contains(msg, "miras_tc_"), msg);
    BOOST_TEST(contains(msg, "exp.toml"), msg);
    BOOST_TEST(contains(msg, "unknown key"), msg);
    BOOST_TEST(contains(msg, "'model.dd'"), msg);
    BOOST_TEST(contains(msg, "line 3"), msg);
}

BOOST_AUTO_TEST_CASE(wrong_type_names_key_and_expectation) {
    const std::string msg = load_error("[model]\nd = \"big\"\n");
    BOOST_TEST(contains(msg, "exp.toml"), msg);
    BOOST_TEST(contains(msg, "'model.d'"), msg);
    BOOST_TEST(contains(msg, "must be an integer"), msg);
    BOOST_TEST(contains(msg, "got string \"big\""), msg);
    const std::string b = load_error("[model]\ntie_embeddings = 1\n");
    BOOST_TEST((contains(b, "'model.tie_embeddings'") && contains(b, "boolean")), b);
    const std::string s = load_error("[model]\nmixer = \"rnn\"\n");
    BOOST_TEST((contains(s, "'model.mixer'") && contains(s, "\"attn\"")), s);
}

BOOST_AUTO_TEST_CASE(out_of_range_names_key_and_range) {
    const std::string msg = load_error("[optim]\nlr = 100.0\n");
    BOOST_TEST(contains(msg, "exp.toml"), msg);
    BOOST_TEST(contains(msg, "'optim.lr'"), msg);
    BOOST_TEST(contains(msg, "[0, 10]"), msg);
    BOOST_TEST(contains(load_error("[train]\nbatch = 0\n"), "'train.batch'"));
    BOOST_TEST(contains(load_error("[data.passkey]\n", {"data.task=passkey", "data.passkey.depth=1.5"}),
                        "'data.passkey.depth'"));
}

BOOST_AUTO_TEST_CASE(missing_file_is_reported) {
    const std::string path = (fs::temp_directory_path() / "miras_tc_does_not_exist.toml").string();
    try {
        load_run_config(path);
        BOOST_FAIL("no error");
    } catch (const std::runtime_error& e) {
        BOOST_TEST(contains(e.what(), path), e.what());
        BOOST_TEST(contains(e.what(), "not found"), e.what());
    }
}

BOOST_AUTO_TEST_CASE(inconsistent_combinations_name_the_keys) {
    const std::string heads = load_error("[model]\nd = 30\nheads = 4\n");
    BOOST_TEST((contains(heads, "exp.toml") && contains(heads, "model.heads") && contains(heads, "model.d")), heads);
    // An odd head width passed validation and failed when the model was
    // built, with a RoPE message naming no key.
    for (const char* mixer : {"attn", "mag", "mal", "mac"}) {
        const std::string odd = load_error(std::string("[model]\nmixer = \"") + mixer + "\"\nd = 64\nheads = 64\n");
        BOOST_TEST(contains(odd, "exp.toml: key 'model.heads' = 64 gives heads of width model.d / model.heads = 1, but "
                                 "the attention of model.mixer = \"" + std::string(mixer) + "\" (RoPE) needs an even head width"),
                   odd);
    }
    BOOST_TEST(contains(load_error("[model]\nmixer = \"attn\"\nd = 30\nheads = 10\n"), "width model.d / model.heads = 3"));
    // The table of a task that is not selected is still validated.
    const std::string table = load_error("[data]\ntask = \"mqar\"\n[data.passkey]\ndepth = 2.0\n");
    BOOST_TEST(contains(table, "'data.passkey.depth'"), table);
    // MQAR pairs that do not fit the sequence.
    const std::string mqar = load_error("[data]\nseq_len = 10\n[data.mqar]\nnum_pairs = 8\n");
    BOOST_TEST((contains(mqar, "exp.toml") && contains(mqar, "seq_len")), mqar);
    // The model vocabulary must hold the task's tokens.
    const std::string vocab = load_error("[model]\nvocab = 10\n");
    BOOST_TEST(contains(vocab, "'model.vocab'"), vocab);
    BOOST_TEST(contains(load_error("[optim]\nmin_lr_ratio = 2\n"), "'optim.min_lr_ratio'"));
    // [memory] is validated for every mixer; its cross-key rules (MemoryConfig::validate) for lmm.
    BOOST_TEST(contains(load_error("[model]\nmixer = \"attn\"\n[memory]\nchunk = 0\n"), "'memory.chunk'"));
    // The attention-only keys make no sense for the memory mixer.
    BOOST_TEST(contains(load_error("[model]\nmixer = \"lmm\"\nwindow = 8\n"), "model.window"));
    BOOST_TEST(contains(load_error("[model]\nmixer = \"lmm\"\nattn_conv = 4\n"), "model.attn_conv"));
    const std::string one_tap = load_error("[model]\nmixer = \"attn\"\nattn_conv = 1\n");
    BOOST_TEST(contains(one_tap, "exp.toml: key 'model.attn_conv' = 1: give 0 (no convolution) or 2"), one_tap);
    BOOST_TEST(contains(load_error("[model]\nmixer = \"attn\"\nattn_conv = 65\n"), "'model.attn_conv'"));
    BOOST_TEST(contains(load_error("[model]\nmixer = \"mac\"\nmac_write = \"y\"\n"), "'model.mac_write'"));
    // Values in range that the dtype cannot carry through the memory's updates.
    const std::string q16 = load_error("[memory]\nretention = \"lq\"\nq = 16.0\n");
    BOOST_TEST(contains(q16, "exp.toml: key 'memory.q' = 16 is above 12, the most that model.dtype = \"f32\""), q16);
    BOOST_TEST(run_config_from_string("[model]\ndtype = \"f64\"\n[memory]\nq = 16.0\n", "x.toml").model.memory.q == 16.0);
    BOOST_TEST(contains(load_error("[model]\ndtype = \"f64\"\n[memory]\nq = 33.0\n"), "'memory.q' = 33 is above 32"));
    BOOST_TEST(contains(load_error("[memory]\nhuber_delta = 1e300\n"), "'memory.huber_delta' = 1e+300 is above 1e+18"));
    BOOST_TEST(contains(load_error("[memory]\nkl_c = 1e20\n"), "'memory.kl_c' = 1e+20 is above 1e+18"));
    BOOST_TEST(contains(load_error("[memory]\ngamma = 1e38\n"), "'memory.gamma' = 1e+38 is above 1e+37"));
    BOOST_TEST(run_config_from_string("[model]\ndtype = \"f64\"\n[memory]\nhuber_delta = 1e100\nkl_c = 1e100\n",
                                      "x.toml").model.memory.kl_c == 1e100);
    // A byte corpus needs a path.
    BOOST_TEST(contains(load_error("[data]\ntask = \"bytes\"\n"), "'data.bytes.path'"));
    // Per-row passkey depths: the range must not be empty.
    const std::string range = load_error("[data]\ntask = \"passkey\"\n[data.passkey]\ndepth = 0.5\ndepth_max = 0.2\n");
    BOOST_TEST((contains(range, "exp.toml") && contains(range, "depth_max")), range);
    BOOST_TEST(contains(load_error("[data.passkey]\ndepth_max = 1.5\n"), "'data.passkey.depth_max'"));
}

BOOST_AUTO_TEST_CASE(overrides_apply_and_are_validated) {
    RunConfig rc = run_config_from_string("[optim]\nlr = 0.01\n", "x.toml", {"optim.lr=3e-4", "model.mixer=attn"});
    BOOST_TEST(rc.optim.lr == 3e-4);
    const std::string msg = load_error("", {"optim.lrr=1"});
    BOOST_TEST((contains(msg, "'optim.lrr'") && contains(msg, "optim.lrr=1")), msg);
}

BOOST_AUTO_TEST_CASE(effective_config_round_trips) {
    RunConfig a = run_config_from_string("[model]\nd = 32\nheads = 2\n[data]\ntask = \"passkey\"\nseq_len = 40\n",
                                         "x.toml", {"optim.name=sgd"});
    RunConfig b = run_config_from_string(a.toml, "dump.toml");
    BOOST_TEST(a.toml == b.toml);
    BOOST_TEST(b.model.d == 32);
    BOOST_TEST(b.data.passkey.seq_len == 40);
    BOOST_TEST(b.optim.name == "sgd");
    // depth_max is dumped only when set, and survives the round trip
    BOOST_TEST(!contains(a.toml, "depth_max"));
    RunConfig c = run_config_from_string("[data]\ntask = \"passkey\"\n[data.passkey]\ndepth = 0.1\ndepth_max = 0.9\n", "p.toml");
    RunConfig d = run_config_from_string(c.toml, "dump.toml");
    BOOST_TEST(d.data.passkey.depth_max == 0.9);
    BOOST_TEST(d.data.passkey.depth == 0.1);
}

BOOST_AUTO_TEST_CASE(shipped_configs_are_valid) {
    if (!fs::is_directory("train/configs")) {
        BOOST_TEST_MESSAGE("train/configs not found from " << fs::current_path() << "; skipped");
        return;
    }
    int n = 0;
    for (const auto& e : fs::directory_iterator("train/configs")) {
        // suite.toml is not a run config: test_suite.cpp reads it (every run it names).
        if (e.path().extension() != ".toml" || e.path().filename() == "suite.toml") continue;
        RunConfig rc = load_run_config(e.path().string());
        build_model(rc.model);  // the model of every shipped config can be built
        ++n;
    }
    BOOST_TEST(n >= 1);
    // default.toml spells out the built-in default, and one file can switch
    // mixer, task and optimizer from the command line.
    BOOST_TEST(load_run_config("train/configs/default.toml").toml == default_run_config().toml);
    RunConfig sw = load_run_config("train/configs/default.toml",
                                   {"model.mixer=attn", "data.task=passkey", "optim.name=sgd", "optim.lr=3e-4"});
    BOOST_TEST(sw.model.mixer == "attn");
    BOOST_TEST(sw.model.vocab == sw.data.passkey.vocab_size);
    BOOST_TEST(sw.optim.lr == 3e-4);
}

BOOST_AUTO_TEST_CASE(train_threads_key) {
    // Default 1, whatever OPENBLAS_NUM_THREADS says (train() applies it).
    RunConfig def = run_config_from_string("", "empty.toml");
    BOOST_TEST(def.train.threads == 1);
    BOOST_TEST(contains(def.toml, "threads = 1\n"), def.toml);
    // From the file and from an override (the override wins), and through the
    // effective config of a run.
    RunConfig a = run_config_from_string("[train]\nthreads = 2\n", "x.toml");
    BOOST_TEST(a.train.threads == 2);
    RunConfig b = run_config_from_string(a.toml, "dump.toml");
    BOOST_TEST(b.train.threads == 2);
    BOOST_TEST(a.toml == b.toml);
    BOOST_TEST(run_config_from_string("[train]\nthreads = 2\n", "x.toml", {"train.threads=3"}).train.threads == 3);
    // 0, negative, a float and a string: each names the file, the key and the range.
    for (const char* bad : {"0", "-1", "1.5", "\"two\""}) {
        const std::string msg = load_error(std::string("[train]\nthreads = ") + bad + "\n");
        BOOST_TEST(contains(msg, "exp.toml"), msg);
        BOOST_TEST(contains(msg, "'train.threads'"), msg);
        BOOST_TEST(contains(msg, "must be an integer in [1, "), msg);
        BOOST_TEST(contains(msg, "line 2"), msg);
    }
    const std::string over = load_error("", {"train.threads=0"});
    BOOST_TEST((contains(over, "'train.threads'") && contains(over, "override 'train.threads=0'")), over);
    BOOST_TEST(contains(load_error("", {"train.threads=many"}), "got string \"many\""));
}

BOOST_AUTO_TEST_CASE(memory_table_maps_to_the_memory_config) {
    RunConfig rc = run_config_from_string(
        "[model]\nmixer = \"lmm\"\nd = 16\nheads = 2\n[memory]\nmemory = \"mlp\"\nchunk = 4\n"
        "algorithm = \"momentum\"\n[memory.fixed_gates]\nalpha = 0.0\n",
        "lmm.toml");
    BOOST_TEST(rc.model.memory.memory == "mlp");
    BOOST_TEST(rc.model.memory.chunk == 4);
    BOOST_TEST(rc.model.memory.momentum());
    BOOST_TEST(rc.model.memory.fixed_gates.at("alpha") == 0.0);
    BOOST_TEST(rc.model.memory.d == 16);
    const std::string bad = load_error("[model]\nmixer = \"lmm\"\n[memory]\nbias = \"cosine\"\n");
    BOOST_TEST(contains(bad, "'memory.bias'"), bad);
    // gate_init: read when set, dumped, and range-checked with the key named.
    RunConfig gi = run_config_from_string("[memory]\nalgorithm = \"momentum\"\n[memory.gate_init]\nalpha = 0.002\neta = 0.5\n", "gi.toml");
    BOOST_TEST(gi.model.memory.gate_init.at("alpha") == 0.002);
    BOOST_TEST(gi.model.memory.gate_init.at("eta") == 0.5);
    BOOST_TEST(gi.model.memory.gate_init.count("theta") == 0u);
    BOOST_TEST(run_config_from_string(gi.toml, "dump").model.memory.gate_init == gi.model.memory.gate_init);
    const std::string range = load_error("[memory.gate_init]\nalpha = 1.5\n");
    BOOST_TEST(contains(range, "'memory.gate_init.alpha'"), range);
    const std::string unused = load_error("[memory.gate_init]\neta = 0.5\n");  // gd: no η
    BOOST_TEST(contains(unused, "gate_init.eta"), unused);
}

BOOST_AUTO_TEST_SUITE_END()
