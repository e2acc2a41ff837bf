#include "train/cli.h"

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "tensor/threads.h"
#include "train/checkpoint.h"
#include "train/cli_suite.h"
#include "train/compare.h"
#include "train/model_config.h"
#include "train/probe.h"
#include "train/safetensors.h"
#include "train/sweep.h"
#include "train/trainer.h"

namespace miras {

namespace fs = std::filesystem;

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 130;  // 128 + SIGINT, the shell convention

// Checks of option values. CLI11 (2.1) reads an integer with strtoll in base
// 0 and no overflow check ("010" is 8, --seed -1 is 2^64 − 1, and
// 99999999999999999999 is silently 2^63 − 1), lets NaN through its range
// checks and prints DBL_MAX as their bound; these read the text in base 10,
// refuse what does not fit and say what was wanted. They go in with
// transform(), not check(), so that the text, rewritten to the value read,
// is what CLI11 then converts: "010" is 10.
template <class I>
CLI::Validator integer_in(I lo, I hi, const std::string& name) {
    const std::string want = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            const char* begin = text.data() + (text.size() > 1 && text[0] == '+');
            const char* end = text.data() + text.size();
            I v{};
            auto [ptr, ec] = std::from_chars(begin, end, v);
            if (ec != std::errc{} || ptr != end || text.empty() || v < lo || v > hi)
                return "must be " + want + ", got '" + text + "'";
            text = std::to_string(v);
            return std::string{};
        },
        name);
}

CLI::Validator finite_non_negative() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            double v = 0;
            auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
            if (ec != std::errc{} || ptr != text.data() + text.size() || text.empty() || !std::isfinite(v) || v < 0)
                return "must be a finite number >= 0, got '" + text + "'";
            return std::string{};
        },
        "NONNEGATIVE");
}

// An empty --out would otherwise mean "not given" and fall back to the default.
const CLI::Validator kNonEmpty(
    [](std::string& text) { return text.empty() ? std::string("must not be empty") : std::string(); }, "");

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();

const std::string kConfigHelp = std::string("Config files, layered in order on --preset: a later file's key replaces an "
                                            "earlier one's, --set comes last (default: ") +
                                kDefaultConfigPath + " if present, else built-in)";

// The config of train/info/forward/grad: the named preset, then each config
// file in order, then the overrides (load_layered_config); with neither a
// preset nor a file, the default file, else the built-in default.
RunConfig resolve_config(const std::vector<std::string>& files, const std::string& preset,
                         const std::vector<std::string>& sets) {
    check_overrides_distinct(sets);
    if (!preset.empty() || !files.empty()) return load_layered_config(preset, files, sets);
    if (fs::is_regular_file(kDefaultConfigPath)) return load_run_config(kDefaultConfigPath, sets);
    return default_run_config(sets);
}

// A checkpoint argument may name the file or the run folder holding it.
std::string checkpoint_file(const std::string& arg) {
    if (fs::is_directory(arg)) return (fs::path(arg) / "checkpoint.safetensors").string();
    return arg;
}

// The config stored in a checkpoint, with command-line overrides on top.
RunConfig checkpoint_config(const std::string& path, const Checkpoint& ck, const std::vector<std::string>& sets) {
    check_overrides_distinct(sets);
    return run_config_from_string(ck.config_toml, path + " (stored config)", sets);
}

std::string percent(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f%%", 100 * x);
    return buf;
}

// Accuracy of guessing uniformly among the possible answers: MQAR answers
// are values (the upper half of the vocabulary), passkey answers are digits.
double chance_accuracy(const DataConfig& d) {
    if (d.task == "mqar") {
        const int64_t keys = (d.mqar.vocab_size - 1 - d.mqar.filler_vocab) / 2;
        return 1.0 / (double)(d.mqar.vocab_size - d.mqar.filler_vocab - 1 - keys);
    }
    if (d.task == "passkey") return 0.1;
    return 1.0 / 256;
}

