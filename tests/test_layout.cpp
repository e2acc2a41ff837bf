// Stored layouts (nn/module.h StoredLayout, docs/training.md Checkpoints):
// checkpoints and parameter files hold PyTorch's layout, the model in memory
// its own. A save/load round trip changes nothing (AdamW moments included);
// the stored Linear weight is the transpose, the stored conv (C, 1, K); a
// state dict in PyTorch's layout (tests/torch_ref/state_dict_ref.py, numpy,
// PyTorch's conventions), and one PyTorch writes where torch is installed
// (state_dict_torch.py), load and reproduce their logits; older checkpoints
// (memory layout) still load; every refusal names the file and the tensor.
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/temp_dir.h"
#include "tests/torch_available.h"
#include "tests/train_a_little.h"
#include "nn/loss.h"
#include "train/checkpoint.h"
#include "train/model_config.h"
#include "train/probe.h"
#include "train/safetensors.h"

using namespace miras;
using miras::testing::train_a_little;
namespace fs = std::filesystem;

namespace {

struct TempDir : miras::testing::TempDir {
    TempDir() : miras::testing::TempDir("layout") {}
};

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// vocab 11, d 8: the head (8, 11) is not square, W_Q (8, 8) is.
ModelConfig small_model(const std::string& mixer) {
    ModelConfig m;
    m.mixer = mixer;
    m.vocab = 11;
    m.d = 8;
    m.heads = 2;
    m.layers = 1;
    m.mlp_hidden = 16;
    m.attn_conv = 4;
    m.tie_embeddings = false;
    m.dtype = DType::f64;
    m.seed = 3;
    return m;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
    const std::vector<double> x = a.to_vector(), y = b.to_vector();
    BOOST_REQUIRE_EQUAL(x.size(), y.size());
    double m = 0;
    for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
    return m;
}

// The F64 tensor stored under `name`, as it is in the file (no conversion).
Tensor stored(const std::string& path, const std::string& name) {
    const StFile f = read_safetensors(path);
    const StEntry* e = f.find(name);
    BOOST_REQUIRE_MESSAGE(e && e->dtype == "F64", path << " has no F64 tensor " << name);
    Tensor t = Tensor::empty(e->shape, DType::f64);
    std::memcpy(t.data<double>(), e->bytes.data(), e->bytes.size());
    return t;
}

// The message of the exception `f` throws ("" when none).
template <class F> std::string error_of(F&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(layout)

// Which parameters are stored transposed or reshaped is said where they are
// registered; the rest are listed as nothing.
BOOST_AUTO_TEST_CASE(modules_declare_their_layouts) {
    auto model = build_model(small_model("attn"));
    const auto l = model->parameter_layouts();
    BOOST_TEST((l.at("head.weight") == StoredLayout::linear));
    BOOST_TEST((l.at("blocks.0.mixer.W_Q") == StoredLayout::linear));
    BOOST_TEST((l.at("blocks.0.mlp.W_down") == StoredLayout::linear));
    BOOST_TEST((l.at("blocks.0.mixer.conv_k") == StoredLayout::depthwise));
    BOOST_TEST(l.count("embed.weight") == 0u);  // nn.Embedding (num, dim): as held
    BOOST_TEST(l.count("norm.weight") == 0u);
    auto lmm = build_model(small_model("lmm"));
    const auto m = lmm->parameter_layouts();
    BOOST_TEST((m.at("blocks.0.mixer.memory.W_G") == StoredLayout::linear));
    BOOST_TEST((m.at("blocks.0.mixer.memory.conv_v") == StoredLayout::depthwise));
    BOOST_TEST((m.at("blocks.0.mixer.memory.gate_theta_w") == StoredLayout::linear));
    BOOST_TEST(m.count("blocks.0.mixer.memory.out_norm_w") == 0u);
    BOOST_TEST(m.count("blocks.0.mixer.memory.A0") + m.count("blocks.0.mixer.memory.A0_1") == 0u);
}

// In the file: the head's weight, held (8, 11), is stored (11, 8) and holds
// the transpose; a conv (8, 4) is stored (8, 1, 4); the AdamW moments of a
// parameter are stored like it. Read back, everything is bit-identical.
BOOST_AUTO_TEST_CASE(checkpoint_stores_pytorch_layout_and_round_trips) {
    for (const std::string mixer : {"attn", "lmm"}) {
        BOOST_TEST_CONTEXT(mixer) {
            TempDir tmp;
            auto model = build_model(small_model(mixer));
            AdamW opt(model->named_parameters(), AdamWOptions{});
            train_a_little(*model, opt);
            const std::string path = tmp.file("ck.safetensors");
            save_checkpoint(path, make_checkpoint(*model, &opt, 2, 9, "x = 1\n"));

            const StFile f = read_safetensors(path);
            BOOST_TEST(f.metadata.at("format") == "miras-checkpoint-3");
            BOOST_TEST(f.metadata.at("layout") == "pytorch");
            BOOST_TEST(contains(f.metadata.at("layouts"), "head.weight=linear\n"));
            const Tensor head = model->named_parameters().back().second;  // registered last, (8, 11)
            BOOST_REQUIRE((head.shape() == Shape{8, 11}));
            const Tensor sh = stored(path, "head.weight");
            BOOST_TEST((sh.shape() == Shape{11, 8}));
            const std::vector<double> s = sh.to_vector(), h = head.to_vector();  // row-major
            for (size_t o = 0; o < 11; ++o)
                for (size_t i = 0; i < 8; ++i) BOOST_TEST(s[o * 8 + i] == h[i * 11 + o]);
            const std::string conv = mixer == "attn" ? "blocks.0.mixer.conv_q" : "blocks.0.mixer.memory.conv_q";
            BOOST_TEST((stored(path, conv).shape() == Shape{8, 1, 4}));
            const Tensor m = stored(path, "optim.adam.m.head.weight");
            BOOST_TEST((m.shape() == Shape{11, 8}));
            BOOST_TEST(max_abs_diff(m, to_stored(StoredLayout::linear, opt.state_dict().at("adam.m.head.weight"))) == 0);

            auto again = build_model([&] {
                ModelConfig c = small_model(mixer);
                c.seed = 77;  // other initial values, all overwritten
                return c;
            }());
            AdamW opt2(again->named_parameters(), AdamWOptions{});
            const Checkpoint ck = read_checkpoint(path);
            load_model_state(ck, *again, path);
            load_optimizer_state(ck, opt2, path);
            const auto a = model->named_parameters(), b = again->named_parameters();
            BOOST_REQUIRE_EQUAL(a.size(), b.size());
            for (size_t i = 0; i < a.size(); ++i) {
                BOOST_TEST(a[i].second.shape() == b[i].second.shape(), a[i].first);
                BOOST_TEST(max_abs_diff(a[i].second, b[i].second) == 0, a[i].first);
            }
            const StateDict sa = opt.state_dict(), sb = opt2.state_dict();
            for (const auto& [name, t] : sa) BOOST_TEST(max_abs_diff(t, sb.at(name)) == 0, name);
        }
    }
}

// The model of tests/torch_ref/state_dict_ref.py (attn, 2 layers, 2
// persistent tokens), loaded from `params` (a state dict in PyTorch's layout,
// "format": "pt") as `miras forward --params` loads it; its logits on io's
// "tokens" must be io's "logits". Returns the model.
auto check_state_dict_logits(const std::string& params, const std::string& io) {
    ModelConfig mc = small_model("attn");
    mc.layers = 2;
    mc.n_persistent = 2;
    auto model = build_model(mc);
    const StFile st = read_safetensors(params);
    check_pytorch_layout(params, st.metadata);
    const TensorMap sd = read_tensor_file(params).tensors;
    BOOST_TEST((sd.at("head.weight").shape() == Shape{11, 8}));
    model->load_parameters(from_stored_layout(params, sd, *model));

    const TensorFile ref = read_tensor_file(io);
    const TensorMap ours = probe_model(*model, ref.indices.at("tokens"), IndexTensor(), false);
    BOOST_TEST((ours.at("out").shape() == Shape{2, 6, 11}));
    BOOST_TEST(max_abs_diff(ours.at("out"), ref.tensors.at("logits")) <= 1e-10);
    return model;
}

// tests/torch_ref/state_dict_ref.safetensors: a state dict in PyTorch's
// layout (nn.Linear (out, in), nn.Conv1d (C, 1, K)), with "format": "pt" as
// safetensors.torch.save_model writes; state_dict_ref.py computed its logits
// with PyTorch's conventions (numpy, so this runs everywhere). Loaded as
// `miras forward --params` loads it, the model reproduces them; loaded
// without the conversion, it does not.
BOOST_AUTO_TEST_CASE(pytorch_state_dict_reproduces_its_logits) {
    const std::string params = "tests/torch_ref/state_dict_ref.safetensors", io = "tests/torch_ref/state_dict_io.safetensors";
    BOOST_REQUIRE_MESSAGE(fs::exists(params) && fs::exists(io), "run the tests from the repository root");
    auto model = check_state_dict_logits(params, io);

    // The square matrices fit untransposed too: converting only what the
    // shapes give away (the convs, the non-square Linear weights) loads, and
    // gives other logits.
    TensorMap raw = read_tensor_file(params).tensors;
    for (const auto& [name, l] : model->parameter_layouts()) {
        const Shape& s = raw.at(name).shape();
        if (l == StoredLayout::depthwise || s[0] != s[1]) raw[name] = from_stored(l, raw.at(name));
    }
    model->load_parameters(raw);
    const TensorFile ref = read_tensor_file(io);
    const TensorMap wrong = probe_model(*model, ref.indices.at("tokens"), IndexTensor(), false);
    BOOST_TEST(max_abs_diff(wrong.at("out"), ref.tensors.at("logits")) > 1e-3);
}

// PyTorch itself: tests/torch_ref/state_dict_torch.py builds the same model as
// an nn.Module (F.linear, F.conv1d, nn.Embedding, nn.Linear), lets PyTorch
// draw the weights, writes model.state_dict() and PyTorch's logits; we load
// the state dict and reproduce them. Two seeds: two different state dicts.
BOOST_AUTO_TEST_CASE(state_dict_written_by_pytorch_reproduces_its_logits,
                     *boost::unit_test::precondition(miras::testing::needs_torch)) {
    TempDir tmp;
    for (int seed : {0, 1}) {
        BOOST_TEST_CONTEXT("seed " << seed) {
            const std::string dir = tmp.file("seed" + std::to_string(seed)), log = tmp.file("log.txt");
            const std::string cmd = std::string(miras::testing::kPython) + " tests/torch_ref/state_dict_torch.py --out-dir " +
                                    dir + " --seed " + std::to_string(seed) + " > " + log + " 2>&1";
            if (std::system(cmd.c_str()) != 0) {
                std::ifstream in(log);
                std::stringstream text;
                text << in.rdbuf();
                BOOST_FAIL("tests/torch_ref/state_dict_torch.py failed:\n" << text.str());
            }
            check_state_dict_logits(dir + "/params.safetensors", dir + "/io.safetensors");
        }
    }
}

// A "miras-checkpoint-2" file holds the memory layout (Linear (in, out)) and
// records no layouts: it is read as such, and loads unchanged.
BOOST_AUTO_TEST_CASE(format_2_checkpoint_loads_in_memory_layout) {
    TempDir tmp;
    auto model = build_model(small_model("attn"));
    AdamW opt(model->named_parameters(), AdamWOptions{});
    train_a_little(*model, opt);
    Checkpoint ck = make_checkpoint(*model, &opt, 2, 9, "x = 1\n");
    ck.layouts.clear();  // written as held: what format 2 stored
    const std::string path = tmp.file("old.safetensors");
    save_checkpoint(path, ck);
    StFile f = read_safetensors(path);
    f.metadata["format"] = "miras-checkpoint-2";
    f.metadata.erase("layout");
    f.metadata.erase("layouts");
    sign_checkpoint(path, f);
    write_safetensors(path, f);
    BOOST_TEST((stored(path, "head.weight").shape() == Shape{8, 11}));

    auto again = build_model([] {
        ModelConfig c = small_model("attn");
        c.seed = 77;
        return c;
    }());
    AdamW opt2(again->named_parameters(), AdamWOptions{});
    const Checkpoint back = read_checkpoint(path);
    BOOST_TEST(!back.layouts_recorded);
    load_model_state(back, *again, path);
    load_optimizer_state(back, opt2, path);
    const auto a = model->named_parameters(), b = again->named_parameters();
    for (size_t i = 0; i < a.size(); ++i) BOOST_TEST(max_abs_diff(a[i].second, b[i].second) == 0, a[i].first);
    for (const auto& [name, t] : opt.state_dict()) BOOST_TEST(max_abs_diff(t, opt2.state_dict().at(name)) == 0, name);

    f.metadata["format"] = "miras-checkpoint-9";
    sign_checkpoint(path, f);
    write_safetensors(path, f);
    const std::string e = error_of([&] { read_checkpoint(path); });
    BOOST_TEST((contains(e, path + ": unsupported checkpoint format 'miras-checkpoint-9'") &&
                contains(e, "miras-checkpoint-3")),
               e);
}

// A format-3 file whose recorded layout of a square matrix is not the
// model's, or whose "layouts" names a missing tensor or an unknown layout,
// is refused naming the file and the tensor.
BOOST_AUTO_TEST_CASE(checkpoint_layout_errors_name_file_and_tensor) {
    TempDir tmp;
    auto model = build_model(small_model("attn"));
    const std::string path = tmp.file("ck.safetensors");
    auto rewrite = [&](const std::string& from, const std::string& to) {
        save_checkpoint(path, make_checkpoint(*model, nullptr, 0, 1, ""));
        StFile f = read_safetensors(path);
        std::string& l = f.metadata.at("layouts");
        const size_t at = l.find(from);
        BOOST_REQUIRE(at != std::string::npos);
        l.replace(at, from.size(), to);
        sign_checkpoint(path, f);
        write_safetensors(path, f);
    };
    // W_Q recorded as stored as held: it loads (8, 8) but not as the model stores it.
    rewrite("blocks.0.mixer.W_Q=linear\n", "");
    std::string e = error_of([&] { load_model_state(read_checkpoint(path), *model, path); });
    BOOST_TEST((contains(e, path + ": parameter 'blocks.0.mixer.W_Q' is stored in layout 'same'") &&
                contains(e, "'linear'")),
               e);
    rewrite("blocks.0.mixer.W_Q=linear", "blocks.0.mixer.W_Q=diagonal");
    e = error_of([&] { read_checkpoint(path); });
    BOOST_TEST(contains(e, path + ": tensor 'blocks.0.mixer.W_Q': unknown stored layout 'diagonal'"), e);
    rewrite("blocks.0.mixer.W_Q=linear", "blocks.0.mixer.W_X=linear");
    e = error_of([&] { read_checkpoint(path); });
    BOOST_TEST(contains(e, path + ": metadata 'layouts' names tensor 'blocks.0.mixer.W_X'"), e);
    rewrite("blocks.0.mixer.W_Q=linear", "blocks.0.mixer.W_Q=depthwise");
    e = error_of([&] { read_checkpoint(path); });
    BOOST_TEST((contains(e, path + ": tensor 'blocks.0.mixer.W_Q': ") && contains(e, "(C, 1, K), got (8, 8)")), e);
}

// Parameter files: one that does not say its layout is refused (a square
// matrix cannot tell), one with a tensor of the memory layout's shape is
// refused naming the tensor and both shapes.
BOOST_AUTO_TEST_CASE(parameter_file_errors_name_file_and_tensor) {
    TempDir tmp;
    auto model = build_model(small_model("attn"));
    const std::string path = tmp.file("p.safetensors");
    std::string e = error_of([&] { check_pytorch_layout(path, {}); });
    BOOST_TEST((contains(e, path + ": the file does not say how its matrices are laid out") &&
                contains(e, "\"layout\": \"pytorch\"")),
               e);
    e = error_of([&] { check_pytorch_layout(path, {{"layout", "miras"}}); });
    BOOST_TEST(contains(e, path + ": __metadata__ \"layout\" is \"miras\""), e);
    BOOST_TEST(error_of([&] { check_pytorch_layout(path, {{"layout", "pytorch"}}); }).empty());
    BOOST_TEST(error_of([&] { check_pytorch_layout(path, {{"format", "pt"}}); }).empty());

    TensorMap held = parameter_map(*model);  // head.weight (8, 11), as held: the old files' layout
    e = error_of([&] { from_stored_layout(path, held, *model); });
    BOOST_TEST(contains(e, path + ": tensor 'blocks.0.mixer.conv_q' is (8, 4); the parameter (depthwise, held (8, 4)) "
                              "is stored (8, 1, 4)"),
               e);
    held = to_stored_layout(held, *model);
    held["head.weight"] = from_stored(StoredLayout::linear, held.at("head.weight"));
    e = error_of([&] { from_stored_layout(path, held, *model); });
    BOOST_TEST(contains(e, path + ": tensor 'head.weight' is (8, 11); the parameter (linear, held (8, 11)) is stored (11, 8)"), e);
}

BOOST_AUTO_TEST_SUITE_END()
