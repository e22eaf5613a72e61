// catlip/eval/svg_plot.h - small inline-SVG charts for the HTML report.
//
// Self-contained SVG text (no scripts, no external fonts), so the report is
// one file that renders anywhere, including headless Chromium. Every chart
// has a viewBox and scales down to its container (width 100%, at most its
// natural width), so it fits a 390 px phone as well as a desktop window.
// Legends sit in rows below the x-axis label, never over the data; the SVG
// grows to fit them. Elements carry classes the report's layout test reads:
// "series" (a drawn line or point, data-series names it; faint raw points of
// a smoothed series are also "raw") and "legend" (one legend entry).
#pragma once

#include <string>
#include <vector>

namespace catlip::eval {

struct Series {
  std::string name;
  std::vector<double> x, y;  // non-finite points are skipped
  std::string color;         // "" = from the palette
  bool dashed = false;
  // > 1: the line is a centred moving average over this many points and the
  // raw points are drawn as faint dots (for per-second or per-step noise).
  int smooth = 0;
};

struct ChartOptions {
  std::string title, x_label, y_label;
  int width = 480, height = 280;  // the plot with its axes; legend rows add to the height
  bool log_y = false;
  bool y_from_zero = false;
  double y_max = 0;  // > 0: the y axis reaches at least this (1 for accuracies, a shared top for small multiples)
  bool legend = true;  // a legend when there is more than one series
};

std::string line_chart(const std::vector<Series>& series, const ChartOptions& opt);

struct Bar {
  std::string label;
  double value = 0;
  std::string color;
};
// Horizontal bars with value labels, values in [0, max_value]; value_format
// is a printf format for one double ("%.3f", "%.0f%%").
std::string bar_chart(const std::vector<Bar>& bars, const std::string& title, double max_value = 1.0,
                      int width = 480, const char* value_format = "%.3f");

// Centred moving average over `window` points (shrinking at the ends);
// non-finite values are skipped and stay non-finite in the output.
std::vector<double> moving_average(const std::vector<double>& y, int window);
// A smoothing window for n noisy points: 1 (none) below 8 points, else about
// n / 15, odd, in [3, 31].
int smoothing_window(size_t n);

std::string html_escape(const std::string& s);

}  // namespace catlip::eval
