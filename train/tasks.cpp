#include "train/tasks.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <algorithm>
#include <utility>
#include <stdexcept>

#include "tensor/tensor.h"
#include "train/sha256.h"

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

// v.assign(n, value); an allocation failure says its size and what it was
// for (a bare std::bad_alloc named neither), as the tensor allocator does.
template <class T> void assign_or_say(std::vector<T>& v, uint64_t n, T value, const std::string& what) {
    try {
        if (n > v.max_size()) throw std::bad_alloc();
        v.assign(static_cast<size_t>(n), value);
    } catch (const std::bad_alloc&) {
        char size[64];
        std::snprintf(size, sizeof size, "%.3g GiB", static_cast<double>(n) * sizeof(T) / (1024.0 * 1024 * 1024));
        throw OutOfMemory("out of memory allocating " + std::string(size) + " (" + std::to_string(n) + " x " +
                          std::to_string(sizeof(T)) + " bytes) for " + what);
    }
}

std::string batch_text(int64_t batch, int64_t seq_len) {
    return "a batch of " + std::to_string(batch) + " x " + std::to_string(seq_len) +
           " tokens (train.batch x data.seq_len when training)";
}

TokenBatch empty_batch(int64_t batch, int64_t seq_len, int64_t fill_inputs) {
    TokenBatch b;
    b.batch = batch;
    b.seq_len = seq_len;
    const uint64_t n = static_cast<uint64_t>(batch) * static_cast<uint64_t>(seq_len);
    assign_or_say(b.inputs, n, fill_inputs, "the token ids of " + batch_text(batch, seq_len));
    assign_or_say(b.targets, n, kIgnoreIndex, "the targets of " + batch_text(batch, seq_len));
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

int64_t mqar_queries(const MqarSpec& s, int64_t pairs) {
    return s.num_queries == 0 ? pairs : std::min(s.num_queries, pairs);
}
int64_t mqar_keys(const MqarSpec& s) { return (s.vocab_size - 1 - s.filler_vocab) / 2; }

void check(const MqarSpec& s, int64_t batch) {
    const int64_t keys = mqar_keys(s);
    require(batch >= 1, "mqar: batch must be >= 1, got " + std::to_string(batch));
    require(s.num_pairs >= 1, "mqar: num_pairs must be >= 1, got " + std::to_string(s.num_pairs));
    require(s.filler_vocab >= 0 && s.filler_vocab < s.vocab_size,
            "mqar: filler_vocab must be in [0, vocab_size), got " + std::to_string(s.filler_vocab));
    require(keys >= s.num_pairs,
            "mqar: vocab_size " + std::to_string(s.vocab_size) +
                (s.filler_vocab ? " with " + std::to_string(s.filler_vocab) + " filler ids" : "") + " leaves " + std::to_string(std::max<int64_t>(keys, 0)) + " key tokens, too few for " +
                std::to_string(s.num_pairs) + " distinct keys (needs vocab_size >= " +
                std::to_string(2 * s.num_pairs + 1 + s.filler_vocab) + ")");
    require(s.num_queries >= 0 && s.num_queries <= s.num_pairs,
            "mqar: num_queries must be in [0, num_pairs = " + std::to_string(s.num_pairs) + "], got " +
                std::to_string(s.num_queries));
    require(s.min_pairs >= 0 && s.min_pairs <= s.num_pairs,
            "mqar: min_pairs must be in [0, num_pairs = " + std::to_string(s.num_pairs) + "], got " +
                std::to_string(s.min_pairs));
    require(s.spread || s.filler_vocab == 0, "mqar: filler_vocab is for the spread layout; set spread = true");
    const int64_t need = 2 * s.num_pairs + 2 * mqar_queries(s, s.num_pairs);
    require(s.seq_len >= need, "mqar: seq_len " + std::to_string(s.seq_len) + " is too short for " +
                                   std::to_string(s.num_pairs) + " pairs and " +
                                   std::to_string(mqar_queries(s, s.num_pairs)) + " queries (needs >= " +
                                   std::to_string(need) + ")");
}

// The group of a query at position t of a row of T tokens: its quarter.
int32_t quarter(int64_t t, int64_t T) { return static_cast<int32_t>(std::min<int64_t>(3, 4 * t / T)); }

// One row of the spread layout. `key` and `value` hold the row's P pairs.
void spread_row(const MqarSpec& s, Rng& rng, const std::vector<int64_t>& key, const std::vector<int64_t>& value,
                int64_t Q, int64_t* in, int64_t* tg, int32_t* gr) {
    const int64_t P = static_cast<int64_t>(key.size()), T = s.seq_len, items = P + Q;
    const int64_t filler = T - 2 * items;
    // Which of the items + filler units are items: a uniform subset, by a
    // partial Fisher-Yates shuffle of the unit indices, then in order.
    std::vector<int64_t> units(static_cast<size_t>(items + filler));
    std::iota(units.begin(), units.end(), 0);
    for (int64_t i = 0; i < items; ++i)
        std::swap(units[static_cast<size_t>(i)],
                  units[static_cast<size_t>(i) + rng.below(static_cast<uint64_t>(items + filler - i))]);
    std::vector<char> is_item(units.size(), 0);
    for (int64_t i = 0; i < items; ++i) is_item[static_cast<size_t>(units[static_cast<size_t>(i)])] = 1;
    // Walk the units: an item is a write (the next pair) or a read (a pair
    // written and not asked yet); a read is drawn with probability
    // reads left / items left whenever one is possible, and forced when no
    // write is left.
    std::vector<int64_t> open;  // pairs written, not yet asked
    int64_t writes = P, reads = Q, t = 0, next_pair = 0;
    for (size_t u = 0; u < units.size(); ++u) {
        if (!is_item[u]) {
            in[t++] = s.filler_vocab ? s.vocab_size - s.filler_vocab + static_cast<int64_t>(rng.below(static_cast<uint64_t>(s.filler_vocab))) : 0;
            continue;
        }
        const bool read = reads > 0 && !open.empty() &&
                          (writes == 0 || rng.below(static_cast<uint64_t>(writes + reads)) < static_cast<uint64_t>(reads));
        if (read) {
            const size_t i = rng.below(open.size());
            const int64_t pair = open[i];
            open[i] = open.back();
            open.pop_back();
            in[t] = key[static_cast<size_t>(pair)];
            in[t + 1] = value[static_cast<size_t>(pair)];
            tg[t] = in[t + 1];
            gr[t] = quarter(t, T);
            --reads;
        } else {
            in[t] = key[static_cast<size_t>(next_pair)];
            in[t + 1] = value[static_cast<size_t>(next_pair)];
            open.push_back(next_pair++);
            --writes;
        }
        t += 2;
    }
}

}  // namespace

