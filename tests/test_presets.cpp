// The named presets of train/configs/presets (docs/math.md §3 table, and the Titans
// hybrids of docs/math.md §2) and the `miras forward` / `miras grad` checking
// interface (train/probe.h).
#include <boost/test/unit_test.hpp>

#include "op_test_util.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/cli_run.h"
#include "tests/temp_dir.h"
#include "autograd/engine.h"
#include "autograd/ops.h"
#include "nn/loss.h"
#include "tensor/ops.h"
#include "train/cli.h"
#include "train/model_config.h"
#include "train/probe.h"
#include "train/safetensors.h"
#include "train/trainer.h"

using namespace miras;
namespace fs = std::filesystem;

using miras::test::max_abs_diff;

namespace {

// One row of docs/math.md §3.
struct Row {
    const char* name;
    const char* memory;
    const char* bias;
    const char* retention;
    const char* algorithm;
    int64_t chunk;        // -1: not fixed by the table
    double theta;         // fixed θ, or NaN when learned
    bool A0_zero;
};

const double kLearned = std::nan("");

const std::vector<Row>& spec_rows() {
    static const std::vector<Row> rows = {
        {"titans-lmm", "mlp", "l2", "l2", "momentum", -1, kLearned, false},
        {"moneta", "mlp", "lp", "lq", "gd", -1, kLearned, false},
        {"yaad", "mlp", "huber_mix", "l2", "gd", -1, kLearned, false},
        {"memora", "mlp", "l2", "kl", "gd", -1, kLearned, false},
        {"linear-attention", "linear", "dot", "none", "gd", -1, 1.0, true},
        {"retnet", "linear", "dot", "l2", "gd", -1, 1.0, false},
        {"deltanet", "linear", "l2", "none", "gd", 1, kLearned, false},
        {"gated-deltanet", "linear", "l2", "l2", "gd", 1, kLearned, false},
        {"ttt-linear", "linear", "l2", "none", "gd", 16, kLearned, false},
        {"ttt-mlp", "mlp", "l2", "none", "gd", 16, kLearned, false},
    };
    return rows;
}

// The Titans hybrids of docs/math.md §2: the mixer, with the Titans LMM row of
// docs/math.md §3 as memory (mlp, L = 2, l2, l2, momentum).
// window, n_persistent, segment and the memory's chunk are the preset's
// (docs/training.md: mag and mal read [P ; x], so their chunk is
// n_persistent + 16 to keep MQAR's pairs in one chunk).
struct Hybrid {
    const char* name;
    const char* mixer;
    int64_t window;
    int64_t n_persistent;
    int64_t segment;
    int64_t chunk;
};

const std::vector<Hybrid>& hybrid_rows() {
    static const std::vector<Hybrid> rows = {
        {"titans-mac", "mac", 0, 0, 16, 16},
        {"titans-mag", "mag", 4, 4, 32, 20},
        {"titans-mal", "mal", 4, 4, 32, 20},
    };
    return rows;
}

// The attention baselines (no memory): full causal attention, and the
// window of the mag/mal hybrids.
struct Baseline {
    const char* name;
    int64_t window;
};
const std::vector<Baseline>& baseline_rows() {
    static const std::vector<Baseline> rows = {{"attention", 0}, {"swa", 4}};
    return rows;
}

// Small enough for one forward + backward in milliseconds.
std::vector<std::string> tiny() {
    return {"model.d=8",         "model.heads=2",      "model.layers=1",       "memory.expansion=2",
            "data.seq_len=12",   "data.mqar.vocab=13", "data.mqar.num_pairs=3", "train.batch=2"};
}

using Run = miras::testing::CliRun;
using miras::testing::run_miras;

std::vector<std::string> with_sets(std::vector<std::string> args, const std::vector<std::string>& sets) {
    for (const auto& s : sets) {
        args.push_back("--set");
        args.push_back(s);
    }
    return args;
}

struct TempDir : miras::testing::TempDir {
    TempDir() : miras::testing::TempDir("presets") {}
};

}  // namespace

BOOST_AUTO_TEST_SUITE(presets)

