#include "train/tasks.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <stdexcept>

namespace miras {

namespace {

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// The splitmix64 output function on its own: a strong 64-bit hash.
uint64_t mix64(uint64_t x) {
    uint64_t s = x;
    return splitmix64(s);
}

void require(bool ok, const std::string& msg) {
    if (!ok) throw std::invalid_argument(msg);
}

// A fraction or depth as written in a config: 0.1, not std::to_string's 0.100000.
std::string num(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", x);
    return buf;
}

TokenBatch empty_batch(int64_t batch, int64_t seq_len, int64_t fill_inputs) {
    TokenBatch b;
    b.batch = batch;
    b.seq_len = seq_len;
    b.inputs.assign(static_cast<size_t>(batch * seq_len), fill_inputs);
    b.targets.assign(static_cast<size_t>(batch * seq_len), kIgnoreIndex);
    return b;
}

const char* split_name(Split s) { return s == Split::kTrain ? "training" : "held-out"; }

}  // namespace

uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

Rng::Rng(uint64_t seed) {
    // Vigna's recommended seeding; it never yields the all-zero state.
    for (uint64_t& s : s_) s = splitmix64(seed);
}

Rng Rng::stream(uint64_t seed, uint64_t stream) { return Rng(mix64(mix64(seed) + stream)); }

uint64_t Rng::next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
}

