#pragma once
// Trains `cfg` quietly (the progress goes to a string) and returns the loss
// of every step, for the tests that compare runs step by step (resume,
// curricula); the run's result in *result when given.
#include <sstream>
#include <vector>

#include "train/trainer.h"

namespace miras::testing {

inline std::vector<double> run_losses(const RunConfig& cfg, TrainOptions opt, TrainResult* result = nullptr) {
    std::vector<double> losses;
    std::ostringstream log;
    opt.out = &log;
    opt.on_step = [&, user = opt.on_step](const StepInfo& s) {
        losses.push_back(s.loss);
        if (user) user(s);
    };
    TrainResult r = train(cfg, opt);
    if (result) *result = r;
    return losses;
}

}  // namespace miras::testing