// One forward + backward of preset `name` on a tiny batch reaches every
// parameter of the model `rc` describes, with finite values; each gradient
// is written in its parameter's stored (PyTorch) layout.
void check_grad_reaches_every_parameter(const std::string& name, const RunConfig& rc) {
    auto model = build_model(rc.model);
    TempDir tmp;
    std::vector<std::string> args = with_sets({"grad", "--preset", name, "--out", tmp.file("g.st")}, tiny());
    Run run = run_miras(args);
    BOOST_REQUIRE_MESSAGE(run.code == 0, run.err);
    TensorFile f = read_tensor_file(tmp.file("g.st"));
    const double loss = f.tensors.at("loss").item();
    BOOST_CHECK(std::isfinite(loss) && loss > 0);
    int nonzero = 0, total = 0;
    const auto layouts = model->parameter_layouts();
    for (const auto& [n, p] : model->named_parameters()) {
        BOOST_REQUIRE_MESSAGE(f.tensors.count("grad." + n), "no grad." << n);
        const Tensor& g = f.tensors.at("grad." + n);
        const auto l = layouts.find(n);
        BOOST_CHECK(g.shape() == stored_shape(l == layouts.end() ? StoredLayout::same : l->second, p.shape()));
        double mx = 0;
        for (double v : g.to_vector()) {
            BOOST_CHECK(std::isfinite(v));
            mx = std::max(mx, std::abs(v));
        }
        nonzero += mx > 0;
        ++total;
    }
    BOOST_CHECK_EQUAL(nonzero, total);
}

// The preset folder holds exactly the docs/math.md §3 rows and the hybrids.
BOOST_AUTO_TEST_CASE(every_spec_row_has_a_preset) {
    std::vector<std::string> names = preset_names();
    BOOST_REQUIRE_EQUAL(names.size(), spec_rows().size() + hybrid_rows().size() + baseline_rows().size());
    for (const Baseline& b : baseline_rows()) {
        BOOST_TEST_CONTEXT("preset " << b.name) {
            RunConfig rc = load_run_config(preset_path(b.name), tiny());
            BOOST_CHECK_EQUAL(rc.model.mixer, "attn");
            BOOST_CHECK_EQUAL(rc.model.window, b.window);
            BOOST_CHECK_EQUAL(rc.model.n_persistent, 0);
            BOOST_CHECK_EQUAL(rc.model.attn_conv, 4);  // docs/stability.md §7
            check_grad_reaches_every_parameter(b.name, rc);
        }
    }
    for (const Row& r : spec_rows())
        BOOST_CHECK_MESSAGE(std::find(names.begin(), names.end(), r.name) != names.end(), "no preset " << r.name);
    for (const Hybrid& h : hybrid_rows())
        BOOST_CHECK_MESSAGE(std::find(names.begin(), names.end(), h.name) != names.end(), "no preset " << h.name);
}

// Each preset's [memory] is its docs/math.md §3 row, and the model it builds trains.
BOOST_AUTO_TEST_CASE(presets_match_spec_and_run) {
    for (const Row& r : spec_rows()) {
        BOOST_TEST_CONTEXT("preset " << r.name) {
            RunConfig rc = load_run_config(preset_path(r.name), tiny());
            const MemoryConfig& m = rc.model.memory;
            BOOST_CHECK_EQUAL(rc.model.mixer, "lmm");
            BOOST_CHECK_EQUAL(m.memory, r.memory);
            BOOST_CHECK_EQUAL(m.bias, r.bias);
            BOOST_CHECK_EQUAL(m.retention, r.retention);
            BOOST_CHECK_EQUAL(m.algorithm, r.algorithm);
            if (r.chunk > 0) BOOST_CHECK_EQUAL(m.chunk, r.chunk);
            BOOST_CHECK_EQUAL(m.fix_A0_zero, r.A0_zero);
            if (std::isnan(r.theta)) {
                BOOST_CHECK(!m.fixed_gate("theta").has_value());
            } else {
                BOOST_REQUIRE(m.fixed_gate("theta").has_value());
                BOOST_CHECK_EQUAL(*m.fixed_gate("theta"), r.theta);
            }
            if (std::string(r.name) == "titans-lmm") BOOST_CHECK_EQUAL(m.depth, 2);
            if (std::string(r.name) == "moneta") {
                BOOST_CHECK_EQUAL(m.p, 3.0);
                BOOST_CHECK_EQUAL(m.q, 4.0);
            }
            // docs/math.md §1.4: lp with retention none/l2/elastic needs θ_max <= 0.1.
            if (m.bias == "lp" && m.retention != "lq" && m.retention != "kl") BOOST_CHECK_LE(m.theta_max, 0.1);
            // Only the fixed gates of docs/math.md §3 are fixed: every other gate is learned.
            for (const auto& [g, v] : m.fixed_gates) BOOST_CHECK_EQUAL(g, "theta");

            // One forward + backward on a tiny batch reaches every parameter.
            check_grad_reaches_every_parameter(r.name, rc);
        }
    }
}

