// Mean and sample standard deviation over seeds, for the tables of
// `miras suite`, `miras compare` and sweeps.
#pragma once

#include <cmath>
#include <vector>

namespace miras {

inline double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? NAN : s / (double)v.size();
}

// With n − 1 in the denominator; 0 for fewer than two values.
inline double stdev(const std::vector<double>& v) {
    if (v.size() < 2) return 0;
    const double m = mean(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / (double)(v.size() - 1));
}

}  // namespace miras
