// train/checkpoint.h: a save/read/load round trip is bit-exact (parameters,
// AdamW state, step, data seed, config), in f32 and f64; a truncated or
// corrupted file, a foreign safetensors file and a model of another shape are
// rejected with a message naming the file, never a crash.
#include <boost/test/unit_test.hpp>

#include <openssl/evp.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/temp_dir.h"
#include "tests/train_a_little.h"
#include "nn/loss.h"
#include "train/checkpoint.h"
#include "train/model_config.h"
#include "train/safetensors.h"

using namespace miras;
using miras::testing::train_a_little;
namespace fs = std::filesystem;

namespace {

struct TempDir : miras::testing::TempDir {
    TempDir() : miras::testing::TempDir("ck") {}
};

ModelConfig tiny_model(DType dt, int64_t d = 8) {
    ModelConfig m;
    m.mixer = "attn";
    m.vocab = 11;
    m.d = d;
    m.heads = 2;
    m.layers = 1;
    m.mlp_hidden = 8;
    m.dtype = dt;
    m.seed = 5;
    return m;
}

// Bit patterns of a tensor's values, so equality is exact (NaN-safe, -0 ≠ 0).
std::vector<uint8_t> bits(const Tensor& t) {
    Tensor c = raw::contiguous(t);
    std::vector<uint8_t> out((size_t)c.numel() * dtype_size(c.dtype()));
    dispatch(c.dtype(), [&]<class T>() { std::memcpy(out.data(), c.data<T>(), out.size()); });
    return out;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
    std::ofstream(path, std::ios::binary | std::ios::trunc).write((const char*)b.data(), (std::streamsize)b.size());
}

std::string read_error(const std::string& path) {
    try {
        read_checkpoint(path);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "<no error>";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoint)

BOOST_AUTO_TEST_CASE(round_trip_is_bit_exact) {
    for (DType dt : {DType::f32, DType::f64}) {
        TempDir tmp;
        const std::string path = tmp.file("ck.safetensors");
        auto model = build_model(tiny_model(dt));
        AdamW opt(model->named_parameters());
        train_a_little(*model, opt);
        save_checkpoint(path, make_checkpoint(*model, &opt, 2, 0xfedcba9876543210ull, "[model]\nd = 8\n"));

        Checkpoint ck = read_checkpoint(path);
        BOOST_TEST(ck.step == 2);
        BOOST_TEST(ck.data_seed == 0xfedcba9876543210ull);
        BOOST_TEST(ck.config_toml == "[model]\nd = 8\n");
        BOOST_TEST(ck.optim_kind == "adam");
        BOOST_TEST(ck.params.count("embed.weight") == 1u);
        BOOST_TEST(ck.optim.count("adam.m.embed.weight") == 1u);

        // Into a fresh model and optimizer (other seed, so nothing matches by accident).
        ModelConfig other = tiny_model(dt);
        other.seed = 99;
        auto fresh = build_model(other);
        AdamW fresh_opt(fresh->named_parameters());
        load_model_state(ck, *fresh, path);
        load_optimizer_state(ck, fresh_opt, path);
        auto a = model->named_parameters(), b = fresh->named_parameters();
        BOOST_REQUIRE(a.size() == b.size());
        for (size_t i = 0; i < a.size(); ++i) BOOST_TEST((bits(a[i].second) == bits(b[i].second)), a[i].first);
        StateDict sa = opt.state_dict(), sb = fresh_opt.state_dict();
        BOOST_REQUIRE(sa.size() == sb.size());
        for (auto& [name, t] : sa) BOOST_TEST((bits(t) == bits(sb.at(name))), name);
        BOOST_TEST(fresh_opt.steps() == 2);
    }
}

BOOST_AUTO_TEST_CASE(truncated_file_is_rejected) {
    TempDir tmp;
    const std::string path = tmp.file("ck.safetensors");
    auto model = build_model(tiny_model(DType::f32));
    save_checkpoint(path, make_checkpoint(*model, nullptr, 0, 1, ""));
    const std::vector<uint8_t> good = read_bytes(path);
    BOOST_REQUIRE(good.size() > 200u);
    for (size_t len : {size_t(0), size_t(4), size_t(8), size_t(50), good.size() / 2, good.size() - 1}) {
        const std::string bad = tmp.file("cut" + std::to_string(len) + ".safetensors");
        write_bytes(bad, std::vector<uint8_t>(good.begin(), good.begin() + (long)len));
        const std::string msg = read_error(bad);
        BOOST_TEST(contains(msg, bad), "length " << len << ": " << msg);
    }
}

BOOST_AUTO_TEST_CASE(corrupted_bytes_are_rejected) {
    TempDir tmp;
    const std::string path = tmp.file("ck.safetensors");
    auto model = build_model(tiny_model(DType::f32));
    AdamW opt(model->named_parameters());
    save_checkpoint(path, make_checkpoint(*model, &opt, 3, 1, "x = 1\n"));
    const std::vector<uint8_t> good = read_bytes(path);
    uint64_t header = 0;
    std::memcpy(&header, good.data(), 8);
    // A flipped bit in the tensor data is invisible to the container format:
    // the checksum catches it.
    for (size_t pos : {size_t(8 + header), size_t(8 + header) + 77, good.size() - 1}) {
        std::vector<uint8_t> b = good;
        b[pos] ^= 0x10;
        const std::string bad = tmp.file("flip" + std::to_string(pos) + ".safetensors");
        write_bytes(bad, b);
        const std::string msg = read_error(bad);
        BOOST_TEST(contains(msg, bad), msg);
        BOOST_TEST(contains(msg, "corrupted"), msg);
    }
    // Damage inside the JSON header: rejected by the format layer or the checksum.
    for (size_t pos = 8; pos < 8 + header; pos += header / 7) {
        std::vector<uint8_t> b = good;
        b[pos] = '#';
        const std::string bad = tmp.file("hdr" + std::to_string(pos) + ".safetensors");
        write_bytes(bad, b);
        std::string msg;
        try {
            Checkpoint ck = read_checkpoint(bad);
            // A header edit that keeps everything consistent must still load the same values.
            auto fresh = build_model(tiny_model(DType::f32));
            load_model_state(ck, *fresh, bad);
            msg = "<loaded>";
        } catch (const std::runtime_error& e) {
            msg = e.what();
        }
        BOOST_TEST(contains(msg, bad), "byte " << pos << ": " << msg);
    }
}

// The checksum covered the tensors only: 121 of 2,158 single-bit flips of
// the stored config (lr, betas, steps, data.seed, output.dir, ...) loaded
// with the changed config and no warning. Every bit of the header counts
// now, the metadata included, and every data byte tried here.
BOOST_AUTO_TEST_CASE(a_flipped_bit_anywhere_in_the_file_is_refused) {
    TempDir tmp;
    const std::string path = tmp.file("ck.safetensors");
    auto model = build_model(tiny_model(DType::f32));
    AdamW opt(model->named_parameters());
    train_a_little(*model, opt);
    const std::string config = "[optim]\nlr = 0.001\nbetas = [0.9, 0.999]\n[data]\nseed = 17\n[output]\ndir = \"runs/x\"\n";
    save_checkpoint(path, make_checkpoint(*model, &opt, 2, 3, config));
    BOOST_TEST(read_checkpoint(path).config_toml == config);
    const std::vector<uint8_t> good = read_bytes(path);
    uint64_t header = 0;
    std::memcpy(&header, good.data(), 8);
    const std::string bad = tmp.file("bad.safetensors");
    write_bytes(bad, good);
    std::vector<uint8_t> b = good;
    size_t tried = 0, loaded = 0;
    auto try_flip = [&](size_t pos, uint8_t bit) {
        b[pos] ^= bit;
        std::fstream(bad, std::ios::binary | std::ios::in | std::ios::out).write((const char*)b.data(), (std::streamsize)b.size());
        const std::string msg = read_error(bad);
        ++tried;
        if (msg == "<no error>") {
            ++loaded;
            BOOST_TEST_MESSAGE("byte " << pos << " bit " << (int)bit << " loads");
        } else {
            BOOST_TEST(contains(msg, bad), msg);
        }
        b[pos] ^= bit;
    };
    for (size_t pos = 0; pos < 8 + header; ++pos)
        for (uint8_t bit : {0x01, 0x02, 0x08, 0x20}) try_flip(pos, bit);
    for (size_t pos = 8 + header; pos < good.size(); pos += 13) try_flip(pos, 0x40);
    BOOST_TEST(tried > 4 * header);
    BOOST_TEST(loaded == 0u);
}

// The stored hash is SHA-256 of the file with its own 64 digits read as
// '0's (docs/training.md), which anyone can check with other tools.
BOOST_AUTO_TEST_CASE(the_stored_hash_is_the_sha256_of_the_file) {
    TempDir tmp;
    const std::string path = tmp.file("ck.safetensors");
    auto model = build_model(tiny_model(DType::f64));
    save_checkpoint(path, make_checkpoint(*model, nullptr, 4, 1, "x = 1\n"));
    const StFile f = read_safetensors(path);
    BOOST_TEST(f.metadata.at("format") == "miras-checkpoint-3");
    const std::string stored = f.metadata.at("sha256");
    BOOST_REQUIRE(stored.size() == 64u);
    std::vector<uint8_t> bytes = read_bytes(path);
    std::string text(bytes.begin(), bytes.end());
    const size_t at = text.find("\"sha256\":\"" + stored + "\"");
    BOOST_REQUIRE(at != std::string::npos);
    text.replace(at + 10, 64, std::string(64, '0'));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    BOOST_REQUIRE(EVP_Digest(text.data(), text.size(), md, &n, EVP_sha256(), nullptr) == 1);
    std::string hex;
    char buf[3];
    for (unsigned i = 0; i < n; ++i) {
        std::snprintf(buf, sizeof buf, "%02x", md[i]);
        hex += buf;
    }
    BOOST_TEST(hex == stored);
}

// Checkpoints of the first format (an FNV-1a checksum of the tensors) are
// still read, and still checked.
BOOST_AUTO_TEST_CASE(first_format_checkpoints_are_still_read) {
    TempDir tmp;
    const std::string path = tmp.file("v1.safetensors");
    StFile f;
    std::vector<uint8_t> one(8);
    const int64_t step = 5;
    const uint64_t seed = 9;
    f.entries.push_back({"w", "F64", {1}, std::vector<uint8_t>(8, 0)});
    f.entries.push_back({"train.step", "I64", {}, std::vector<uint8_t>((const uint8_t*)&step, (const uint8_t*)&step + 8)});
    f.entries.push_back({"train.data_seed", "U64", {}, std::vector<uint8_t>((const uint8_t*)&seed, (const uint8_t*)&seed + 8)});
    f.metadata = {{"format", "miras-checkpoint-1"}, {"config", "x = 1\n"}, {"step", "5"}, {"optimizer", "none"}};
    // FNV-1a 64 over name, NUL, dtype, NUL, shape dims (int64), bytes; names in order.
    uint64_t h = 0xcbf29ce484222325ull;
    auto add = [&](const void* p, size_t n) {
        for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const uint8_t*>(p)[i]) * 0x100000001b3ull;
    };
    for (const char* name : {"train.data_seed", "train.step", "w"}) {
        const StEntry& e = *f.find(name);
        add(e.name.c_str(), e.name.size() + 1);
        add(e.dtype.c_str(), e.dtype.size() + 1);
        for (int64_t d : e.shape) add(&d, 8);
        add(e.bytes.data(), e.bytes.size());
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    f.metadata["checksum"] = hex;
    write_safetensors(path, f);
    const Checkpoint ck = read_checkpoint(path);
    BOOST_TEST(ck.step == 5);
    BOOST_TEST(ck.data_seed == 9u);
    BOOST_TEST(ck.params.count("w") == 1u);
    f.entries[0].bytes[3] = 1;
    write_safetensors(path, f);
    BOOST_TEST(contains(read_error(path), "checkpoint is corrupted: checksum"), read_error(path));
}

// A diverged state is never written over a good checkpoint, and a
// non-finite parameter in a file is refused when loaded.
BOOST_AUTO_TEST_CASE(non_finite_state_is_neither_saved_nor_loaded) {
    TempDir tmp;
    const std::string path = tmp.file("ck.safetensors");
    auto model = build_model(tiny_model(DType::f32));
    AdamW opt(model->named_parameters());
    train_a_little(*model, opt);
    save_checkpoint(path, make_checkpoint(*model, &opt, 2, 1, ""));
    const std::vector<uint8_t> good = read_bytes(path);

    Checkpoint nan_param = make_checkpoint(*model, &opt, 3, 1, "");
    nan_param.params.at("norm.weight").data<float>()[1] = std::nanf("");
    BOOST_CHECK_EXCEPTION(save_checkpoint(path, nan_param), std::runtime_error, [&](const std::runtime_error& e) {
        BOOST_TEST_INFO(e.what());
        return contains(e.what(), path + ": not saved: parameter 'norm.weight': 1 of 8 values are not finite") &&
               contains(e.what(), "keeps the previous checkpoint");
    });
    Checkpoint inf_state = make_checkpoint(*model, &opt, 3, 1, "");
    inf_state.optim.at("adam.m.norm.weight").data<float>()[0] = -HUGE_VALF;
    BOOST_CHECK_EXCEPTION(save_checkpoint(path, inf_state), std::runtime_error, [&](const std::runtime_error& e) {
        BOOST_TEST_INFO(e.what());
        return contains(e.what(), "optimizer state 'adam.m.norm.weight'");
    });
    BOOST_TEST((read_bytes(path) == good));
    for (const auto& e : fs::directory_iterator(tmp.dir))  // no temporary left behind
        BOOST_TEST(e.path().filename().string() == "ck.safetensors");

    // Written past the check (a crafted file), refused on load.
    StFile f = read_safetensors(path);
    for (StEntry& e : f.entries)
        if (e.name == "norm.weight") std::memcpy(e.bytes.data() + 4, &nan_param.params.at("norm.weight").data<float>()[1], 4);
    sign_checkpoint(path, f);
    write_safetensors(path, f);
    const Checkpoint ck = read_checkpoint(path);
    auto fresh = build_model(tiny_model(DType::f32));
    BOOST_CHECK_EXCEPTION(load_model_state(ck, *fresh, path), std::runtime_error, [&](const std::runtime_error& e) {
        BOOST_TEST_INFO(e.what());
        return contains(e.what(), path + ": parameter 'norm.weight': 1 of 8 values are not finite (the first, nan");
    });
}

BOOST_AUTO_TEST_CASE(foreign_file_and_mismatched_model_are_rejected) {
    TempDir tmp;
    // A valid safetensors file that is not a checkpoint.
    const std::string foreign = tmp.file("foreign.safetensors");
    StFile f;
    f.entries.push_back({"w", "F32", {2}, std::vector<uint8_t>(8, 0)});
    write_safetensors(foreign, f);
    const std::string msg = read_error(foreign);
    BOOST_TEST((contains(msg, foreign) && contains(msg, "not a miras checkpoint")), msg);

    // A checkpoint of d = 8 does not load into d = 16 nor into f64.
    const std::string path = tmp.file("ck.safetensors");
    auto small = build_model(tiny_model(DType::f32, 8));
    AdamW small_opt(small->named_parameters());
    save_checkpoint(path, make_checkpoint(*small, &small_opt, 0, 1, ""));
    Checkpoint ck = read_checkpoint(path);
    auto big = build_model(tiny_model(DType::f32, 16));
    try {
        load_model_state(ck, *big, path);
        BOOST_FAIL("no error");
    } catch (const std::runtime_error& e) {
        BOOST_TEST(contains(e.what(), path), e.what());
        BOOST_TEST(contains(e.what(), "embed.weight"), e.what());
        BOOST_TEST((contains(e.what(), "(11, 16)") && contains(e.what(), "(11, 8)")), e.what());
    }
    auto f64 = build_model(tiny_model(DType::f64, 8));
    try {
        load_model_state(ck, *f64, path);
        BOOST_FAIL("no error");
    } catch (const std::runtime_error& e) {
        BOOST_TEST((contains(e.what(), "f64") && contains(e.what(), "f32")), e.what());
    }
    // Optimizer state of another kind.
    SGD sgd(small->named_parameters(), SGDOptions{0.1, 0.9});
    try {
        load_optimizer_state(ck, sgd, path);
        BOOST_FAIL("no error");
    } catch (const std::runtime_error& e) {
        BOOST_TEST((contains(e.what(), path) && contains(e.what(), "sgd.momentum.embed.weight")), e.what());
    }
}

// The loop's running figures (smoothed loss, clocks) round-trip exactly; a
// file without them reads as zeros (they restart); a malformed "loop" is
// refused by name.
BOOST_AUTO_TEST_CASE(loop_figures_round_trip_and_are_checked) {
    TempDir tmp;
    const std::string path = tmp.file("ck.safetensors");
    auto model = build_model(tiny_model(DType::f32));
    Checkpoint ck = make_checkpoint(*model, nullptr, 3, 1, "");
    ck.loop.loss_ema = 0.1 + 1e-17 * 3;  // not a short decimal
    ck.loop.loss_ema_steps = 3;
    ck.loop.elapsed_s = 1.25;
    ck.loop.cpu_s = 2.5;
    save_checkpoint(path, ck);
    const Checkpoint back = read_checkpoint(path);
    BOOST_TEST(back.loop.loss_ema == ck.loop.loss_ema);
    BOOST_TEST(back.loop.loss_ema_steps == 3);
    BOOST_TEST(back.loop.elapsed_s == 1.25);
    BOOST_TEST(back.loop.cpu_s == 2.5);

    StFile f = read_safetensors(path);
    f.metadata.erase("loop");
    sign_checkpoint(path, f);
    write_safetensors(path, f);
    BOOST_TEST(read_checkpoint(path).loop.loss_ema_steps == 0);
    for (const char* bad : {"[1]", "{\"loss_ema\": 1, \"elapsed_s\": 0, \"cpu_s\": 0}",
                            "{\"loss_ema\": 1, \"loss_ema_steps\": -1, \"elapsed_s\": 0, \"cpu_s\": 0}", "not json"}) {
        f.metadata["loop"] = bad;
        sign_checkpoint(path, f);
        write_safetensors(path, f);
        BOOST_CHECK_EXCEPTION(read_checkpoint(path), std::runtime_error, [&](const std::runtime_error& e) {
            BOOST_TEST_INFO(e.what());
            return contains(e.what(), path + ": checkpoint metadata 'loop' ");
        });
    }
}

BOOST_AUTO_TEST_SUITE_END()
