// data.curriculum (train/model_config.h DataConfig, docs/training.md "Length
// curriculum"): the first curriculum_steps[i] steps of each stage train at
// curriculum_lengths[i], the rest at data.seq_len; MQAR's pairs scale with the
// length; the batches of a step depend only on (seed, step), so a run resumed
// across a stage boundary repeats the uninterrupted run bit for bit; tokens
// are counted per stage; every bad combination names its key.
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include "tests/run_losses.h"
#include "tests/temp_dir.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

using namespace miras;
using miras::testing::run_losses;

namespace {

// MQAR at 32 tokens with 4 pairs; 3 steps at 8 tokens, 2 at 16, then 32.
RunConfig staged(int64_t steps, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> sets = {
        "model.mixer=lmm",      "model.d=16",           "model.heads=2",        "model.mlp_hidden=16",
        "memory.chunk=4",       "data.seq_len=32",      "data.mqar.vocab=24",   "data.mqar.num_pairs=4",
        "data.mqar.spread=true", "data.mqar.filler_vocab=4", "data.curriculum.lengths=[8, 16]",
        "data.curriculum.steps=[3, 2]", "train.batch=4", "train.eval_every=0", "train.eval_batches=1",
        "train.log_every=1",    "output.checkpoint_every=0", "train.steps=" + std::to_string(steps)};
    sets.insert(sets.end(), extra.begin(), extra.end());
    return default_run_config(sets);
}

std::string config_error(const std::vector<std::string>& sets) {
    try {
        staged(8, sets);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "<no error>";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(curriculum)

BOOST_AUTO_TEST_CASE(stages_follow_the_steps_and_scale_the_pairs) {
    const RunConfig cfg = staged(8);
    const TaskData data(cfg.data);
    const std::vector<int64_t> want_len = {8, 8, 8, 16, 16, 32, 32, 32};
    const std::vector<int64_t> want_pairs = {1, 1, 1, 2, 2, 4, 4, 4};  // 4 pairs at 32 tokens: as dense at 8 and 16
    for (int64_t s = 0; s < 8; ++s) {
        BOOST_TEST_CONTEXT("step " << s) {
            const TokenBatch b = data.train_batch(s, 4);
            BOOST_TEST(b.seq_len == want_len[(size_t)s]);
            BOOST_TEST(cfg.data.at_train_step(s).mqar.num_pairs == want_pairs[(size_t)s]);
            // Each stage's batch is the task's own batch at that length and seed.
            const DataConfig d = cfg.data.at_train_step(s);
            BOOST_TEST((b.inputs == make_mqar(d.mqar, 4, batch_seed(cfg.data.seed, (uint64_t)s)).inputs));
        }
    }
    // 3·4·8 + 2·4·16 + 3·4·32 tokens in 8 steps of 4 rows; part-way too.
    BOOST_TEST(cfg.data.train_tokens(8, 4) == 3 * 4 * 8 + 2 * 4 * 16 + 3 * 4 * 32);
    BOOST_TEST(cfg.data.train_tokens(4, 4) == 3 * 4 * 8 + 1 * 4 * 16);
    BOOST_TEST(cfg.data.train_tokens(0, 4) == 0);
    // Without a curriculum: every step at seq_len.
    const RunConfig plain = staged(8, {"data.curriculum.lengths=[]", "data.curriculum.steps=[]"});
    BOOST_TEST(TaskData(plain.data).train_batch(0, 4).seq_len == 32);
    BOOST_TEST(plain.data.train_tokens(8, 4) == 8 * 4 * 32);
    // Evaluation stays at data.seq_len (or data.eval_lengths).
    BOOST_TEST(data.eval_sets(1, 4)[0].seq_len == 32);
    // The header says what the curriculum is.
    BOOST_TEST(contains(data.describe(), "curriculum: 3 steps at 8 tokens (1 pairs), then 2 steps at 16 tokens (2 pairs), "
                                         "then 32 tokens (4 pairs)"),
               data.describe());
}

BOOST_AUTO_TEST_CASE(resume_across_a_stage_boundary_repeats_the_run) {
    miras::testing::TempDir full_dir("cur"), split_dir("cur");
    TrainOptions base;
    base.handle_sigint = false;
    TrainOptions o1 = base;
    o1.out_dir = full_dir.dir.string();
    TrainResult full, part, rest;
    const std::vector<double> ref = run_losses(staged(8), o1, &full);
    BOOST_REQUIRE(ref.size() == 8u);

    TrainOptions o2 = base;  // stopped after step 4: inside the second stage
    o2.out_dir = split_dir.dir.string();
    o2.handle_sigint = true;
    o2.on_step = [](const StepInfo& s) {
        if (s.step == 4) std::raise(SIGINT);
    };
    const std::vector<double> head = run_losses(staged(8), o2, &part);
    BOOST_REQUIRE(part.interrupted);
    TrainOptions o3 = base;
    o3.out_dir = split_dir.dir.string();
    o3.resume_from = part.checkpoint_path;
    const std::vector<double> tail = run_losses(staged(8), o3, &rest);
    BOOST_REQUIRE(head.size() + tail.size() == ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
        const double got = i < head.size() ? head[i] : tail[i - head.size()];
        BOOST_TEST(std::memcmp(&got, &ref[i], sizeof got) == 0, "step " << i + 1 << ": " << got << " vs " << ref[i]);
    }
    BOOST_TEST(rest.last_eval.loss == full.last_eval.loss);
}

BOOST_AUTO_TEST_CASE(bad_curricula_name_the_key) {
    const std::string sizes = config_error({"data.curriculum.steps=[3]"});
    BOOST_TEST(contains(sizes, "'data.curriculum.lengths' (2 entries) and 'data.curriculum.steps' (1)"), sizes);
    const std::string longer = config_error({"data.curriculum.lengths=[8, 64]"});
    BOOST_TEST(contains(longer, "'data.curriculum.lengths': 64 is longer than data.seq_len = 32"), longer);
    const std::string all = config_error({"train.steps=5"});
    BOOST_TEST(contains(all, "'data.curriculum.steps' sums to 5 steps, not fewer than train.steps = 5"), all);
    // A stage where the task does not fit: 1 pair and its query need more than 2 tokens.
    const std::string tiny = config_error({"data.curriculum.lengths=[2, 16]"});
    BOOST_TEST(contains(tiny, "[data.mqar] at data.curriculum.lengths[0] = 2: "), tiny);
    BOOST_TEST(contains(config_error({"data.curriculum.steps=[0, 2]"}), "'data.curriculum.steps'"));
    BOOST_TEST(contains(config_error({"data.curriculum.lengths=[0, 2]"}), "'data.curriculum.lengths'"));
}

BOOST_AUTO_TEST_SUITE_END()