// Each hybrid preset is its docs/math.md §2 mixer over the Titans LMM memory of
// docs/math.md §3 (the same [memory] as titans-lmm but the chunk), with the
// documented window, persistent tokens, segment and chunk, and the model it
// builds trains.
BOOST_AUTO_TEST_CASE(hybrid_presets_match_spec_and_run) {
    const MemoryConfig lmm = load_run_config(preset_path("titans-lmm"), tiny()).model.memory;
    for (const Hybrid& h : hybrid_rows()) {
        BOOST_TEST_CONTEXT("preset " << h.name) {
            RunConfig rc = load_run_config(preset_path(h.name), tiny());
            const MemoryConfig& m = rc.model.memory;
            BOOST_CHECK_EQUAL(rc.model.mixer, h.mixer);
            BOOST_CHECK_EQUAL(m.memory, "mlp");
            BOOST_CHECK_EQUAL(m.depth, 2);
            BOOST_CHECK_EQUAL(m.bias, "l2");
            BOOST_CHECK_EQUAL(m.retention, "l2");
            BOOST_CHECK_EQUAL(m.algorithm, "momentum");
            BOOST_CHECK(!m.fix_A0_zero);
            BOOST_CHECK(m.fixed_gates.empty());
            // Every other memory key as in titans-lmm.
            BOOST_CHECK_EQUAL(m.expansion, lmm.expansion);
            BOOST_CHECK_EQUAL(m.residual, lmm.residual);
            BOOST_CHECK_EQUAL(m.layernorm, lmm.layernorm);
            BOOST_CHECK_EQUAL(m.theta_max, lmm.theta_max);
            BOOST_CHECK_EQUAL(m.chunk, h.chunk);
            BOOST_CHECK_EQUAL(rc.model.window, h.window);
            BOOST_CHECK_EQUAL(rc.model.n_persistent, h.n_persistent);
            BOOST_CHECK_EQUAL(rc.model.segment, h.segment);
            // docs/stability.md §7: every attention has the 4-tap conv; MAC writes its inputs.
            BOOST_CHECK_EQUAL(rc.model.attn_conv, 4);
            BOOST_CHECK_EQUAL(rc.model.mac_write, h.mixer == std::string("mac") ? "input" : "attention");
            check_grad_reaches_every_parameter(h.name, rc);
        }
    }
}

