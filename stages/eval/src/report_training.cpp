// report_training.cpp - the report's Training section (loss, learning rate,
// trainer throughput, input wait from train_metrics.jsonl) and Pipeline
// section (per-stage busy %, throughput and input wait from the runtime's
// metrics.jsonl, one small chart per stage). Per-step and per-second noise
// is drawn as faint dots under a moving average.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "catlip/eval/svg_plot.h"
#include "report_util.h"

namespace fs = std::filesystem;

namespace catlip::eval::report_detail {

namespace {
std::string smoothing_note(int window, const char* unit) {
  if (window <= 1) return "";
  return " Line: " + std::to_string(window) + "-" + unit + " moving average; dots: each " + unit + ".";
}

// Stage names in the order the runtime wrote them (the graph's order):
// json::Value sorts object keys, json::Ordered keeps them.
std::vector<std::string> stage_order(const std::string& path) {
  std::vector<std::string> names;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    auto v = json::Ordered::parse(line, nullptr, false);
    if (v.is_discarded() || !v.is_object() || !v.contains("stages") || !v["stages"].is_object()) continue;
    for (auto& [name, s] : v["stages"].items())
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}
}  // namespace

void training_section(const std::string& tm_path, ReportInfo& info, std::string& headline, std::ostringstream& out) {
  auto lines = read_jsonl(tm_path);
  Series loss{"loss", {}, {}, "#1f77b4"}, lr{"lr", {}, {}, "#ff7f0e"}, ips{"images/s", {}, {}, "#2ca02c"},
      wait{"per logging window", {}, {}, "#d62728"}, wait_t{"cumulative", {}, {}, "#9467bd", true};
  for (auto& l : lines) {
    double s = getnum(l, "step");
    loss.x.push_back(s), loss.y.push_back(getnum(l, "loss"));
    lr.x.push_back(s), lr.y.push_back(getnum(l, "lr"));
    ips.x.push_back(s), ips.y.push_back(getnum(l, "images_per_s"));
    wait.x.push_back(s), wait.y.push_back(getnum(l, "input_wait_frac"));
    wait_t.x.push_back(s), wait_t.y.push_back(getnum(l, "input_wait_frac_total"));
  }
  const int sw = smoothing_window(lines.size());
  loss.smooth = ips.smooth = wait.smooth = sw;
  out << "<h2>Training</h2><p>" << lines.size() << " iterations logged";
  if (!lines.empty())
    out << "; final loss " << fmt(loss.y.back(), 4) << ", final input-wait fraction (cumulative) " << fmt(wait_t.y.back(), 3);
  ChartOptions o;
  o.x_label = "step";
  out << ".</p><div class=\"charts\">";
  o.title = "training loss (BCE)", o.y_label = "loss";
  out << figure(line_chart({loss}, o),
                "Binary cross-entropy over the synset vocabulary per logged step." + smoothing_note(sw, "step") +
                    " Good: a fast drop, then a slow steady decline; a rise or early plateau hints at too high a learning rate.");
  o.title = "learning rate", o.y_label = "lr", o.y_from_zero = true;
  out << figure(line_chart({lr}, o),
                "The learning rate the trainer used at each step. Good: the configured warmup, then decay.");
  o.title = "trainer throughput", o.y_label = "images/s";
  out << figure(line_chart({ips}, o),
                "Images per second through the trainer." + smoothing_note(sw, "step") +
                    " Good: flat after the first steps; dips that match input waits mean the trainer was starved.");
  o.title = "trainer input wait", o.y_label = "fraction of time", o.y_max = 0.25;
  out << figure(line_chart({wait, wait_t}, o),
                "Fraction of the trainer's time spent waiting for the next batch, per logging window and cumulative "
                "(dashed)." + smoothing_note(sw, "step") + " Good: near 0; above about 0.1 the input pipeline limits training.")
      << "</div>";
  info.charts += 4;
  info.sections.push_back("Training");
  if (!lines.empty()) headline += card("final training loss", fmt(loss.y.back(), 4));
}

void pipeline_section(const std::string& run_dir, const std::string& tm_path, ReportInfo& info, std::ostringstream& out) {
  std::string rm_path;
  if (!tm_path.empty() && fs::is_regular_file(fs::path(tm_path).parent_path() / "metrics.jsonl"))
    rm_path = (fs::path(tm_path).parent_path() / "metrics.jsonl").string();
  if (rm_path.empty()) rm_path = find_input(run_dir, "metrics.jsonl");
  if (rm_path.empty()) {
    info.missing.push_back("metrics.jsonl");
    return;
  }
  auto lines = read_jsonl(rm_path);
  std::map<std::string, Series> rate, busy, wait;
  std::vector<std::string> order = stage_order(rm_path);
  for (auto& l : lines) {
    double t = getnum(l, "t");
    const json::Value* st = json::find(l, "stages");
    if (!st || !st->is_object()) continue;
    for (auto& [name, v] : st->items()) {
      if (!rate.count(name)) {
        if (std::find(order.begin(), order.end(), name) == order.end()) order.push_back(name);
        rate[name] = {name, {}, {}, "#1f77b4"};
        busy[name] = {"busy %", {}, {}, "#1f77b4"};
        wait[name] = {"waiting for input %", {}, {}, "#d62728"};
      }
      double r = getnum(v, "out_rate") > 0 ? getnum(v, "out_rate") : getnum(v, "in_rate");
      rate[name].x.push_back(t), rate[name].y.push_back(r);
      busy[name].x.push_back(t), busy[name].y.push_back(getnum(v, "busy_pct"));
      wait[name].x.push_back(t), wait[name].y.push_back(getnum(v, "wait_in_pct"));
    }
  }
  std::erase_if(order, [&](const std::string& n) { return !rate.count(n); });
  // Mean busy % per stage, and a rate scale shared by the per-stage charts.
  std::vector<Bar> mean_busy;
  double rate_top = 0;
  int sw = 1;
  for (auto& n : order) {
    double sum = 0;
    int cnt = 0;
    for (double v : busy[n].y)
      if (std::isfinite(v)) sum += v, ++cnt;
    mean_busy.push_back({n, cnt ? sum / cnt : NAN, "#1f77b4"});
    for (double v : rate[n].y)
      if (std::isfinite(v)) rate_top = std::max(rate_top, v);
    sw = std::max(sw, smoothing_window(rate[n].y.size()));
  }
  std::string rates, splits;
  for (auto& n : order) {
    rate[n].smooth = busy[n].smooth = wait[n].smooth = sw;
    ChartOptions o;
    o.width = 300, o.height = 200, o.x_label = "seconds", o.y_from_zero = true;
    o.title = n, o.y_label = "items/s", o.y_max = rate_top;
    rates += line_chart({rate[n]}, o);
    o.title = n + ": busy, waiting", o.y_label = "% of wall time", o.y_max = 100;
    splits += line_chart({busy[n], wait[n]}, o);
  }
  out << "<h2>Pipeline</h2><p class=\"note\">From " << html_escape(rm_path)
      << " (one line per second; rates are items per second out of a stage, or into it for the trainer; busy and "
         "waiting are % of wall time averaged over a stage's replicas).</p><div class=\"charts\">"
      << figure(bar_chart(mean_busy, "mean busy % per stage", 100, 480, "%.0f%%"),
                "Share of wall time each stage spent working, averaged over the run. Good: the trainer highest, near "
                "100 %; another stage near 100 % is the bottleneck.")
      << figure("<div class=\"multiples\">" + rates + "</div>",
                "Throughput per stage, one chart per stage on a shared scale." + smoothing_note(sw, "s") +
                    " Good: every stage flat at about the same rate; a dip in one stage and not upstream points at it.",
                true)
      << figure("<div class=\"multiples\">" + splits + "</div>",
                "Per stage, % of wall time busy and % waiting for input." + smoothing_note(sw, "s") +
                    " Good: the trainer busy and rarely waiting; loaders waiting on upstream, not busy near 100 %.",
                true)
      << "</div>";
  info.charts += 1 + 2 * int(order.size());
  info.sections.push_back("Pipeline");
}

}  // namespace catlip::eval::report_detail