void print_result(std::ostream& out, const DataConfig& d, const EvalResult& e, const std::string& what) {
    if (d.task == "bytes") {
        out << what << ": " << std::fixed << std::setprecision(4) << e.bits_per_token() << " bits/byte (loss "
            << e.loss << " nats), next-byte accuracy " << percent(e.accuracy()) << " over " << e.count << " bytes";
    } else {
        out << what << ": recall accuracy " << percent(e.accuracy()) << " (chance " << percent(chance_accuracy(d))
            << ") over " << e.count << " answers, loss " << std::fixed << std::setprecision(4) << e.loss;
    }
    out.unsetf(std::ios::floatfield);
}

// The pooled result, then (with several lengths) each length, what each
// covered, and the accuracy per group (query position, needle depth).
void print_eval(std::ostream& out, const DataConfig& d, const EvalReport& r, const std::string& what) {
    print_result(out, d, r.all, what);
    out << (r.per_length.size() == 1 ? " (" + r.coverage[0] + ")" : "") << "\n";
    for (size_t i = 0; r.per_length.size() > 1 && i < r.per_length.size(); ++i) {
        print_result(out, d, r.per_length[i], "  T " + std::to_string(r.seq_lens[i]));
        out << " (" << r.coverage[i] << ")\n";
    }
    for (size_t i = 0; i < r.per_length.size(); ++i) {
        const EvalResult& e = r.per_length[i];
        if (e.group_count.empty()) continue;
        out << "  " << (r.per_length.size() > 1 ? "T " + std::to_string(r.seq_lens[i]) + " " : "") << "by group:";
        for (size_t g = 0; g < e.group_count.size() && g < r.group_names.size(); ++g)
            if (e.group_count[g] > 0)
                out << "  " << r.group_names[g] << " " << percent((double)e.group_correct[g] / (double)e.group_count[g]);
        out << "\n";
    }
}

// ---------------------------------------------------------------- train

struct TrainArgs {
    std::string preset, out, resume;
    std::vector<std::string> configs, sets, sweeps;
    std::vector<int64_t> seeds;
    bool force = false, allow_data_change = false;
};

// --seeds and --sweep: a run per point (train/sweep.h).
int cmd_sweep(const TrainArgs& a, std::ostream& out) {
    if (!a.resume.empty())
        throw std::runtime_error("--seeds and --sweep start fresh runs; resume one run of a sweep with --resume alone");
    SweepSpec spec;
    spec.seeds = a.seeds;
    for (const std::string& s : a.sweeps) spec.keys.push_back(parse_sweep(s));
    SweepOptions o;
    o.sets = a.sets;
    o.out_dir = a.out;
    o.force = a.force;
    o.load = [&a](const std::vector<std::string>& point) {
        std::vector<std::string> all = a.sets;
        all.insert(all.end(), point.begin(), point.end());
        return resolve_config(a.configs, a.preset, all);
    };
    const SweepResult r = run_sweep(spec, o, out);
    return r.interrupted ? kExitInterrupted : r.failed > 0 ? kExitError : 0;
}

int cmd_train(const TrainArgs& a, std::ostream& out, std::ostream& err) {
    if (!a.seeds.empty() || !a.sweeps.empty()) return cmd_sweep(a, out);
    RunConfig cfg;
    TrainOptions opt;
    opt.out = &out;
    opt.force = a.force;
    opt.allow_data_change = a.allow_data_change;
    if (!a.resume.empty()) {
        if (!a.configs.empty() || !a.preset.empty())
            throw std::runtime_error("give either a config file or --resume (a resumed run uses the config stored in "
                                     "its checkpoint; change keys with --set)");
        opt.resume_from = checkpoint_file(a.resume);
        cfg = checkpoint_config(opt.resume_from, read_checkpoint(opt.resume_from), a.sets);
        // By default the run continues in the folder of its checkpoint.
        opt.out_dir = a.out.empty() ? fs::path(opt.resume_from).parent_path().string() : a.out;
        if (opt.out_dir.empty()) opt.out_dir = ".";
    } else {
        cfg = resolve_config(a.configs, a.preset, a.sets);
        opt.out_dir = a.out;
    }
    TrainResult r = train(cfg, opt);  // prints the config's origin first
    if (!r.interrupted)
        print_eval(out, cfg.data, r.last_report, "final");
    else if (r.last_eval_step >= 0)
        print_eval(out, cfg.data, r.last_report, "last evaluation (step " + std::to_string(r.last_eval_step) + ")");
    out << "checkpoint: " << r.checkpoint_path << "\nmetrics:    " << r.metrics_path << "\n";
    if (r.interrupted) {
        out << "resume with: build/miras train --resume " << r.checkpoint_path << "\n";
        return kExitInterrupted;
    }
    return 0;
}