uint64_t Rng::below(uint64_t n) {
    if (n == 0) throw std::invalid_argument("Rng::below(0)");
    // Lemire's multiply-and-reject: exact uniformity, and the same integer
    // arithmetic everywhere.
    unsigned __int128 m = static_cast<unsigned __int128>(next()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
        const uint64_t threshold = (0 - n) % n;
        while (low < threshold) {
            m = static_cast<unsigned __int128>(next()) * n;
            low = static_cast<uint64_t>(m);
        }
    }
    return static_cast<uint64_t>(m >> 64);
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

// ---------------------------------------------------------------- MQAR

namespace {

int64_t mqar_queries(const MqarSpec& s) { return s.num_queries == 0 ? s.num_pairs : s.num_queries; }

void check(const MqarSpec& s, int64_t batch) {
    const int64_t keys = (s.vocab_size - 1) / 2;
    require(batch >= 1, "mqar: batch must be >= 1, got " + std::to_string(batch));
    require(s.num_pairs >= 1, "mqar: num_pairs must be >= 1, got " + std::to_string(s.num_pairs));
    require(keys >= s.num_pairs, "mqar: vocab_size " + std::to_string(s.vocab_size) + " leaves " +
                                     std::to_string(keys) + " key tokens, too few for " + std::to_string(s.num_pairs) +
                                     " distinct keys (needs vocab_size >= " + std::to_string(2 * s.num_pairs + 1) +
                                     ")");
    require(s.num_queries >= 0 && s.num_queries <= s.num_pairs,
            "mqar: num_queries must be in [0, num_pairs = " + std::to_string(s.num_pairs) + "], got " +
                std::to_string(s.num_queries));
    const int64_t need = 2 * s.num_pairs + 2 * mqar_queries(s);
    require(s.seq_len >= need, "mqar: seq_len " + std::to_string(s.seq_len) + " is too short for " +
                                   std::to_string(s.num_pairs) + " pairs and " + std::to_string(mqar_queries(s)) +
                                   " queries (needs >= " + std::to_string(need) + ")");
}

}  // namespace

TokenBatch make_mqar(const MqarSpec& s, int64_t batch, uint64_t seed) {
    check(s, batch);
    const int64_t keys = (s.vocab_size - 1) / 2, first_value = 1 + keys, values = s.vocab_size - first_value;
    const int64_t P = s.num_pairs, Q = mqar_queries(s), T = s.seq_len;
    TokenBatch out = empty_batch(batch, T, /*pad*/ 0);
    std::vector<int64_t> key_pool(static_cast<size_t>(keys)), order(static_cast<size_t>(P));
    for (int64_t b = 0; b < batch; ++b) {
        Rng rng = Rng::stream(seed, static_cast<uint64_t>(b));
        int64_t* in = &out.inputs[static_cast<size_t>(b * T)];
        int64_t* tg = &out.targets[static_cast<size_t>(b * T)];
        // Distinct keys: the first P steps of a Fisher-Yates shuffle of all keys.
        std::iota(key_pool.begin(), key_pool.end(), 1);
        for (int64_t i = 0; i < P; ++i) {
            std::swap(key_pool[static_cast<size_t>(i)],
                      key_pool[static_cast<size_t>(i) + rng.below(static_cast<uint64_t>(keys - i))]);
            in[2 * i] = key_pool[static_cast<size_t>(i)];
            in[2 * i + 1] = first_value + static_cast<int64_t>(rng.below(static_cast<uint64_t>(values)));
        }
        // Which pairs are asked, in which order: a prefix of a random permutation.
        std::iota(order.begin(), order.end(), 0);
        for (int64_t i = 0; i < Q; ++i) {
            std::swap(order[static_cast<size_t>(i)],
                      order[static_cast<size_t>(i) + rng.below(static_cast<uint64_t>(P - i))]);
            const int64_t pair = order[static_cast<size_t>(i)], q = 2 * P + 2 * i;
            in[q] = in[2 * pair];
            in[q + 1] = in[2 * pair + 1];
            tg[q] = in[q + 1];
        }
    }
    return out;
}

std::string describe(const MqarSpec& s) {
    const int64_t keys = (s.vocab_size - 1) / 2;
    return "mqar: vocab " + std::to_string(s.vocab_size) + ", seq_len " + std::to_string(s.seq_len) + ", " +
           std::to_string(s.num_pairs) + " pairs, " + std::to_string(mqar_queries(s)) + " queries; pad 0, keys [1, " +
           std::to_string(1 + keys) + "), values [" + std::to_string(1 + keys) + ", " + std::to_string(s.vocab_size) +
           ")";
}

// ---------------------------------------------------------------- passkey

namespace {

void check(const PasskeySpec& s, int64_t batch) {
    require(batch >= 1, "passkey: batch must be >= 1, got " + std::to_string(batch));
    require(s.vocab_size > kPasskeyFirstFiller,
            "passkey: vocab_size must be >= " + std::to_string(kPasskeyFirstFiller + 1) +
                " (digits, two markers, filler), got " + std::to_string(s.vocab_size));
    require(s.num_digits >= 1, "passkey: num_digits must be >= 1, got " + std::to_string(s.num_digits));
    require(s.depth >= 0 && s.depth <= 1, "passkey: depth must be in [0, 1], got " + num(s.depth));
    require(s.depth_max < 0 || (s.depth_max >= s.depth && s.depth_max <= 1),
            "passkey: depth_max must be in [depth = " + num(s.depth) + ", 1] (or unset), got " +
                num(s.depth_max));
    const int64_t need = 2 * (s.num_digits + 1);
    require(s.seq_len >= need, "passkey: seq_len " + std::to_string(s.seq_len) +
                                   " cannot hold the needle and the query of " + std::to_string(s.num_digits) +
                                   " digits (needs >= " + std::to_string(need) + ")");
}

}  // namespace

int64_t passkey_needle_position(const PasskeySpec& s, double depth) {
    check(s, 1);
    require(depth >= 0 && depth <= 1, "passkey: depth must be in [0, 1], got " + num(depth));
    // Positions where the needle can start so that it ends before the query.
    const int64_t last_start = s.seq_len - 2 * (s.num_digits + 1);
    return std::llround(depth * static_cast<double>(last_start));
}

int64_t passkey_needle_position(const PasskeySpec& s) { return passkey_needle_position(s, s.depth); }

TokenBatch make_passkey(const PasskeySpec& s, int64_t batch, uint64_t seed) {
    check(s, batch);
    const int64_t T = s.seq_len, n = s.num_digits, query = T - n - 1;
    const uint64_t fillers = static_cast<uint64_t>(s.vocab_size - kPasskeyFirstFiller);
    const bool per_row = s.depth_max >= 0;
    TokenBatch out = empty_batch(batch, T, 0);
    for (int64_t b = 0; b < batch; ++b) {
        Rng rng = Rng::stream(seed, static_cast<uint64_t>(b));
        // This row's depth, the first draw of its stream (fixed-depth rows draw nothing here).
        const double depth = per_row ? s.depth + (s.depth_max - s.depth) * rng.uniform() : s.depth;
        const int64_t needle = passkey_needle_position(s, depth);
        int64_t* in = &out.inputs[static_cast<size_t>(b * T)];
        int64_t* tg = &out.targets[static_cast<size_t>(b * T)];
        for (int64_t t = 0; t < query; ++t) in[t] = kPasskeyFirstFiller + static_cast<int64_t>(rng.below(fillers));
        in[needle] = kPasskeyMarker;
        in[query] = kPasskeyQuery;
        for (int64_t i = 1; i <= n; ++i) {
            const int64_t digit = static_cast<int64_t>(rng.below(10));
            in[needle + i] = digit;
            in[query + i] = digit;
            tg[query + i - 1] = digit;
        }
    }
    return out;
}

std::string describe(const PasskeySpec& s) {
    return "passkey: vocab " + std::to_string(s.vocab_size) + ", seq_len " + std::to_string(s.seq_len) + ", " +
           std::to_string(s.num_digits) + " digits (tokens 0-9), needle marker " + std::to_string(kPasskeyMarker) +
           (s.depth_max >= 0 ? " at positions " + std::to_string(passkey_needle_position(s)) + "-" +
                                   std::to_string(passkey_needle_position(s, s.depth_max)) + " (depth uniform in [" +
                                   num(s.depth) + ", " + num(s.depth_max) + "] per row)"
                             : " at position " + std::to_string(passkey_needle_position(s)) + " (depth " +
                                   num(s.depth) + ")") +
           ", query marker " + std::to_string(kPasskeyQuery) + " at position " +
           std::to_string(s.seq_len - s.num_digits - 1) + ", filler [" + std::to_string(kPasskeyFirstFiller) + ", " +
           std::to_string(s.vocab_size) + ")";
}

// ---------------------------------------------------------------- bytes

ByteCorpus::ByteCorpus(const std::string& path, double heldout_fraction)
    : path_(path), heldout_fraction_(heldout_fraction) {
    require(heldout_fraction >= 0 && heldout_fraction < 1,
            "byte corpus '" + path + "': heldout_fraction must be in [0, 1), got " + num(heldout_fraction));
    if (!std::filesystem::exists(path)) throw std::runtime_error("byte corpus '" + path + "' not found");
    std::ifstream in(path, std::ios::binary);
    if (!in || !std::filesystem::is_regular_file(path))
        throw std::runtime_error("byte corpus '" + path + "' cannot be read");
    std::vector<uint8_t> all{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) throw std::runtime_error("byte corpus '" + path + "': read error");
    // The held-out part is the tail, so it never overlaps a training window.
    const size_t held = static_cast<size_t>(std::floor(heldout_fraction * static_cast<double>(all.size())));
    heldout_.assign(all.end() - static_cast<long>(held), all.end());
    all.resize(all.size() - held);
    train_ = std::move(all);
}

int64_t ByteCorpus::size(Split split) const {
    return static_cast<int64_t>(split == Split::kTrain ? train_.size() : heldout_.size());
}

const std::vector<uint8_t>& ByteCorpus::bytes(Split split, int64_t seq_len) const {
    require(seq_len >= 1, "byte corpus '" + path_ + "': seq_len must be >= 1, got " + std::to_string(seq_len));
    const std::vector<uint8_t>& data = split == Split::kTrain ? train_ : heldout_;
    if (static_cast<int64_t>(data.size()) < seq_len + 1)
        throw std::runtime_error("byte corpus '" + path_ + "': the " + split_name(split) + " split has " +
                                 std::to_string(data.size()) +
                                 " bytes, fewer than seq_len + 1 = " + std::to_string(seq_len + 1));
    return data;
}

TokenBatch ByteCorpus::sample(Split split, int64_t batch, int64_t seq_len, uint64_t seed) const {
    const std::vector<uint8_t>& data = bytes(split, seq_len);
    require(batch >= 1, "byte corpus: batch must be >= 1, got " + std::to_string(batch));
    TokenBatch out = empty_batch(batch, seq_len, 0);
    const uint64_t starts = data.size() - static_cast<uint64_t>(seq_len);  // windows of seq_len + 1 bytes
    for (int64_t b = 0; b < batch; ++b) {
        const size_t start = Rng::stream(seed, static_cast<uint64_t>(b)).below(starts);
        for (int64_t t = 0; t < seq_len; ++t) {
            out.inputs[static_cast<size_t>(b * seq_len + t)] = data[start + static_cast<size_t>(t)];
            out.targets[static_cast<size_t>(b * seq_len + t)] = data[start + static_cast<size_t>(t) + 1];
        }
    }
    return out;
}

int64_t ByteCorpus::num_windows(Split split, int64_t seq_len) const {
    return (static_cast<int64_t>(bytes(split, seq_len).size()) - 1) / seq_len;
}

TokenBatch ByteCorpus::sequential(Split split, int64_t seq_len, int64_t first, int64_t count) const {
    const std::vector<uint8_t>& data = bytes(split, seq_len);
    const int64_t total = num_windows(split, seq_len);
    require(first >= 0 && count >= 1 && first + count <= total,
            "byte corpus '" + path_ + "': windows [" + std::to_string(first) + ", " + std::to_string(first + count) +
                ") out of the " + std::to_string(total) + " of the " + split_name(split) + " split");
    TokenBatch out = empty_batch(count, seq_len, 0);
    for (int64_t b = 0; b < count; ++b) {
        const size_t start = static_cast<size_t>((first + b) * seq_len);
        for (int64_t t = 0; t < seq_len; ++t) {
            out.inputs[static_cast<size_t>(b * seq_len + t)] = data[start + static_cast<size_t>(t)];
            out.targets[static_cast<size_t>(b * seq_len + t)] = data[start + static_cast<size_t>(t) + 1];
        }
    }
    return out;
}

std::string ByteCorpus::describe() const {
    return "byte corpus '" + path_ + "': " + std::to_string(train_.size()) + " training + " +
           std::to_string(heldout_.size()) + " held-out bytes (held-out fraction " + num(heldout_fraction_) +
           ")";
}

}  // namespace miras
