// Deterministic training and evaluation data.
//
// Everything is a function of an explicit seed and comes from our own PRNG
// (xoshiro256** seeded through splitmix64), never from <random>'s
// distributions, whose output differs between standard libraries: the same
// seed gives the same tokens on every machine. Row b of a batch depends only
// on (seed, b), not on the batch size.
//
// Batches are (B, T) row-major int64 token ids plus next-token targets:
// targets[b, t] is the label for the prediction made at position t, or
// kIgnoreIndex where no loss is taken.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nn/loss.h"  // kIgnoreIndex: the targets where no loss is taken

namespace miras {

// One splitmix64 step: advances `state` and returns the next output.
uint64_t splitmix64(uint64_t& state);

// xoshiro256** (Blackman & Vigna), reference algorithm and seeding.
class Rng {
public:
    explicit Rng(uint64_t seed);
    // An independent stream per (seed, stream), e.g. one per batch row.
    static Rng stream(uint64_t seed, uint64_t stream);
    uint64_t next();
    uint64_t below(uint64_t n);  // uniform in [0, n) without modulo bias; n > 0
    double uniform();            // uniform in [0, 1), 53 random bits

private:
    uint64_t s_[4];
};

struct TokenBatch {
    int64_t batch = 0, seq_len = 0;
    std::vector<int64_t> inputs;   // (B, T)
    std::vector<int64_t> targets;  // (B, T), kIgnoreIndex where no loss
    // Empty, or (B, T): for every counted target the index of its group in
    // the task's group_names() (where the answer sits: the query's place in
    // the row for MQAR, the needle's depth for passkey), -1 elsewhere.
    // Evaluation reports accuracy per group.
    std::vector<int32_t> groups;
};

// Multi-query associative recall (Zoology / Based), one row, packed layout:
//
//   k_1 v_1 k_2 v_2 ... k_P v_P | q_1 a_1 q_2 a_2 ... q_Q a_Q | pad ... pad
//
// Token 0 is padding; keys come from [1, 1 + K) and values from
// [1 + K, V − F) with K = (V − 1 − F) / 2, F = filler_vocab (default 0). The
// P keys of a row are distinct, values are drawn with replacement. The
// queries are Q distinct keys of the row in random order, each followed by
// its value a_i. Only the query positions carry a target (the answer a_i,
// the next token); everything else is ignored.
//
// Spread layout (`spread`, MQAR at length): the P pairs and Q queries are
// two-token items scattered over the whole row in a random order in which
// every query comes after its own pair, and the T − 2(P + Q) other tokens
// are filler between them, drawn uniformly from the top F ids [V − F, V)
// (token 0 if F = 0). A query asks a pair written earlier and not asked
// yet, chosen uniformly. Queries therefore sit at every distance from
// their pairs, and pairs have gaps between them.
//
// With min_pairs > 0 every row draws its own number of pairs uniformly in
// [min_pairs, num_pairs] (mixed difficulty in one batch); Q is then
// min(num_queries, P) (P when num_queries = 0).
struct MqarSpec {
    int64_t vocab_size = 256;
    int64_t seq_len = 64;
    int64_t num_pairs = 8;
    int64_t num_queries = 0;   // 0 = every key is queried once
    bool spread = false;       // scatter pairs and queries over the row, filler between
    int64_t filler_vocab = 0;  // F: filler ids (spread layout), the top F of the vocabulary
    int64_t min_pairs = 0;     // > 0: pairs per row uniform in [min_pairs, num_pairs]
};
// Accuracy groups of MQAR: the quarter of the row in which a query sits.
const std::vector<std::string>& mqar_group_names();
TokenBatch make_mqar(const MqarSpec& spec, int64_t batch, uint64_t seed);
std::string describe(const MqarSpec& spec);

// Single-needle retrieval (passkey), one row:
//
//   f f ... f  M d_1 .. d_n  f ... f  Q d_1 .. d_n
//
// Digit tokens are 0..9, M = 10 marks the needle, Q = 11 asks for it, the
// filler f is drawn from [12, V). The needle (M and n digits) starts at
// passkey_needle_position(): depth 0 puts it first, depth 1 right before Q.
// With depth_max set (> depth) every row draws its own depth, uniformly in
// [depth, depth_max], so a model cannot learn one position instead of the
// retrieval. The targets are the digits after Q: target[Q] = d_1,
// target[d_i] = d_{i+1}.
struct PasskeySpec {
    int64_t vocab_size = 64;
    int64_t seq_len = 256;
    int64_t num_digits = 5;
    double depth = 0.5;       // in [0, 1]
    double depth_max = -1;    // in [depth, 1]: per-row depths; < 0: every row at `depth`
};
constexpr int64_t kPasskeyMarker = 10;
constexpr int64_t kPasskeyQuery = 11;
constexpr int64_t kPasskeyFirstFiller = 12;
TokenBatch make_passkey(const PasskeySpec& spec, int64_t batch, uint64_t seed);
// Accuracy groups of passkey: the needle's depth in fifths, "depth 0.0-0.2" ... "depth 0.8-1.0".
const std::vector<std::string>& passkey_group_names();
int64_t passkey_needle_position(const PasskeySpec& spec);               // at `depth`
int64_t passkey_needle_position(const PasskeySpec& spec, double depth);  // at any depth in [0, 1]
std::string describe(const PasskeySpec& spec);

// A byte-level language-modelling corpus (vocab 256) of documents, split
// into a training part and a held-out part:
//   - `path` a folder: every regular file below it (recursively, sorted by
//     relative path) is one document; the held-out part is whole documents,
//     the round(heldout_fraction · N) (at least 1, at most N − 1) whose
//     relative paths hash lowest (FNV-1a: the same split on every machine);
//   - `path` a file: one document; the held-out part is its tail of
//     heldout_fraction of the bytes;
//   - `valid_path` set (a file or a folder): all of it is held out and all of
//     `path` trains; heldout_fraction is not used.
// Each part is its documents concatenated in order.
enum class Split { kTrain, kHeldout };

class ByteCorpus {
public:
    ByteCorpus(const std::string& path, double heldout_fraction, const std::string& valid_path = "");

