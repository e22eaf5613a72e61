// The implementation of catlip/eval/svg_plot.h: inline-SVG line and bar charts for the
// HTML report.
#include "catlip/eval/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace catlip::eval {

namespace {
const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

std::string tick_label(double v) {
  char b[32];
  double a = std::fabs(v);
  if (a == 0) return "0";
  if (a >= 1e5 || a < 1e-3) std::snprintf(b, sizeof b, "%.0e", v);
  else if (a >= 100) std::snprintf(b, sizeof b, "%.0f", v);
  else if (a >= 1) std::snprintf(b, sizeof b, "%.3g", v);
  else std::snprintf(b, sizeof b, "%.2g", v);
  return b;
}

// "Nice" tick positions covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int target = 5) {
  std::vector<double> t;
  if (!(hi > lo)) return {lo};
  double raw = (hi - lo) / target, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
  return t;
}
}  // namespace

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string line_chart(const std::vector<Series>& series, const ChartOptions& opt) {
  const double W = opt.width, H = opt.height, L = 62, R = 14, T = 30, B = 42;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  auto ty = [&](double y) { return opt.log_y ? std::log10(y) : y; };
  for (auto& s : series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (opt.log_y && s.y[i] <= 0)) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, ty(s.y[i])), y1 = std::max(y1, ty(s.y[i]));
    }
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" << opt.width << "\" height=\"" << opt.height
    << "\" viewBox=\"0 0 " << opt.width << " " << opt.height << "\" font-family=\"sans-serif\" font-size=\"11\">";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>";
  o << "<text x=\"" << num(W / 2) << "\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">"
    << html_escape(opt.title) << "</text>";
  if (!std::isfinite(x0)) {
    o << "<text x=\"" << num(W / 2) << "\" y=\"" << num(H / 2) << "\" text-anchor=\"middle\" fill=\"#888\">no data</text></svg>";
    return o.str();
  }
  if (opt.y_from_zero && !opt.log_y) y0 = std::min(0.0, y0);
  if (opt.y_max > 0 && !opt.log_y) y1 = std::max(y1, opt.y_max);
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + (y0 == 0 ? 1 : std::fabs(y0) * 0.1);
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return T + (1 - (ty(y) - y0) / (y1 - y0)) * (H - T - B); };
  // Axes, grid and ticks.
  o << "<g stroke=\"#ddd\">";
  std::vector<double> yt;
  if (opt.log_y) {
    for (double e = std::floor(y0); e <= std::ceil(y1); e += 1) yt.push_back(std::pow(10.0, e));
  } else {
    yt = ticks(y0, y1);
  }
  for (double v : yt) {
    if (ty(v) < y0 - 1e-12 || ty(v) > y1 + 1e-12) continue;
    o << "<line x1=\"" << num(L) << "\" x2=\"" << num(W - R) << "\" y1=\"" << num(py(v)) << "\" y2=\"" << num(py(v)) << "\"/>";
  }
  o << "</g>";
  for (double v : yt) {
    if (ty(v) < y0 - 1e-12 || ty(v) > y1 + 1e-12) continue;
    o << "<text x=\"" << num(L - 5) << "\" y=\"" << num(py(v) + 4) << "\" text-anchor=\"end\">" << tick_label(v) << "</text>";
  }
  for (double v : ticks(x0, x1, 6))
    o << "<text x=\"" << num(px(v)) << "\" y=\"" << num(H - B + 15) << "\" text-anchor=\"middle\">" << tick_label(v) << "</text>";
  o << "<line x1=\"" << num(L) << "\" x2=\"" << num(L) << "\" y1=\"" << num(T) << "\" y2=\"" << num(H - B) << "\" stroke=\"#333\"/>";
  o << "<line x1=\"" << num(L) << "\" x2=\"" << num(W - R) << "\" y1=\"" << num(H - B) << "\" y2=\"" << num(H - B) << "\" stroke=\"#333\"/>";
  o << "<text x=\"" << num((L + W - R) / 2) << "\" y=\"" << num(H - 6) << "\" text-anchor=\"middle\">" << html_escape(opt.x_label) << "</text>";
  o << "<text transform=\"translate(13," << num((T + H - B) / 2) << ") rotate(-90)\" text-anchor=\"middle\">"
    << html_escape(opt.y_label) << "</text>";
  // Lines and legend.
  for (size_t k = 0; k < series.size(); ++k) {
    auto& s = series[k];
    std::string color = s.color.empty() ? kPalette[k % 8] : s.color;
    o << "<polyline class=\"series\" fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.8\""
      << (s.dashed ? " stroke-dasharray=\"5,3\"" : "") << " points=\"";
    int n = 0;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (opt.log_y && s.y[i] <= 0)) continue;
      o << (n++ ? " " : "") << num(px(s.x[i])) << "," << num(py(s.y[i]));
    }
    o << "\"/>";
    if (n == 1)  // a single point: draw a dot so it is visible
      for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
        if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]))
          o << "<circle cx=\"" << num(px(s.x[i])) << "\" cy=\"" << num(py(s.y[i])) << "\" r=\"3\" fill=\"" << color << "\"/>";
    double lx = L + 8, ly = T + 6 + 14 * double(k);
    o << "<line x1=\"" << num(lx) << "\" x2=\"" << num(lx + 18) << "\" y1=\"" << num(ly) << "\" y2=\"" << num(ly)
      << "\" stroke=\"" << color << "\" stroke-width=\"2\"" << (s.dashed ? " stroke-dasharray=\"5,3\"" : "") << "/>";
    o << "<text x=\"" << num(lx + 22) << "\" y=\"" << num(ly + 4) << "\">" << html_escape(s.name) << "</text>";
  }
  o << "</svg>";
  return o.str();
}

std::string bar_chart(const std::vector<Bar>& bars, const std::string& title, double max_value, int width) {
  const double rowh = 18, T = 28, L = 150, R = 50;
  const double H = T + rowh * double(bars.size()) + 10;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" << width << "\" height=\"" << num(H)
    << "\" viewBox=\"0 0 " << width << " " << num(H) << "\" font-family=\"sans-serif\" font-size=\"11\">";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>";
  o << "<text x=\"" << width / 2 << "\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">"
    << html_escape(title) << "</text>";
  for (size_t i = 0; i < bars.size(); ++i) {
    auto& b = bars[i];
    double y = T + rowh * double(i);
    double v = std::isfinite(b.value) ? std::clamp(b.value / (max_value > 0 ? max_value : 1), 0.0, 1.0) : 0;
    double w = v * (width - L - R);
    o << "<text x=\"" << num(L - 6) << "\" y=\"" << num(y + 12) << "\" text-anchor=\"end\">" << html_escape(b.label) << "</text>";
    o << "<rect class=\"bar\" x=\"" << num(L) << "\" y=\"" << num(y + 2) << "\" width=\"" << num(std::max(w, 1.0))
      << "\" height=\"" << num(rowh - 4) << "\" fill=\"" << (b.color.empty() ? kPalette[0] : b.color) << "\"/>";
    char vb[32];
    std::snprintf(vb, sizeof vb, "%.3f", b.value);
    o << "<text x=\"" << num(L + w + 4) << "\" y=\"" << num(y + 12) << "\">" << (std::isfinite(b.value) ? vb : "n/a") << "</text>";
  }
  o << "</svg>";
  return o.str();
}

}  // namespace catlip::eval
