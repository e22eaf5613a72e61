// The reporting half of catlip/transfer/compare.h: time to target accuracy,
// and the comparison as JSON, HTML (inline-SVG curves) and a plain-text
// table. compare_eval.cpp fills the CompareResult.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "catlip/eval/png_io.h"
#include "catlip/eval/svg_plot.h"
#include "catlip/json.h"
#include "catlip/transfer/compare.h"

namespace catlip::transfer {

// ------------------------------------------------------ accuracy vs seconds

TimeToAccuracy time_to_accuracy(const std::vector<AccuracyPoint>& curve, double target) {
  TimeToAccuracy r;
  const AccuracyPoint* prev = nullptr;
  for (auto& p : curve) {
    if (!std::isfinite(p.seconds) || !std::isfinite(p.accuracy)) continue;
    if (p.accuracy >= target) {
      r.reached = true;
      if (!prev) {
        r.at_first_point = true;
        r.seconds = p.seconds;
      } else {
        double f = (target - prev->accuracy) / (p.accuracy - prev->accuracy);  // prev < target <= p
        r.seconds = prev->seconds + f * (p.seconds - prev->seconds);
      }
      return r;
    }
    prev = &p;
  }
  return r;
}

std::string describe(const TimeToAccuracy& t) {
  if (!t.reached) return "never within the budget";
  char b[64];
  std::snprintf(b, sizeof b, "%s%.1f s", t.at_first_point ? "<= " : "", t.seconds);
  return b;
}

std::vector<AccuracyPoint> ModelCurve::zero_shot() const {
  std::vector<AccuracyPoint> v;
  for (auto& p : points) v.push_back({p.seconds, p.zero_shot});
  return v;
}
std::vector<AccuracyPoint> ModelCurve::linear_probe() const {
  std::vector<AccuracyPoint> v;
  for (auto& p : points) v.push_back({p.seconds, p.linear_probe});
  return v;
}

namespace {

const char* const kMetrics[] = {"zero_shot", "linear_probe"};

double final_of(const ModelCurve& c, const std::string& metric) {
  if (c.points.empty()) return std::nan("");
  return metric == "zero_shot" ? c.last().zero_shot : c.last().linear_probe;
}

std::string fmt(double v, int p = 4) {
  if (!std::isfinite(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", p, v);
  return b;
}

double ratio(double a, double b) { return b > 0 ? a / b : std::nan(""); }

std::string metric_title(const std::string& m) { return m == "zero_shot" ? "zero-shot" : "linear probe"; }

}  // namespace

void compute_targets(CompareResult& r) {
  r.targets.clear();
  for (const std::string metric : kMetrics) {
    double best = std::nan("");
    for (auto& c : r.models) {
      double f = final_of(c, metric);
      if (std::isfinite(f) && !(f <= best)) best = f;
    }
    if (!std::isfinite(best)) continue;
    std::vector<TargetRow> rows;
    for (double frac : kTargetFractions)
      rows.push_back({metric, std::to_string(int(std::lround(100 * frac))) + "% of the best final", frac * best, {}});
    for (auto& c : r.models)
      if (std::isfinite(final_of(c, metric))) rows.push_back({metric, c.name + "'s final", final_of(c, metric), {}});
    for (auto& row : rows) {
      for (auto& c : r.models)
        row.times.push_back(time_to_accuracy(metric == "zero_shot" ? c.zero_shot() : c.linear_probe(), row.target));
      r.targets.push_back(std::move(row));
    }
  }
}

// ---------------------------------------------------------------- output

namespace {

double num6(double v) { return json::round_sig(v, 6); }  // NaN: null

// A run's cost figures: its training wall time and steps (last checkpoint),
// the trainer's CPU over that span, the whole graph's wall and CPU time.
struct CostRow {
  int64_t steps = 0;
  double train_s = std::nan(""), trainer_cpu_s = std::nan(""), run_wall_s = std::nan(""), run_cpu_s = std::nan("");
  double cpu_per_wall() const {  // the whole run's if recorded, else the trainer's
    return std::isfinite(run_cpu_s) ? ratio(run_cpu_s, run_wall_s) : ratio(trainer_cpu_s, train_s);
  }
};

CostRow cost_of(const ModelCurve& c) {
  CostRow k;
  if (!c.points.empty()) {
    k.steps = c.last().step;
    k.train_s = c.last().seconds;
    k.trainer_cpu_s = c.last().cpu_seconds;
  }
  k.run_wall_s = c.cost.run_wall_s;
  k.run_cpu_s = c.cost.run_cpu_s;
  return k;
}

// One sentence when the runs got unequal CPU per wall-clock second (the
// least below 80% of the most): equal budgets were then not equal terms.
std::string cpu_warning(const CompareResult& r) {
  double lo = INFINITY, hi = 0;
  std::string lo_name, hi_name;
  for (auto& c : r.models) {
    double v = cost_of(c).cpu_per_wall();
    if (!std::isfinite(v)) continue;
    if (v < lo) lo = v, lo_name = c.name;
    if (v > hi) hi = v, hi_name = c.name;
  }
  if (!(hi > 0) || lo >= 0.8 * hi) return "";
  return "unequal CPU: " + lo_name + " got " + fmt(lo, 2) + " CPU-s per wall second, " + hi_name + " " + fmt(hi, 2) +
         "; the machine was not equally loaded for every run, so equal budgets were not equal terms";
}

json::Ordered time_json(const TimeToAccuracy& t) {
  return {{"reached", t.reached},
          {"seconds", t.reached ? json::Ordered(num6(t.seconds)) : json::Ordered()},
          {"at_first_checkpoint", t.at_first_point},
          {"text", describe(t)}};
}

json::Ordered model_json(const ModelCurve& c) {
  json::Ordered curve = json::Ordered::array();
  for (auto& p : c.points)
    curve.push_back({{"step", p.step},
                     {"seconds", num6(p.seconds)},
                     {"cpu_seconds", num6(p.cpu_seconds)},
                     {"zero_shot", num6(p.zero_shot)},
                     {"linear_probe", num6(p.linear_probe)},
                     {"checkpoint", p.path}});
  const CostRow k = cost_of(c);
  json::Ordered j = {{"name", c.name},
                     {"objective", c.objective},
                     {"run", c.run},
                     {"model", c.summary},
                     {"zero_shot_method", c.zero_shot_method},
                     {"zero_shot_coverage", num6(c.mapping_coverage)},
                     {"cost",
                      {{"steps", k.steps},
                       {"train_seconds", num6(k.train_s)},
                       {"trainer_cpu_seconds", num6(k.trainer_cpu_s)},
                       {"run_wall_seconds", num6(k.run_wall_s)},
                       {"run_cpu_seconds", num6(k.run_cpu_s)},
                       {"cpu_per_wall_second", num6(k.cpu_per_wall())}}},
                     {"curve", std::move(curve)}};
  if (!c.points.empty())
    j["final"] = {{"step", c.last().step},
                  {"seconds", num6(c.last().seconds)},
                  {"zero_shot", num6(c.last().zero_shot)},
                  {"linear_probe", num6(c.last().linear_probe)}};
  return j;
}

// "12.3", "<=4.0" or "—" (never), for the tables.
std::string cell(const TimeToAccuracy& t) {
  if (!t.reached) return "\xE2\x80\x94";
  return (t.at_first_point ? "<=" : "") + fmt(t.seconds, 1);
}

// Printed width of a table cell (the em dash is one column, three bytes).
size_t columns(const std::string& s) {
  size_t n = 0;
  for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
  return n;
}

std::string pad(const std::string& s, size_t w, bool left = false) {
  const size_t n = columns(s);
  const std::string sp(w > n ? w - n : 0, ' ');
  return left ? s + sp : sp + s;
}

}  // namespace

std::string compare_json(const CompareResult& r) {
  json::Ordered models = json::Ordered::array();
  for (auto& c : r.models) models.push_back(model_json(c));
  json::Ordered targets = json::Ordered::array();
  for (auto& row : r.targets) {
    json::Ordered times = json::Ordered::object();
    for (size_t i = 0; i < r.models.size() && i < row.times.size(); ++i)
      times[r.models[i].name] = time_json(row.times[i]);
    targets.push_back({{"metric", row.metric}, {"label", row.label}, {"target", num6(row.target)}, {"times", times}});
  }
  json::Ordered j = {{"classes", r.classes},
                     {"probe_train_samples", r.train_n},
                     {"test_samples", r.test_n},
                     {"chance", num6(r.chance)},
                     {"majority", num6(r.majority)},
                     {"models", std::move(models)},
                     {"time_to_target", std::move(targets)},
                     {"cpu_warning", cpu_warning(r)},
                     {"seconds", num6(r.seconds)}};
  return json::dump(j, 2) + "\n";
}

std::string compare_table(const CompareResult& r) {
  std::ostringstream t;
  size_t w = 8;
  for (auto& c : r.models) w = std::max(w, columns(c.name) + 2);
  t << r.models.size() << " runs on " << r.classes << " classes (" << r.test_n << " held-out images; probe trained on "
    << r.train_n << "; chance " << fmt(r.chance, 3) << ", majority class " << fmt(r.majority, 3) << ")\n";
  t << pad("model", w, true) << pad("step", 7) << pad("train s", 9) << pad("CPU s", 9) << pad("zero-shot", 11)
    << pad("linear probe", 14) << "\n";
  for (auto& c : r.models)
    for (auto& p : c.points)
      t << pad(c.name, w, true) << pad(std::to_string(p.step), 7) << pad(fmt(p.seconds, 1), 9)
        << pad(fmt(p.cpu_seconds, 1), 9) << pad(fmt(p.zero_shot), 11) << pad(fmt(p.linear_probe), 14) << "\n";
  for (const std::string metric : kMetrics) {
    size_t lw = 10;
    for (auto& row : r.targets)
      if (row.metric == metric) lw = std::max(lw, columns(row.label) + 10);
    bool header = false;
    for (auto& row : r.targets) {
      if (row.metric != metric) continue;
      if (!header) {
        t << "\ntime to " << metric_title(metric) << " target (training s; \xE2\x80\x94 = never within the budget):\n"
          << pad("target", lw, true);
        for (auto& c : r.models) t << pad(c.name, w);
        t << "\n";
        header = true;
      }
      t << pad(fmt(row.target, 3) + " " + row.label, lw, true);
      for (auto& x : row.times) t << pad(cell(x), w);
      t << "\n";
    }
  }
  t << "\nwhat each run got (train s: the budget; trainer CPU s over it; the whole graph's wall and CPU s):\n"
    << pad("model", w, true) << pad("steps", 7) << pad("train s", 9) << pad("steps/s", 9) << pad("trainer CPU s", 15)
    << pad("run wall s", 12) << pad("run CPU s", 11) << pad("CPU s/s", 9) << "\n";
  for (auto& c : r.models) {
    const CostRow k = cost_of(c);
    t << pad(c.name, w, true) << pad(std::to_string(k.steps), 7) << pad(fmt(k.train_s, 1), 9)
      << pad(fmt(ratio(double(k.steps), k.train_s), 2), 9) << pad(fmt(k.trainer_cpu_s, 1), 15)
      << pad(fmt(k.run_wall_s, 1), 12) << pad(fmt(k.run_cpu_s, 1), 11) << pad(fmt(k.cpu_per_wall(), 2), 9) << "\n";
  }
  if (auto wmsg = cpu_warning(r); !wmsg.empty()) t << wmsg << "\n";
  return t.str();
}

std::string compare_html(const CompareResult& r) {
  static const char* kStyle = R"(
body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}
h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
.charts{display:flex;flex-wrap:wrap;gap:12px} .chart{border:1px solid #eee}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
.note{color:#666;font-size:13px} .warn{color:#b00}
)";
  static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
  auto esc = [](const std::string& s) { return eval::html_escape(s); };
  auto chart = [&](const std::string& metric) {
    std::vector<eval::Series> s;
    double tmax = 0;
    for (size_t i = 0; i < r.models.size(); ++i) {
      eval::Series x;
      x.name = r.models[i].name;
      x.color = kColors[i % (sizeof kColors / sizeof kColors[0])];
      for (auto& p : r.models[i].points) {
        x.x.push_back(p.seconds);
        x.y.push_back(metric == "zero_shot" ? p.zero_shot : p.linear_probe);
        if (std::isfinite(p.seconds)) tmax = std::max(tmax, p.seconds);
      }
      s.push_back(std::move(x));
    }
    s.push_back(eval::Series{"chance", {0, tmax}, {r.chance, r.chance}, "#888888", true});
    eval::ChartOptions co;
    co.title = metric == "zero_shot" ? "zero-shot top-1 accuracy" : "linear probe top-1 accuracy (frozen image features)";
    co.x_label = "training wall time (s)";
    co.y_label = "accuracy";
    co.y_from_zero = true;
    co.y_max = 1.0;
    return "<div class=\"chart\">" + eval::line_chart(s, co) + "</div>";
  };
  std::ostringstream h;
  std::string names;
  for (size_t i = 0; i < r.models.size(); ++i) names += (i ? (i + 1 == r.models.size() ? " and " : ", ") : "") + r.models[i].name;
  h << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << esc(names) << "</title><style>" << kStyle
    << "</style></head><body><h1>" << esc(names) << ": accuracy against training wall time</h1>"
    << "<p class=\"note\">Every checkpoint of every run on the same " << r.test_n << " held-out images of " << r.classes
    << " classes (chance " << fmt(r.chance, 3) << ", majority class " << fmt(r.majority, 3)
    << "). Zero-shot: each objective's own (below). Linear probe: the same full-batch Adam probe on each model's frozen "
       "pooled image features (trained on "
    << r.train_n << " images). Time: the checkpoint's training wall time from the first sample.</p>"
    << "<div class=\"charts\">" << chart("zero_shot") << chart("linear_probe") << "</div>";
  if (auto wmsg = cpu_warning(r); !wmsg.empty()) h << "<p class=\"warn\">" << esc(wmsg) << "</p>";
  h << "<h2>What each run got</h2><table><tr><th>model</th><th>steps</th><th>train s</th><th>steps/s</th>"
       "<th>trainer CPU s</th><th>run wall s</th><th>run CPU s</th><th>CPU s per wall s</th></tr>";
  for (auto& c : r.models) {
    const CostRow k = cost_of(c);
    h << "<tr><td>" << esc(c.name) << "</td><td>" << k.steps << "</td><td>" << fmt(k.train_s, 1) << "</td><td>"
      << fmt(ratio(double(k.steps), k.train_s), 2) << "</td><td>" << fmt(k.trainer_cpu_s, 1) << "</td><td>"
      << fmt(k.run_wall_s, 1) << "</td><td>" << fmt(k.run_cpu_s, 1) << "</td><td>" << fmt(k.cpu_per_wall(), 2)
      << "</td></tr>";
  }
  h << "</table><p class=\"note\">train s: training wall time at the last checkpoint (the budget); trainer CPU s: the "
       "trainer process's CPU over it; run wall s and run CPU s: the whole graph (start-up, source, decode, "
       "tokenizer or labels, trainer) from its summary.json.</p>";
  for (const std::string metric : kMetrics) {
    bool header = false;
    for (auto& row : r.targets) {
      if (row.metric != metric) continue;
      if (!header) {
        h << "<h2>Time to " << metric_title(metric) << " target</h2><table><tr><th>target</th>";
        for (auto& c : r.models) h << "<th>" << esc(c.name) << "</th>";
        h << "</tr>";
        header = true;
      }
      h << "<tr><td>" << fmt(row.target, 3) << " (" << esc(row.label) << ")</td>";
      for (auto& x : row.times) h << "<td>" << esc(cell(x)) << "</td>";
      h << "</tr>";
    }
    if (header) h << "</table>";
  }
  h << "<p class=\"note\">Training seconds at which each run first reaches the target; linear interpolation between "
       "checkpoints; \"&lt;=\" means already at the first checkpoint, \xE2\x80\x94 never within the budget.</p>"
    << "<h2>Checkpoints</h2><table><tr><th>model</th><th>step</th><th>train s</th><th>CPU s</th><th>zero-shot</th>"
       "<th>linear probe</th></tr>";
  for (auto& c : r.models)
    for (auto& p : c.points)
      h << "<tr><td>" << esc(c.name) << "</td><td>" << p.step << "</td><td>" << fmt(p.seconds, 1) << "</td><td>"
        << fmt(p.cpu_seconds, 1) << "</td><td>" << fmt(p.zero_shot) << "</td><td>" << fmt(p.linear_probe)
        << "</td></tr>";
  h << "</table><h2>Models</h2><ul>";
  for (auto& c : r.models)
    h << "<li>" << esc(c.name) << " (" << esc(c.objective) << "): " << esc(c.summary) << "; zero-shot: "
      << esc(c.zero_shot_method) << " (" << fmt(100 * c.mapping_coverage, 0) << "% of the classes scored); "
      << esc(c.run) << "</li>";
  h << "</ul><p class=\"note\">evaluation took " << fmt(r.seconds, 1) << " s</p></body></html>\n";
  return h.str();
}

}  // namespace catlip::transfer