// ---------------------------------------------------------------- eval

int cmd_eval(const std::string& ckpt_arg, const std::vector<std::string>& sets, int64_t batches, bool allow_data_change,
             std::ostream& out) {
    const std::string path = checkpoint_file(ckpt_arg);
    Checkpoint ck = read_checkpoint(path);
    std::vector<std::string> all = sets;
    if (batches > 0) all.push_back("train.eval_batches=" + std::to_string(batches));
    RunConfig cfg = checkpoint_config(path, ck, all);
    // The run's BLAS threads, so the result is the one its training printed.
    const BlasThreadsScope threads((int)cfg.train.threads);
    auto model = build_model(cfg.model);
    load_model_state(ck, *model, path);
    TaskData data(cfg.data);
    check_same_data(ck, data, path, allow_data_change);
    out << "checkpoint: " << path << " (step " << ck.step << ")\ndata: " << data.describe() << "\n";
    // The whole held-out split, as the run's last evaluation (train.final_eval).
    const EvalReport r = evaluate_sets(*model, data.eval_sets(cfg.train.eval_batches, cfg.train.batch, cfg.train.final_eval_all),
                                       data.group_names());
    print_eval(out, cfg.data, r, "eval");
    return 0;
}

// ---------------------------------------------------------------- generate

struct GenArgs {
    std::string ckpt, prompt = "\n";
    int64_t length = 200, top_k = 0;
    double temperature = 0.8;
    uint64_t seed = 0;
    bool windowed = false;
};

int cmd_generate(const GenArgs& a, std::ostream& out) {
    const std::string path = checkpoint_file(a.ckpt);
    Checkpoint ck = read_checkpoint(path);
    RunConfig cfg = checkpoint_config(path, ck, {});
    if (cfg.data.task != "bytes" || cfg.model.vocab != 256)
        throw std::runtime_error(path + ": generate needs a byte-level language model (data.task = \"bytes\"), but "
                                        "this checkpoint was trained on data.task = \"" +
                                 cfg.data.task + "\"");
    if (a.prompt.empty()) throw std::runtime_error("--prompt must hold at least one byte");
    const BlasThreadsScope threads((int)cfg.train.threads);
    auto model = build_model(cfg.model);
    load_model_state(ck, *model, path);
    std::vector<int64_t> prompt;
    for (unsigned char c : a.prompt) prompt.push_back(c);
    // The prompt, then each byte as it is drawn: a long --length shows its
    // progress instead of a silent wait.
    out << a.prompt << std::flush;
    sample_tokens(*model, prompt, a.length, a.temperature, a.top_k, a.seed, cfg.data.seq_len,
                  [&out](int64_t id) { out << (char)(unsigned char)id << std::flush; }, a.windowed);
    out << "\n";
    return 0;
}

// ---------------------------------------------------------------- info

std::string sci(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", x);
    return buf;
}

