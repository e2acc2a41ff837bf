#include "train/model_config.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <ostream>
#include <sstream>
#include <stdexcept>

#include "miras/bias.h"
#include "miras/layer.h"
#include "miras/memory_arch.h"
#include "miras/mixers.h"
#include "miras/retention.h"

namespace miras {

namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();
constexpr double kHuge = 1e300;
constexpr int64_t kMaxMlpHidden = 1 << 20;
// train.threads: far above any core count; OpenBLAS caps it at its own maximum.
constexpr int64_t kMaxThreads = 1024;

[[noreturn]] void fail(const ConfigReader& cfg, const std::string& what) {
    throw std::runtime_error(cfg.source() + ": " + what);
}

// Values inside a key's range that the model's dtype cannot carry: they
// made the first step non-finite (docs/training.md, [memory]). δ and c enter
// squared (the Huber loss δ(|e| − δ/2), c · softmax in the inner gradient),
// so their squares must fit the dtype (f32: 3.4e38, f64: 1.8e308); γ enters
// as itself; q is an exponent of the weights, |A|^q, bounded by measurement:
// with the default model q = 16 gave a NaN gradient at step 1 in f32 and
// q = 64 at step 0 in f64, while q = 12 and q = 32 trained.
void check_dtype_ranges(const ConfigReader& cfg, const MemoryConfig& mc, DType dt) {
    const bool f32 = dt == DType::f32;
    const std::string dtype = f32 ? "f32" : "f64";
    auto cap = [&](const char* key, double value, double max, const char* why) {
        if (!(value <= max)) {
            std::ostringstream os;
            os << "key '" << key << "' = " << value << " is above " << max << ", the most that model.dtype = \""
               << dtype << "\" can carry here: " << why;
            fail(cfg, os.str());
        }
    };
    cap("memory.huber_delta", mc.huber_delta, f32 ? 1e18 : 1e150, "the Huber loss squares it");
    cap("memory.kl_c", mc.kl_c, f32 ? 1e18 : 1e150, "the inner gradient of c · softmax squares it");
    cap("memory.gamma", mc.gamma, f32 ? 1e37 : 1e300, "it must be a finite number of the dtype");
    cap("memory.q", mc.q, f32 ? 12 : 32, "|A|^q overflows the memory's updates (q = 16 in f32 and 64 in f64 "
                                          "gave NaN gradients within the first two steps)");
}

void read_model(ConfigReader& cfg, ModelConfig& m) {
    m.mixer = cfg.get_string("model.mixer", m.mixer, {"attn", "lmm", "mag", "mal", "mac"});
    m.vocab = cfg.get_int("model.vocab", m.vocab, 0, 1 << 24);
    m.d = cfg.get_int("model.d", m.d, 1, 1 << 16);
    m.heads = cfg.get_int("model.heads", m.heads, 1, 1 << 12);
    m.layers = cfg.get_int("model.layers", m.layers, 0, 1024);
    m.mlp_hidden = cfg.get_int("model.mlp_hidden", m.mlp_hidden, 0, kMaxMlpHidden);
    m.params_target = cfg.get_int("model.params_target", m.params_target, 0, kMaxInt);
    if (m.params_target > 0 && m.mlp_hidden > 0)
        fail(cfg, "keys 'model.params_target' = " + std::to_string(m.params_target) + " and 'model.mlp_hidden' = " +
                      std::to_string(m.mlp_hidden) + " are both set: the target chooses the width (set "
                      "model.mlp_hidden = 0, or model.params_target = 0)");
    m.window = cfg.get_int("model.window", m.window, 0, kMaxInt);
    m.n_persistent = cfg.get_int("model.n_persistent", m.n_persistent, 0, 1 << 20);
    m.attn_conv = cfg.get_int("model.attn_conv", m.attn_conv, 0, kMaxAttentionConv);
    if (m.attn_conv == 1)
        fail(cfg, "key 'model.attn_conv' = 1: give 0 (no convolution) or 2 … " + std::to_string(kMaxAttentionConv) +
                      " taps (one tap would only rescale q, k, v)");
    // Read whatever the mixer (like [memory]), so one file can switch to mac.
    m.segment = cfg.get_int("model.segment", m.segment, 1, 1 << 20);
    m.mac_write = cfg.get_string("model.mac_write", m.mac_write, {"attention", "input"});
    m.tie_embeddings = cfg.get_bool("model.tie_embeddings", m.tie_embeddings);
    m.dtype = cfg.get_string("model.dtype", "f32", {"f32", "f64"}) == "f64" ? DType::f64 : DType::f32;
    m.seed = (uint64_t)cfg.get_int("model.seed", (int64_t)m.seed, 0, kMaxInt);
    if (m.d % m.heads != 0)
        fail(cfg, "key 'model.heads' = " + std::to_string(m.heads) + " must divide model.d = " + std::to_string(m.d));
    // Every mixer but "lmm" has attention, whose RoPE turns pairs of a head's
    // channels: found here, with the keys named, rather than when the model is built.
    if (m.mixer != "lmm" && (m.d / m.heads) % 2 != 0)
        fail(cfg, "key 'model.heads' = " + std::to_string(m.heads) + " gives heads of width model.d / model.heads = " +
                      std::to_string(m.d / m.heads) + ", but the attention of model.mixer = \"" + m.mixer +
                      "\" (RoPE) needs an even head width");

    if (m.mixer == "lmm" && (m.window != 0 || m.n_persistent != 0 || m.attn_conv != 0))
        fail(cfg, "keys 'model.window', 'model.n_persistent' and 'model.attn_conv' are only used with model.mixer = "
                  "\"attn\", \"mag\", \"mal\" or \"mac\" (the ones with attention)");
    if (m.mixer == "mac" && m.window != 0)
        fail(cfg, "key 'model.window' = " + std::to_string(m.window) +
                      " must be 0 with model.mixer = \"mac\": its attention is full within a segment "
                      "(model.segment sets the span)");
    // [memory]: the fields of MemoryConfig (miras/config.h), same names. Read
    // and validated whatever the mixer, so one file can switch mixers with
    // --set model.mixer=...; "lmm", "mag" and "mal" use them.
    MemoryConfig& mc = m.memory;
    mc.memory = cfg.get_string("memory.memory", mc.memory, memory_arch_names());
    mc.depth = cfg.get_int("memory.depth", mc.depth, 2, 64);
    mc.expansion = cfg.get_int("memory.expansion", mc.expansion, 1, 64);
    mc.residual = cfg.get_bool("memory.residual", mc.residual);
    mc.layernorm = cfg.get_bool("memory.layernorm", mc.layernorm);
    mc.bias = cfg.get_string("memory.bias", mc.bias, bias_names());
    mc.p = cfg.get_double("memory.p", mc.p, 1.000001, 64);
    mc.huber_delta = cfg.get_double("memory.huber_delta", mc.huber_delta, 1e-12, kHuge);
    mc.huber_eps = cfg.get_double("memory.huber_eps", mc.huber_eps, 1e-12, 1e6);
    mc.retention = cfg.get_string("memory.retention", mc.retention, retention_names());
    mc.q = cfg.get_double("memory.q", mc.q, 2, 64);
    mc.kl_c = cfg.get_double("memory.kl_c", mc.kl_c, 1e-12, kHuge);
    mc.gamma = cfg.get_double("memory.gamma", mc.gamma, 0, kHuge);
    mc.algorithm = cfg.get_string("memory.algorithm", mc.algorithm, {"gd", "momentum"});
    mc.chunk = cfg.get_int("memory.chunk", mc.chunk, 1, 1 << 20);
    mc.theta_max = cfg.get_double("memory.theta_max", mc.theta_max, 1e-12, 1e6);
    mc.fixed_gates.clear();
    // Only the gates that are set are read (and dumped): an absent gate is learned.
    struct GateRange {
        const char* name;
        double lo, hi, def;
    };
    for (const GateRange& g : {GateRange{"theta", 0, 1e6, 1}, GateRange{"eta", 0, 1, 0.9},
                               GateRange{"alpha", 0, 1, 0}, GateRange{"delta", 1e-12, 1e6, 1}}) {
        const std::string key = std::string("memory.fixed_gates.") + g.name;
        if (cfg.has(key)) mc.fixed_gates[g.name] = cfg.get_double(key, g.def, g.lo, g.hi);
    }
    mc.gate_init.clear();
    // Only the gates that are set are read (and dumped): an absent one starts at the default.
    for (const GateRange& g : {GateRange{"theta", 1e-12, 1e6, 0.5}, GateRange{"eta", 1e-12, 1 - 1e-12, 0.73},
                               GateRange{"alpha", 1e-12, 1 - 1e-12, 0.12}, GateRange{"delta", 1e-12, 1e6, 0.69}}) {
        const std::string key = std::string("memory.gate_init.") + g.name;
        if (cfg.has(key)) mc.gate_init[g.name] = cfg.get_double(key, g.def, g.lo, g.hi);
    }
    mc.fix_A0_zero = cfg.get_bool("memory.fix_A0_zero", mc.fix_A0_zero);
    mc.conv_bias = cfg.get_bool("memory.conv_bias", mc.conv_bias);
    mc.first_order = cfg.get_bool("memory.first_order", mc.first_order);
    mc.detach_anchor = cfg.get_bool("memory.detach_anchor", mc.detach_anchor);
    mc.a0_scale = cfg.get_double("memory.a0_scale", mc.a0_scale, 1e-6, 1e6);
    mc.inner_clip = cfg.get_double("memory.inner_clip", mc.inner_clip, 0, 1e6);
    check_dtype_ranges(cfg, mc, m.dtype);
    m.memory_sequential = cfg.get_string("memory.scan", "chunked", {"chunked", "sequential"}) == "sequential";
    mc.d = m.d;
    mc.heads = m.heads;
    mc.dtype = m.dtype;
    if (m.mixer != "attn") {
        try {
            mc.validate();
        } catch (const std::exception& e) {
            fail(cfg, std::string("[memory]: ") + e.what());
        }
    }
}

void read_data(ConfigReader& cfg, DataConfig& d) {
    d.task = cfg.get_string("data.task", d.task, {"mqar", "passkey", "bytes"});
    d.seq_len = cfg.get_int("data.seq_len", d.seq_len, 1, 1 << 24);
    d.seed = (uint64_t)cfg.get_int("data.seed", (int64_t)d.seed, 0, kMaxInt);
    // Every task's table is read and validated, so one file can switch tasks
    // with --set data.task=...; only the selected task uses its table.
    d.mqar.vocab_size = cfg.get_int("data.mqar.vocab", d.mqar.vocab_size, 3, 1 << 24);
    d.mqar.num_pairs = cfg.get_int("data.mqar.num_pairs", d.mqar.num_pairs, 1, 1 << 20);
    d.mqar.num_queries = cfg.get_int("data.mqar.num_queries", d.mqar.num_queries, 0, 1 << 20);
    d.mqar.spread = cfg.get_bool("data.mqar.spread", d.mqar.spread);
    d.mqar.filler_vocab = cfg.get_int("data.mqar.filler_vocab", d.mqar.filler_vocab, 0, 1 << 24);
    d.mqar.min_pairs = cfg.get_int("data.mqar.min_pairs", d.mqar.min_pairs, 0, 1 << 20);
    d.mqar.seq_len = d.seq_len;
    d.passkey.vocab_size = cfg.get_int("data.passkey.vocab", d.passkey.vocab_size, kPasskeyFirstFiller + 1, 1 << 24);
    d.passkey.num_digits = cfg.get_int("data.passkey.num_digits", d.passkey.num_digits, 1, 1 << 20);
    d.passkey.depth = cfg.get_double("data.passkey.depth", d.passkey.depth, 0, 1);
    // Only when set (and then dumped): per-row depths uniform in [depth, depth_max].
    d.passkey.depth_max = -1;
    if (cfg.has("data.passkey.depth_max")) d.passkey.depth_max = cfg.get_double("data.passkey.depth_max", 1, 0, 1);
    d.passkey.seq_len = d.seq_len;
    d.bytes_path = cfg.get_string("data.bytes.path", d.bytes_path);
    d.heldout_fraction = cfg.get_double("data.bytes.heldout_fraction", d.heldout_fraction, 0.001, 0.9);
    d.valid_path = cfg.get_string("data.bytes.valid_path", d.valid_path);
    d.eval_lengths = cfg.get_int_list("data.eval_lengths", d.eval_lengths, 1, 1 << 24);
    d.curriculum_lengths = cfg.get_int_list("data.curriculum.lengths", d.curriculum_lengths, 1, 1 << 24);
    d.curriculum_steps = cfg.get_int_list("data.curriculum.steps", d.curriculum_steps, 1, kMaxInt);
    if (d.curriculum_lengths.size() != d.curriculum_steps.size())
        fail(cfg, "keys 'data.curriculum.lengths' (" + std::to_string(d.curriculum_lengths.size()) +
                      " entries) and 'data.curriculum.steps' (" + std::to_string(d.curriculum_steps.size()) +
                      ") must have one entry per stage");
    for (int64_t T : d.curriculum_lengths)
        if (T > d.seq_len)
            fail(cfg, "key 'data.curriculum.lengths': " + std::to_string(T) + " is longer than data.seq_len = " +
                          std::to_string(d.seq_len) + " (a curriculum trains at shorter lengths first)");
    for (size_t i = 0; i < d.curriculum_lengths.size(); ++i) {
        try {
            if (d.task == "mqar") make_mqar(d.curriculum_stage(i).mqar, 1, 0);
            if (d.task == "passkey") make_passkey(d.curriculum_stage(i).passkey, 1, 0);
        } catch (const std::invalid_argument& e) {
            fail(cfg, "[data." + d.task + "] at data.curriculum.lengths[" + std::to_string(i) +
                          "] = " + std::to_string(d.curriculum_lengths[i]) + ": " + e.what());
        }
    }
    // The generators check the combination (pairs fit the vocabulary and the sequence, ...),
    // at the training length and at every evaluation length.
    std::vector<int64_t> lengths = {d.seq_len};
    lengths.insert(lengths.end(), d.eval_lengths.begin(), d.eval_lengths.end());
    for (int64_t T : lengths) {
        try {
            if (d.task == "mqar") make_mqar(d.at_length(T).mqar, 1, 0);
            if (d.task == "passkey") make_passkey(d.at_length(T).passkey, 1, 0);
        } catch (const std::invalid_argument& e) {
            fail(cfg, "[data." + d.task + "] with " + (T == d.seq_len ? "data.seq_len" : "data.eval_lengths") +
                          " = " + std::to_string(T) + ": " + e.what());
        }
    }
    if (d.task == "bytes" && d.bytes_path.empty())
        fail(cfg, "key 'data.bytes.path' must name a file when data.task = \"bytes\"");
}

void read_optim(ConfigReader& cfg, OptimConfig& o) {
    o.name = cfg.get_string("optim.name", o.name, {"adamw", "sgd"});
    o.lr = cfg.get_double("optim.lr", o.lr, 0, 10);
    o.min_lr_ratio = cfg.get_double("optim.min_lr_ratio", o.min_lr_ratio, 0, 1);
    o.warmup = cfg.get_int("optim.warmup", o.warmup, 0, kMaxInt);
    o.clip = cfg.get_double("optim.clip", o.clip, 0, kHuge);
    // Both optimizers' keys are always read, so --set optim.name=... switches.
    o.beta1 = cfg.get_double("optim.beta1", o.beta1, 0, 0.999999);
    o.beta2 = cfg.get_double("optim.beta2", o.beta2, 0, 0.999999);
    o.eps = cfg.get_double("optim.eps", o.eps, 1e-30, 1);
    o.weight_decay = cfg.get_double("optim.weight_decay", o.weight_decay, 0, 10);
    o.momentum = cfg.get_double("optim.momentum", o.momentum, 0, 0.999999);
}

void read_loop(ConfigReader& cfg, LoopConfig& l) {
    l.steps = cfg.get_int("train.steps", l.steps, 0, kMaxInt);
    l.batch = cfg.get_int("train.batch", l.batch, 1, 1 << 20);
    l.eval_every = cfg.get_int("train.eval_every", l.eval_every, 0, kMaxInt);
    l.eval_batches = cfg.get_int("train.eval_batches", l.eval_batches, 1, 1 << 20);
    l.log_every = cfg.get_int("train.log_every", l.log_every, 1, kMaxInt);
    l.final_eval_all = cfg.get_string("train.final_eval", l.final_eval_all ? "all" : "sample", {"all", "sample"}) == "all";
    l.threads = cfg.get_int("train.threads", l.threads, 1, kMaxThreads);
}

void read_output(ConfigReader& cfg, OutputConfig& o) {
    o.dir = cfg.get_string("output.dir", o.dir);
    o.checkpoint_every = cfg.get_int("output.checkpoint_every", o.checkpoint_every, 0, kMaxInt);
    if (o.dir.empty()) fail(cfg, "key 'output.dir' must not be empty");
}

uint64_t layer_seed(uint64_t seed, uint64_t layer) {
    uint64_t s = seed ^ 0x6c6d6d5f6d697261ull;  // a salt apart from the attention layers' seeds
    splitmix64(s);
    s += layer;
    return splitmix64(s);
}

}  // namespace

