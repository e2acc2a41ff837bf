#include "train/loop_figures.h"

#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <ostream>
#include <string>

namespace miras {

double process_cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_sec +
           1e-6 * (double)u.ru_stime.tv_usec;
}

double add_to_loss_ema(Checkpoint::Loop& f, double loss) {
    f.loss_ema = kLossEmaDecay * f.loss_ema + (1 - kLossEmaDecay) * loss;
    ++f.loss_ema_steps;
    return f.loss_ema / (1 - std::pow(kLossEmaDecay, (double)f.loss_ema_steps));
}

void Clocks::start() {
    wall_start_ = std::chrono::steady_clock::now();
    cpu_start_ = process_cpu_seconds();
    started_ = true;
}

double Clocks::elapsed_s() const {
    if (!started_) return wall_before_;
    return wall_before_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start_).count();
}

double Clocks::cpu_s() const { return cpu_before_ + session_cpu_s(); }

double Clocks::session_cpu_s() const { return started_ ? process_cpu_seconds() - cpu_start_ : 0.0; }

std::string human_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    const long s = std::lround(seconds);
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else if (s >= 60)
        std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
    else
        std::snprintf(buf, sizeof buf, "%lds", s);
    return buf;
}

void print_estimate(std::ostream& out, double seconds_per_step, int64_t steps, double token_ratio) {
    char per[32];
    std::snprintf(per, sizeof per, "%.3g", seconds_per_step);
    out << "estimate: " << per << " s per step (one warm-up step, timed), about "
        << human_duration(seconds_per_step * (double)steps * token_ratio) << " for the " << steps << " step"
        << (steps == 1 ? "" : "s") << " to go" << (token_ratio != 1.0 ? " (counted in tokens: the curriculum)" : "")
        << ", evaluations not included\n"
        << std::flush;
}

}  // namespace miras
