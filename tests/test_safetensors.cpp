#include <boost/test/unit_test.hpp>

#include "tests/cpu_time.h"
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fifo.h"
#include "tests/temp_dir.h"
#include "train/safetensors.h"

using namespace miras;
namespace fs = std::filesystem;

namespace {

struct TempDir : miras::testing::TempDir {
    TempDir() : miras::testing::TempDir("st") {}
};

template <typename T>
std::vector<uint8_t> as_bytes(const std::vector<T>& v) {
    std::vector<uint8_t> out(v.size() * sizeof(T));
    if (!out.empty()) std::memcpy(out.data(), v.data(), out.size());
    return out;
}

std::vector<uint8_t> slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Overwrites a file of the same size in place: truncating and rewriting one
// file thousands of times is slow on some file systems.
void overwrite(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// A file with a hand-written header and `data_bytes` zero bytes of data.
std::vector<uint8_t> raw_file(const std::string& header, size_t data_bytes, uint64_t header_len) {
    std::vector<uint8_t> out(8);
    for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(header_len >> (8 * i));
    out.insert(out.end(), header.begin(), header.end());
    out.resize(out.size() + data_bytes, 0);
    return out;
}
std::vector<uint8_t> raw_file(const std::string& header, size_t data_bytes) {
    return raw_file(header, data_bytes, header.size());
}

std::string read_error(const std::string& path) {
    try {
        read_safetensors(path);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "<no error>";
}

// Expects reading `bytes` to fail with a message naming the file and `needle`.
void expect_rejected(const TempDir& tmp, const std::vector<uint8_t>& bytes, const std::string& needle) {
    static int counter = 0;
    const std::string path = tmp.file("bad" + std::to_string(counter++) + ".safetensors");
    spit(path, bytes);
    const std::string msg = read_error(path);
    BOOST_TEST_INFO("message: " << msg);
    BOOST_CHECK(msg.find(path + ": ") == 0);
    BOOST_CHECK(msg.find(needle) != std::string::npos);
}

StFile sample_file() {
    StFile f;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    f.entries.push_back({"w.f64", "F64", {2, 3}, as_bytes(std::vector<double>{1.5, -0.0, nan, inf, -inf, 1e-310})});
    f.entries.push_back({"a.f32", "F32", {3}, as_bytes(std::vector<float>{0.1f, -2.f, 3e38f})});
    f.entries.push_back({"step", "I64", {}, as_bytes(std::vector<int64_t>{-1234567890123})});
    f.entries.push_back({"empty", "F32", {0, 4}, {}});
    f.entries.push_back({"mask", "U8", {5}, {0, 1, 255, 7, 9}});
    f.metadata = {{"format", "pt"}, {"config", "[model]\nd = 64\n"}};
    return f;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(safetensors)

BOOST_AUTO_TEST_CASE(round_trip_is_bit_exact) {
    TempDir tmp;
    const std::string path = tmp.file("ckpt.safetensors");
    const StFile in = sample_file();
    write_safetensors(path, in);
    const StFile out = read_safetensors(path);

    BOOST_TEST(out.metadata == in.metadata);
    BOOST_REQUIRE_EQUAL(out.entries.size(), in.entries.size());
    for (const StEntry& e : in.entries) {
        const StEntry* got = out.find(e.name);
        BOOST_REQUIRE(got != nullptr);
        BOOST_TEST(got->dtype == e.dtype);
        BOOST_TEST(got->shape == e.shape);
        BOOST_TEST(got->bytes == e.bytes);  // NaN payloads and -0.0 survive
    }
    BOOST_TEST(out.find("missing") == nullptr);
    for (size_t i = 1; i < out.entries.size(); ++i) BOOST_CHECK(out.entries[i - 1].name < out.entries[i].name);
}

BOOST_AUTO_TEST_CASE(layout_matches_the_reference_writer) {
    TempDir tmp;
    const std::string path = tmp.file("ckpt.safetensors");
    const StFile in = sample_file();
    write_safetensors(path, in);
    const std::vector<uint8_t> raw = slurp(path);

    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(raw[i]) << (8 * i);
    BOOST_TEST(n % 8 == 0u);
    BOOST_TEST(raw[8] == '{');
    const std::string header(raw.begin() + 8, raw.begin() + 8 + static_cast<long>(n));
    BOOST_TEST(header.find("\"w.f64\":{\"dtype\":\"F64\",\"shape\":[2,3],\"data_offsets\":[") != std::string::npos);
    BOOST_TEST(header.find("__metadata__") == 2u);

    // Data section = entries' bytes concatenated in name order.
    std::vector<uint8_t> expected;
    for (const char* name : {"a.f32", "empty", "mask", "step", "w.f64"}) {
        const StEntry* e = nullptr;
        for (const StEntry& x : in.entries)
            if (x.name == name) e = &x;
        expected.insert(expected.end(), e->bytes.begin(), e->bytes.end());
    }
    BOOST_TEST(std::vector<uint8_t>(raw.begin() + 8 + static_cast<long>(n), raw.end()) == expected);
}

BOOST_AUTO_TEST_CASE(failed_write_keeps_the_old_file) {
    TempDir tmp;
    const std::string path = tmp.file("ckpt.safetensors");
    write_safetensors(path, sample_file());
    const std::vector<uint8_t> before = slurp(path);

    auto write_error = [&](const StFile& f, const std::string& p) -> std::string {
        try {
            write_safetensors(p, f);
        } catch (const std::runtime_error& e) {
            return e.what();
        }
        return "<no error>";
    };
    StFile bad;
    bad.entries.push_back({"x", "F32", {2}, {1, 2, 3}});
    BOOST_TEST(write_error(bad, path).find("needs 8 bytes, got 3") != std::string::npos);
    bad.entries = {{"x", "F31", {}, {}}};
    BOOST_TEST(write_error(bad, path).find("unknown dtype 'F31'") != std::string::npos);
    bad.entries = {{"x", "U8", {1}, {1}}, {"x", "U8", {1}, {2}}};
    BOOST_TEST(write_error(bad, path).find("duplicate entry 'x'") != std::string::npos);
    bad.entries = {{"__metadata__", "U8", {1}, {1}}};
    BOOST_TEST(write_error(bad, path).find("reserved") != std::string::npos);
    bad.entries = {{"x", "U8", {-1}, {}}};
    BOOST_TEST(write_error(bad, path).find("invalid shape [-1]") != std::string::npos);
    bad.entries = {{"bad\xff", "U8", {1}, {1}}};
    BOOST_TEST(write_error(bad, path).find("UTF-8") != std::string::npos);

    BOOST_TEST(slurp(path) == before);
    size_t files = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp.dir)) ++files;
    BOOST_TEST(files == 1u);  // no temporary left behind

    BOOST_TEST(write_error(sample_file(), tmp.file("no/such/dir/x.safetensors")).find("cannot create") !=
               std::string::npos);

    // A successful write replaces the file.
    StFile small;
    small.entries.push_back({"only", "I32", {1}, as_bytes(std::vector<int32_t>{42})});
    write_safetensors(path, small);
    BOOST_TEST(read_safetensors(path).entries.size() == 1u);
}

BOOST_AUTO_TEST_CASE(every_kind_of_corruption_is_named) {
    TempDir tmp;
    const std::string ok_entry = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
    // The hand-made baseline is valid; each case below breaks one thing.
    spit(tmp.file("ok.safetensors"), raw_file("{" + ok_entry + "}", 8));
    BOOST_TEST(read_safetensors(tmp.file("ok.safetensors")).entries.size() == 1u);

    expect_rejected(tmp, {1, 2, 3}, "too short");
    expect_rejected(tmp, raw_file("{}", 0, UINT64_MAX), "header length 18446744073709551615 (bytes 0..7) exceeds");
    expect_rejected(tmp, raw_file("{}", 0, 3), "exceeds the 2 bytes");
    expect_rejected(tmp, raw_file("{\"a\":", 0), "not valid JSON");
    expect_rejected(tmp, raw_file("[1, 2]", 0), "must be a JSON object");
    expect_rejected(tmp, raw_file(R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", 8),
                    "'a': unknown dtype 'F33'");
    expect_rejected(tmp, raw_file(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8),
                    "non-negative integers, got 2.0");
    expect_rejected(tmp, raw_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
                    "non-negative integers, got -2");
    expect_rejected(tmp, raw_file(R"({"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", 8),
                    "non-negative integers");
    expect_rejected(tmp, raw_file(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8),
                    "shape must be an array");
    expect_rejected(tmp, raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
                    "span 8 bytes but shape [3] of F32 needs 12");
    expect_rejected(tmp, raw_file(R"({"a":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,8]}})", 8),
                    "too large");
    expect_rejected(tmp, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), "begin > end");
    expect_rejected(tmp, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8),
                    "data_offsets must be [begin, end]");
    expect_rejected(tmp, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8),
                    "unexpected field 'x'");
    expect_rejected(tmp, raw_file(R"({"a":{"dtype":"F32","shape":[2]}})", 8), "needs the fields");
    expect_rejected(tmp, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 8),
                    "run past the end of the 8-byte data section");
    expect_rejected(tmp, raw_file("{" + ok_entry + R"(,"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", 8),
                    "overlap entry 'a'");
    expect_rejected(tmp, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
                    "leave data bytes [0, 4) unused");
    expect_rejected(tmp, raw_file("{" + ok_entry + "}", 9), "has 9 bytes but the entries cover only 8");
    expect_rejected(tmp, raw_file("{" + ok_entry + "," + ok_entry + "}", 8), "duplicate key 'a'");
    expect_rejected(tmp, raw_file(R"({"__metadata__":{"k":1}})", 0), "__metadata__ value for 'k' must be a string");
    expect_rejected(tmp, raw_file(R"({"__metadata__":[]})", 0), "__metadata__ must be a JSON object");
    expect_rejected(tmp, raw_file("{\"a\xff\":1}", 0), "not valid JSON");

    const std::string missing = tmp.file("missing.safetensors");
    BOOST_TEST(read_error(missing).find(missing + ": cannot open") == 0u);
}

// JSON nested a million deep overflowed the stack in the error message's
// json::dump, and a shape with a zero dim passed however large its other
// dims, so that the tensor built from it (read_tensor_file, read_checkpoint)
// overflowed int64 in its strides or element count (tests/fuzz/ replays both).
BOOST_AUTO_TEST_CASE(deep_json_and_shapes_without_strides_are_refused) {
    TempDir tmp;
    const size_t deep = 1'000'000;
    expect_rejected(tmp,
                    raw_file(R"({"a":{"dtype":"F32","shape":[)" + std::string(deep, '[') + std::string(deep, ']') +
                                 R"(],"data_offsets":[0,0]}})",
                             0),
                    "header nests JSON arrays or objects more than 16 levels deep");
    expect_rejected(tmp, raw_file(R"({"a":)" + std::string(deep, '[') + std::string(deep, ']') + "}", 0),
                    "more than 16 levels deep");
    // Valid nesting is three deep: the header, an entry, its shape.
    expect_rejected(tmp, raw_file(R"({"a":{"dtype":"F32","shape":[[[2]]],"data_offsets":[0,8]}})", 8),
                    "shape must hold non-negative integers, got [[2]]");
    // Long JSON in a message is cut short.
    std::string many = "[0";
    for (int i = 1; i < 1000; ++i) many += "," + std::to_string(i);
    spit(tmp.file("long.safetensors"), raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":)" + many + "]}}", 8));
    const std::string msg = read_error(tmp.file("long.safetensors"));
    BOOST_TEST_INFO("message: " << msg);
    BOOST_CHECK(msg.find("data_offsets must be [begin, end] with non-negative integers, got [0,1,2,3,4,5,6,7,") !=
                std::string::npos);
    BOOST_TEST(msg.size() < 300u);
    // No bytes, but 2^124 elements if the zero dim were not there: no int64 strides.
    expect_rejected(tmp,
                    raw_file(R"({"a":{"dtype":"F64","shape":[0,4611686018427387904,4611686018427387904],)"
                             R"("data_offsets":[0,0]}})",
                             0),
                    "'a': shape [0, 4611686018427387904, 4611686018427387904] is too large");
    expect_rejected(tmp,
                    raw_file(R"({"a":{"dtype":"U8","shape":[4611686018427387904,2,0],"data_offsets":[0,0]}})", 0),
                    "'a': shape [4611686018427387904, 2, 0] is too large");
    // The largest zero-sized shapes that have strides still pass.
    spit(tmp.file("zero.safetensors"),
         raw_file(R"({"a":{"dtype":"U8","shape":[0,4611686018427387904,1],"data_offsets":[0,0]}})", 0));
    BOOST_TEST(read_safetensors(tmp.file("zero.safetensors")).entries.at(0).shape ==
               (std::vector<int64_t>{0, 4611686018427387904, 1}));
}