TransformerConfig ModelConfig::transformer() const {
    TransformerConfig t;
    t.vocab_size = vocab;
    t.d_model = d;
    t.n_heads = heads;
    t.n_layers = layers;
    t.mlp_hidden = mlp_hidden;
    t.window = window;
    t.n_persistent = n_persistent;
    t.attn_conv = attn_conv;
    t.tie_embeddings = tie_embeddings;
    t.dtype = dtype;
    t.seed = seed;
    return t;
}

DataConfig DataConfig::at_length(int64_t T) const {
    DataConfig d = *this;
    d.seq_len = d.mqar.seq_len = d.passkey.seq_len = T;
    return d;
}

DataConfig DataConfig::curriculum_stage(size_t stage) const {
    if (stage >= curriculum_lengths.size()) return *this;
    const int64_t T = curriculum_lengths[stage];
    DataConfig d = at_length(T);
    // Scaled pair counts, rounded to nearest and at least 1 (0 stays 0: "all").
    auto scaled = [&](int64_t n) { return n == 0 ? 0 : std::max<int64_t>(1, (n * T + seq_len / 2) / seq_len); };
    d.mqar.num_pairs = scaled(mqar.num_pairs);
    d.mqar.min_pairs = scaled(mqar.min_pairs);
    d.mqar.num_queries = scaled(mqar.num_queries);
    d.curriculum_lengths.clear();
    d.curriculum_steps.clear();
    return d;
}

