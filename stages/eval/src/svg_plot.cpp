// svg_plot.cpp - the report's inline-SVG charts: line charts (nice ticks, log
// or linear y, moving-average smoothing with faint raw points, legend rows
// below the plot) and horizontal bar charts. Text widths are estimated from
// DejaVu Sans metrics (digits and lowercase ~0.64 em), the usual sans-serif.
#include "catlip/eval/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace catlip::eval {

namespace {
const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
constexpr double kFont = 11, kTitleFont = 13, kLegendRow = 16;

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

// An upper estimate of a label's width in px (bytes, so UTF-8 errs wide).
double text_w(const std::string& s, double font = kFont) { return double(s.size()) * 0.64 * font; }

std::string tick_label(double v) {
  char b[32];
  double a = std::fabs(v);
  if (a == 0) return "0";
  if (a >= 100 && a < 1e5) std::snprintf(b, sizeof b, "%.0f", v);
  else std::snprintf(b, sizeof b, "%.3g", v);  // 0.00025, 2.5, 1.25e+05: never rounded to a wrong tick
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

// Opens the SVG (scales to its container, never past its natural width), a
// white background and the title, shrunk to fit the width.
void svg_open(std::ostringstream& o, double W, double H, const std::string& title) {
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" data-title=\"" << html_escape(title) << "\" width=\""
    << num(W) << "\" height=\"" << num(H) << "\" viewBox=\"0 0 " << num(W) << " " << num(H)
    << "\" preserveAspectRatio=\"xMinYMin meet\" style=\"width:100%;max-width:" << num(W)
    << "px;height:auto\" font-family=\"sans-serif\" font-size=\"" << kFont << "\">";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>";
  if (title.empty()) return;
  double fs = std::clamp((W - 8) / (text_w(title, 1) * 1.08), 8.0, kTitleFont);  // bold is ~8% wider
  o << "<text x=\"" << num(W / 2) << "\" y=\"18\" text-anchor=\"middle\" font-size=\"" << num(fs)
    << "\" font-weight=\"bold\">" << html_escape(title) << "</text>";
}

struct Prepared {
  std::string name, color;
  std::vector<double> x, y, line;  // finite points; line = y or its moving average
  bool dashed = false, smoothed = false;
};

std::vector<Prepared> prepare(const std::vector<Series>& series, bool log_y) {
  std::vector<Prepared> out;
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    Prepared p{s.name, s.color.empty() ? kPalette[k % 8] : s.color, {}, {}, {}, s.dashed, false};
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && !(log_y && s.y[i] <= 0)) p.x.push_back(s.x[i]), p.y.push_back(s.y[i]);
    p.smoothed = s.smooth > 1 && p.y.size() > 2;
    p.line = p.smoothed ? moving_average(p.y, s.smooth) : p.y;
    out.push_back(std::move(p));
  }
  return out;
}

// Legend entries left to right from x = left, wrapping at W - 6, one row
// every kLegendRow px from y = top (row centres). Returns the rows used.
int legend(std::ostringstream& o, const std::vector<Prepared>& ps, double left, double W, double top) {
  double x = left;
  int row = 0;
  for (auto& p : ps) {
    double w = 24 + text_w(p.name);
    if (x > left && x + w > W - 6) x = left, ++row;
    double y = top + kLegendRow * row;
    o << "<g class=\"legend\" data-series=\"" << html_escape(p.name) << "\"><line x1=\"" << num(x) << "\" x2=\""
      << num(x + 18) << "\" y1=\"" << num(y) << "\" y2=\"" << num(y) << "\" stroke=\"" << p.color
      << "\" stroke-width=\"2\"" << (p.dashed ? " stroke-dasharray=\"5,3\"" : "") << "/><text x=\"" << num(x + 22)
      << "\" y=\"" << num(y + 4) << "\">" << html_escape(p.name) << "</text></g>";
    x += w + 14;
  }
  return ps.empty() ? 0 : row + 1;
}