// A header of n zero-sized entries (t0000000, t0000001, ...), the last
// named like the first when `duplicate`: a legal file when not.
std::vector<uint8_t> many_entries(size_t n, bool duplicate) {
    std::string h = "{";
    char name[32];
    for (size_t i = 0; i < n; ++i) {
        std::snprintf(name, sizeof name, "t%07zu", duplicate && i + 1 == n ? size_t{0} : i);
        h += std::string(i ? "," : "") + "\"" + name + R"(":{"dtype":"F32","shape":[0],"data_offsets":[0,0]})";
    }
    h += "}";
    h.append((8 - h.size() % 8) % 8, ' ');
    return raw_file(h, 0);
}

// The duplicate-key check used a callback of nlohmann::json::parse, whose
// parser rescans the enclosing object whenever a child object ends: time
// grew with the square of the entries (40,000 took 101 s, 500,000 did not
// finish in an hour). 200,000 entries (a 14 MB header) now take about a
// second of CPU (measured as this thread's CPU time, so a busy machine does
// not fail it); the bound leaves room for a sanitized build.
BOOST_AUTO_TEST_CASE(many_entry_headers_load_in_linear_time) {
    TempDir tmp;
    const size_t n = 200'000;
    const std::string ok = tmp.file("many.safetensors"), dup = tmp.file("dup.safetensors");
    spit(ok, many_entries(n, false));
    spit(dup, many_entries(n, true));
    auto seconds = [](auto&& f) {
        const auto t0 = miras::testing::thread_cpu_seconds();
        f();
        return miras::testing::thread_cpu_seconds() - t0;
    };
    size_t entries = 0;
    const double load = seconds([&] { entries = read_safetensors(ok).entries.size(); });
    BOOST_TEST(entries == n);
    std::string msg;
    const double refuse = seconds([&] { msg = read_error(dup); });
    BOOST_TEST(msg.find(dup + ": duplicate key 't0000000' in header") == 0u, msg);
    BOOST_TEST_MESSAGE("200,000 entries: loaded in " << load << " s, duplicate refused in " << refuse << " s");
    BOOST_TEST(load < 20.0);
    BOOST_TEST(refuse < 20.0);
}