DataConfig DataConfig::at_train_step(int64_t step) const {
    int64_t until = 0;
    for (size_t i = 0; i < curriculum_steps.size(); ++i) {
        until += curriculum_steps[i];
        if (step < until) return curriculum_stage(i);
    }
    return curriculum_stage(curriculum_lengths.size());
}

int64_t DataConfig::train_tokens(int64_t steps, int64_t batch) const {
    int64_t tokens = 0, done = 0;
    for (size_t i = 0; i < curriculum_steps.size() && done < steps; ++i) {
        const int64_t n = std::min(curriculum_steps[i], steps - done);
        tokens += n * batch * curriculum_lengths[i];
        done += n;
    }
    return tokens + (steps - done) * batch * seq_len;
}

std::vector<int64_t> DataConfig::eval_seq_lens() const {
    return eval_lengths.empty() ? std::vector<int64_t>{seq_len} : eval_lengths;
}

int64_t DataConfig::vocab() const {
    if (task == "mqar") return mqar.vocab_size;
    if (task == "passkey") return passkey.vocab_size;
    return 256;
}

RunConfig read_run_config(ConfigReader& cfg) {
    RunConfig rc;
    rc.source = cfg.source();
    read_model(cfg, rc.model);
    read_data(cfg, rc.data);
    read_optim(cfg, rc.optim);
    read_loop(cfg, rc.train);
    read_output(cfg, rc.output);
    cfg.check_no_unknown_keys();

    int64_t curriculum = 0;
    for (int64_t n : rc.data.curriculum_steps) curriculum = n > kMaxInt - curriculum ? kMaxInt : curriculum + n;
    if (curriculum > 0 && curriculum >= rc.train.steps)
        fail(cfg, "key 'data.curriculum.steps' sums to " + std::to_string(curriculum) + " steps, not fewer than "
                  "train.steps = " + std::to_string(rc.train.steps) + ": no step would train at data.seq_len = " +
                  std::to_string(rc.data.seq_len));

    const int64_t task_vocab = rc.data.vocab();
    if (rc.model.vocab == 0) {
        rc.model.vocab = task_vocab;
    } else if (rc.model.vocab < task_vocab) {
        fail(cfg, "key 'model.vocab' = " + std::to_string(rc.model.vocab) + " is smaller than the " + rc.data.task +
                      " task's vocabulary of " + std::to_string(task_vocab) + " tokens (0 = take the task's)");
    }
    if (rc.model.params_target > 0) {
        try {
            rc.model.mlp_hidden = mlp_hidden_for_params(rc.model, rc.model.params_target);
        } catch (const std::runtime_error& e) {
            fail(cfg, e.what());
        }
    }
    rc.toml = cfg.dump_toml();
    return rc;
}