// The mlp-memory presets depart from math.md's defaults as docs/stability.md
// justifies: alpha starts at 0.002 (where there is a forget gate), A_0 is 4x
// larger (not for lq, whose A_0 is normalised), theta_max is 0.1, yaad's
// huber_eps is 0.1 and titans-lmm's and titans-mal's detach_anchor is on. Each departure is
// written in the preset's comment.
BOOST_AUTO_TEST_CASE(mlp_presets_carry_the_stability_settings) {
    const char* names[] = {"titans-lmm", "titans-mag", "titans-mal", "titans-mac", "moneta", "yaad", "memora", "ttt-mlp"};
    const MemoryConfig defaults = default_run_config().model.memory;
    for (const char* name : names) {
        BOOST_TEST_CONTEXT("preset " << name) {
            const std::string n = name;
            const MemoryConfig m = load_run_config(preset_path(n), tiny()).model.memory;
            BOOST_CHECK_EQUAL(m.theta_max, 0.1);
            if (m.retention == "none") BOOST_CHECK(m.gate_init.empty());
            else BOOST_CHECK_EQUAL(m.gate_init.at("alpha"), 0.002);
            BOOST_CHECK_EQUAL(m.a0_scale, n == "moneta" ? defaults.a0_scale : 4.0);
            BOOST_CHECK_EQUAL(m.huber_eps, n == "yaad" ? 0.1 : defaults.huber_eps);
            // Nothing else of the stability study is switched on.
            BOOST_CHECK_EQUAL(m.detach_anchor, n == "titans-lmm" || n == "titans-mal");
            BOOST_CHECK(!m.first_order);
            BOOST_CHECK_EQUAL(m.inner_clip, defaults.inner_clip);
            std::ifstream f(preset_path(n));
            std::stringstream text;
            text << f.rdbuf();
            BOOST_CHECK_MESSAGE(text.str().find("docs/stability.md") != std::string::npos,
                                n << ".toml does not say why it departs from math.md");
        }
    }
}

BOOST_AUTO_TEST_CASE(cli_preset_errors) {
    Run r = run_miras({"info", "--preset", "no-such-model"});
    BOOST_CHECK_EQUAL(r.code, 1);
    BOOST_CHECK(r.err.find("unknown preset 'no-such-model'") != std::string::npos);
    BOOST_CHECK(r.err.find("titans-lmm") != std::string::npos);
    // A file layers on the preset (tests/test_experiments.cpp).
    r = run_miras({"info", "train/configs/default.toml", "--preset", "moneta"});
    BOOST_CHECK_EQUAL(r.code, 0);
    BOOST_CHECK(r.out.find("config: preset moneta (") != std::string::npos);
    r = run_miras(with_sets({"info", "--preset", "memora"}, tiny()));
    BOOST_CHECK_EQUAL(r.code, 0);
    BOOST_CHECK(r.out.find("presets/memora.toml") != std::string::npos);
}

// Outside the repository the presets come from the source tree the program
// was built from.
BOOST_AUTO_TEST_CASE(presets_are_found_from_any_folder) {
    namespace fs = std::filesystem;
    TempDir tmp;
    const fs::path here = fs::current_path();
    fs::current_path(tmp.dir);
    std::string path, dir;
    std::vector<std::string> names;
    try {
        dir = preset_dir();
        names = preset_names();
        path = preset_path("titans-lmm");
    } catch (...) {
        fs::current_path(here);
        throw;
    }
    fs::current_path(here);
    BOOST_TEST(!dir.empty());
    BOOST_TEST(fs::path(dir).is_absolute());
    BOOST_TEST(names.size() >= 10u);
    BOOST_TEST(fs::is_regular_file(path));
}