    int64_t size(Split split) const;
    int64_t documents(Split split) const;
    // `batch` windows of seq_len + 1 bytes at random offsets: inputs are the
    // first seq_len bytes, targets the last seq_len.
    TokenBatch sample(Split split, int64_t batch, int64_t seq_len, uint64_t seed) const;
    // The non-overlapping tiling of a split (window i starts at byte
    // i · seq_len) has num_windows() windows; sequential() returns windows
    // first .. first + count − 1 of it, windows() any list of them.
    int64_t num_windows(Split split, int64_t seq_len) const;
    TokenBatch sequential(Split split, int64_t seq_len, int64_t first, int64_t count) const;
    TokenBatch windows(Split split, int64_t seq_len, const std::vector<int64_t>& indices) const;
    std::string describe() const;
    // What a run reads of the corpus, to tell whether the corpus changed:
    // "<training bytes> + <held-out bytes> bytes, sha256 <hex>", the hash of
    // both splits as used (each one's length, then its bytes).
    std::string fingerprint() const;
    // The baseline every byte model must beat: bits per byte of the held-out
    // split under the training split's bigram model P(b_t | b_{t-1}), with
    // add-one smoothing (so an unseen pair costs finite bits).
    double bigram_bits_per_byte() const;

private:
    const std::vector<uint8_t>& bytes(Split split, int64_t seq_len) const;
    std::string path_, valid_path_;
    double heldout_fraction_;
    std::vector<uint8_t> train_, heldout_;
    int64_t train_docs_ = 0, heldout_docs_ = 0;
    bool tail_ = false;  // one document, split at heldout_fraction from its end
};

// `count` window indices spread evenly over [0, total): i · total / count
// (all of them when count >= total).
std::vector<int64_t> spread_indices(int64_t total, int64_t count);

}  // namespace miras
