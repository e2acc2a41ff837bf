// The running figures of the training loop that metrics.jsonl reports beside
// the loss (docs/training.md, "Metrics"): a smoothed loss, and the wall and
// CPU seconds of the steps, carried over a resume by the checkpoint
// (Checkpoint::Loop); and the estimate of a run's time printed before its
// first step.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>

#include "train/checkpoint.h"

namespace miras {

// CPU seconds of this process so far, user + system, all threads (BLAS's
// included): unlike wall-clock time, not stretched by other work on the machine.
double process_cpu_seconds();

// The smoothed loss: an exponential moving average of the steps' losses,
// weight kLossEmaDecay on the average before (a memory of ~20 steps), with
// Adam's bias correction so the first steps are not pulled toward 0:
//   m_n = decay · m_{n−1} + (1 − decay) · loss_n,   reported m_n / (1 − decayⁿ).
inline constexpr double kLossEmaDecay = 0.95;
// Folds `loss` into f.loss_ema / f.loss_ema_steps; returns the reported value.
double add_to_loss_ema(Checkpoint::Loop& f, double loss);

// Wall and CPU seconds of a run's steps: those of the sessions before (a
// resumed run's checkpoint) plus this session's since start().
class Clocks {
public:
    explicit Clocks(const Checkpoint::Loop& before) : wall_before_(before.elapsed_s), cpu_before_(before.cpu_s) {}
    void start();
    double elapsed_s() const;      // the run's, sessions before included
    double cpu_s() const;          // the same in CPU seconds
    double session_cpu_s() const;  // this session's CPU seconds only

private:
    double wall_before_, cpu_before_, cpu_start_ = 0;
    std::chrono::steady_clock::time_point wall_start_;
    bool started_ = false;
};

// "estimate: 0.031 s per step (one warm-up step, timed), about 22s for the
// 700 steps to go, evaluations not included". `token_ratio`: the tokens of
// the steps to go over `steps` times the timed step's (a length curriculum's
// later steps are longer; 1 without one).
void print_estimate(std::ostream& out, double seconds_per_step, int64_t steps, double token_ratio = 1.0);

// 75 -> "1m15s", 4000 -> "1h06m", a negative or non-finite time -> "?".
std::string human_duration(double seconds);

}  // namespace miras