const std::vector<std::string>& mqar_group_names() {
    static const std::vector<std::string> names = {"query at 0-25%", "query at 25-50%", "query at 50-75%",
                                                   "query at 75-100%"};
    return names;
}

TokenBatch make_mqar(const MqarSpec& s, int64_t batch, uint64_t seed) {
    check(s, batch);
    const int64_t keys = mqar_keys(s), first_value = 1 + keys, values = s.vocab_size - s.filler_vocab - first_value;
    const int64_t T = s.seq_len;
    TokenBatch out = empty_batch(batch, T, /*pad*/ 0);
    assign_or_say(out.groups, out.targets.size(), int32_t{-1}, "the accuracy groups of " + batch_text(batch, T));
    std::vector<int64_t> key_pool(static_cast<size_t>(keys)), order;
    for (int64_t b = 0; b < batch; ++b) {
        Rng rng = Rng::stream(seed, static_cast<uint64_t>(b));
        int64_t* in = &out.inputs[static_cast<size_t>(b * T)];
        int64_t* tg = &out.targets[static_cast<size_t>(b * T)];
        int32_t* gr = &out.groups[static_cast<size_t>(b * T)];
        const int64_t P = s.min_pairs > 0
                              ? s.min_pairs + static_cast<int64_t>(rng.below(static_cast<uint64_t>(s.num_pairs - s.min_pairs + 1)))
                              : s.num_pairs;
        const int64_t Q = mqar_queries(s, P);
        // Distinct keys: the first P steps of a Fisher-Yates shuffle of all keys.
        std::iota(key_pool.begin(), key_pool.end(), 1);
        std::vector<int64_t> key(static_cast<size_t>(P)), value(static_cast<size_t>(P));
        for (int64_t i = 0; i < P; ++i) {
            std::swap(key_pool[static_cast<size_t>(i)],
                      key_pool[static_cast<size_t>(i) + rng.below(static_cast<uint64_t>(keys - i))]);
            key[static_cast<size_t>(i)] = key_pool[static_cast<size_t>(i)];
            value[static_cast<size_t>(i)] = first_value + static_cast<int64_t>(rng.below(static_cast<uint64_t>(values)));
        }
        if (s.spread) {
            spread_row(s, rng, key, value, Q, in, tg, gr);
            continue;
        }
        for (int64_t i = 0; i < P; ++i) {
            in[2 * i] = key[static_cast<size_t>(i)];
            in[2 * i + 1] = value[static_cast<size_t>(i)];
        }
        // Which pairs are asked, in which order: a prefix of a random permutation.
        order.resize(static_cast<size_t>(P));
        std::iota(order.begin(), order.end(), 0);
        for (int64_t i = 0; i < Q; ++i) {
            std::swap(order[static_cast<size_t>(i)],
                      order[static_cast<size_t>(i) + rng.below(static_cast<uint64_t>(P - i))]);
            const int64_t pair = order[static_cast<size_t>(i)], q = 2 * P + 2 * i;
            in[q] = in[2 * pair];
            in[q + 1] = in[2 * pair + 1];
            tg[q] = in[q + 1];
            gr[q] = quarter(q, T);
        }
    }
    return out;
}