// The width a parameter budget chose, and how near it came.
void print_params_target(std::ostream& out, const RunConfig& cfg, int64_t params) {
    const int64_t target = cfg.model.params_target, off = params - target;
    char pct[32];
    std::snprintf(pct, sizeof pct, "%+.3f%%", 100.0 * (double)off / (double)target);
    out << "params: model.mlp_hidden = " << cfg.model.mlp_hidden << " gives " << params
        << " parameters, the nearest to model.params_target = " << target << " (" << (off >= 0 ? "+" : "") << off
        << ", " << pct << ")\n";
}

int cmd_info(const std::vector<std::string>& configs, const std::string& preset, std::vector<std::string> sets,
             int64_t params_target, std::ostream& out) {
    if (params_target > 0) sets.push_back("model.params_target=" + std::to_string(params_target));
    RunConfig cfg = resolve_config(configs, preset, sets);
    auto model = build_model(cfg.model);
    const int64_t T = cfg.data.seq_len, B = cfg.train.batch;
    print_config_header(out, cfg);
    out << "model:  mixer " << cfg.model.mixer << ", vocab " << cfg.model.vocab << ", d " << cfg.model.d << ", heads "
        << cfg.model.heads << ", layers " << cfg.model.layers << ", mlp hidden "
        << cfg.model.transformer().mlp_hidden_or_default() << ", " << dtype_name(cfg.model.dtype)
        << memory_text(cfg.model) << "\n"
        << "data:   " << cfg.data.task << ", seq_len " << T << "\n";
    if (cfg.model.params_target > 0) print_params_target(out, cfg, model->num_parameters());
    out << "\nparameters by module:\n";
    for (const auto& [name, n] : parameter_counts(*model)) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "  %-12s %12lld\n", name.c_str(), (long long)n);
        out << buf;
    }
    char buf[96];
    std::snprintf(buf, sizeof buf, "  %-12s %12lld\n", "total", (long long)model->num_parameters());
    out << buf;
    const double fwd = model->forward_flops_per_token(T);
    out << "\nFLOPs per token at seq_len " << T << " (matmuls, 2 per multiply-add):\n"
        << "  forward          " << sci(fwd) << "\n"
        << "  training (~3x)   " << sci(3 * fwd) << "\n"
        << "  per step         " << sci(3 * fwd * (double)(B * T)) << " (" << B << " x " << T << " tokens)\n";
    return 0;
}

// ---------------------------------------------------------------- forward / grad

struct ProbeArgs {
    std::string preset, params, input, out, dump_params;
    std::vector<std::string> configs, sets;
    bool layer = false;
    uint64_t seed = 0;
    int64_t batch = 0, seq = 0;
};

std::string describe_result(const TensorMap& r) {
    std::ostringstream s;
    s << "out " << shape_str(r.at("out").shape());
    if (r.count("loss")) s << ", loss " << std::setprecision(17) << r.at("loss").item();
    size_t n = 0;
    for (const auto& kv : r) n += kv.first.rfind("grad.", 0) == 0;
    if (n) s << ", " << n << " gradients";
    return s.str();
}

// Loads --params into `m` (strict: every name, shape and dtype; in PyTorch's
// layout, which the file must declare: check_pytorch_layout) and writes
// --dump-params. A training checkpoint is read as one (checksum included) and
// gives the model its parameters; its optimizer state is left aside.
void params_in_out(const ProbeArgs& a, Module& m, std::ostream& out) {
    if (!a.params.empty()) {
        const StFile st = read_safetensors(a.params);
        auto format = st.metadata.find("format");
        if (format != st.metadata.end() && format->second.rfind("miras-checkpoint-", 0) == 0) {
            if (a.layer)
                throw std::runtime_error(a.params + ": a training checkpoint holds a whole model; --layer needs the "
                                                    "layer's own parameters (W_Q, ..., as --dump-params writes them)");
            load_model_state(read_checkpoint(a.params), m, a.params);
        } else {
            TensorFile f = read_tensor_file(a.params);
            // Integer entries are read as ids (read_tensor_file): one named like a
            // parameter would otherwise be reported as missing.
            for (const auto& [name, ids] : f.indices)
                throw std::runtime_error(a.params + ": tensor '" + name + "' " + shape_str(ids.shape) +
                                         " holds integers; parameters are F32 or F64");
            check_pytorch_layout(a.params, st.metadata);
            try {
                m.load_parameters(from_stored_layout(a.params, f.tensors, m));
            } catch (const std::invalid_argument& e) {
                throw std::runtime_error(a.params + ": " + e.what());
            }
        }
    }
    if (!a.dump_params.empty()) {
        write_tensor_file(a.dump_params, to_stored_layout(parameter_map(m), m), {{kLayoutKey, kPytorchLayout}});
        out << "parameters: " << a.dump_params << "\n";
    }
}