int64_t mlp_hidden_for_params(const ModelConfig& m, int64_t target) {
    const std::string what = "key 'model.params_target' = " + std::to_string(target);
    if (m.layers == 0) throw std::runtime_error(what + ": the model has no MLP to size (model.layers = 0)");
    // The blocks are alike, so models of no block and of one tell the count
    // at any depth: count(L, h) = count(0) + L · (count(1, h) − count(0)).
    // Built small, they cost no more than one block, however deep the model.
    auto count = [&](int64_t layers, int64_t hidden) {
        ModelConfig c = m;
        c.layers = layers;
        c.mlp_hidden = hidden;
        return build_model(c)->num_parameters();
    };
    const int64_t base = count(0, 1), block1 = count(1, 1) - base, block2 = count(1, 2) - base;
    const int64_t p1 = base + m.layers * block1, step = m.layers * (block2 - block1);
    if (target < p1)
        throw std::runtime_error(what + " is below the " + std::to_string(p1) +
                                 " parameters of this model with model.mlp_hidden = 1; make model.d or model.layers "
                                 "smaller");
    // The count at width h is p1 + (h - 1) · step; the widest allowed bounds the reach.
    const int64_t widest = p1 + (kMaxMlpHidden - 1) * step;
    if (target - widest > step / 2)
        throw std::runtime_error(what + " is above the " + std::to_string(widest) + " parameters of this model with " +
                                 "the largest model.mlp_hidden, " + std::to_string(kMaxMlpHidden) +
                                 "; make model.d or model.layers larger");
    return std::min(kMaxMlpHidden, 1 + ((target - p1) + step / 2) / step);
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
    ConfigReader cfg(path, overrides);
    RunConfig rc = read_run_config(cfg);
    rc.files = {path};
    rc.overrides = overrides;
    return rc;
}

