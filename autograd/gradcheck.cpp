#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "autograd/ops.h"

namespace miras {
namespace {

// Fresh contiguous f64 copies; the copies require grad where the originals do.
TensorList prepare(const TensorList& inputs, std::vector<size_t>& diff) {
    TensorList xs;
    for (size_t i = 0; i < inputs.size(); ++i) {
        const Tensor& t = inputs[i];
        if (t.dtype() != DType::f64)
            throw std::invalid_argument("gradcheck: input " + std::to_string(i) + " is " + dtype_name(t.dtype()) +
                                        "; finite differences need f64");
        Tensor c = raw::clone(t);
        if (requires_grad(t)) {
            set_requires_grad(c);
            diff.push_back(i);
        }
        xs.push_back(c);
    }
    if (diff.empty()) throw std::invalid_argument("gradcheck: no input requires grad");
    return xs;
}

// f's outputs at xs, flattened. Grad mode stays on: f may itself call grad()
// (a gradient map in gradgradcheck, an unrolled inner optimisation), which
// needs its forward recorded. The graph is dropped on return.
std::vector<double> flat_outputs(const TensorFn& f, const TensorList& xs) {
    EnableGradGuard eg;
    std::vector<double> v;
    for (const Tensor& o : f(xs)) {
        auto ov = o.to_vector();
        v.insert(v.end(), ov.begin(), ov.end());
    }
    return v;
}

}  // namespace

GradcheckResult gradcheck(const TensorFn& f, const TensorList& inputs, const GradcheckOptions& opt) {
    std::vector<size_t> diff;
    TensorList xs = prepare(inputs, diff);
    TensorList diff_inputs;
    for (size_t i : diff) diff_inputs.push_back(xs[i]);

    // Analytic Jacobian, one row per output element: J[o][input][elem].
    TensorList outs = f(xs);
    std::vector<std::vector<std::vector<double>>> J;
    for (const Tensor& o : outs) {
        if (o.dtype() != DType::f64) throw std::invalid_argument("gradcheck: outputs must be f64");
        for (int64_t j = 0; j < o.numel(); ++j) {
            std::vector<std::vector<double>> row;
            if (!requires_grad(o)) {
                for (auto& x : diff_inputs) row.emplace_back((size_t)x.numel(), 0.0);
            } else {
                std::vector<double> onehot((size_t)o.numel(), 0.0);
                onehot[(size_t)j] = 1;
                TensorList gs = grad({o}, diff_inputs, {from_vector(onehot, o.shape(), DType::f64)}, {.retain_graph = true, .allow_unused = true});
                for (size_t k = 0; k < gs.size(); ++k)
                    row.push_back(gs[k].defined() ? gs[k].to_vector() : std::vector<double>((size_t)diff_inputs[k].numel(), 0.0));
            }
            J.push_back(std::move(row));
        }
    }

    // Numeric Jacobian, one column per input element, compared as it goes.
    GradcheckResult res;
    double worst = 0;
    for (size_t k = 0; k < diff.size(); ++k) {
        Tensor& x = xs[diff[k]];
        double* p = x.data<double>();
        for (int64_t e = 0; e < x.numel(); ++e) {
            double orig = p[e];
            p[e] = orig + opt.eps;
            auto plus = flat_outputs(f, xs);
            p[e] = orig - opt.eps;
            auto minus = flat_outputs(f, xs);
            p[e] = orig;
            for (size_t o = 0; o < plus.size(); ++o) {
                double num = (plus[o] - minus[o]) / (2 * opt.eps);
                double ana = J[o][k][(size_t)e];
                double err = std::abs(num - ana) - (opt.atol + opt.rtol * std::abs(num));
                if (!(err <= 0) && (err > worst || std::isnan(err) || res.ok)) {
                    worst = std::isnan(err) ? INFINITY : err;
                    std::ostringstream os;
                    os.precision(10);
                    os << "gradcheck: mismatch for input " << diff[k] << " element " << e << ", output element " << o
                       << ": numeric " << num << " vs analytic " << ana;
                    res.ok = false;
                    res.message = os.str();
                }
            }
        }
    }
    return res;
}

GradcheckResult gradgradcheck(const TensorFn& f, const TensorList& inputs, const GradcheckOptions& opt, uint64_t seed) {
    std::vector<size_t> diff;
    TensorList xs = prepare(inputs, diff);
    size_t n_in = xs.size();
    // Random cotangents, one per output, differentiated too.
    TensorList outs = f(xs);  // for the output shapes (grad mode on: f may call grad())
    Generator gen(seed + 12345);
    TensorList all = xs;
    for (const Tensor& o : outs) all.push_back(set_requires_grad(randn(o.shape(), gen, DType::f64)));
    TensorFn g = [f, n_in, diff](const TensorList& args) {
        TensorList x(args.begin(), args.begin() + (long)n_in);
        TensorList v(args.begin() + (long)n_in, args.end());
        TensorList ys = f(x);
        TensorList used_y, used_v, wrt;
        for (size_t i = 0; i < ys.size(); ++i)
            if (requires_grad(ys[i])) { used_y.push_back(ys[i]); used_v.push_back(v[i]); }
        for (size_t i : diff) wrt.push_back(x[i]);
        TensorList res;
        if (used_y.empty()) {
            for (auto& w : wrt) res.push_back(zeros_like(w));
            return res;
        }
        TensorList gs = grad(used_y, wrt, used_v, {.create_graph = true, .allow_unused = true});
        for (size_t i = 0; i < gs.size(); ++i) res.push_back(gs[i].defined() ? gs[i] : zeros_like(wrt[i]));
        return res;
    };
    GradcheckResult r = gradcheck(g, all, opt);
    if (!r.ok) r.message = "gradgradcheck (second derivative): " + r.message;
    return r;
}

}  // namespace miras
