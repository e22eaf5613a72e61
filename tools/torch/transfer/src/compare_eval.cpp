// The evaluating half of catlip/transfer/compare.h: every checkpoint of every
// run, each with its objective's zero-shot and the shared linear probe.
// compare_report.cpp turns the result into the time-to-target table, JSON
// and HTML.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "catlip/eval/eval_vocab.h"
#include "catlip/eval/png_io.h"
#include "catlip/eval/transfer_map.h"
#include "catlip/eval/wordnet_graph.h"
#include "catlip/json.h"
#include "catlip/model/checkpoint_file.h"
#include "catlip/model/model_io.h"
#include "catlip/transfer/clip_eval.h"
#include "catlip/transfer/compare.h"
#include "catlip/transfer/superclass_eval.h"

namespace fs = std::filesystem;

namespace catlip::transfer {

namespace {

const std::set<std::string> kObjectives = {"catlip", "clip", "siglip", "superclass"};

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
  std::string objective = "catlip";  // checkpoints from before catlip.objective are CatLIP's
};

CkptMeta read_meta(const std::string& path) {
  auto f = model::read_checkpoint_file(path);
  if (!f.ok()) throw std::runtime_error(f.status().message());
  CkptMeta m;
  auto get = [&](const char* k) -> const std::string* {
    auto it = f->metadata.find(k);
    return it == f->metadata.end() ? nullptr : &it->second;
  };
  try {
    if (auto v = get("catlip.step")) m.step = std::stoll(*v);
    if (auto v = get("catlip.train_seconds")) m.seconds = std::stod(*v);
    if (auto v = get("catlip.train_cpu_seconds")) m.cpu_seconds = std::stod(*v);
  } catch (const std::exception&) {
    throw std::runtime_error(path + ": a catlip.step / train_seconds / train_cpu_seconds value is not a number");
  }
  if (auto v = get("catlip.objective")) m.objective = *v;
  return m;
}

std::string fixed_str(double v, int p = 4) {
  if (!std::isfinite(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", p, v);
  return b;
}

torch::Tensor frozen_features(const torch::Tensor& images, const std::function<torch::Tensor(torch::Tensor)>& f) {
  torch::NoGradGuard ng;
  return map_batches(images, 128, f);
}

// What every run shares: the classes, the decoded sets, CatLIP's synset
// mapping (built for the first CatLIP run).
struct Shared {
  const CompareOptions& o;
  void (*log)(const std::string&);
  CompareResult& res;
  eval::ClassList classes;
  std::vector<std::string> prompts;
  std::optional<eval::WordNetGraph> wn;
  std::optional<eval::EvalVocab> vocab;
  eval::MappingReport synsets;
  std::map<int, std::pair<LabeledSet, LabeledSet>> sets;  // by input size: probe-train, held-out

  // Held-out and probe-training sets, decoded once per input size.
  std::pair<LabeledSet, LabeledSet>& sets_at(int size) {
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
  }

  void load_synsets() {
    if (vocab) return;
    if (o.vocab.empty()) throw std::runtime_error("a CatLIP run needs --vocab (the model's vocabulary TSV)");
    vocab = eval::load_eval_vocab(o.vocab);
    wn.emplace(o.wordnet_dir);
    synsets = eval::map_classes(classes, *vocab, *wn, o.max_distance);
    log("compare: CatLIP's vocabulary covers " + std::to_string(synsets.exact + synsets.hyponym + synsets.hypernym) +
        " of " + std::to_string(res.classes) + " classes (" + std::to_string(synsets.exact) + " exact)");
  }
};

// The BPE tokenizer of a CLIP/SigLIP/SuperClass run: loaded at its first
// checkpoint; every later one must record the same checksum.
struct RunTokenizer {
  std::optional<text::BpeTokenizer> tok;
  std::string checksum;
  eval::MappingReport tokens;  // SuperClass: each class's name tokens
  void check(const std::string& path, const std::string& recorded) const {
    if (recorded != checksum)
      throw std::runtime_error(path + " was trained with tokenizer " + recorded + ", not " + checksum +
                               " as the run's first checkpoint");
  }
};

// One checkpoint of one objective: zero-shot and the linear probe. Each image
// goes through the tower once: the held-out images' pooled features feed the
// probe and, through the head (CLIP, SigLIP: the image projection), the
// zero-shot scores, as the model's forward would.
CheckpointScore score_checkpoint(Shared& sh, ModelCurve& curve, RunTokenizer& rt, const std::string& path,
                                 const CkptMeta& meta) {
  const CompareOptions& o = sh.o;
  CheckpointScore s{path, meta.step, meta.seconds, 0, 0, meta.cpu_seconds};
  // The probe on frozen features; returns the held-out features.
  auto probe = [&](LabeledSet& tr, LabeledSet& te, const std::function<torch::Tensor(torch::Tensor)>& f) {
    auto fte = frozen_features(te.images, f);
    s.linear_probe = linear_probe(frozen_features(tr.images, f), tr.labels, fte, te.labels, sh.res.classes, o.probe);
    return fte;
  };
  if (curve.objective == "clip" || curve.objective == "siglip") {
    auto m = model::load_clip(path, o.ema, o.device);
    if (!rt.tok) {
      rt.tok = load_clip_tokenizer(m, o.tokenizer);
      rt.checksum = m.tokenizer_checksum;
      curve.zero_shot_method = "cosine to the prompts \"" + sh.prompts.front() + "\" (" +
                               std::to_string(rt.tok->encode(sh.prompts.front()).size()) + " BPE tokens)";
      curve.mapping_coverage = 1.0;
      curve.summary = "image ViT " + m.vision.to_string() + "; text " + m.text.to_string();
    } else {
      rt.check(path, m.tokenizer_checksum);
    }
    auto& [tr, te] = sh.sets_at(int(m.vision.image_size));
    auto prep = [&](torch::Tensor x) { return model::preprocess_images(x, m.device, m.vision.mean, m.vision.std); };
    auto fte = probe(tr, te, [&](torch::Tensor x) { return m.model->visual->features(prep(x)); });
    auto classifier = clip_text_classifier(m, *rt.tok, sh.prompts);
    torch::NoGradGuard ng;
    auto img = torch::nn::functional::normalize(m.model->visual->head->forward(fte),
                                                torch::nn::functional::NormalizeFuncOptions().dim(1));
    s.zero_shot = top1_accuracy(img.matmul(classifier.t()).cpu(), te.labels);
    return s;
  }
  // CatLIP and SuperClass: a ViT with a head.
  auto m = model::load_model(path, o.ema, o.device);
  if (curve.summary.empty()) curve.summary = "ViT " + m.config.to_string();
  auto& [tr, te] = sh.sets_at(int(m.config.image_size));
  const eval::MappingReport* mapping = nullptr;
  if (curve.objective == "superclass") {
    if (!rt.tok) {
      rt.tok = load_superclass_tokenizer(path, m.tokenizer_checksum, o.tokenizer);
      rt.checksum = m.tokenizer_checksum;
      if (m.config.num_classes != rt.tok->vocab_size())
        throw std::runtime_error(path + " has " + std::to_string(m.config.num_classes) +
                                 " outputs but its tokenizer has " + std::to_string(rt.tok->vocab_size()) + " ids");
      rt.tokens = superclass_token_mapping(sh.classes, *rt.tok, sh.wn ? &*sh.wn : nullptr);
      curve.zero_shot_method = "mean logit of the class name's BPE ids";
      curve.mapping_coverage = rt.tokens.coverage();
    } else {
      rt.check(path, m.tokenizer_checksum);
    }
    mapping = &rt.tokens;
  } else {
    sh.load_synsets();
    if (m.config.num_classes != sh.vocab->size())
      throw std::runtime_error(path + " has " + std::to_string(m.config.num_classes) + " outputs but " + o.vocab +
                               " has " + std::to_string(sh.vocab->size()) + " rows");
    curve.zero_shot_method = "Transfer Init's synset rows (max over each class's mapped rows)";
    curve.mapping_coverage = sh.synsets.coverage();
    mapping = &sh.synsets;
  }
  auto prep = [&](torch::Tensor x) { return model::preprocess_images(x, m.device, m.config.mean, m.config.std); };
  auto fte = probe(tr, te, [&](torch::Tensor x) { return m.model->features(prep(x)); });
  torch::NoGradGuard ng;
  auto logits = m.model->head->forward(fte).cpu();
  s.zero_shot = top1_accuracy(curve.objective == "superclass" ? superclass_class_scores(logits, *mapping)
                                                              : synset_class_scores(logits, *mapping),
                              te.labels);
  return s;
}

}  // namespace

std::string objective_display_name(const std::string& objective) {
  static const std::map<std::string, std::string> names = {
      {"catlip", "CatLIP"}, {"clip", "CLIP"}, {"siglip", "SigLIP"}, {"superclass", "SuperClass"}};
  auto it = names.find(objective);
  return it == names.end() ? objective : it->second;
}

RunCost read_run_cost(const std::string& run_dir) {
  RunCost c;
  for (const fs::path& p : {fs::path(run_dir) / "summary.json", fs::path(run_dir).parent_path() / "summary.json"}) {
    if (!fs::is_regular_file(p)) continue;
    const json::Value v = json::read_file(p.string());
    auto num = [](const json::Value& x) { return x.is_number() ? x.get<double>() : std::nan(""); };
    if (v.contains("elapsed_s")) c.run_wall_s = num(v.at("elapsed_s"));
    if (v.contains("cpu_s") && v.at("cpu_s").is_object() && v.at("cpu_s").contains("total"))
      c.run_cpu_s = num(v.at("cpu_s").at("total"));
    break;
  }
  return c;
}

CompareResult run_compare(const CompareOptions& o, void (*log)(const std::string&)) {
  auto t0 = std::chrono::steady_clock::now();
  if (o.runs.empty()) throw std::runtime_error("no runs to compare");
  int threads = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  CompareResult res;
  Shared sh{o, log, res, eval::load_class_list(o.classes), {}, {}, {}, {}, {}};
  res.classes = int64_t(sh.classes.wnids.size());
  res.chance = 1.0 / double(res.classes);
  sh.prompts = clip_prompts(class_names(sh.classes), o.prompt);

  // Every run's checkpoints and objective first: a wrong path fails before
  // any evaluation.
  std::vector<std::vector<std::string>> ckpts;
  std::set<std::string> names;
  for (auto& run : o.runs) {
    ckpts.push_back(run_checkpoints(run.dir));
    ModelCurve c;
    c.objective = read_meta(ckpts.back().front()).objective;
    if (!kObjectives.count(c.objective))
      throw std::runtime_error(ckpts.back().front() + " has catlip.objective '" + c.objective +
                               "'; catlip compare evaluates catlip, clip, siglip and superclass");
    if (!run.objective.empty() && run.objective != c.objective)
      throw std::runtime_error("run " + run.dir + " was given as " + run.objective + " but its checkpoints are " +
                               c.objective + "'s");
    c.name = run.name.empty() ? objective_display_name(c.objective) : run.name;
    if (!names.insert(c.name).second)
      throw std::runtime_error("two runs are named '" + c.name + "'; name them (--run NAME=DIR)");
    c.run = run.dir;
    c.cost = read_run_cost(run.dir);
    res.models.push_back(std::move(c));
  }
  {
    std::string s = "compare: " + std::to_string(res.classes) + " classes;";
    for (size_t i = 0; i < res.models.size(); ++i)
      s += (i ? ", " : " ") + res.models[i].name + " " + std::to_string(ckpts[i].size()) + " checkpoints";
    log(s);
  }

  for (size_t i = 0; i < res.models.size(); ++i) {
    ModelCurve& curve = res.models[i];
    RunTokenizer rt;
    for (auto& path : ckpts[i]) {
      const CkptMeta meta = read_meta(path);
      if (meta.objective != curve.objective)
        throw std::runtime_error(path + " is a " + meta.objective + " checkpoint in a " + curve.objective + " run");
      curve.points.push_back(score_checkpoint(sh, curve, rt, path, meta));
      auto& p = curve.points.back();
      log("compare: " + curve.name + " step " + std::to_string(p.step) + " (" + fixed_str(p.seconds, 1) +
          " s): zero-shot " + fixed_str(p.zero_shot) + ", linear probe " + fixed_str(p.linear_probe) + " [" +
          fixed_str(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1) +
          " s into the evaluation]");
    }
  }
  compute_targets(res);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fs::create_directories(o.out_dir);
  eval::write_file_bytes(o.out_dir + "/compare.json", compare_json(res));
  eval::write_file_bytes(o.out_dir + "/compare.html", compare_html(res));
  return res;
}

}  // namespace catlip::transfer
