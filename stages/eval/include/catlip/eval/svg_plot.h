// catlip/eval/svg_plot.h - small inline-SVG charts for the HTML report.
//
// Self-contained SVG text (no scripts, no external fonts), so the report is
// one file that renders anywhere, including headless Chromium.
#pragma once

#include <string>
#include <vector>

namespace catlip::eval {

struct Series {
  std::string name;
  std::vector<double> x, y;  // non-finite points are skipped
  std::string color;         // "" = from the palette
  bool dashed = false;
};

struct ChartOptions {
  std::string title, x_label, y_label;
  int width = 560, height = 300;
  bool log_y = false;
  bool y_from_zero = false;
  double y_max = 0;  // > 0: fixed upper bound (e.g. 1 for accuracies)
};

std::string line_chart(const std::vector<Series>& series, const ChartOptions& opt);

struct Bar {
  std::string label;
  double value = 0;
  std::string color;
};
// Horizontal bars with value labels, values in [0, max_value].
std::string bar_chart(const std::vector<Bar>& bars, const std::string& title, double max_value = 1.0,
                      int width = 560);

std::string html_escape(const std::string& s);

}  // namespace catlip::eval