int legend_rows(const std::vector<Prepared>& ps, double left, double W) {
  std::ostringstream sink;
  return legend(sink, ps, left, W, 0);
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

std::vector<double> moving_average(const std::vector<double>& y, int window) {
  std::vector<double> out(y.size(), NAN);
  const long half = std::max(window, 1) / 2, n = long(y.size());
  for (long i = 0; i < n; ++i) {
    if (!std::isfinite(y[size_t(i)])) continue;
    double sum = 0;
    int cnt = 0;
    for (long j = std::max(0L, i - half); j <= std::min(n - 1, i + half); ++j)
      if (std::isfinite(y[size_t(j)])) sum += y[size_t(j)], ++cnt;
    out[size_t(i)] = sum / cnt;
  }
  return out;
}

int smoothing_window(size_t n) {
  if (n < 8) return 1;
  return std::clamp(int(n / 15) | 1, 3, 31);
}

std::string line_chart(const std::vector<Series>& series, const ChartOptions& opt) {
  const double W = opt.width, Hp = opt.height, T = 30, B = 44;
  auto ps = prepare(series, opt.log_y);
  auto ty = [&](double y) { return opt.log_y ? std::log10(y) : y; };
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (auto& p : ps)
    for (size_t i = 0; i < p.x.size(); ++i)
      x0 = std::min(x0, p.x[i]), x1 = std::max(x1, p.x[i]), y0 = std::min(y0, ty(p.y[i])), y1 = std::max(y1, ty(p.y[i]));
  const bool has_legend = opt.legend && ps.size() > 1 && std::isfinite(x0);
  const double leg_left = 10;
  const int rows = has_legend ? legend_rows(ps, leg_left, W) : 0;
  const double H = Hp + (rows ? kLegendRow * rows + 4 : 0);
  std::ostringstream o;
  svg_open(o, W, H, opt.title);
  if (!std::isfinite(x0)) {
    o << "<text x=\"" << num(W / 2) << "\" y=\"" << num(Hp / 2) << "\" text-anchor=\"middle\" fill=\"#888\">no data</text></svg>";
    return o.str();
  }
  if (opt.y_from_zero && !opt.log_y) y0 = std::min(0.0, y0);
  if (opt.y_max > 0 && !opt.log_y) y1 = std::max(y1, opt.y_max);
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + (y0 == 0 ? 1 : std::fabs(y0) * 0.1);
  // Ticks first: the widest y label sets the left margin, the last x label the right one.
  std::vector<double> yt;
  if (opt.log_y) {
    for (double e = std::floor(y0); e <= std::ceil(y1); e += 1)
      if (e >= y0 - 1e-12 && e <= y1 + 1e-12) yt.push_back(std::pow(10.0, e));
  } else {
    for (double v : ticks(y0, y1, std::max(3, int((Hp - T - B) / 45)))) yt.push_back(v);
  }
  double yw = 0;
  for (double v : yt) yw = std::max(yw, text_w(tick_label(v)));
  const double L = (opt.y_label.empty() ? 8 : 26) + yw + 6;
  auto xt = ticks(x0, x1, std::max(3, int(std::lround((W - L - 20) / 55))));
  const double R = std::max(14.0, xt.empty() ? 0 : text_w(tick_label(xt.back())) / 2 + 4);
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return T + (1 - (ty(y) - y0) / (y1 - y0)) * (Hp - T - B); };
  // Grid, tick labels, axes and axis labels.
  o << "<g stroke=\"#ddd\">";
  for (double v : yt)
    o << "<line x1=\"" << num(L) << "\" x2=\"" << num(W - R) << "\" y1=\"" << num(py(v)) << "\" y2=\"" << num(py(v)) << "\"/>";
  o << "</g>";
  for (double v : yt)
    o << "<text x=\"" << num(L - 5) << "\" y=\"" << num(py(v) + 4) << "\" text-anchor=\"end\">" << tick_label(v) << "</text>";
  for (double v : xt)
    o << "<text x=\"" << num(px(v)) << "\" y=\"" << num(Hp - B + 18) << "\" text-anchor=\"middle\">" << tick_label(v) << "</text>";
  o << "<line x1=\"" << num(L) << "\" x2=\"" << num(L) << "\" y1=\"" << num(T) << "\" y2=\"" << num(Hp - B) << "\" stroke=\"#333\"/>";
  o << "<line x1=\"" << num(L) << "\" x2=\"" << num(W - R) << "\" y1=\"" << num(Hp - B) << "\" y2=\"" << num(Hp - B) << "\" stroke=\"#333\"/>";
  o << "<text x=\"" << num((L + W - R) / 2) << "\" y=\"" << num(Hp - 6) << "\" text-anchor=\"middle\">" << html_escape(opt.x_label) << "</text>";
  if (!opt.y_label.empty())
    o << "<text transform=\"translate(13," << num((T + Hp - B) / 2) << ") rotate(-90)\" text-anchor=\"middle\">"
      << html_escape(opt.y_label) << "</text>";
  // Raw points of smoothed series (faint), then the lines on top.
  for (auto& p : ps)
    if (p.smoothed) {
      o << "<g fill=\"" << p.color << "\" fill-opacity=\"0.3\">";
      for (size_t i = 0; i < p.x.size(); ++i)
        o << "<circle class=\"series raw\" data-series=\"" << html_escape(p.name) << " (raw)\" cx=\"" << num(px(p.x[i]))
          << "\" cy=\"" << num(py(p.y[i])) << "\" r=\"1.6\"/>";
      o << "</g>";
    }
  for (auto& p : ps) {
    if (p.x.size() == 1) {  // a single point: a dot, so it is visible
      o << "<circle class=\"series\" data-series=\"" << html_escape(p.name) << "\" cx=\"" << num(px(p.x[0])) << "\" cy=\""
        << num(py(p.y[0])) << "\" r=\"3\" fill=\"" << p.color << "\"/>";
      continue;
    }
    o << "<polyline class=\"series\" data-series=\"" << html_escape(p.name) << "\" fill=\"none\" stroke=\"" << p.color
      << "\" stroke-width=\"1.8\"" << (p.dashed ? " stroke-dasharray=\"5,3\"" : "") << " points=\"";
    for (size_t i = 0; i < p.x.size(); ++i) o << (i ? " " : "") << num(px(p.x[i])) << "," << num(py(p.line[i]));
    o << "\"/>";
  }
  if (has_legend) legend(o, ps, leg_left, W, Hp + 8);
  o << "</svg>";
  return o.str();
}