// A FIFO was opened before its type was checked, and the open waited for
// a writer forever (eval, forward --params, read_tensor_file): it is now
// refused as /dev/zero is.
BOOST_AUTO_TEST_CASE(a_fifo_is_refused_without_blocking) {
    TempDir tmp;
    const std::string fifo = tmp.file("fifo.safetensors");
    BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    BOOST_TEST(miras::testing::fifo_error(fifo, [&] { read_safetensors(fifo); }) == fifo + ": not a regular file");
    BOOST_TEST(read_error("/dev/zero") == "/dev/zero: not a regular file");
}

BOOST_AUTO_TEST_CASE(truncated_and_bit_flipped_files_never_crash) {
    TempDir tmp;
    const std::string good = tmp.file("good.safetensors");
    write_safetensors(good, sample_file());
    const std::vector<uint8_t> raw = slurp(good);
    // Every proper prefix is rejected.
    for (size_t n = 0; n < raw.size(); ++n) {
        const std::string cut = tmp.file("cut" + std::to_string(n));
        spit(cut, std::vector<uint8_t>(raw.begin(), raw.begin() + static_cast<long>(n)));
        BOOST_CHECK_THROW(read_safetensors(cut), std::runtime_error);
    }
    // Random flips in the length field and header either fail cleanly or yield a
    // file that is still self-consistent.
    uint64_t state = 12345;
    auto next = [&] {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        return state >> 33;
    };
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(raw[i]) << (8 * i);
    const std::string bad = tmp.file("flipped.safetensors");
    spit(bad, raw);
    int rejected = 0;
    for (int trial = 0; trial < 3000; ++trial) {
        std::vector<uint8_t> b = raw;
        for (int k = 0, flips = 1 + static_cast<int>(next() % 3); k < flips; ++k)
            b[next() % (8 + n)] ^= static_cast<uint8_t>(1u << (next() % 8));
        overwrite(bad, b);
        try {
            StFile f = read_safetensors(bad);
            for (const StEntry& e : f.entries) {
                size_t count = 1;
                for (int64_t d : e.shape) count *= static_cast<size_t>(d);
                BOOST_CHECK(e.bytes.size() == count * st_dtype_size(e.dtype));
            }
        } catch (const std::runtime_error& e) {
            ++rejected;
            BOOST_CHECK(std::string(e.what()).find(bad + ": ") == 0);
        }
    }
    BOOST_TEST(rejected > 2000);
}

BOOST_AUTO_TEST_SUITE_END()
