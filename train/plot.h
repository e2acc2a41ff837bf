// Line charts as self-contained SVG (no dependency, no script): what
// `miras suite` draws its loss curves and accuracy-by-depth figures with.
//
//   LineChart c{"MQAR", "step", "loss"};
//   c.series.push_back({"titans-lmm", {{10, 4.1}, {20, 3.5}}});
//   write_file_atomically("mqar.svg", {svg_line_chart(c)});
//
// Each series is a polyline with a legend entry; axes get 5 ticks with round
// values; a logarithmic y axis is available for losses that span decades.
// Points with a non-finite coordinate are skipped (a diverged run shows where
// it stopped).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace miras {

struct LineSeries {
    std::string name;
    std::vector<std::pair<double, double>> points;  // (x, y), in x order
};

struct LineChart {
    std::string title, x_label, y_label;
    std::vector<LineSeries> series;
    bool log_y = false;
    int width = 720, height = 420;
};

// The chart as an SVG document. Throws std::invalid_argument if no series has
// a finite point (an empty picture would look like a result).
std::string svg_line_chart(const LineChart& chart);

// Escapes &, <, >, " for SVG/XML text and attributes.
std::string xml_escape(const std::string& s);

}  // namespace miras