std::string describe(const MqarSpec& s) {
    const int64_t keys = mqar_keys(s), first_value = 1 + keys, fill = s.vocab_size - s.filler_vocab;
    const int64_t Q = mqar_queries(s, s.num_pairs);
    std::string pairs = s.min_pairs > 0 ? std::to_string(s.min_pairs) + "-" + std::to_string(s.num_pairs) + " pairs per row"
                                        : std::to_string(s.num_pairs) + " pairs";
    std::string queries = s.num_queries == 0 ? "every pair queried" : std::to_string(Q) + " queries";
    std::string out = "mqar: vocab " + std::to_string(s.vocab_size) + ", seq_len " + std::to_string(s.seq_len) + ", " +
                      pairs + ", " + queries + (s.spread ? ", spread over the row" : "") + "; pad 0, keys [1, " +
                      std::to_string(first_value) + "), values [" + std::to_string(first_value) + ", " +
                      std::to_string(fill) + ")";
    if (s.spread)
        out += s.filler_vocab ? ", filler [" + std::to_string(fill) + ", " + std::to_string(s.vocab_size) + ")"
                              : ", filler 0";
    return out;
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
    assign_or_say(out.groups, out.targets.size(), int32_t{-1}, "the accuracy groups of " + batch_text(batch, T));
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
            out.groups[static_cast<size_t>(b * T + query + i - 1)] =
                static_cast<int32_t>(std::min(4.0, std::floor(5 * depth)));  // depth in fifths
        }
    }
    return out;
}

