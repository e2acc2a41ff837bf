#include <boost/test/unit_test.hpp>

#include "op_test_util.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include "train/tasks.h"

using namespace miras;

using miras::test::error_of;

namespace {

// FNV-1a over the token ids: pins generated data across machines and versions.
uint64_t fingerprint(const TokenBatch& b) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const auto* v : {&b.inputs, &b.targets})
        for (int64_t x : *v) {
            h ^= static_cast<uint64_t>(x);
            h *= 0x100000001b3ull;
        }
    return h;
}

std::vector<int64_t> row(const std::vector<int64_t>& flat, int64_t b, int64_t T) {
    return {flat.begin() + b * T, flat.begin() + (b + 1) * T};
}

// Checks every property make_mqar promises for one batch.
void check_mqar(const MqarSpec& s, const TokenBatch& batch) {
    const int64_t T = s.seq_len, P = s.num_pairs, Q = s.num_queries ? s.num_queries : P;
    const int64_t first_value = 1 + (s.vocab_size - 1) / 2;
    BOOST_REQUIRE_EQUAL(batch.inputs.size(), static_cast<size_t>(batch.batch * T));
    BOOST_REQUIRE_EQUAL(batch.targets.size(), batch.inputs.size());
    for (int64_t b = 0; b < batch.batch; ++b) {
        const auto in = row(batch.inputs, b, T), tg = row(batch.targets, b, T);
        std::map<int64_t, int64_t> value_of;
        for (int64_t i = 0; i < P; ++i) {
            BOOST_CHECK(in[2 * i] >= 1 && in[2 * i] < first_value);
            BOOST_CHECK(in[2 * i + 1] >= first_value && in[2 * i + 1] < s.vocab_size);
            BOOST_CHECK(value_of.emplace(in[2 * i], in[2 * i + 1]).second);  // keys distinct
            BOOST_CHECK(tg[2 * i] == kIgnoreIndex && tg[2 * i + 1] == kIgnoreIndex);
        }
        std::set<int64_t> asked;
        for (int64_t i = 0; i < Q; ++i) {
            const int64_t q = 2 * P + 2 * i;
            BOOST_REQUIRE(value_of.count(in[q]));
            BOOST_CHECK(asked.insert(in[q]).second);
            BOOST_CHECK_EQUAL(in[q + 1], value_of[in[q]]);
            BOOST_CHECK_EQUAL(tg[q], value_of[in[q]]);  // the label of the query is its answer
            BOOST_CHECK_EQUAL(tg[q + 1], kIgnoreIndex);
        }
        for (int64_t t = 2 * P + 2 * Q; t < T; ++t) BOOST_CHECK(in[t] == 0 && tg[t] == kIgnoreIndex);
    }
}