RunConfig load_layered_config(const std::string& preset, const std::vector<std::string>& files,
                              const std::vector<std::string>& overrides) {
    std::vector<std::string> paths;
    if (!preset.empty()) paths.push_back(preset_path(preset));
    paths.insert(paths.end(), files.begin(), files.end());
    ConfigReader cfg(paths, overrides);
    RunConfig rc = read_run_config(cfg);
    rc.preset = preset;
    rc.files = paths;
    rc.overrides = overrides;
    rc.layer_notes = cfg.layer_notes();
    return rc;
}

std::string RunConfig::origin() const {
    std::string s;
    for (size_t i = 0; i < files.size(); ++i) {
        s += i ? " + " : "";
        if (i == 0 && !preset.empty()) s += "preset " + preset + " (" + files[0] + ")";
        else s += files[i];
    }
    if (files.empty()) s = source;
    for (size_t i = 0; i < overrides.size(); ++i) s += (i ? " --set " : ", --set ") + overrides[i];
    return s;
}

RunConfig run_config_from_string(const std::string& toml_text, const std::string& source_name,
                                 const std::vector<std::string>& overrides) {
    ConfigReader cfg = ConfigReader::from_string(toml_text, source_name, overrides);
    RunConfig rc = read_run_config(cfg);
    rc.overrides = overrides;
    return rc;
}