std::string bar_chart(const std::vector<Bar>& bars, const std::string& title, double max_value, int width,
                      const char* value_format) {
  const double rowh = 18, T = 28, W = width;
  const double H = T + rowh * double(bars.size()) + 10;
  auto value_text = [&](double v) {
    char b[48];
    std::snprintf(b, sizeof b, value_format, v);
    return std::isfinite(v) ? std::string(b) : std::string("n/a");
  };
  double lw = 0, vw = text_w("n/a");
  for (auto& b : bars) lw = std::max(lw, text_w(b.label)), vw = std::max(vw, text_w(value_text(b.value)));
  const double L = std::clamp(lw + 12, 40.0, W * 0.45), R = vw + 10;
  const size_t max_chars = size_t(std::max(3.0, std::floor((L - 12) / (0.64 * kFont))));
  std::ostringstream o;
  svg_open(o, W, H, title);
  for (size_t i = 0; i < bars.size(); ++i) {
    auto& b = bars[i];
    double y = T + rowh * double(i);
    double v = std::isfinite(b.value) ? std::clamp(b.value / (max_value > 0 ? max_value : 1), 0.0, 1.0) : 0;
    double w = v * (W - L - R);
    std::string label = text_w(b.label) > L - 11 ? b.label.substr(0, max_chars - 2) + ".." : b.label;
    o << "<g><title>" << html_escape(b.label) << "</title><text x=\"" << num(L - 6) << "\" y=\"" << num(y + 12)
      << "\" text-anchor=\"end\">" << html_escape(label) << "</text></g>";
    o << "<rect class=\"bar\" x=\"" << num(L) << "\" y=\"" << num(y + 2) << "\" width=\"" << num(std::max(w, 1.0))
      << "\" height=\"" << num(rowh - 4) << "\" fill=\"" << (b.color.empty() ? kPalette[0] : b.color) << "\"/>";
    o << "<text x=\"" << num(L + w + 4) << "\" y=\"" << num(y + 12) << "\">" << value_text(b.value) << "</text>";
  }
  o << "</svg>";
  return o.str();
}

}  // namespace catlip::eval
