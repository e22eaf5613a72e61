// The implementation of catlip/eval/report.h: `catlip report`, one self-contained HTML
// file built from a run's metrics, eval and transfer artefacts.
#include "catlip/eval/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "catlip/eval/eval_vocab.h"
#include "catlip/eval/png_io.h"
#include "catlip/eval/svg_plot.h"
#include "catlip/json.h"

namespace fs = std::filesystem;

namespace catlip::eval {

namespace {

std::string find_input(const std::string& dir, const std::string& name) {
  for (const char* sub : {"", "/train", "/eval", "/transfer"}) {
    std::string p = dir + sub + "/" + name;
    if (fs::is_regular_file(p)) return p;
  }
  return "";
}

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

double num(const json::Value& v, double def = NAN) { return v.is_number() ? json::number(v) : def; }
const json::Value* get(const json::Value& v, const std::string& k) { return json::find(v, k); }
double getnum(const json::Value& v, const std::string& k, double def = NAN) {
  auto* x = get(v, k);
  return x ? num(*x, def) : def;
}
std::string getstr(const json::Value& v, const std::string& k) {
  auto* x = get(v, k);
  return x && x->is_string() ? json::string(*x) : "";
}

// JSON lines; bad lines (a run killed mid-write) are skipped.
std::vector<json::Value> read_jsonl(const std::string& path) {
  std::vector<json::Value> out;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    try {
      out.push_back(json::parse(line, path));
    } catch (const std::exception&) {
      // a bad line (a run killed mid-write) is skipped; the report uses the rest
    }
  }
  return out;
}

std::string fmt(double v, int prec = 3) {
  if (!std::isfinite(v)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

const char* kStyle = R"(
body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}
h1{margin-bottom:4px} h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
.headline{display:flex;gap:16px;flex-wrap:wrap;margin:16px 0}
.card{border:1px solid #ccc;border-radius:6px;padding:10px 14px;min-width:150px;background:#fafafa}
.card .v{font-size:24px;font-weight:bold} .card .k{font-size:12px;color:#555}
.charts{display:flex;flex-wrap:wrap;gap:12px} .chart{border:1px solid #eee}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
.grid{display:grid;grid-template-columns:repeat(4,1fr);gap:12px}
.cell{border:1px solid #ddd;border-radius:6px;padding:8px;font-size:12px;background:#fcfcfc}
.cell img{width:100%;image-rendering:pixelated;display:block;margin-bottom:6px}
.hit{color:#1a7f37;font-weight:bold} .miss{color:#999}
.note{color:#666;font-size:12px}
)";

}  // namespace

std::string build_report(const std::string& run_dir, ReportInfo* info_out) {
  if (!fs::is_directory(run_dir)) throw std::runtime_error("report: " + run_dir + " is not a directory");
  ReportInfo info;
  std::ostringstream body;
  auto card = [&](const std::string& k, const std::string& v) {
    return "<div class=\"card\"><div class=\"v\">" + html_escape(v) + "</div><div class=\"k\">" + html_escape(k) + "</div></div>";
  };
  std::string headline;

  // ---------------------------------------------------------------- eval
  std::string eval_path = find_input(run_dir, "eval.json");
  std::ostringstream eval_sec;
  if (!eval_path.empty()) {
    auto e = json::read_file(eval_path);
    const json::Value* gt = get(e, "ground_truth");
    const json::Value* cap = get(e, "captions");
    if (gt) {
      info.map_gt = getnum(*gt, "mAP", -1);
      info.prior_map_gt = getnum(*gt, "prior_mAP", -1);
      headline += card("held-out mAP vs ground truth", fmt(info.map_gt));
      headline += card("label-frequency prior mAP", fmt(info.prior_map_gt));
    }
    if (cap) {
      info.map_captions = getnum(*cap, "mAP", -1);
      headline += card("held-out mAP vs caption labels", fmt(info.map_captions));
    }
    eval_sec << "<h2>Held-out evaluation</h2><p>" << html_escape(getstr(e, "checkpoint")) << " (step "
             << fmt(getnum(e, "step"), 0) << ", model " << html_escape(getstr(e, "model")) << "), "
             << fmt(getnum(e, "samples"), 0) << " held-out samples, threshold " << fmt(getnum(e, "threshold"), 2)
             << ".</p><table id=\"eval-table\"><tr><th>target</th><th>synsets scored</th><th>mAP</th><th>prior mAP</th>"
                "<th>F1 micro</th><th>F1 macro</th><th>P@1</th><th>P@5</th></tr>";
    for (auto [name, v] : {std::pair<const char*, const json::Value*>{"ground truth", gt}, {"caption labels", cap}}) {
      if (!v) continue;
      const json::Value* pa = get(*v, "precision_at");
      eval_sec << "<tr><td>" << name << "</td><td>" << fmt(getnum(*v, "classes_scored"), 0) << "</td><td>"
               << fmt(getnum(*v, "mAP")) << "</td><td>" << fmt(getnum(*v, "prior_mAP")) << "</td><td>"
               << fmt(getnum(*v, "f1_micro")) << "</td><td>" << fmt(getnum(*v, "f1_macro")) << "</td><td>"
               << (pa ? fmt(getnum(*pa, "1")) : "n/a") << "</td><td>" << (pa ? fmt(getnum(*pa, "5")) : "n/a")
               << "</td></tr>";
    }
    eval_sec << "</table>";
    info.sections.push_back("Held-out evaluation");
  } else {
    info.missing.push_back("eval.json");
  }

  // Per-synset AP, best and worst.
  std::string ps_path = find_input(run_dir, "eval_per_synset.tsv");
  if (!ps_path.empty()) {
    std::ifstream f(ps_path);
    std::string line;
    struct Row { std::string lemma; double ap; int64_t pos; };
    std::vector<Row> rows;
    bool use_gt = false;
    std::vector<std::vector<std::string>> all;
    while (std::getline(f, line)) {
      if (line.empty() || line.rfind("index", 0) == 0) continue;
      all.push_back(model::split_tabs(line));
    }
    for (auto& c : all)
      if (c.size() >= 8 && c[5] != "null") use_gt = true;
    for (auto& c : all) {
      if (c.size() < 8) continue;
      const std::string& a = use_gt ? c[5] : c[7];
      if (a == "null") continue;
      try {
        rows.push_back({c[2], std::stod(a), std::stoll(use_gt ? c[4] : c[6])});
      } catch (const std::exception&) {
        // a row with a non-numeric AP or count is left out of the chart
      }
    }
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.ap > b.ap; });
    const size_t k = std::min<size_t>(12, (rows.size() + 1) / 2);
    std::vector<Bar> best, worst;
    for (size_t i = 0; i < k; ++i) best.push_back({rows[i].lemma + " (" + std::to_string(rows[i].pos) + ")", rows[i].ap, "#2ca02c"});
    for (size_t i = 0; i < k && rows.size() > k; ++i) {
      auto& r = rows[rows.size() - 1 - i];
      worst.push_back({r.lemma + " (" + std::to_string(r.pos) + ")", r.ap, "#d62728"});
    }
    if (!rows.empty()) {
      eval_sec << "<h2>AP per synset</h2><p class=\"note\">Against " << (use_gt ? "ground-truth objects" : "caption labels")
               << "; in brackets the number of held-out positives. " << rows.size() << " synsets scored.</p>"
               << "<div class=\"charts\">" << bar_chart(best, "best synsets") << bar_chart(worst, "worst synsets") << "</div>";
      info.charts += 2;
      info.sections.push_back("AP per synset");
    }
  }

  // ---------------------------------------------------------------- training
  std::ostringstream train_sec;
  std::string tm_path = find_input(run_dir, "train_metrics.jsonl");
  if (!tm_path.empty()) {
    auto lines = read_jsonl(tm_path);
    Series loss{"loss", {}, {}, "#1f77b4"}, lr{"lr", {}, {}, "#ff7f0e"}, ips{"images/s", {}, {}, "#2ca02c"},
        wait{"input wait (window)", {}, {}, "#d62728"}, wait_t{"input wait (cumulative)", {}, {}, "#9467bd", true};
    for (auto& l : lines) {
      double s = getnum(l, "step");
      loss.x.push_back(s), loss.y.push_back(getnum(l, "loss"));
      lr.x.push_back(s), lr.y.push_back(getnum(l, "lr"));
      ips.x.push_back(s), ips.y.push_back(getnum(l, "images_per_s"));
      wait.x.push_back(s), wait.y.push_back(getnum(l, "input_wait_frac"));
      wait_t.x.push_back(s), wait_t.y.push_back(getnum(l, "input_wait_frac_total"));
    }
    train_sec << "<h2>Training</h2><p>" << lines.size() << " iterations logged";
    if (!lines.empty())
      train_sec << "; final loss " << fmt(loss.y.back(), 4) << ", final input-wait fraction (cumulative) "
                << fmt(wait_t.y.back(), 3);
    train_sec << ".</p><div class=\"charts\">"
              << line_chart({loss}, {"training loss (BCE)", "step", "loss", 560, 300, false, false, 0})
              << line_chart({lr}, {"learning rate", "step", "lr", 560, 300, false, true, 0})
              << line_chart({ips}, {"trainer throughput", "step", "images/s", 560, 300, false, true, 0})
              << line_chart({wait, wait_t}, {"input-wait fraction of the trainer", "step", "fraction", 560, 300, false, true, 1.0})
              << "</div>";
    info.charts += 4;
    info.sections.push_back("Training");
    if (!lines.empty()) headline += card("final training loss", fmt(loss.y.back(), 4));
  } else {
    info.missing.push_back("train_metrics.jsonl");
  }

  // Runtime metrics: the metrics.jsonl beside train_metrics, else the first found.
  std::string rm_path;
  if (!tm_path.empty() && fs::is_regular_file(fs::path(tm_path).parent_path() / "metrics.jsonl"))
    rm_path = (fs::path(tm_path).parent_path() / "metrics.jsonl").string();
  if (rm_path.empty()) rm_path = find_input(run_dir, "metrics.jsonl");
  if (!rm_path.empty()) {
    auto lines = read_jsonl(rm_path);
    std::map<std::string, Series> rate, busy, wait;
    std::vector<std::string> order;
    for (auto& l : lines) {
      double t = getnum(l, "t");
      const json::Value* st = get(l, "stages");
      if (!st || !st->is_object()) continue;
      for (auto& [name, v] : st->items()) {
        if (!rate.count(name)) {
          order.push_back(name);
          rate[name].name = busy[name].name = wait[name].name = name;
        }
        rate[name].x.push_back(t), rate[name].y.push_back(getnum(v, "out_rate") > 0 ? getnum(v, "out_rate") : getnum(v, "in_rate"));
        busy[name].x.push_back(t), busy[name].y.push_back(getnum(v, "busy_pct"));
        wait[name].x.push_back(t), wait[name].y.push_back(getnum(v, "wait_in_pct"));
      }
    }
    std::vector<Series> r, b, w;
    for (auto& n : order) r.push_back(rate[n]), b.push_back(busy[n]), w.push_back(wait[n]);
    train_sec << "<h2>Pipeline</h2><p class=\"note\">From " << html_escape(rm_path)
              << " (one line per second; rates are items per second, out or in; busy and input-wait are % of wall "
                 "time averaged over a stage's replicas).</p><div class=\"charts\">"
              << line_chart(r, {"throughput per stage", "seconds", "items/s", 560, 300, false, true, 0})
              << line_chart(b, {"busy % per stage", "seconds", "busy %", 560, 300, false, true, 100})
              << line_chart(w, {"waiting for input, % per stage", "seconds", "wait-in %", 560, 300, false, true, 100})
              << "</div>";
    info.charts += 3;
    info.sections.push_back("Pipeline");
  } else {
    info.missing.push_back("metrics.jsonl");
  }

  // ---------------------------------------------------------------- transfer
  std::ostringstream tr_sec;
  std::string tr_path = find_input(run_dir, "transfer.json");
  if (!tr_path.empty()) {
    auto t = json::read_file(tr_path);
    info.zero_shot = getnum(t, "zero_shot", -1);
    info.chance = getnum(t, "chance", -1);
    headline += card("Transfer Init zero-shot accuracy", fmt(info.zero_shot) + " (chance " + fmt(info.chance) + ")");
    std::vector<Series> curves;
    std::string rows;
    if (auto* ft = get(t, "finetune"))
      if (auto* heads = get(*ft, "heads"); heads && heads->is_object()) {
        for (auto& [name, h] : heads->items()) {
          Series s{"init_head = " + name, {}, {}, name == "synsets" ? "#2ca02c" : "#d62728"};
          if (auto* c = get(h, "curve"); c && c->is_array())
            for (auto& p : *c) s.x.push_back(getnum(p, "step")), s.y.push_back(getnum(p, "accuracy"));
          curves.push_back(s);
          rows += "<tr><td>fine-tune, init_head = " + html_escape(name) + "</td><td>" + fmt(getnum(h, "final_accuracy")) +
                  "</td></tr>";
        }
      }
    double lp = getnum(t, "linear_probe");
    if (std::isfinite(lp) && !curves.empty()) {
      double x1 = curves[0].x.empty() ? 1 : curves[0].x.back();
      curves.push_back({"linear probe (frozen, converged)", {0, x1}, {lp, lp}, "#1f77b4", true});
    }
    if (!curves.empty())
      curves.push_back({"chance", {0, curves[0].x.empty() ? 1 : curves[0].x.back()}, {info.chance, info.chance}, "#999", true});
    const json::Value* mp = get(t, "mapping");
    tr_sec << "<h2>Transfer Init</h2><p>" << fmt(getnum(t, "classes"), 0) << " classes from "
           << html_escape(getstr(t, "classes_file")) << " mapped to vocabulary rows";
    if (mp)
      tr_sec << ": " << fmt(getnum(*mp, "exact"), 0) << " exact, " << fmt(getnum(*mp, "hyponym"), 0) << " via hyponyms, "
             << fmt(getnum(*mp, "hypernym"), 0) << " via hypernyms, " << fmt(getnum(*mp, "unmapped"), 0)
             << " unmapped (coverage " << fmt(getnum(*mp, "coverage")) << ")";
    tr_sec << "; " << fmt(getnum(t, "train_samples"), 0) << " training and " << fmt(getnum(t, "test_samples"), 0)
           << " test samples.</p><table id=\"transfer-table\"><tr><th>method</th><th>test accuracy</th></tr>"
           << "<tr><td>chance (1 / classes)</td><td>" << fmt(info.chance) << "</td></tr>"
           << "<tr><td>majority class</td><td>" << fmt(getnum(t, "majority")) << "</td></tr>"
           << "<tr><td>zero-shot (mapped synset rows, no training)</td><td>" << fmt(info.zero_shot) << "</td></tr>" << rows
           << "<tr><td>linear probe on frozen features</td><td>" << fmt(lp) << "</td></tr></table><div class=\"charts\">"
           << line_chart(curves, {"fine-tuning: Transfer Init vs random init", "step", "test accuracy", 700, 320, false, true, 1.0})
           << "</div>";
    info.charts += 1;
    info.sections.push_back("Transfer Init");
    if (auto cov = find_input(run_dir, "transfer_coverage.txt"); !cov.empty())
      tr_sec << "<pre>" << html_escape(slurp(cov)) << "</pre>";
  } else {
    info.missing.push_back("transfer.json");
  }

  // ---------------------------------------------------------------- images
  std::ostringstream img_sec;
  std::string sj_path = find_input(run_dir, "eval_samples.json");
  if (!sj_path.empty()) {
    auto arr = json::read_file(sj_path);
    std::string base = fs::path(sj_path).parent_path().string();
    img_sec << "<h2>Held-out images</h2><p class=\"note\">Caption synsets come from the caption (nouns &rarr; WordNet); "
               "ground truth is what was drawn; predictions are the model's top 5 (sigmoid). Green: a prediction "
               "that is in the ground truth (or caption synsets when there is none).</p><div class=\"grid\">";
    if (arr.is_array())
      for (auto& s : arr) {
        std::string png = base + "/" + getstr(s, "png");
        if (!fs::is_regular_file(png)) continue;
        auto list = [&](const char* k) {
          std::vector<std::string> v;
          if (auto* a = get(s, k); a && a->is_array())
            for (auto& x : *a)
              if (x.is_string()) v.push_back(json::string(x));
          return v;
        };
        auto capsyn = list("caption_synsets"), gt = list("ground_truth");
        const auto& truth = gt.empty() ? capsyn : gt;
        auto join = [](const std::vector<std::string>& v) {
          std::string o;
          for (size_t i = 0; i < v.size(); ++i) o += (i ? ", " : "") + html_escape(v[i]);
          return o.empty() ? std::string("&mdash;") : o;
        };
        img_sec << "<div class=\"cell\"><img alt=\"" << html_escape(getstr(s, "key")) << "\" src=\"data:image/png;base64,"
                << base64(slurp(png)) << "\"/><div><b>caption:</b> " << html_escape(getstr(s, "caption"))
                << "</div><div><b>caption synsets:</b> " << join(capsyn) << "</div><div><b>ground truth:</b> " << join(gt)
                << "</div><div><b>predicted:</b> ";
        if (auto* top = get(s, "top"); top && top->is_array()) {
          bool first = true;
          for (auto& p : *top) {
            std::string l = getstr(p, "lemma");
            bool hit = std::find(truth.begin(), truth.end(), l) != truth.end();
            img_sec << (first ? "" : ", ") << "<span class=\"" << (hit ? "hit" : "miss") << "\">" << html_escape(l) << " "
                    << fmt(getnum(p, "p"), 2) << "</span>";
            first = false;
          }
        }
        img_sec << "</div></div>";
        ++info.images;
      }
    img_sec << "</div>";
    if (info.images) info.sections.push_back("Held-out images");
  } else {
    info.missing.push_back("eval_samples.json");
  }

  if (info.sections.empty())
    throw std::runtime_error("report: nothing to report in " + run_dir +
                             " (no eval.json, train_metrics.jsonl, metrics.jsonl, transfer.json or eval_samples.json)");
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>CatLIP report: " << html_escape(run_dir)
       << "</title><style>" << kStyle << "</style></head><body><h1>CatLIP run report</h1><p class=\"note\">"
       << html_escape(fs::absolute(run_dir).string()) << "</p><div class=\"headline\">" << headline << "</div>"
       << eval_sec.str() << img_sec.str() << tr_sec.str() << train_sec.str();
  if (!info.missing.empty()) {
    html << "<p class=\"note\">Not found (sections left out): ";
    for (size_t i = 0; i < info.missing.size(); ++i) html << (i ? ", " : "") << info.missing[i];
    html << "</p>";
  }
  html << "</body></html>\n";
  if (info_out) *info_out = info;
  return html.str();
}

ReportInfo write_report(const std::string& run_dir, const std::string& out_path) {
  ReportInfo info;
  std::string html = build_report(run_dir, &info);
  info.html_path = out_path.empty() ? (fs::path(run_dir) / "report.html").string() : out_path;
  write_file_bytes(info.html_path, html);
  return info;
}

}  // namespace catlip::eval