const std::vector<std::string>& passkey_group_names() {
    static const std::vector<std::string> names = {"depth 0.0-0.2", "depth 0.2-0.4", "depth 0.4-0.6", "depth 0.6-0.8",
                                                   "depth 0.8-1.0"};
    return names;
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

namespace {

// A document of a byte corpus: its name (relative to the corpus folder) and bytes.
struct Document {
    std::string name;
    std::vector<uint8_t> bytes;
};

// Reads one regular file whole. The type is checked before the file is
// opened, so a FIFO or a device is refused instead of blocking or reading
// forever.
std::vector<uint8_t> read_document(const std::filesystem::path& p, const std::string& corpus) {
    std::error_code ec;
    const auto st = std::filesystem::status(p, ec);
    if (ec || !std::filesystem::exists(st)) throw std::runtime_error("byte corpus '" + corpus + "': '" + p.string() + "' not found");
    if (!std::filesystem::is_regular_file(st))
        throw std::runtime_error("byte corpus '" + corpus + "': '" + p.string() + "' is not a regular file or folder");
    std::ifstream in(p, std::ios::binary);
    if (!in) throw std::runtime_error("byte corpus '" + corpus + "': '" + p.string() + "' cannot be read");
    std::vector<uint8_t> all{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) throw std::runtime_error("byte corpus '" + corpus + "': read error in '" + p.string() + "'");
    return all;
}

// The documents at `path`: the file itself, or every regular file below the
// folder (other entries, e.g. FIFOs, are skipped), sorted by relative path.
std::vector<Document> read_documents(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(path, ec)) throw std::runtime_error("byte corpus '" + path + "' not found");
    if (!fs::is_directory(path, ec)) return {{fs::path(path).filename().string(), read_document(path, path)}};
    std::vector<Document> docs;
    for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
        if (!it->is_regular_file(ec)) continue;
        docs.push_back({fs::relative(it->path(), path).generic_string(), {}});
    }
    if (ec) throw std::runtime_error("byte corpus '" + path + "': cannot list the folder: " + ec.message());
    std::sort(docs.begin(), docs.end(), [](const Document& a, const Document& b) { return a.name < b.name; });
    for (Document& d : docs) d.bytes = read_document(fs::path(path) / d.name, path);
    if (docs.empty()) throw std::runtime_error("byte corpus '" + path + "': the folder holds no regular file");
    return docs;
}

// FNV-1a of a document name: the held-out choice, the same on every machine.
uint64_t name_hash(const std::string& name) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : name) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    return h;
}

void append(std::vector<uint8_t>& to, const std::vector<uint8_t>& from) { to.insert(to.end(), from.begin(), from.end()); }

}  // namespace

ByteCorpus::ByteCorpus(const std::string& path, double heldout_fraction, const std::string& valid_path)
    : path_(path), valid_path_(valid_path), heldout_fraction_(heldout_fraction) {
    require(heldout_fraction >= 0 && heldout_fraction < 1,
            "byte corpus '" + path + "': heldout_fraction must be in [0, 1), got " + num(heldout_fraction));
    std::vector<Document> docs = read_documents(path);
    if (!valid_path.empty()) {
        // A separate validation set: all of `path` trains.
        for (const Document& d : docs) append(train_, d.bytes);
        train_docs_ = static_cast<int64_t>(docs.size());
        const std::vector<Document> valid = read_documents(valid_path);
        for (const Document& d : valid) append(heldout_, d.bytes);
        heldout_docs_ = static_cast<int64_t>(valid.size());
        return;
    }
    if (docs.size() == 1) {
        // One document: the held-out part is its tail, so it never overlaps a training window.
        std::vector<uint8_t>& all = docs[0].bytes;
        const size_t held = static_cast<size_t>(std::floor(heldout_fraction * static_cast<double>(all.size())));
        heldout_.assign(all.end() - static_cast<long>(held), all.end());
        all.resize(all.size() - held);
        train_ = std::move(all);
        train_docs_ = heldout_docs_ = 1;
        tail_ = true;
        return;
    }
    // Whole documents are held out: those whose names hash lowest.
    const int64_t n = static_cast<int64_t>(docs.size());
    const int64_t held = std::clamp<int64_t>(std::llround(heldout_fraction * static_cast<double>(n)), 1, n - 1);
    std::vector<std::pair<uint64_t, size_t>> by_hash;
    for (size_t i = 0; i < docs.size(); ++i) by_hash.emplace_back(name_hash(docs[i].name), i);
    std::sort(by_hash.begin(), by_hash.end());
    std::vector<char> is_held(docs.size(), 0);
    for (int64_t i = 0; i < held; ++i) is_held[by_hash[static_cast<size_t>(i)].second] = 1;
    for (size_t i = 0; i < docs.size(); ++i) append(is_held[i] ? heldout_ : train_, docs[i].bytes);
    heldout_docs_ = held;
    train_docs_ = n - held;
}

