// SVG line charts (train/plot.h).
#include "train/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace miras {
namespace {

// A colour-blind-friendly cycle (Okabe-Ito), then greys.
const char* colour(size_t i) {
    static const char* kColours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
                                     "#F0E442", "#000000", "#999999", "#7F3C8D", "#11A579", "#3969AC",
                                     "#F2B701", "#E73F74", "#80BA5A", "#008695"};
    return kColours[i % (sizeof(kColours) / sizeof(kColours[0]))];
}

std::string num(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.4g", v);
    return b;
}

// Round tick positions covering [lo, hi]: steps of 1, 2 or 5 × 10^k.
std::vector<double> ticks(double lo, double hi) {
    const double span = hi - lo, raw = span / 4;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = mag;
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * mag >= raw) { step = m * mag; break; }
    std::vector<double> t;
    for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) t.push_back(v);
    return t;
}

}  // namespace

std::string xml_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '&') o += "&amp;";
        else if (c == '<') o += "&lt;";
        else if (c == '>') o += "&gt;";
        else if (c == '"') o += "&quot;";
        else o += c;
    }
    return o;
}

std::string svg_line_chart(const LineChart& c) {
    // Data range over the finite points (y in log10 if asked).
    auto ty = [&](double y) { return c.log_y ? std::log10(y) : y; };
    auto usable = [&](double x, double y) { return std::isfinite(x) && std::isfinite(y) && (!c.log_y || y > 0); };
    double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
    for (const LineSeries& s : c.series)
        for (auto [x, y] : s.points)
            if (usable(x, y)) {
                x0 = std::min(x0, x), x1 = std::max(x1, x);
                y0 = std::min(y0, ty(y)), y1 = std::max(y1, ty(y));
            }
    if (!(x0 <= x1)) throw std::invalid_argument("svg_line_chart '" + c.title + "': no finite point to draw");
    if (x1 == x0) x0 -= 0.5, x1 += 0.5;
    if (y1 == y0) y0 -= 0.5, y1 += 0.5;
    const double pad = 0.04 * (y1 - y0);
    y0 -= pad, y1 += pad;

    // Plot area: left margin for y ticks, right for the legend.
    const double L = 70, R = 190, T = 36, B = 50;
    const double W = c.width - L - R, H = c.height - T - B;
    auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * W; };
    auto py = [&](double y) { return T + (1 - (ty(y) - y0) / (y1 - y0)) * H; };

    std::ostringstream o;
    o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << c.width << "\" height=\"" << c.height
      << "\" viewBox=\"0 0 " << c.width << " " << c.height << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    o << "<text x=\"" << L + W / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">" << xml_escape(c.title)
      << "</text>\n";
    o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W << "\" height=\"" << H
      << "\" fill=\"none\" stroke=\"#444\"/>\n";
    for (double t : ticks(x0, x1)) {
        o << "<line x1=\"" << px(t) << "\" y1=\"" << T + H << "\" x2=\"" << px(t) << "\" y2=\"" << T + H + 4
          << "\" stroke=\"#444\"/><text x=\"" << px(t) << "\" y=\"" << T + H + 17 << "\" text-anchor=\"middle\">"
          << num(t) << "</text>\n";
    }
    for (double t : ticks(y0, y1)) {
        const double y = T + (1 - (t - y0) / (y1 - y0)) * H;
        o << "<line x1=\"" << L << "\" y1=\"" << y << "\" x2=\"" << L + W << "\" y2=\"" << y
          << "\" stroke=\"#ddd\"/><text x=\"" << L - 6 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">"
          << num(c.log_y ? std::pow(10.0, t) : t) << "</text>\n";
    }
    o << "<text x=\"" << L + W / 2 << "\" y=\"" << c.height - 12 << "\" text-anchor=\"middle\">"
      << xml_escape(c.x_label) << "</text>\n";
    o << "<text transform=\"translate(16," << T + H / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
      << xml_escape(c.y_label) << (c.log_y ? " (log scale)" : "") << "</text>\n";
    for (size_t i = 0; i < c.series.size(); ++i) {
        const LineSeries& s = c.series[i];
        o << "<polyline class=\"series\" data-name=\"" << xml_escape(s.name) << "\" fill=\"none\" stroke=\""
          << colour(i) << "\" stroke-width=\"1.6\" points=\"";
        for (auto [x, y] : s.points)
            if (usable(x, y)) o << num(px(x)) << "," << num(py(y)) << " ";
        o << "\"/>\n";
        const double ly = T + 8 + 16 * (double)i;
        o << "<line x1=\"" << L + W + 12 << "\" y1=\"" << ly << "\" x2=\"" << L + W + 32 << "\" y2=\"" << ly
          << "\" stroke=\"" << colour(i) << "\" stroke-width=\"2\"/><text x=\"" << L + W + 38 << "\" y=\"" << ly + 4
          << "\">" << xml_escape(s.name) << "</text>\n";
    }
    o << "</svg>\n";
    return o.str();
}

}  // namespace miras
