// Our memory layer against the independent PyTorch reference
// (tests/torch_ref, docs/math.md §4): same parameters and input, f64; outputs, loss
// and every gradient (parameters and x) must agree to
// 1e-9 · max(1, max|ref|), for the chunked and the sequential scan.
// Skipped (with a message) when /usr/bin/python3 cannot import torch.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "miras/layer.h"
#include "tests/torch_available.h"
#include "train/probe.h"

using namespace miras;
namespace fs = std::filesystem;

namespace {

using miras::testing::kPython;
constexpr const char* kRefDir = miras::testing::kTorchRefDir;
constexpr int64_t kB = 2, kT = 7;
constexpr double kTol = 1e-9;

// The JSON config of miras_ref.DEFAULTS for `c` (the same keys as MemoryConfig).
std::string ref_json(const MemoryConfig& c) {
    std::ostringstream s;
    s.precision(17);
    auto b = [](bool v) { return v ? "true" : "false"; };
    s << "{\"d\": " << c.d << ", \"heads\": " << c.heads << ", \"memory\": \"" << c.memory << "\", \"depth\": " << c.depth
      << ", \"expansion\": " << c.expansion << ", \"residual\": " << b(c.residual) << ", \"layernorm\": "
      << b(c.layernorm) << ", \"bias\": \"" << c.bias << "\", \"p\": " << c.p << ", \"huber_delta\": " << c.huber_delta
      << ", \"retention\": \"" << c.retention << "\", \"q\": " << c.q << ", \"kl_c\": " << c.kl_c
      << ", \"gamma\": " << c.gamma << ", \"algorithm\": \"" << c.algorithm << "\", \"chunk\": " << c.chunk
      << ", \"theta_max\": " << c.theta_max << ", \"fix_A0_zero\": " << b(c.fix_A0_zero)
      << ", \"conv_bias\": " << b(c.conv_bias) << ", \"first_order\": " << b(c.first_order) << ", \"fixed_gates\": {";
    bool first = true;
    for (const auto& [g, v] : c.fixed_gates) {
        s << (first ? "" : ", ") << "\"" << g << "\": " << v;
        first = false;
    }
    s << "}}";
    return s.str();
}

struct Case {
    std::string name;
    MemoryConfig cfg;
};

std::vector<Case> cases() {
    MemoryConfig base;
    base.d = 8;
    base.heads = 2;
    base.chunk = 3;
    base.expansion = 2;
    base.dtype = DType::f64;
    std::vector<Case> v;
    auto add = [&](const std::string& name, auto edit) {
        MemoryConfig c = base;
        edit(c);
        c.validate();
        v.push_back({name, c});
    };
    add("linear_l2_l2_momentum", [](MemoryConfig& c) { c.algorithm = "momentum"; });
    add("titans_mlp", [](MemoryConfig& c) {
        c.memory = "mlp";
        c.algorithm = "momentum";
    });
    add("moneta_lp_lq", [](MemoryConfig& c) {
        c.memory = "mlp";
        c.bias = "lp";
        c.retention = "lq";
        c.theta_max = 0.1;
    });
    add("memora_kl", [](MemoryConfig& c) {
        c.memory = "mlp";
        c.retention = "kl";
    });
    add("yaad_huber_mix", [](MemoryConfig& c) {
        c.memory = "mlp";
        c.bias = "huber_mix";
    });
    add("linear_attention", [](MemoryConfig& c) {
        c.bias = "dot";
        c.retention = "none";
        c.fixed_gates["theta"] = 1.0;
        c.fix_A0_zero = true;
    });
    return v;
}

// One python process for every case: the reference's own initialisation and
// input (as compare.py --make-params / --make-input), then its f64 run (as
// compare.py --out). Writes <dir>/<case>.{params,input,ref}.safetensors.
const char* kDriver = R"PY(
import json, os, sys
sys.path.insert(0, sys.argv[1])
import torch
import compare, miras_ref as R, st_io
jobs = json.load(open(sys.argv[2]))
for j in jobs:
    cfg = R.normalize_config(j['cfg'])
    p = {k: v.numpy() for k, v in R.init_params(cfg, j['seed'], torch.float64).items()}
    g = torch.Generator().manual_seed(j['seed'] + 1)
    x = torch.randn(j['B'], j['T'], cfg['d'], generator=g, dtype=torch.float64).numpy()
    r = torch.randn(j['B'], j['T'], cfg['d'], generator=g, dtype=torch.float64).numpy()
    st_io.write(j['prefix'] + '.params.safetensors', p)
    st_io.write(j['prefix'] + '.input.safetensors', {'x': x, 'R': r})
    st_io.write(j['prefix'] + '.ref.safetensors', compare.run_reference(cfg, p, x, r))
)PY";

}  // namespace