RunConfig default_run_config(const std::vector<std::string>& overrides) {
    return run_config_from_string("", kBuiltinConfigName, overrides);
}

void print_config_header(std::ostream& out, const RunConfig& rc) {
    out << "config: " << rc.origin() << "\n";
    for (const std::string& n : rc.layer_notes) out << "note:  " << n << "\n";
}

std::string memory_text(const ModelConfig& m) {
    if (m.mixer == "attn") return "";
    const MemoryConfig& mc = m.memory;
    std::ostringstream s;
    s << ", memory " << mc.memory;
    if (mc.memory == "mlp") s << " (depth " << mc.depth << ")";
    s << ", bias " << mc.bias << ", retention " << mc.retention << ", " << mc.algorithm << ", chunk " << mc.chunk;
    return s.str();
}

std::string preset_dir() {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(kPresetDir, ec)) return kPresetDir;
#ifdef MIRAS_SOURCE_DIR
    const std::string built = std::string(MIRAS_SOURCE_DIR) + "/" + kPresetDir;
    if (fs::is_directory(built, ec)) return built;
#endif
    return "";
}

std::vector<std::string> preset_names() {
    namespace fs = std::filesystem;
    std::vector<std::string> names;
    std::error_code ec;
    const std::string dir = preset_dir();
    if (dir.empty()) return names;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.is_regular_file() && e.path().extension() == ".toml") names.push_back(e.path().stem().string());
    std::sort(names.begin(), names.end());
    return names;
}

