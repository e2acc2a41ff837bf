// Where a forward first goes non-finite (train/diagnose.h), for the
// trainer's step-0 message: each stage named when a NaN is planted in its
// parameters (the embedding, a memory layer's projections and its initial
// weights, an attention, an MLP), the deepest non-finite gradient, and the
// message itself before and after the first update.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "autograd/node.h"
#include "op_test_util.h"
#include "train/diagnose.h"
#include "train/model_config.h"

using namespace miras;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

std::shared_ptr<Transformer> tiny_model(const std::string& mixer) {
    RunConfig rc = default_run_config({"model.mixer=" + mixer, "model.d=8", "model.heads=2", "data.seq_len=12",
                                       "data.mqar.vocab=13", "data.mqar.num_pairs=3"});
    return build_model(rc.model);
}

IndexTensor ids() {
    std::vector<int64_t> v;
    for (int64_t i = 0; i < 2 * 12; ++i) v.push_back(i % 13);
    return IndexTensor({2, 12}, v);
}

// The model's parameters with `name` filled with NaN.
void plant_nan(Transformer& model, const std::string& name) {
    std::map<std::string, Tensor> values;
    bool found = false;
    for (auto& [n, p] : model.named_parameters()) {
        values[n] = n == name ? full(p.shape(), kNaN, p.dtype()) : p;
        found = found || n == name;
    }
    BOOST_REQUIRE_MESSAGE(found, "no parameter " << name);
    model.load_parameters(values);
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(diagnose)

BOOST_AUTO_TEST_CASE(a_finite_forward_has_no_stage) {
    for (const std::string mixer : {"lmm", "attn", "mac"}) {
        auto model = tiny_model(mixer);
        BOOST_TEST(first_non_finite_stage(*model, ids()).empty(), mixer);
    }
}

BOOST_AUTO_TEST_CASE(each_stage_is_named) {
    struct Case {
        std::string mixer, param;
        std::vector<std::string> says;
    };
    const std::vector<Case> cases = {
        {"lmm", "embed.weight", {"the token embedding"}},
        {"lmm", "blocks.1.mixer.memory.W_K", {"block 1's mixer output", "its q, k, v are non-finite"}},
        {"lmm", "blocks.0.mixer.memory.A0",
         {"block 0's mixer output", "its gates are finite", "weight matrix 1 of the memory became non-finite at token 0 of 12"}},
        {"mag", "blocks.0.mixer.memory.W_V", {"block 0's mixer output", "its memory layer, run alone", "q, k, v"}},
        {"attn", "blocks.1.mixer.W_Q", {"block 1's mixer output"}},
        {"lmm", "blocks.0.mlp.W_up", {"block 0's output", "the MLP half"}},
    };
    for (const Case& c : cases) {
        BOOST_TEST_CONTEXT(c.mixer << ", NaN in " << c.param) {
            auto model = tiny_model(c.mixer);
            plant_nan(*model, c.param);
            const std::string where = first_non_finite_stage(*model, ids());
            for (const std::string& s : c.says) BOOST_TEST(has(where, s), where);
            if (c.mixer == "attn") BOOST_TEST(!has(where, "memory"), where);
        }
    }
}

BOOST_AUTO_TEST_CASE(the_deepest_non_finite_gradient_marks_where_it_arose) {
    // a, b, c in the forward's order; b and a non-finite (as a backward from a
    // NaN at b leaves them), c finite: b is the deepest.
    Tensor a = set_requires_grad(zeros({2}, DType::f64)), b = set_requires_grad(zeros({3}, DType::f64)),
           c = set_requires_grad(zeros({1}, DType::f64));
    set_grad(a, full({2}, kNaN, DType::f64));
    set_grad(b, from_vector({1.0, INFINITY, kNaN}, {3}, DType::f64));
    set_grad(c, full({1}, 1.0, DType::f64));
    const std::string got = deepest_non_finite_gradient({{"a", a}, {"b", b}, {"c", c}});
    BOOST_TEST(got == "b (2 of 3 values); 2 of 3 parameters have non-finite gradients");
    set_grad(a, full({2}, 0.0, DType::f64));
    set_grad(b, full({3}, 0.0, DType::f64));
    BOOST_TEST(deepest_non_finite_gradient({{"a", a}, {"b", b}, {"c", c}}).empty());
}

BOOST_AUTO_TEST_CASE(the_message_blames_the_learning_rate_only_after_an_update) {
    auto model = tiny_model("lmm");
    plant_nan(*model, "blocks.0.mixer.memory.A0");
    const std::string later = non_finite_message("training loss", kNaN, 7, *model, ids(), false);
    BOOST_TEST(has(later, "the training loss became nan at step 7; try a lower optim.lr or optim.clip"), later);
    const std::string first = non_finite_message("training loss", kNaN, 0, *model, ids(), false);
    BOOST_TEST(has(first, "at step 0, before any update (so not because of the learning rate)"), first);
    BOOST_TEST(has(first, "first non-finite in block 0's mixer output"), first);
    BOOST_TEST(has(first, "weight matrix 1 of the memory became non-finite at token 0"), first);
    BOOST_TEST(!has(first, "try a lower optim.lr"), first);
    // A gradient: the deepest parameter is named (none here: no backward ran).
    const std::string grad = non_finite_message("gradient norm", INFINITY, 0, *model, ids(), true);
    BOOST_TEST(has(grad, "every gradient value is finite, their squares overflow the norm"), grad);
}

BOOST_AUTO_TEST_SUITE_END()
