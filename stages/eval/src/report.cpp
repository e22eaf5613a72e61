// report.cpp - `catlip report`: builds the one-file HTML report of a run
// (headline cards, held-out evaluation, AP per synset, images, Transfer Init;
// Training and Pipeline come from report_training.cpp), and the helpers the
// report's files share (report_util.h).
#include "catlip/eval/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "catlip/eval/eval_vocab.h"
#include "catlip/eval/png_io.h"
#include "catlip/eval/svg_plot.h"
#include "catlip/json.h"
#include "report_util.h"

namespace fs = std::filesystem;

namespace catlip::eval {

namespace report_detail {

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

double getnum(const json::Value& v, const std::string& k, double def) {
  auto* x = json::find(v, k);
  return x && x->is_number() ? json::number(*x) : def;
}
std::string getstr(const json::Value& v, const std::string& k) {
  auto* x = json::find(v, k);
  return x && x->is_string() ? json::string(*x) : "";
}

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

std::string fmt(double v, int prec) {
  if (!std::isfinite(v)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

std::string figure(const std::string& charts, const std::string& caption, bool wide) {
  return std::string("<figure") + (wide ? " class=\"wide\"" : "") + ">" + charts + "<figcaption>" + caption +
         "</figcaption></figure>";
}

std::string card(const std::string& k, const std::string& v) {
  return "<div class=\"card\"><div class=\"v\">" + html_escape(v) + "</div><div class=\"k\">" + html_escape(k) + "</div></div>";
}

}  // namespace report_detail

namespace {

using namespace report_detail;
const json::Value* get(const json::Value& v, const std::string& k) { return json::find(v, k); }

const char* kStyle = R"(
body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}
@media (max-width:600px){body{margin:10px}}
h1{margin-bottom:4px} h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
.headline{display:flex;gap:16px;flex-wrap:wrap;margin:16px 0}
.card{border:1px solid #ccc;border-radius:6px;padding:10px 14px;min-width:150px;background:#fafafa}
.card .v{font-size:24px;font-weight:bold} .card .k{font-size:12px;color:#555}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,440px),1fr));gap:20px;align-items:start}
figure{margin:0;min-width:0} figure.wide{grid-column:1/-1}
figcaption{font-size:12px;color:#555;margin-top:4px;max-width:640px}
.multiples{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,270px),1fr));gap:8px}
svg.chart{display:block;border:1px solid #eee;box-sizing:border-box}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,240px),1fr));gap:12px}
.cell{border:1px solid #ddd;border-radius:6px;padding:8px;font-size:12px;background:#fcfcfc;overflow-wrap:anywhere}
.cell img{width:100%;image-rendering:pixelated;display:block;margin-bottom:6px}
.hit{color:#1a7f37;font-weight:bold} .miss{color:#999}
.note{color:#666;font-size:12px}
)";

// Held-out evaluation (eval.json) and AP per synset (eval_per_synset.tsv).
void eval_section(const std::string& run_dir, ReportInfo& info, std::string& headline, std::ostringstream& eval_sec) {
  std::string eval_path = find_input(run_dir, "eval.json");
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
             << ".</p><div class=\"scroll\"><table id=\"eval-table\"><tr><th>target</th><th>synsets scored</th><th>mAP</th><th>prior mAP</th>"
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
    eval_sec << "</table></div>";
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
               << "<div class=\"charts\">"
               << figure(bar_chart(best, "best synsets"),
                         "Average precision of the best-ranked synsets on held-out images. Good: near 1 with many positives.")
               << figure(bar_chart(worst, "worst synsets"),
                         "The worst-ranked synsets. Few positives make AP noisy; many positives and low AP is a real weakness.")
               << "</div>";
      info.charts += 2;
      info.sections.push_back("AP per synset");
    }
  }
}

// transfer_coverage.txt (`catlip transfer --coverage FILE`, which the
// quickstart runs on configs/data/imagenet_wnids.txt): one line per class list,
// "FILE: N classes -> E exact, O via hyponyms, R via hypernyms, U unmapped
// (coverage C)", explained in one sentence each.
std::string coverage_html(const std::string& text) {
  static const std::regex line_re(
      R"(^(.*): (\d+) classes -> (\d+) exact, (\d+) via hyponyms, (\d+) via hypernyms, (\d+) unmapped \(coverage ([0-9.eE+-]+)\)\s*$)");
  std::ostringstream o;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (line.empty()) continue;
    if (!std::regex_match(line, m, line_re)) {
      o << "<p class=\"note coverage\">" << html_escape(line) << "</p>";
      continue;
    }
    std::string file = fs::path(m[1].str()).filename().string();
    long n = std::stol(m[2]), mapped = n - std::stol(m[6]);
    bool imagenet = file == "imagenet_wnids.txt";
    o << "<p class=\"note coverage\"><b>" << (imagenet ? "ImageNet-1k" : html_escape(file)) << " coverage "
      << html_escape(m[7].str()) << "</b>" << (imagenet ? " (configs/data/imagenet_wnids.txt, its 1000 classes)" : "")
      << ": " << mapped << " of " << n << " classes have a row in this model's synset vocabulary (" << m[3] << " exact, "
      << m[4] << " via a hyponym, " << m[5] << " via a hypernym), so only they could be predicted zero-shot or start "
      << "from a Transfer Init head if this checkpoint were fine-tuned on that dataset; the other " << m[6]
      << " would start from random. The quickstart's small synthetic vocabulary covers few; a vocabulary built from "
      << "real captions covers many more.</p>";
  }
  return o.str();
}

// Transfer Init (transfer.json), with the vocabulary coverage of other class
// lists (transfer_coverage.txt) explained.
void transfer_section(const std::string& run_dir, ReportInfo& info, std::string& headline, std::ostringstream& tr_sec) {
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
             << " unmapped (coverage " << fmt(getnum(*mp, "coverage")) << ", the fraction of classes with a row)";
    tr_sec << "; " << fmt(getnum(t, "train_samples"), 0) << " training and " << fmt(getnum(t, "test_samples"), 0)
           << " test samples.</p><div class=\"scroll\"><table id=\"transfer-table\"><tr><th>method</th><th>test accuracy</th></tr>"
           << "<tr><td>chance (1 / classes)</td><td>" << fmt(info.chance) << "</td></tr>"
           << "<tr><td>majority class</td><td>" << fmt(getnum(t, "majority")) << "</td></tr>"
           << "<tr><td>zero-shot (mapped synset rows, no training)</td><td>" << fmt(info.zero_shot) << "</td></tr>" << rows
           << "<tr><td>linear probe on frozen features</td><td>" << fmt(lp) << "</td></tr></table></div><div class=\"charts\">"
           << figure(line_chart(curves, {"fine-tuning: Transfer Init vs random init", "step", "test accuracy", 480, 280,
                                         false, true, 1.0}),
                     "Test accuracy while fine-tuning a head initialised from the mapped synset rows (Transfer Init) or "
                     "at random; dashed: linear probe and chance. Good: Transfer Init starts above chance and stays ahead.")
           << "</div>";
    info.charts += 1;
    info.sections.push_back("Transfer Init");
    if (auto cov = find_input(run_dir, "transfer_coverage.txt"); !cov.empty()) tr_sec << coverage_html(slurp(cov));
  } else {
    info.missing.push_back("transfer.json");
  }
}

// The held-out images grid (eval_samples.json and its PNGs).
void images_section(const std::string& run_dir, ReportInfo& info, std::ostringstream& img_sec) {
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

}

}  // namespace

std::string build_report(const std::string& run_dir, ReportInfo* info_out) {
  if (!fs::is_directory(run_dir)) throw std::runtime_error("report: " + run_dir + " is not a directory");
  ReportInfo info;
  std::string headline;
  std::ostringstream eval_sec, train_sec, tr_sec, img_sec;
  eval_section(run_dir, info, headline, eval_sec);
  std::string tm_path = find_input(run_dir, "train_metrics.jsonl");
  if (!tm_path.empty()) training_section(tm_path, info, headline, train_sec);
  else info.missing.push_back("train_metrics.jsonl");
  pipeline_section(run_dir, tm_path, info, train_sec);
  transfer_section(run_dir, info, headline, tr_sec);
  images_section(run_dir, info, img_sec);

  if (info.sections.empty())
    throw std::runtime_error("report: nothing to report in " + run_dir +
                             " (no eval.json, train_metrics.jsonl, metrics.jsonl, transfer.json or eval_samples.json)");
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>CatLIP report: " << html_escape(run_dir)
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