// Runs a probe; a refusal of the given input (its shapes, dtypes, token ids)
// names the --input file.
template <class F> TensorMap input_named(const ProbeArgs& a, F&& probe) {
    try {
        return probe();
    } catch (const std::logic_error& e) {  // invalid_argument, out_of_range (a token id)
        if (a.input.empty()) throw;
        throw std::runtime_error(a.input + ": " + e.what());
    }
}

int cmd_probe(const ProbeArgs& a, bool grads, std::ostream& out) {
    RunConfig rc = resolve_config(a.configs, a.preset, a.sets);
    if (a.out.empty() && a.dump_params.empty()) throw std::runtime_error("--out is required (or only --dump-params)");
    if (!a.layer && a.seq > 0)
        throw std::runtime_error("--seq sets the length of --layer's random input; a model's rows are data.seq_len "
                                 "tokens (--set data.seq_len=" + std::to_string(a.seq) + ")");
    const BlasThreadsScope threads((int)rc.train.threads);
    std::map<std::string, std::string> meta{
        {"config", rc.toml}, {"mode", a.layer ? "layer" : "model"}, {kLayoutKey, kPytorchLayout}};
    TensorMap result;
    if (a.layer) {
        // One memory layer from [memory], always in f64: the precision it is checked in (docs/math.md §4).
        MemoryConfig mc = rc.model.memory;
        mc.d = rc.model.d;
        mc.heads = rc.model.heads;
        mc.dtype = DType::f64;
        mc.seed = rc.model.seed;
        MirasLayer layer(mc);
        params_in_out(a, layer, out);
        if (a.out.empty()) return 0;
        Tensor x, R;
        if (!a.input.empty()) {
            TensorFile in = read_tensor_file(a.input);
            for (const char* name : {"x", "R"})
                if (in.indices.count(name))
                    throw std::runtime_error(a.input + ": tensor \"" + name +
                                             "\" holds integers; --layer needs F64 values");
            if (!in.tensors.count("x")) throw std::runtime_error(a.input + ": needs a tensor \"x\" (B, T, d) for --layer");
            x = in.tensors.at("x");
            if (in.tensors.count("R")) R = in.tensors.at("R");
        } else {
            Generator g(a.seed);
            const Shape s{a.batch > 0 ? a.batch : 2, a.seq > 0 ? a.seq : rc.data.seq_len, mc.d};
            x = randn(s, g, DType::f64);
            R = randn(s, g, DType::f64);
        }
        const ScanMode mode = rc.model.memory_sequential ? ScanMode::sequential : ScanMode::chunked;
        result = input_named(a, [&] { return probe_layer(layer, x, R, grads, mode); });
        result = to_stored_layout(result, layer, "grad.");  // gradients in the layout of their parameters
    } else {
        auto model = build_model(rc.model);
        params_in_out(a, *model, out);
        if (a.out.empty()) return 0;
        IndexTensor tokens, targets;
        if (!a.input.empty()) {
            TensorFile in = read_tensor_file(a.input);
            for (const char* name : {"tokens", "targets"})
                if (in.tensors.count(name))
                    throw std::runtime_error(a.input + ": tensor \"" + name + "\" holds " +
                                             dtype_name(in.tensors.at(name).dtype()) +
                                             " values; token ids must be integers (I64, I32, ...)");
            if (!in.indices.count("tokens"))
                throw std::runtime_error(a.input + ": needs integer \"tokens\" (B, T) (and optionally \"targets\")");
            tokens = in.indices.at("tokens");
            if (in.indices.count("targets")) targets = in.indices.at("targets");
        } else {
            // A batch of the configured task: step `seed` of its training stream.
            TokenBatch b = TaskData(rc.data).train_batch((int64_t)a.seed, a.batch > 0 ? a.batch : rc.train.batch);
            tokens = IndexTensor({b.batch, b.seq_len}, b.inputs);
            targets = IndexTensor({b.batch, b.seq_len}, b.targets);
        }
        result = input_named(a, [&] { return probe_model(*model, tokens, targets, grads); });
        result = to_stored_layout(result, *model, "grad.");
    }
    write_tensor_file(a.out, result, meta);
    out << a.out << ": " << describe_result(result) << "\n";
    return 0;
}