int64_t ByteCorpus::documents(Split split) const { return split == Split::kTrain ? train_docs_ : heldout_docs_; }

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

TokenBatch ByteCorpus::windows(Split split, int64_t seq_len, const std::vector<int64_t>& indices) const {
    const std::vector<uint8_t>& data = bytes(split, seq_len);
    const int64_t total = num_windows(split, seq_len), count = static_cast<int64_t>(indices.size());
    require(count >= 1, "byte corpus '" + path_ + "': no windows asked for");
    TokenBatch out = empty_batch(count, seq_len, 0);
    for (int64_t b = 0; b < count; ++b) {
        const int64_t w = indices[static_cast<size_t>(b)];
        require(w >= 0 && w < total, "byte corpus '" + path_ + "': window " + std::to_string(w) + " out of the " +
                                         std::to_string(total) + " of the " + split_name(split) + " split");
        const size_t start = static_cast<size_t>(w * seq_len);
        for (int64_t t = 0; t < seq_len; ++t) {
            out.inputs[static_cast<size_t>(b * seq_len + t)] = data[start + static_cast<size_t>(t)];
            out.targets[static_cast<size_t>(b * seq_len + t)] = data[start + static_cast<size_t>(t) + 1];
        }
    }
    return out;
}

std::vector<int64_t> spread_indices(int64_t total, int64_t count) {
    const int64_t n = std::min(total, count);
    std::vector<int64_t> out(static_cast<size_t>(std::max<int64_t>(n, 0)));
    for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = i * total / n;
    return out;
}

std::string ByteCorpus::describe() const {
    auto docs = [](int64_t n) { return std::to_string(n) + (n == 1 ? " document" : " documents"); };
    std::string held = !valid_path_.empty() ? "held out: '" + valid_path_ + "'"
                       : tail_ ? "held-out fraction " + num(heldout_fraction_) + ", the tail"
                               : "held-out fraction " + num(heldout_fraction_) + " of the documents";
    return "byte corpus '" + path_ + "': " + std::to_string(train_.size()) + " training bytes (" + docs(train_docs_) +
           ") + " + std::to_string(heldout_.size()) + " held-out bytes (" + docs(heldout_docs_) + "; " + held + ")";
}

std::string ByteCorpus::fingerprint() const {
    Sha256 h;
    for (const std::vector<uint8_t>* part : {&train_, &heldout_}) {
        const uint64_t n = part->size();
        h.add(&n, sizeof n);
        h.add(part->data(), part->size());
    }
    return std::to_string(train_.size()) + " + " + std::to_string(heldout_.size()) + " bytes, sha256 " + h.hex();
}

double ByteCorpus::bigram_bits_per_byte() const {
    std::vector<double> pair(256 * 256, 1.0), row(256, 256.0);  // add-one: every pair seen once more
    for (size_t i = 1; i < train_.size(); ++i) pair[train_[i - 1] * 256 + train_[i]] += 1, row[train_[i - 1]] += 1;
    double bits = 0;
    for (size_t i = 1; i < heldout_.size(); ++i)
        bits -= std::log2(pair[heldout_[i - 1] * 256 + heldout_[i]] / row[heldout_[i - 1]]);
    return heldout_.size() > 1 ? bits / (double)(heldout_.size() - 1) : 0.0;
}

}  // namespace miras