BOOST_AUTO_TEST_SUITE(torch_compare)

BOOST_AUTO_TEST_CASE(layer_matches_pytorch_reference, *boost::unit_test::precondition(miras::testing::needs_torch)) {
    const fs::path dir = fs::temp_directory_path() / ("miras_torch_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    struct Cleanup {
        fs::path d;
        ~Cleanup() { fs::remove_all(d); }
    } cleanup{dir};

    const std::vector<Case> all = cases();
    {
        std::ofstream jobs(dir / "jobs.json");
        jobs << "[";
        for (size_t i = 0; i < all.size(); ++i)
            jobs << (i ? ",\n" : "") << "{\"cfg\": " << ref_json(all[i].cfg) << ", \"seed\": " << i << ", \"B\": " << kB
                 << ", \"T\": " << kT << ", \"prefix\": \"" << (dir / all[i].name).string() << "\"}";
        jobs << "]\n";
        std::ofstream(dir / "driver.py") << kDriver;
    }
    const std::string cmd = std::string(kPython) + " " + (dir / "driver.py").string() + " " + kRefDir + " " +
                            (dir / "jobs.json").string() + " > " + (dir / "log.txt").string() + " 2>&1";
    if (std::system(cmd.c_str()) != 0) {
        std::ifstream log(dir / "log.txt");
        std::stringstream ss;
        ss << log.rdbuf();
        BOOST_FAIL("the PyTorch reference failed: " << ss.str());
    }

    for (const Case& c : all) {
        const std::string prefix = (dir / c.name).string();
        TensorMap params = read_tensor_file(prefix + ".params.safetensors").tensors;
        TensorMap input = read_tensor_file(prefix + ".input.safetensors").tensors;
        TensorMap ref = read_tensor_file(prefix + ".ref.safetensors").tensors;
        MirasLayer layer(c.cfg);
        layer.load_parameters(params);  // throws if the names or shapes differ from the reference's
        for (ScanMode mode : {ScanMode::chunked, ScanMode::sequential}) {
            const char* mode_name = mode == ScanMode::chunked ? "chunked" : "sequential";
            TensorMap ours = probe_layer(layer, input.at("x"), input.at("R"), true, mode);
            BOOST_CHECK_EQUAL(ours.size(), ref.size());  // out, loss, grad.<every param>, grad.x
            for (const auto& [name, r] : ref) {
                BOOST_TEST_CONTEXT(c.name << " (" << mode_name << "): " << name) {
                    auto it = ours.find(name);
                    BOOST_REQUIRE_MESSAGE(it != ours.end(), "missing in ours");
                    std::vector<double> a = it->second.to_vector(), b = r.to_vector();
                    BOOST_REQUIRE_EQUAL(a.size(), b.size());
                    double err = 0, scale = 1;
                    for (size_t i = 0; i < a.size(); ++i) {
                        err = std::max(err, std::abs(a[i] - b[i]));
                        scale = std::max(scale, std::abs(b[i]));
                    }
                    BOOST_CHECK_MESSAGE(err <= kTol * scale, "max|ours - ref| = " << err << " > " << kTol * scale);
                }
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
