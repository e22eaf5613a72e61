// The implementation of catlip/transfer/clip_eval.h: CLIP zero-shot with prompts, and
// `catlip compare` (CatLIP vs CLIP accuracy along the wall clock).
#include "catlip/transfer/clip_eval.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "catlip/eval/eval_vocab.h"
#include "catlip/eval/png_io.h"
#include "catlip/eval/svg_plot.h"
#include "catlip/eval/wordnet_graph.h"
#include "catlip/json.h"
#include "catlip/model/checkpoint_file.h"
#include "catlip/model/model_io.h"

namespace fs = std::filesystem;

namespace catlip::transfer {

// ---------------------------------------------------------------- zero-shot

std::vector<std::string> clip_prompts(const std::vector<std::string>& names, const std::string& templ) {
  std::vector<std::string> out;
  for (auto& n : names) {
    std::string p = templ;
    if (auto at = p.find("{}"); at != std::string::npos) p.replace(at, 2, n);
    else p += " " + n;
    out.push_back(p);
  }
  return out;
}

text::BpeTokenizer load_clip_tokenizer(const model::LoadedClip& m, const std::string& path) {
  const std::string p = path.empty() ? m.tokenizer_path : path;
  if (p.empty())
    throw std::runtime_error("no tokenizer.txt beside the CLIP weights (nor in the run's export/); pass the tokenizer");
  // The weights record the file's checksum as train.clip computes it.
  const auto info = model::read_tokenizer_info(p);
  if (!m.tokenizer_checksum.empty() && info.checksum != m.tokenizer_checksum)
    throw std::runtime_error("tokenizer " + p + " has checksum " + info.checksum + " but the model was trained with " +
                             m.tokenizer_checksum);
  auto tok = text::BpeTokenizer::load(p);
  if (tok.vocab_size() > m.text.vocab_size)
    throw std::runtime_error("tokenizer " + p + " has " + std::to_string(tok.vocab_size()) +
                             " tokens but the text tower only " + std::to_string(m.text.vocab_size));
  return tok;
}

torch::Tensor clip_text_classifier(model::LoadedClip& m, const text::BpeTokenizer& tok,
                                   const std::vector<std::string>& prompts) {
  std::vector<std::vector<int64_t>> rows;
  for (auto& p : prompts) rows.push_back(tok.encode_context(p, m.text.context_length));
  torch::NoGradGuard ng;
  auto f = m.model->encode_text(model::pad_tokens(rows, m.device));
  return torch::nn::functional::normalize(f, torch::nn::functional::NormalizeFuncOptions().dim(1));
}

torch::Tensor clip_zero_shot_scores(model::LoadedClip& m, const torch::Tensor& images, const torch::Tensor& classifier) {
  torch::NoGradGuard ng;
  return map_batches(images, 128, [&](torch::Tensor x) {
    auto f = m.model->encode_image(model::preprocess_images(x, m.device, m.vision.mean, m.vision.std));
    f = torch::nn::functional::normalize(f, torch::nn::functional::NormalizeFuncOptions().dim(1));
    return f.matmul(classifier.t()).cpu();
  });
}

namespace {
std::vector<std::string> class_names(const eval::ClassList& classes) {
  std::vector<std::string> names;
  for (size_t c = 0; c < classes.wnids.size(); ++c)
    names.push_back(c < classes.names.size() && !classes.names[c].empty() ? classes.names[c] : classes.wnids[c]);
  return names;
}
}  // namespace

double clip_zero_shot(model::LoadedClip& m, const text::BpeTokenizer& tok, const eval::ClassList& classes,
                      const LabeledSet& test, const std::string& templ) {
  auto cls = clip_text_classifier(m, tok, clip_prompts(class_names(classes), templ));
  return top1_accuracy(clip_zero_shot_scores(m, test.images, cls), test.labels);
}

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

void compute_times(CompareResult& r) {
  if (r.catlip.points.empty() || r.clip.points.empty()) return;
  r.zs_catlip_to_clip = time_to_accuracy(r.catlip.zero_shot(), r.clip.last().zero_shot);
  r.zs_clip_to_catlip = time_to_accuracy(r.clip.zero_shot(), r.catlip.last().zero_shot);
  r.lp_catlip_to_clip = time_to_accuracy(r.catlip.linear_probe(), r.clip.last().linear_probe);
  r.lp_clip_to_catlip = time_to_accuracy(r.clip.linear_probe(), r.catlip.last().linear_probe);
}

// ---------------------------------------------------------------- compare

namespace {

// Checkpoints of a run dir (its checkpoints/) or a checkpoint dir, in step order.
std::vector<std::string> run_checkpoints(const std::string& run) {
  for (const std::string& dir : {run + "/checkpoints", run}) {
    auto l = model::list_checkpoints(dir);
    if (!l.empty()) {
      std::reverse(l.begin(), l.end());
      return l;
    }
  }
  throw std::runtime_error("no checkpoints (ckpt-*.catlip) in " + run + "/checkpoints or " + run);
}

struct CkptMeta {
  int64_t step = 0;
  double seconds = std::nan("");
  double cpu_seconds = std::nan("");
};

CkptMeta read_meta(const std::string& path) {
  auto f = model::read_checkpoint_file(path);
  if (!f.ok()) throw std::runtime_error(f.status().message());
  CkptMeta m;
  if (auto it = f->metadata.find("catlip.step"); it != f->metadata.end()) m.step = std::stoll(it->second);
  if (auto it = f->metadata.find("catlip.train_seconds"); it != f->metadata.end()) m.seconds = std::stod(it->second);
  if (auto it = f->metadata.find("catlip.train_cpu_seconds"); it != f->metadata.end())
    m.cpu_seconds = std::stod(it->second);
  return m;
}

std::string fmt(double v, int p = 4) {
  if (!std::isfinite(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", p, v);
  return b;
}

}  // namespace

CompareResult run_compare(const CompareOptions& o, void (*log)(const std::string&)) {
  auto t0 = std::chrono::steady_clock::now();
  int threads = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  CompareResult res;
  eval::ClassList classes = eval::load_class_list(o.classes);
  eval::EvalVocab vocab = eval::load_eval_vocab(o.vocab);
  eval::WordNetGraph wn(o.wordnet_dir);
  eval::MappingReport mapping = eval::map_classes(classes, vocab, wn, o.max_distance);
  res.classes = int64_t(classes.wnids.size());
  res.mapping_coverage = mapping.coverage();
  res.chance = 1.0 / double(res.classes);
  log("compare: " + std::to_string(res.classes) + " classes; CatLIP's vocabulary covers " +
      std::to_string(mapping.exact + mapping.hyponym + mapping.hypernym) + " of them (" +
      std::to_string(mapping.exact) + " exact)");

  const auto catlip_ckpts = run_checkpoints(o.catlip_run);
  const auto clip_ckpts = run_checkpoints(o.clip_run);
  log("compare: " + std::to_string(catlip_ckpts.size()) + " CatLIP and " + std::to_string(clip_ckpts.size()) +
      " CLIP checkpoints");

  // Held-out and probe-training sets, decoded once per input size.
  std::map<int, std::pair<LabeledSet, LabeledSet>> sets;
  auto sets_at = [&](int size) -> std::pair<LabeledSet, LabeledSet>& {
    auto it = sets.find(size);
    if (it == sets.end()) {
      auto tr = load_labeled_set(o.train_urls, o.train_samples, size, classes, "probe-train", log);
      auto te = load_labeled_set(o.test_urls, o.test_samples, size, classes, "held-out", log);
      it = sets.emplace(size, std::make_pair(std::move(tr), std::move(te))).first;
      if (res.test_n == 0) {
        res.train_n = it->second.first.size();
        res.test_n = it->second.second.size();
        auto counts = torch::bincount(it->second.second.labels, {}, res.classes);
        res.majority = counts.max().item<double>() / double(res.test_n);
      }
    }
    return it->second;
  };
  auto features = [](const torch::Tensor& images, const std::function<torch::Tensor(torch::Tensor)>& f) {
    torch::NoGradGuard ng;
    return map_batches(images, 128, f);
  };
  auto note = [&](const ModelCurve& c) {
    auto& p = c.points.back();
    log("compare: " + c.name + " step " + std::to_string(p.step) + " (" + fmt(p.seconds, 1) + " s): zero-shot " +
        fmt(p.zero_shot) + ", linear probe " + fmt(p.linear_probe) + " [" +
        fmt(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1) + " s into the evaluation]");
  };

  res.catlip.name = "CatLIP";
  res.catlip.run = o.catlip_run;
  for (auto& path : catlip_ckpts) {
    auto meta = read_meta(path);
    auto m = model::load_model(path, o.ema, o.device);
    if (m.config.num_classes != vocab.size())
      throw std::runtime_error(path + " has " + std::to_string(m.config.num_classes) + " outputs but " + o.vocab +
                               " has " + std::to_string(vocab.size()) + " rows");
    if (res.catlip.summary.empty()) res.catlip.summary = "ViT " + m.config.to_string();
    auto& [tr, te] = sets_at(int(m.config.image_size));
    auto prep = [&](torch::Tensor x) { return model::preprocess_images(x, m.device, m.config.mean, m.config.std); };
    CheckpointScore s{path, meta.step, meta.seconds, 0, 0, meta.cpu_seconds};
    s.zero_shot = synset_zero_shot(m, te, mapping, m.config.mean, m.config.std);
    auto ftr = features(tr.images, [&](torch::Tensor x) { return m.model->features(prep(x)); });
    auto fte = features(te.images, [&](torch::Tensor x) { return m.model->features(prep(x)); });
    s.linear_probe = linear_probe(ftr, tr.labels, fte, te.labels, res.classes, o.probe);
    res.catlip.points.push_back(s);
    note(res.catlip);
  }

  res.clip.name = "CLIP";
  res.clip.run = o.clip_run;
  std::optional<text::BpeTokenizer> tok;
  std::string tok_checksum;  // as the first checkpoint records it
  const auto prompts = clip_prompts(class_names(classes), o.prompt);
  for (auto& path : clip_ckpts) {
    auto meta = read_meta(path);
    auto m = model::load_clip(path, o.ema, o.device);
    if (!tok) {
      tok = load_clip_tokenizer(m, o.tokenizer);
      tok_checksum = m.tokenizer_checksum;
      log("compare: CLIP prompts like \"" + prompts.front() + "\" (" + std::to_string(tok->encode(prompts.front()).size()) +
          " BPE tokens)");
    } else if (m.tokenizer_checksum != tok_checksum) {
      throw std::runtime_error(path + " was trained with tokenizer " + m.tokenizer_checksum + ", not " + tok_checksum);
    }
    if (res.clip.summary.empty())
      res.clip.summary = "image ViT " + m.vision.to_string() + "; text " + m.text.to_string();
    auto& [tr, te] = sets_at(int(m.vision.image_size));
    auto prep = [&](torch::Tensor x) { return model::preprocess_images(x, m.device, m.vision.mean, m.vision.std); };
    CheckpointScore s{path, meta.step, meta.seconds, 0, 0, meta.cpu_seconds};
    auto cls = clip_text_classifier(m, *tok, prompts);
    s.zero_shot = top1_accuracy(clip_zero_shot_scores(m, te.images, cls), te.labels);
    auto ftr = features(tr.images, [&](torch::Tensor x) { return m.model->visual->features(prep(x)); });
    auto fte = features(te.images, [&](torch::Tensor x) { return m.model->visual->features(prep(x)); });
    s.linear_probe = linear_probe(ftr, tr.labels, fte, te.labels, res.classes, o.probe);
    res.clip.points.push_back(s);
    note(res.clip);
  }
  compute_times(res);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fs::create_directories(o.out_dir);
  eval::write_file_bytes(o.out_dir + "/compare.json", compare_json(res));
  eval::write_file_bytes(o.out_dir + "/compare.html", compare_html(res));
  return res;
}

// ---------------------------------------------------------------- output

namespace {

double num6(double v) { return json::round_sig(v, 6); }  // NaN: null

json::Ordered time_json(const TimeToAccuracy& t, double target) {
  return {{"target", num6(target)},
          {"reached", t.reached},
          {"seconds", t.reached ? json::Ordered(num6(t.seconds)) : json::Ordered()},
          {"at_first_checkpoint", t.at_first_point},
          {"text", describe(t)}};
}

json::Ordered curve_json(const ModelCurve& c) {
  json::Ordered curve = json::Ordered::array();
  for (auto& p : c.points)
    curve.push_back({{"step", p.step},
                     {"seconds", num6(p.seconds)},
                     {"cpu_seconds", num6(p.cpu_seconds)},
                     {"zero_shot", num6(p.zero_shot)},
                     {"linear_probe", num6(p.linear_probe)},
                     {"checkpoint", p.path}});
  json::Ordered j = {{"run", c.run}, {"model", c.summary}, {"curve", std::move(curve)}};
  if (!c.points.empty())
    j["final"] = {{"step", c.last().step},
                  {"seconds", num6(c.last().seconds)},
                  {"zero_shot", num6(c.last().zero_shot)},
                  {"linear_probe", num6(c.last().linear_probe)}};
  return j;
}

double final_or_nan(const ModelCurve& c, bool zs) {
  if (c.points.empty()) return std::nan("");
  return zs ? c.last().zero_shot : c.last().linear_probe;
}

// The sentence for one metric: who is ahead at the end, and the two times.
std::string verdict(const CompareResult& r, bool zs) {
  double a = final_or_nan(r.catlip, zs), b = final_or_nan(r.clip, zs);
  const auto& a2b = zs ? r.zs_catlip_to_clip : r.lp_catlip_to_clip;
  const auto& b2a = zs ? r.zs_clip_to_catlip : r.lp_clip_to_catlip;
  std::ostringstream s;
  s << (zs ? "zero-shot" : "linear probe") << ": final CatLIP " << fmt(a) << " vs CLIP " << fmt(b);
  if (std::isfinite(a) && std::isfinite(b))
    s << " (" << (a > b ? "CatLIP ahead" : a < b ? "CLIP ahead" : "tied") << ")";
  auto when = [](const TimeToAccuracy& t) { return t.reached ? " after " + describe(t) : ": " + describe(t); };
  s << ". CatLIP reaches CLIP's final " << fmt(b, 3) << when(a2b) << "; CLIP reaches CatLIP's final " << fmt(a, 3)
    << when(b2a);
  return s.str();
}

// Training speed of each run (steps per second at its last checkpoint): an
// equal budget is a fair one only if nothing else slowed one run down.
std::string throughput(const CompareResult& r) {
  std::ostringstream s;
  s << "training speed:";
  for (auto* c : {&r.catlip, &r.clip}) {
    if (c->points.empty()) continue;
    auto& p = c->last();
    s << (c == &r.catlip ? " " : ", ") << c->name << " " << p.step << " steps in " << fmt(p.seconds, 1) << " s ("
      << fmt(p.seconds > 0 ? double(p.step) / p.seconds : std::nan(""), 2) << " steps/s, "
      << fmt(p.seconds > 0 ? p.cpu_seconds / p.seconds : std::nan(""), 2) << " CPU-s per second)";
  }
  return s.str();
}

}  // namespace

std::string compare_json(const CompareResult& r) {
  json::Ordered j = {
      {"classes", r.classes},
      {"probe_train_samples", r.train_n},
      {"test_samples", r.test_n},
      {"chance", num6(r.chance)},
      {"majority", num6(r.majority)},
      {"catlip_mapping_coverage", num6(r.mapping_coverage)},
      {"models", {{"catlip", curve_json(r.catlip)}, {"clip", curve_json(r.clip)}}},
      {"time_to_other_final",
       {{"zero_shot",
         {{"catlip_to_clip", time_json(r.zs_catlip_to_clip, final_or_nan(r.clip, true))},
          {"clip_to_catlip", time_json(r.zs_clip_to_catlip, final_or_nan(r.catlip, true))}}},
        {"linear_probe",
         {{"catlip_to_clip", time_json(r.lp_catlip_to_clip, final_or_nan(r.clip, false))},
          {"clip_to_catlip", time_json(r.lp_clip_to_catlip, final_or_nan(r.catlip, false))}}}}},
      {"seconds", num6(r.seconds)}};
  return json::dump(j, 2) + "\n";
}

std::string compare_table(const CompareResult& r) {
  std::ostringstream t;
  char b[256];
  std::snprintf(b, sizeof b,
                "CatLIP vs CLIP on %lld classes (%lld held-out images; probe trained on %lld; chance %.3f, "
                "majority class %.3f)\n",
                (long long)r.classes, (long long)r.test_n, (long long)r.train_n, r.chance, r.majority);
  t << b;
  std::snprintf(b, sizeof b, "  %-7s %7s %9s %9s %10s %13s\n", "model", "step", "train s", "CPU s", "zero-shot",
                "linear probe");
  t << b;
  for (auto* c : {&r.catlip, &r.clip})
    for (auto& p : c->points) {
      std::snprintf(b, sizeof b, "  %-7s %7lld %9s %9s %10s %13s\n", c->name.c_str(), (long long)p.step,
                    fmt(p.seconds, 1).c_str(), fmt(p.cpu_seconds, 1).c_str(), fmt(p.zero_shot).c_str(),
                    fmt(p.linear_probe).c_str());
      t << b;
    }
  t << verdict(r, true) << "\n" << verdict(r, false) << "\n" << throughput(r) << "\n";
  return t.str();
}

std::string compare_html(const CompareResult& r) {
  static const char* kStyle = R"(
body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}
h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
.charts{display:flex;flex-wrap:wrap;gap:12px} .chart{border:1px solid #eee}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
.note{color:#666;font-size:13px}
)";
  auto chart = [&](bool zs) {
    std::vector<eval::Series> s;
    for (auto* c : {&r.catlip, &r.clip}) {
      eval::Series x;
      x.name = c->name;
      x.color = c == &r.catlip ? "#1f77b4" : "#d62728";
      for (auto& p : c->points) {
        x.x.push_back(p.seconds);
        x.y.push_back(zs ? p.zero_shot : p.linear_probe);
      }
      s.push_back(std::move(x));
    }
    double tmax = 0;
    for (auto& x : s)
      for (double v : x.x)
        if (std::isfinite(v)) tmax = std::max(tmax, v);
    if (zs) s.push_back(eval::Series{"chance", {0, tmax}, {r.chance, r.chance}, "#888888", true});
    eval::ChartOptions co;
    co.title = zs ? "zero-shot top-1 accuracy" : "linear probe top-1 accuracy (frozen image features)";
    co.x_label = "training wall time (s)";
    co.y_label = "accuracy";
    co.y_from_zero = true;
    co.y_max = 1.0;
    return "<div class=\"chart\">" + eval::line_chart(s, co) + "</div>";
  };
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>CatLIP vs CLIP</title><style>" << kStyle
    << "</style></head><body><h1>CatLIP vs CLIP: accuracy against training wall time</h1>"
    << "<p class=\"note\">Every checkpoint of both runs on the same " << r.test_n << " held-out images of " << r.classes
    << " classes (chance " << fmt(r.chance, 3) << ", majority class " << fmt(r.majority, 3)
    << "). Zero-shot: CatLIP through Transfer Init's synset rows (vocabulary covers " << fmt(100 * r.mapping_coverage, 0)
    << "% of the classes), CLIP through the prompts \"a photo of a {name}.\". Linear probe: the same full-batch Adam "
       "probe on each model's frozen pooled image features (trained on "
    << r.train_n << " images). Time: the checkpoint's training wall time from the first sample.</p>"
    << "<div class=\"charts\">" << chart(true) << chart(false) << "</div>"
    << "<h2>Time to reach the other's final accuracy</h2><ul><li>" << eval::html_escape(verdict(r, true)) << "</li><li>"
    << eval::html_escape(verdict(r, false)) << "</li><li>" << eval::html_escape(throughput(r)) << "</li></ul><p class=\"note\">Linear interpolation between checkpoints; "
    << "\"&lt;=\" means already at the first checkpoint.</p><h2>Checkpoints</h2><table><tr><th>model</th><th>step</th>"
       "<th>train s</th><th>CPU s</th><th>zero-shot</th><th>linear probe</th></tr>";
  for (auto* c : {&r.catlip, &r.clip})
    for (auto& p : c->points)
      h << "<tr><td>" << c->name << "</td><td>" << p.step << "</td><td>" << fmt(p.seconds, 1) << "</td><td>"
        << fmt(p.cpu_seconds, 1) << "</td><td>"
        << fmt(p.zero_shot) << "</td><td>" << fmt(p.linear_probe) << "</td></tr>";
  h << "</table><h2>Models</h2><ul><li>CatLIP: " << eval::html_escape(r.catlip.summary) << " (" << eval::html_escape(r.catlip.run)
    << ")</li><li>CLIP: " << eval::html_escape(r.clip.summary) << " (" << eval::html_escape(r.clip.run) << ")</li></ul>"
    << "<p class=\"note\">evaluation took " << fmt(r.seconds, 1) << " s</p></body></html>\n";
  return h.str();
}

}  // namespace catlip::transfer