struct TempBytes {
    std::string path;
    explicit TempBytes(const std::vector<uint8_t>& bytes) {
        path = (std::filesystem::temp_directory_path() / ("miras_corpus_" + std::to_string(::getpid()))).string();
        std::ofstream(path, std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    ~TempBytes() { std::filesystem::remove(path); }
};

// True if the window inputs[b] + last target occurs in `hay`.
bool window_in(const TokenBatch& batch, int64_t b, const std::vector<uint8_t>& hay) {
    std::vector<uint8_t> w;
    for (int64_t t = 0; t < batch.seq_len; ++t) {
        const int64_t x = batch.inputs[static_cast<size_t>(b * batch.seq_len + t)];
        if (t > 0 && batch.targets[static_cast<size_t>(b * batch.seq_len + t - 1)] != x) return false;
        w.push_back(static_cast<uint8_t>(x));
    }
    w.push_back(static_cast<uint8_t>(batch.targets[static_cast<size_t>((b + 1) * batch.seq_len - 1)]));
    return std::search(hay.begin(), hay.end(), w.begin(), w.end()) != hay.end();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tasks)

BOOST_AUTO_TEST_CASE(rng_matches_the_reference_algorithms) {
    uint64_t state = 0;
    BOOST_TEST(splitmix64(state) == 0xe220a8397b1dcdafull);
    BOOST_TEST(splitmix64(state) == 0x6e789e6aa1b965f4ull);
    BOOST_TEST(splitmix64(state) == 0x06c45d188009454full);
    Rng r(42);  // Vigna's xoshiro256** seeded by splitmix64(42)
    BOOST_TEST(r.next() == 0x15780b2e0c2ec716ull);
    BOOST_TEST(r.next() == 0x6104d9866d113a7eull);
    BOOST_TEST(r.next() == 0xae17533239e499a1ull);

    Rng u(1);
    std::vector<int> counts(7, 0);
    for (int i = 0; i < 70000; ++i) {
        const uint64_t k = u.below(7);
        BOOST_REQUIRE(k < 7u);
        ++counts[k];
        const double x = u.uniform();
        BOOST_REQUIRE(x >= 0.0 && x < 1.0);
    }
    for (int c : counts) BOOST_TEST(std::abs(c - 10000) < 500);  // ~5 sigma
    BOOST_TEST(u.below(1) == 0u);
    BOOST_CHECK_THROW(u.below(0), std::invalid_argument);
    BOOST_TEST(Rng::stream(5, 0).next() != Rng::stream(5, 1).next());
    BOOST_TEST(Rng::stream(5, 0).next() != Rng::stream(6, 0).next());
}

BOOST_AUTO_TEST_CASE(mqar_rows_hold_what_they_claim) {
    for (MqarSpec s : {MqarSpec{}, MqarSpec{17, 40, 8, 0}, MqarSpec{100, 64, 10, 3}, MqarSpec{3, 4, 1, 1}}) {
        for (uint64_t seed : {0ull, 1ull, 12345ull}) check_mqar(s, make_mqar(s, 16, seed));
    }
    // With V = 17 all 8 key tokens appear in every row: keys really are distinct.
    const TokenBatch tight = make_mqar({17, 32, 8, 0}, 4, 9);
    for (int64_t b = 0; b < 4; ++b) {
        std::set<int64_t> keys;
        for (int i = 0; i < 8; ++i) keys.insert(tight.inputs[static_cast<size_t>(b * 32 + 2 * i)]);
        BOOST_TEST(keys.size() == 8u);
    }
    // Queries come in random order, not in the order the pairs were given.
    const TokenBatch many = make_mqar({256, 32, 8, 0}, 16, 2);
    int in_pair_order = 0;
    for (int64_t b = 0; b < 16; ++b)
        in_pair_order += many.inputs[static_cast<size_t>(b * 32 + 16)] == many.inputs[static_cast<size_t>(b * 32)];
    BOOST_TEST(in_pair_order < 8);
}

BOOST_AUTO_TEST_CASE(mqar_is_deterministic) {
    const MqarSpec s{64, 48, 6, 4};
    const TokenBatch a = make_mqar(s, 8, 7), b = make_mqar(s, 8, 7), c = make_mqar(s, 8, 8);
    BOOST_TEST(a.inputs == b.inputs);
    BOOST_TEST(a.targets == b.targets);
    BOOST_TEST(a.inputs != c.inputs);
    // Row b does not depend on the batch size.
    const TokenBatch small = make_mqar(s, 3, 7);
    BOOST_TEST(small.inputs == std::vector<int64_t>(a.inputs.begin(), a.inputs.begin() + 3 * 48));
    // Pinned so that a change of the generator (or of a platform) shows up.
    BOOST_TEST(fingerprint(make_mqar({32, 16, 3, 2}, 2, 1)) == 0x806c692b6756e69dull);
    std::string d = describe(s);
    BOOST_TEST(d == "mqar: vocab 64, seq_len 48, 6 pairs, 4 queries; pad 0, keys [1, 32), values [32, 64)");
}

BOOST_AUTO_TEST_CASE(mqar_rejects_impossible_specs) {
    auto err = [](MqarSpec s, int64_t batch = 1) {
        return error_of<std::invalid_argument>([&] { make_mqar(s, batch, 0); });
    };
    BOOST_TEST(err({16, 64, 8, 0}) ==
               "mqar: vocab_size 16 leaves 7 key tokens, too few for 8 distinct keys (needs vocab_size >= 17)");
    BOOST_TEST(err({256, 31, 8, 0}) == "mqar: seq_len 31 is too short for 8 pairs and 8 queries (needs >= 32)");
    BOOST_TEST(err({256, 64, 8, 9}) == "mqar: num_queries must be in [0, num_pairs = 8], got 9");
    BOOST_TEST(err({256, 64, 0, 0}) == "mqar: num_pairs must be >= 1, got 0");
    BOOST_TEST(err({256, 64, 8, 0}, 0) == "mqar: batch must be >= 1, got 0");
}

// `--set train.batch=1048576 --set data.seq_len=16777216` printed only
// "error: std::bad_alloc". A batch too large for memory says how large and
// what for. (2^61 ids of 8 bytes: beyond any address space, and beyond what
// a vector may request, so the failure comes before operator new, which
// under AddressSanitizer aborts instead of throwing.)
BOOST_AUTO_TEST_CASE(a_batch_too_large_for_memory_names_its_size) {
    MqarSpec s;
    s.seq_len = int64_t(1) << 31;
    bool thrown = false;
    try {
        make_mqar(s, int64_t(1) << 30, 1);
    } catch (const std::bad_alloc& e) {  // OutOfMemory: still a bad_alloc
        thrown = true;
        const std::string what = e.what();
        BOOST_TEST(what == "out of memory allocating 1.72e+10 GiB (2305843009213693952 x 8 bytes) for the token ids of "
                           "a batch of 1073741824 x 2147483648 tokens (train.batch x data.seq_len when training)",
                   what);
    }
    BOOST_TEST(thrown);
}

BOOST_AUTO_TEST_CASE(passkey_needle_sits_at_the_requested_depth) {
    for (double depth : {0.0, 0.25, 0.5, 1.0}) {
        const PasskeySpec s{40, 100, 5, depth};
        const int64_t pos = passkey_needle_position(s), query = 100 - 5 - 1;
        BOOST_TEST(pos == std::llround(depth * (100 - 12)));
        const TokenBatch b = make_passkey(s, 6, 3);
        for (int64_t r = 0; r < 6; ++r) {
            const auto in = row(b.inputs, r, 100), tg = row(b.targets, r, 100);
            BOOST_TEST(in[pos] == kPasskeyMarker);
            BOOST_TEST(in[query] == kPasskeyQuery);
            int64_t labelled = 0;
            for (int64_t t = 0; t < 100; ++t) {
                const bool in_needle = t > pos && t <= pos + 5, in_answer = t > query;
                if (in_needle || in_answer)
                    BOOST_TEST((in[t] >= 0 && in[t] <= 9));
                else if (t != pos && t != query)
                    BOOST_TEST((in[t] >= kPasskeyFirstFiller && in[t] < 40));
                if (tg[t] != kIgnoreIndex) {
                    ++labelled;
                    BOOST_TEST((t >= query && t < 99));
                    BOOST_TEST(tg[t] == in[t + 1]);
                }
            }
            BOOST_TEST(labelled == 5);
            for (int64_t i = 1; i <= 5; ++i) BOOST_TEST(in[query + i] == in[pos + i]);  // the answer is the passkey
        }
    }
    const PasskeySpec s{40, 100, 5, 0.3};
    BOOST_TEST(make_passkey(s, 4, 1).inputs == make_passkey(s, 4, 1).inputs);
    BOOST_TEST(make_passkey(s, 4, 1).inputs != make_passkey(s, 4, 2).inputs);
    BOOST_TEST(describe(s).find("needle marker 10 at position 26") != std::string::npos);

    auto err = [](PasskeySpec p) { return error_of<std::invalid_argument>([&] { make_passkey(p, 1, 0); }); };
    BOOST_TEST(err({12, 100, 5, 0.5}) == "passkey: vocab_size must be >= 13 (digits, two markers, filler), got 12");
    BOOST_TEST(err({40, 11, 5, 0.5}) ==
               "passkey: seq_len 11 cannot hold the needle and the query of 5 digits (needs >= 12)");
    BOOST_TEST(err({40, 100, 5, 1.5}).find("depth must be in [0, 1]") != std::string::npos);
    BOOST_TEST(err({40, 100, 5, std::nan("")}).find("depth must be in [0, 1]") != std::string::npos);
    BOOST_TEST(err({40, 100, 0, 0.5}) == "passkey: num_digits must be >= 1, got 0");
    const TokenBatch minimal = make_passkey({13, 12, 5, 1.0}, 1, 0);  // no filler at all
    BOOST_TEST(minimal.inputs[0] == kPasskeyMarker);
    BOOST_TEST(minimal.inputs[6] == kPasskeyQuery);
}

// depth_max: every row its own needle position, spread over the range, the
// rest of the row as with one depth; depth_max = depth is that one depth.
BOOST_AUTO_TEST_CASE(passkey_per_row_depths_cover_the_range) {
    const PasskeySpec s{40, 100, 5, 0.25, 0.75};
    const int64_t lo = passkey_needle_position(s, 0.25), hi = passkey_needle_position(s, 0.75), query = 100 - 5 - 1;
    const int64_t rows = 200;
    const TokenBatch b = make_passkey(s, rows, 9);
    std::set<int64_t> seen;
    for (int64_t r = 0; r < rows; ++r) {
        const auto in = row(b.inputs, r, 100);
        int64_t pos = -1;
        for (int64_t t = 0; t < query; ++t)
            if (in[t] == kPasskeyMarker) pos = t;
        BOOST_REQUIRE(pos >= 0);
        BOOST_TEST((pos >= lo && pos <= hi), "row " << r << " needle at " << pos);
        for (int64_t i = 1; i <= 5; ++i) BOOST_TEST(in[query + i] == in[pos + i]);
        seen.insert(pos);
    }
    BOOST_TEST(seen.size() > (size_t)(hi - lo) / 2, seen.size() << " distinct positions of " << hi - lo + 1);
    BOOST_TEST(make_passkey(s, 4, 1).inputs == make_passkey(s, 4, 1).inputs);
    // depth_max = depth: every row at that depth
    const TokenBatch fixed = make_passkey({40, 100, 5, 0.5, 0.5}, 8, 2);
    const int64_t mid = passkey_needle_position({40, 100, 5, 0.5});
    for (int64_t r = 0; r < 8; ++r) BOOST_TEST(row(fixed.inputs, r, 100)[mid] == kPasskeyMarker);
    BOOST_TEST(describe(s).find("depth uniform in [0.25, 0.75] per row") != std::string::npos);
    auto err = [](PasskeySpec p) { return error_of<std::invalid_argument>([&] { make_passkey(p, 1, 0); }); };
    BOOST_TEST(err({40, 100, 5, 0.5, 0.4}).find("depth_max must be in [depth = 0.5, 1]") != std::string::npos);
    BOOST_TEST(err({40, 100, 5, 0.5, 1.5}).find("depth_max") != std::string::npos);
}


// Spread MQAR (MQAR at length): every property the layout promises.
void check_spread(const MqarSpec& s, const TokenBatch& batch) {
    const int64_t T = s.seq_len, F = s.filler_vocab, K = (s.vocab_size - 1 - F) / 2;
    const int64_t first_value = 1 + K, first_filler = s.vocab_size - F;
    for (int64_t b = 0; b < batch.batch; ++b) {
        const auto in = row(batch.inputs, b, T), tg = row(batch.targets, b, T);
        const std::vector<int32_t> gr(batch.groups.begin() + b * T, batch.groups.begin() + (b + 1) * T);
        std::map<int64_t, int64_t> value_of;  // pairs written so far
        std::set<int64_t> asked;
        int64_t pairs = 0, queries = 0, filler = 0;
        for (int64_t t = 0; t < T;) {
            const int64_t x = in[(size_t)t];
            if (F > 0 ? x >= first_filler : x == 0) {  // filler
                BOOST_TEST(tg[(size_t)t] == kIgnoreIndex);
                ++filler, ++t;
                continue;
            }
            BOOST_REQUIRE((x >= 1 && x < first_value));  // a key starts every item
            BOOST_REQUIRE(t + 1 < T);
            const int64_t v = in[(size_t)t + 1];
            BOOST_TEST((v >= first_value && v < first_filler));
            BOOST_TEST(tg[(size_t)t + 1] == kIgnoreIndex);
            if (!value_of.count(x)) {  // a write: no target
                value_of[x] = v;
                BOOST_TEST(tg[(size_t)t] == kIgnoreIndex);
                ++pairs;
            } else {  // a query, after its pair: its target is the pair's value
                BOOST_TEST(asked.insert(x).second);
                BOOST_TEST(v == value_of[x]);
                BOOST_TEST(tg[(size_t)t] == v);
                BOOST_TEST(gr[(size_t)t] == std::min<int64_t>(3, 4 * t / T));
                ++queries;
            }
            t += 2;
        }
        const int64_t lo = s.min_pairs > 0 ? s.min_pairs : s.num_pairs;
        BOOST_TEST((pairs >= lo && pairs <= s.num_pairs));
        BOOST_TEST(queries == (s.num_queries ? std::min(s.num_queries, pairs) : pairs));
        BOOST_TEST(filler == T - 2 * (pairs + queries));
    }
}

BOOST_AUTO_TEST_CASE(spread_mqar_rows_hold_what_they_claim) {
    MqarSpec s{1024, 256, 32, 0};
    s.spread = true;
    s.filler_vocab = 128;
    const TokenBatch b = make_mqar(s, 64, 3);
    check_spread(s, b);
    // Queries land in every quarter of the row, at many distances from their pairs.
    std::set<int32_t> quarters;
    std::set<int64_t> distances;
    for (int64_t r = 0; r < 64; ++r) {
        std::map<int64_t, int64_t> at;
        for (int64_t t = 0; t < 256; ++t) {
            const int64_t x = b.inputs[(size_t)(r * 256 + t)];
            if (b.targets[(size_t)(r * 256 + t)] != kIgnoreIndex) {
                quarters.insert(b.groups[(size_t)(r * 256 + t)]);
                distances.insert(t - at[x]);
            } else if (x >= 1 && x < 448) {  // a key (values and filler lie above): its first place is its write
                at.emplace(x, t);
            }
        }
    }
    BOOST_TEST(quarters.size() == 4u);
    BOOST_TEST(distances.size() > 100u, distances.size() << " distinct query-pair distances");
    // Deterministic in the seed, row b independent of the batch size.
    BOOST_TEST(make_mqar(s, 4, 3).inputs == std::vector<int64_t>(b.inputs.begin(), b.inputs.begin() + 4 * 256));
    BOOST_TEST(make_mqar(s, 4, 4).inputs != make_mqar(s, 4, 3).inputs);
    // Filler 0 (no filler ids), fewer queries than pairs, rows of mixed size.
    MqarSpec z{64, 96, 12, 6};
    z.spread = true;
    z.min_pairs = 4;
    check_spread(z, make_mqar(z, 64, 1));
    std::set<int64_t> sizes;
    const TokenBatch m = make_mqar(z, 64, 1);
    for (int64_t r = 0; r < 64; ++r) {
        int64_t q = 0;
        for (int64_t t = 0; t < 96; ++t) q += m.targets[(size_t)(r * 96 + t)] != kIgnoreIndex;
        sizes.insert(q);
    }
    BOOST_TEST(sizes.size() > 1u);  // min(6, P) varies with P in [4, 12]
    // Mixed sizes in the packed layout: queries right after the row's pairs.
    MqarSpec p{64, 64, 12, 0};
    p.min_pairs = 2;
    const TokenBatch pb = make_mqar(p, 32, 5);
    for (int64_t r = 0; r < 32; ++r) {
        int64_t first_target = -1, n = 0;
        for (int64_t t = 0; t < 64; ++t)
            if (pb.targets[(size_t)(r * 64 + t)] != kIgnoreIndex) {
                if (first_target < 0) first_target = t;
                ++n;
            }
        BOOST_TEST((n >= 2 && n <= 12));
        BOOST_TEST(first_target == 2 * n);  // n pairs, then the first query
    }
    BOOST_TEST(describe(s) == "mqar: vocab 1024, seq_len 256, 32 pairs, every pair queried, spread over the row; pad 0, "
                              "keys [1, 448), values [448, 896), filler [896, 1024)");
    auto err = [](MqarSpec x) { return error_of<std::invalid_argument>([&] { make_mqar(x, 1, 0); }); };
    MqarSpec bad = s;
    bad.filler_vocab = 1000;
    BOOST_TEST(err(bad).find("with 1000 filler ids leaves 11 key tokens") != std::string::npos, err(bad));
    bad = s;
    bad.min_pairs = 33;
    BOOST_TEST(err(bad) == "mqar: min_pairs must be in [0, num_pairs = 32], got 33");
    bad = MqarSpec{1024, 256, 32, 0};
    bad.filler_vocab = 8;
    BOOST_TEST(err(bad) == "mqar: filler_vocab is for the spread layout; set spread = true");
}

BOOST_AUTO_TEST_CASE(passkey_targets_are_grouped_by_depth) {
    const PasskeySpec s{40, 100, 5, 0.0, 1.0};
    const TokenBatch b = make_passkey(s, 300, 4);
    std::set<int32_t> seen;
    for (int64_t r = 0; r < 300; ++r) {
        int64_t pos = -1;
        for (int64_t t = 0; t < 94; ++t)
            if (b.inputs[(size_t)(r * 100 + t)] == kPasskeyMarker) pos = t;
        const double depth_lo = (double)pos / 88;  // the needle's start, as a depth (88 = last start)
        for (int64_t t = 0; t < 100; ++t) {
            const int32_t g = b.groups[(size_t)(r * 100 + t)];
            BOOST_TEST((g >= 0) == (b.targets[(size_t)(r * 100 + t)] != kIgnoreIndex));
            if (g < 0) continue;
            seen.insert(g);
            // The group is the row's depth in fifths (to within the rounding of the position).
            BOOST_TEST(std::abs(depth_lo - (g + 0.5) / 5) <= 0.1 + 1.0 / 88, "depth " << depth_lo << " group " << g);
        }
    }
    BOOST_TEST(seen.size() == 5u);
    BOOST_TEST(passkey_group_names().size() == 5u);
    BOOST_TEST(mqar_group_names().size() == 4u);
}

struct TempDirTree {
    std::filesystem::path dir;
    explicit TempDirTree(const std::string& tag) {
        dir = std::filesystem::temp_directory_path() / ("miras_docs_" + tag + "_" + std::to_string(::getpid()));
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir / "sub");
    }
    ~TempDirTree() { std::filesystem::remove_all(dir); }
    void write(const std::string& name, const std::string& text) const { std::ofstream(dir / name, std::ios::binary) << text; }
};

// A folder corpus: whole documents held out (by their names' hashes), the
// same choice whatever else the folder holds; a separate validation set.
BOOST_AUTO_TEST_CASE(byte_corpus_of_a_folder_holds_out_whole_documents) {
    TempDirTree t("corpus");
    std::map<std::string, std::string> docs;
    for (int i = 0; i < 20; ++i) {
        const std::string name = (i % 3 ? "" : "sub/") + std::string("doc") + std::to_string(i) + ".txt";
        docs[name] = std::string(50 + i, static_cast<char>('A' + i));  // each document its own letter
        t.write(name, docs[name]);
    }
    const ByteCorpus c(t.dir.string(), 0.2);
    BOOST_TEST(c.documents(Split::kHeldout) == 4);
    BOOST_TEST(c.documents(Split::kTrain) == 16);
    // Every document is wholly in one split: its letter appears in one only, as often as its length.
    const TokenBatch tr = c.sequential(Split::kTrain, 1, 0, c.num_windows(Split::kTrain, 1));
    const TokenBatch he = c.sequential(Split::kHeldout, 1, 0, c.num_windows(Split::kHeldout, 1));
    std::map<int64_t, int64_t> in_train, in_held;
    for (int64_t x : tr.inputs) ++in_train[x];
    for (int64_t x : he.inputs) ++in_held[x];
    int64_t total = 0;
    for (const auto& [name, text] : docs) {
        const int64_t letter = (unsigned char)text[0];
        BOOST_TEST(((in_train.count(letter) > 0) != (in_held.count(letter) > 0)), name);
        total += (int64_t)text.size();
    }
    BOOST_TEST(c.size(Split::kTrain) + c.size(Split::kHeldout) == total);
    // The choice depends on the names only: a FIFO or another file added does not move it.
    const ByteCorpus again(t.dir.string(), 0.2);
    BOOST_TEST(again.sequential(Split::kHeldout, 8, 0, 2).inputs == c.sequential(Split::kHeldout, 8, 0, 2).inputs);
    BOOST_TEST(::mkfifo((t.dir / "a_fifo").c_str(), 0600) == 0);  // skipped, never opened (it would block)
    const ByteCorpus with_fifo(t.dir.string(), 0.2);
    BOOST_TEST(with_fifo.size(Split::kHeldout) == c.size(Split::kHeldout));
    BOOST_TEST(c.describe().find("16 documents) + ") != std::string::npos, c.describe());
    // A separate validation file: all of the folder trains.
    TempBytes valid(std::vector<uint8_t>(300, 'z'));
    const ByteCorpus v(t.dir.string(), 0.2, valid.path);
    BOOST_TEST(v.size(Split::kTrain) == total);
    BOOST_TEST(v.size(Split::kHeldout) == 300);
    BOOST_TEST(v.describe().find("held out: '" + valid.path + "'") != std::string::npos, v.describe());
    // Windows spread evenly, and a list of windows.
    BOOST_TEST((spread_indices(10, 4) == std::vector<int64_t>{0, 2, 5, 7}));
    BOOST_TEST((spread_indices(3, 8) == std::vector<int64_t>{0, 1, 2}));
    const TokenBatch w = c.windows(Split::kTrain, 8, {3, 0});
    BOOST_TEST(std::vector<int64_t>(w.inputs.begin() + 8, w.inputs.end()) == c.sequential(Split::kTrain, 8, 0, 1).inputs);
    // Errors: an empty folder, a FIFO as the corpus.
    TempDirTree empty("empty");
    std::filesystem::remove_all(empty.dir / "sub");
    BOOST_TEST(error_of<std::runtime_error>([&] { ByteCorpus(empty.dir.string(), 0.1); }).find("holds no regular file") !=
               std::string::npos);
    const std::string fifo_err = error_of<std::runtime_error>([&] { ByteCorpus((t.dir / "a_fifo").string(), 0.1); });
    BOOST_TEST(fifo_err.find("is not a regular file or folder") != std::string::npos, fifo_err);
}

BOOST_AUTO_TEST_CASE(byte_corpus_windows_come_from_their_split) {
    std::vector<uint8_t> bytes(1000);
    uint64_t st = 99;
    for (uint8_t& x : bytes) x = static_cast<uint8_t>(splitmix64(st));
    TempBytes file(bytes);
    const ByteCorpus c(file.path, 0.1);
    BOOST_TEST(c.size(Split::kTrain) == 900);
    BOOST_TEST(c.size(Split::kHeldout) == 100);
    const std::vector<uint8_t> train(bytes.begin(), bytes.begin() + 900), held(bytes.begin() + 900, bytes.end());

    const TokenBatch t = c.sample(Split::kTrain, 32, 16, 5), h = c.sample(Split::kHeldout, 32, 16, 5);
    BOOST_TEST(t.batch == 32);
    BOOST_TEST(t.seq_len == 16);
    for (int64_t b = 0; b < 32; ++b) {
        BOOST_TEST(window_in(t, b, train));
        BOOST_TEST(window_in(h, b, held));
    }
    BOOST_TEST(c.sample(Split::kTrain, 4, 16, 5).inputs == c.sample(Split::kTrain, 4, 16, 5).inputs);
    BOOST_TEST(c.sample(Split::kTrain, 4, 16, 5).inputs != c.sample(Split::kTrain, 4, 16, 6).inputs);
    BOOST_TEST(c.sample(Split::kHeldout, 1, 99, 0).inputs[0] == held[0]);  // only one window fits

    BOOST_TEST(c.num_windows(Split::kHeldout, 16) == 6);
    const TokenBatch all = c.sequential(Split::kHeldout, 16, 0, 6);
    for (int64_t i = 0; i < 6 * 16; ++i) {
        BOOST_TEST(all.inputs[static_cast<size_t>(i)] == held[static_cast<size_t>(i)]);
        BOOST_TEST(all.targets[static_cast<size_t>(i)] == held[static_cast<size_t>(i) + 1]);
    }
    BOOST_TEST(c.describe() ==
               "byte corpus '" + file.path + "': 900 training bytes (1 document) + 100 held-out bytes (1 document; held-out fraction 0.1, the tail)");

    BOOST_TEST(error_of<std::runtime_error>([&] { c.sample(Split::kHeldout, 1, 100, 0); }) ==
               "byte corpus '" + file.path + "': the held-out split has 100 bytes, fewer than seq_len + 1 = 101");
    BOOST_TEST(error_of<std::runtime_error>([&] { ByteCorpus(file.path, 0.0).sample(Split::kHeldout, 1, 8, 0); }) ==
               "byte corpus '" + file.path + "': the held-out split has 0 bytes, fewer than seq_len + 1 = 9");
    BOOST_TEST(error_of<std::runtime_error>([&] {
                   c.sample(Split::kTrain, 1, 900, 0);
               }).find("training split has 900") != std::string::npos);
    BOOST_TEST(error_of<std::invalid_argument>([&] { c.sequential(Split::kHeldout, 16, 5, 2); }).find("out of the 6") !=
               std::string::npos);
    BOOST_TEST(error_of<std::runtime_error>([] { ByteCorpus("no/such/corpus.txt", 0.1); }) ==
               "byte corpus 'no/such/corpus.txt' not found");
    BOOST_CHECK_THROW(ByteCorpus(file.path, 1.0), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