// Runs `body`, turning exceptions into "error: ..." and exit code 1.
template <class F> int guarded(std::ostream& err, F&& body) {
    try {
        return body();
    } catch (const std::exception& e) {
        err << "error: " << e.what() << "\n";
        return kExitError;
    }
}

}  // namespace

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
    CLI::App app{"miras: train, evaluate and sample test-time-memorization models (Titans / Miras)", "miras"};
    app.require_subcommand(1);
    app.footer("Run `miras <command> --help` for the options of a command. Docs: docs/training.md");

    TrainArgs ta;
    CLI::App* train_cmd = app.add_subcommand("train", "Train a model from a TOML config (or resume a run)");
    train_cmd->add_option("config", ta.configs, kConfigHelp);
    train_cmd->add_option("--preset", ta.preset, "A named config from " + std::string(kPresetDir) +
                                                     ", e.g. titans-lmm: the base the config files are layered on");
    train_cmd->add_option("--set", ta.sets, "Override a config key, e.g. --set optim.lr=3e-4 (repeatable)")
        ->type_name("KEY=VALUE")->allow_extra_args(false);
    train_cmd->add_option("--out", ta.out, "Run folder (default: output.dir of the config)")->check(kNonEmpty);
    train_cmd->add_flag("--force", ta.force, "Start over in a folder that holds another run, renaming it to <folder>.old-<n> first");
    train_cmd->add_flag("--allow-data-change", ta.allow_data_change, "Resume although the byte corpus changed since the checkpoint");
    train_cmd->add_option("--seeds", ta.seeds, "A run per seed s (model.seed = s, data.seed = 1 + s) in <out>/seed<s>, "
                                               "then the final figure's mean ± sd (comma-separated)")
        ->delimiter(',')
        ->transform(integer_in<int64_t>(0, kMaxInt, "SEED"));
    train_cmd->add_option("--sweep", ta.sweeps, "A run per value of a key, e.g. --sweep optim.lr=1e-3,3e-3, in "
                                                "<out>/<key>=<value>/ (repeatable: a grid; with --seeds, per seed)")
        ->type_name("KEY=V1,V2")
        ->allow_extra_args(false);
    train_cmd->add_option("--resume", ta.resume,
                          "Continue from a checkpoint (file or run folder); uses the config stored in it");

    std::string eval_ckpt;
    std::vector<std::string> eval_sets;
    int64_t eval_batches = 0;
    CLI::App* eval_cmd = app.add_subcommand("eval", "Loss and accuracy (or bits/byte) of a checkpoint on its task");
    eval_cmd->add_option("checkpoint", eval_ckpt, "Checkpoint file or run folder")->required();
    eval_cmd->add_option("--set", eval_sets, "Override a key of the stored config, e.g. data.passkey.depth=0.9")
        ->type_name("KEY=VALUE")->allow_extra_args(false);
    eval_cmd->add_option("--batches", eval_batches, "Evaluation batches (default: train.eval_batches)")
        ->transform(integer_in<int64_t>(1, 1 << 20, "POSITIVE"));  // the range of train.eval_batches
    bool eval_allow_data_change = false;
    eval_cmd->add_flag("--allow-data-change", eval_allow_data_change,
                       "Evaluate although the byte corpus changed since the checkpoint");

    GenArgs ga;
    CLI::App* gen_cmd = app.add_subcommand("generate", "Sample bytes from a byte-level language-model checkpoint");
    gen_cmd->add_option("checkpoint", ga.ckpt, "Checkpoint file or run folder")->required();
    gen_cmd->add_option("--prompt", ga.prompt, "Text to continue (default: a newline)");
    gen_cmd->add_option("--length", ga.length, "Bytes to generate")
        ->capture_default_str()
        ->transform(integer_in<int64_t>(0, kMaxInt, "NONNEGATIVE"));
    gen_cmd->add_option("--temperature", ga.temperature, "Softmax temperature; 0 = always the most likely byte")
        ->capture_default_str()
        ->check(finite_non_negative());
    gen_cmd->add_option("--top-k", ga.top_k, "Sample among the k most likely bytes; 0 = all")
        ->capture_default_str()
        ->transform(integer_in<int64_t>(0, kMaxInt, "NONNEGATIVE"));
    gen_cmd->add_flag("--windowed", ga.windowed,
                      "Re-run the last data.seq_len bytes for every byte instead of carrying the model's state");
    gen_cmd->add_option("--seed", ga.seed, "Sampling seed (same seed, same text)")
        ->capture_default_str()
        ->transform(integer_in<uint64_t>(0, std::numeric_limits<uint64_t>::max(), ""));

    std::string info_preset;
    std::vector<std::string> info_configs, info_sets;
    CLI::App* info_cmd = app.add_subcommand("info", "Parameter count by module and FLOPs per token of a config");
    info_cmd->add_option("config", info_configs, kConfigHelp);
    info_cmd->add_option("--preset", info_preset, "A named config from " + std::string(kPresetDir));
    info_cmd->add_option("--set", info_sets, "Override a config key (repeatable)")->type_name("KEY=VALUE")->allow_extra_args(false);
    int64_t info_params_target = 0;
    info_cmd->add_option("--params-target", info_params_target,
                         "Choose model.mlp_hidden so the model has the parameter count nearest N (= --set "
                         "model.params_target=N)")
        ->type_name("N")
        ->transform(integer_in<int64_t>(1, kMaxInt, "POSITIVE"));

    ProbeArgs fa, da;
    auto add_probe = [&](const char* name, const char* what, ProbeArgs& p) {
        CLI::App* c = app.add_subcommand(name, what);
        c->add_option("config", p.configs, kConfigHelp);
        c->add_option("--preset", p.preset, "A named config from " + std::string(kPresetDir));
        c->add_option("--set", p.sets, "Override a config key (repeatable)")->type_name("KEY=VALUE")->allow_extra_args(false);
        c->add_flag("--layer", p.layer, "One memory layer of the [memory] config in f64, instead of the whole model");
        c->add_option("--params", p.params,
                      "Parameters (safetensors, by name, in PyTorch's layout with __metadata__ \"layout\": "
                      "\"pytorch\" or \"format\": \"pt\"; for a model also a training checkpoint); default: the "
                      "seeded initialisation");
        CLI::Option* input = c->add_option(
            "--input", p.input,
            "Input (safetensors): layer \"x\" (B, T, d) f64 and optional \"R\"; model integer \"tokens\" (B, T) "
            "and optional \"targets\"");
        // --seed, --batch and --seq draw the input, so they exclude --input
        // (which they would silently not change); ranges as train.batch, data.seq_len.
        c->add_option("--seed", p.seed, "Without --input: seed of a random x and R (layer) or the task batch (model)")
            ->capture_default_str()
            ->transform(integer_in<uint64_t>(0, std::numeric_limits<uint64_t>::max(), ""))
            ->excludes(input);
        c->add_option("--batch", p.batch, "Without --input: rows (default: 2 for a layer, train.batch for a model)")
            ->transform(integer_in<int64_t>(1, 1 << 20, "POSITIVE"))
            ->excludes(input);
        c->add_option("--seq", p.seq, "Without --input, layer: tokens per row (default: data.seq_len)")
            ->transform(integer_in<int64_t>(1, 1 << 24, "POSITIVE"))
            ->excludes(input);
        c->add_option("--out", p.out,
                      "Result file (safetensors): out, loss" +
                          std::string(name == std::string("grad") ? ", grad.<name>" : ""))
            ->check(kNonEmpty);
        c->add_option("--dump-params", p.dump_params, "Also write the parameters used (safetensors)")->check(kNonEmpty);
        return c;
    };
    CLI::App* fwd_cmd = add_probe("forward", "Output and loss of a layer or model on given parameters and input", fa);
    CLI::App* grad_cmd = add_probe("grad", "Output, loss and the loss's gradient for every parameter (and x)", da);

    SuiteArgs sa;
    CLI::App* suite_cmd = add_suite_command(app, sa);

    std::vector<std::string> cmp_runs;
    CompareOptions cmp;
    bool cmp_no_group = false;
    CLI::App* cmp_cmd = app.add_subcommand("compare", "A table and plots of runs side by side, seeds grouped");
    cmp_cmd->add_option("runs", cmp_runs, "Run folders, or folders with runs below them (a sweep's --out)")->required();
    cmp_cmd->add_option("--out", cmp.out_dir, "Folder for compare.md, loss.svg, eval.svg (default: <common parent of "
                                              "the runs>/compare)")
        ->check(kNonEmpty);
    cmp_cmd->add_flag("--no-group", cmp_no_group, "A row per run, also for runs that differ only in their seeds");

    std::vector<const char*> argv;
    for (const std::string& s : args) argv.push_back(s.c_str());
    if (argv.empty()) argv.push_back("miras");
    // CLI11 would only say "a subcommand is required" here.
    auto is_command = [&](const std::string& name) {
        for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
            if (sub->get_name() == name) return true;
        return false;
    };
    if (argv.size() > 1 && argv[1][0] != '-' && !is_command(argv[1])) {
        err << "error: unknown command '" << argv[1] << "' (commands: train, eval, generate, info, forward, grad, suite, compare; see miras --help)\n";
        return kExitUsage;
    }
    try {
        app.parse((int)argv.size(), argv.data());
    } catch (const CLI::ParseError& e) {
        // CLI11's own codes (105, 106, 109, ...) are all usage errors here.
        return app.exit(e, out, err) == 0 ? 0 : kExitUsage;
    }

    if (train_cmd->parsed()) return guarded(err, [&] { return cmd_train(ta, out, err); });
    if (eval_cmd->parsed()) return guarded(err, [&] { return cmd_eval(eval_ckpt, eval_sets, eval_batches, eval_allow_data_change, out); });
    if (gen_cmd->parsed()) return guarded(err, [&] { return cmd_generate(ga, out); });
    if (info_cmd->parsed()) return guarded(err, [&] { return cmd_info(info_configs, info_preset, info_sets, info_params_target, out); });
    if (fwd_cmd->parsed()) return guarded(err, [&] { return cmd_probe(fa, false, out); });
    if (grad_cmd->parsed()) return guarded(err, [&] { return cmd_probe(da, true, out); });
    if (suite_cmd->parsed()) return guarded(err, [&] { return cmd_suite(sa, args, out); });
    if (cmp_cmd->parsed())
        return guarded(err, [&] {
            cmp.group_seeds = !cmp_no_group;
            compare_runs(find_runs(cmp_runs), cmp, out);
            return 0;
        });
    err << app.help();
    return kExitUsage;
}

int run_cli(int argc, const char* const* argv) {
    std::vector<std::string> args(argv, argv + argc);
    return run_cli(args, std::cout, std::cerr);
}

}  // namespace miras