// `miras grad --layer`: the file holds what probe_layer computes in-process,
// --params round-trips --dump-params (both in PyTorch's layout, gradients
// too: train/probe.h), and grad.x agrees with a central
// difference of the loss along a random direction.
BOOST_AUTO_TEST_CASE(layer_grad_round_trip) {
    TempDir tmp;
    const std::vector<std::string> sets = {"model.d=8", "model.heads=2", "memory.chunk=3", "memory.expansion=2",
                                           "memory.memory=mlp", "memory.algorithm=momentum", "model.seed=5"};
    Run r = run_miras(with_sets({"grad", "--layer", "--seq", "7", "--seed", "3", "--out", tmp.file("a.st"),
                                 "--dump-params", tmp.file("p.st")},
                                sets));
    BOOST_REQUIRE_MESSAGE(r.code == 0, r.err);
    TensorMap a = read_tensor_file(tmp.file("a.st")).tensors;
    TensorMap p = read_tensor_file(tmp.file("p.st")).tensors;
    BOOST_TEST(read_safetensors(tmp.file("p.st")).metadata.at("layout") == "pytorch");
    BOOST_TEST(read_safetensors(tmp.file("a.st")).metadata.at("layout") == "pytorch");

    RunConfig rc = default_run_config(sets);
    MemoryConfig mc = rc.model.memory;
    mc.dtype = DType::f64;
    mc.seed = 99;  // a different init, overwritten by the dumped parameters
    MirasLayer layer(mc);
    BOOST_REQUIRE_EQUAL(p.size(), layer.named_parameters().size());
    BOOST_TEST(p.at("conv_q").shape() == (Shape{8, 1, 4}));  // nn.Conv1d(8, 8, 4, groups=8).weight
    layer.load_parameters(from_stored_layout(tmp.file("p.st"), p, layer));
    Generator g(3);
    Tensor x = randn({2, 7, 8}, g, DType::f64), R = randn({2, 7, 8}, g, DType::f64);
    TensorMap b = to_stored_layout(probe_layer(layer, x, R, true), layer, "grad.");
    BOOST_REQUIRE_EQUAL(a.size(), b.size());
    for (const auto& [n, t] : b) BOOST_CHECK_MESSAGE(max_abs_diff(a.at(n), t) == 0, n);

    // d loss / dx · u by central differences.
    Tensor u = randn({2, 7, 8}, g, DType::f64);
    const double eps = 1e-6;
    auto loss_at = [&](double s) {
        Tensor xs = add(x, mul(u, s));
        return probe_layer(layer, xs, R, false).at("loss").item();
    };
    const double fd = (loss_at(eps) - loss_at(-eps)) / (2 * eps);
    const double an = sum(mul(a.at("grad.x"), u)).item();
    BOOST_CHECK_CLOSE_FRACTION(fd, an, 1e-6);
}

// `miras forward` / `grad` on a whole model: the loss is the model's
// cross-entropy on the task batch, and forward agrees with grad.
BOOST_AUTO_TEST_CASE(model_forward_and_grad) {
    TempDir tmp;
    Run f = run_miras(with_sets({"forward", "--preset", "deltanet", "--seed", "4", "--out", tmp.file("f.st")}, tiny()));
    BOOST_REQUIRE_MESSAGE(f.code == 0, f.err);
    Run g = run_miras(with_sets({"grad", "--preset", "deltanet", "--seed", "4", "--out", tmp.file("g.st")}, tiny()));
    BOOST_REQUIRE_MESSAGE(g.code == 0, g.err);
    TensorMap a = read_tensor_file(tmp.file("f.st")).tensors, b = read_tensor_file(tmp.file("g.st")).tensors;
    BOOST_CHECK_EQUAL(a.count("grad.embed.weight"), 0u);
    BOOST_CHECK_EQUAL(b.count("grad.blocks.0.mixer.memory.W_Q"), 1u);
    BOOST_CHECK_EQUAL(max_abs_diff(a.at("out"), b.at("out")), 0);

    RunConfig rc = load_run_config(preset_path("deltanet"), tiny());
    auto model = build_model(rc.model);
    TokenBatch tb = TaskData(rc.data).train_batch(4, rc.train.batch);
    IndexTensor tokens({tb.batch, tb.seq_len}, tb.inputs), targets({tb.batch, tb.seq_len}, tb.targets);
    const double loss = cross_entropy(model->forward(tokens), targets).loss.item();
    BOOST_CHECK_CLOSE_FRACTION(a.at("loss").item(), loss, 1e-6);
    BOOST_CHECK_EQUAL(a.at("out").shape()[2], rc.model.vocab);

    // Errors name what is wrong.
    Run bad = run_miras(with_sets({"grad", "--layer", "--params", tmp.file("g.st"), "--out", tmp.file("x.st")}, tiny()));
    BOOST_CHECK_EQUAL(bad.code, 1);
    BOOST_CHECK(bad.err.find("missing parameter 'W_Q'") != std::string::npos);
    Run noout = run_miras({"forward", "--layer"});
    BOOST_CHECK_EQUAL(noout.code, 1);
    BOOST_CHECK(noout.err.find("--out") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