std::string preset_path(const std::string& name) {
    const std::vector<std::string> known = preset_names();
    if (std::find(known.begin(), known.end(), name) != known.end()) return preset_dir() + "/" + name + ".toml";
    std::string list;
    for (const std::string& n : known) list += (list.empty() ? "" : ", ") + n;
    throw std::runtime_error("unknown preset '" + name + "' (" +
                             (known.empty() ? std::string("no folder ") + kPresetDir +
                                                  " here nor in the source tree: run from the repository root"
                                            : "known: " + list) +
                             ")");
}

std::shared_ptr<Transformer> build_model(const ModelConfig& m) {
    if (m.vocab < 1) throw std::invalid_argument("build_model: vocab must be resolved (> 0), got " + std::to_string(m.vocab));
    const TransformerConfig tc = m.transformer();
    if (m.mixer == "attn") return make_transformer(tc);
    MemoryConfig base = m.memory;
    base.d = m.d;
    base.heads = m.heads;
    base.dtype = m.dtype;
    const uint64_t seed = m.seed;
    const ScanMode scan = m.memory_sequential ? ScanMode::sequential : ScanMode::chunked;
    const AttentionConfig ac = attention_config(tc);
    // Layer l's memory draws from layer_seed(seed, l), its attention (mag,
    // mal) from the seed the attention baseline's layer l would use.
    auto memory_of = [base, seed](int layer) {
        MemoryConfig c = base;
        c.seed = layer_seed(seed, (uint64_t)layer);
        return c;
    };
    if (m.mixer == "lmm")
        return make_transformer(tc, [memory_of, scan](int layer) -> std::shared_ptr<Mixer> {
            return std::make_shared<MemoryMixer>(memory_of(layer), scan);
        });
    if (m.mixer == "mag" || m.mixer == "mal" || m.mixer == "mac") {
        const std::string kind = m.mixer;
        const int64_t segment = m.segment;
        const MacWrite write = m.mac_write == "input" ? MacWrite::input : MacWrite::attention;
        return make_transformer(tc, [memory_of, scan, ac, seed, kind, segment, write](int layer) -> std::shared_ptr<Mixer> {
            Generator gen(attention_seed(seed, layer));
            if (kind == "mag") return std::make_shared<MagMixer>(ac, gen, memory_of(layer), scan);
            if (kind == "mal") return std::make_shared<MalMixer>(ac, gen, memory_of(layer), scan);
            return std::make_shared<MacMixer>(ac, gen, memory_of(layer), segment, scan, write);
        });
    }
    throw std::invalid_argument("build_model: unknown mixer '" + m.mixer + "' (known: attn, lmm, mag, mal, mac)");
}

}  // namespace miras
