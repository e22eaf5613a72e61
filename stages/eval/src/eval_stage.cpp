// The implementation of catlip/eval/eval_stage.h: eval.catlip, which scores batches with a
// trained model and at the end writes eval.json, the per-synset TSV and sample images.
#include "catlip/eval/eval_stage.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "catlip/eval/checkpoint_path.h"
#include "catlip/eval/eval_vocab.h"
#include "catlip/eval/ground_truth.h"
#include "catlip/eval/metrics.h"
#include "catlip/eval/png_io.h"
#include "catlip/json.h"
#include "catlip/model/model_io.h"

namespace fs = std::filesystem;

namespace catlip::eval {

namespace {
std::string in_run_dir(const StageContext& ctx, const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  return (fs::path(ctx.run_dir()) / p).string();
}

struct Kept {  // one sample shown in the report grid
  std::string key, caption, png;
  std::vector<int64_t> caption_rows, gt_rows, top;
  std::vector<float> top_p;
  std::vector<std::string> gt_names;
};
}  // namespace

struct EvalStage::Impl {
  StageContext* ctx = nullptr;
  std::string checkpoint, device, weights_path, vocab_path;
  bool ema = true;
  int threads = 0;  // 0 = one per core
  EvalVocab vocab;
  model::LoadedModel model;
  int64_t batch = 64, max_samples = 0, keep_n = 16;
  double threshold = 0.5;
  std::vector<int> ks;
  std::vector<double> mean, std;
  std::string gt_field, output, per_synset, samples_json, samples_dir;

  // The open batch.
  torch::Tensor images;  // [batch,H,W,3] uint8
  int64_t fill = 0;
  std::vector<Kept*> batch_kept;  // per slot: the Kept record to fill, or nullptr

  // Everything seen.
  std::vector<float> scores;  // n x V
  int64_t n = 0;
  std::vector<std::vector<int64_t>> caption_targets, gt_targets;
  std::vector<uint8_t> has_gt;
  std::vector<std::unique_ptr<Kept>> kept;
  bool finished = false;

  void run_batch() {
    if (fill == 0) return;
    torch::NoGradGuard ng;
    auto x = model::preprocess_images(images.narrow(0, 0, fill), model.device, mean, std);
    auto p = torch::sigmoid(model.model->forward(x)).to(torch::kCPU).to(torch::kFloat32).contiguous();
    const int64_t V = vocab.size();
    const float* d = p.data_ptr<float>();
    size_t old = scores.size();
    scores.resize(old + size_t(fill * V));
    std::memcpy(scores.data() + old, d, sizeof(float) * size_t(fill * V));
    for (int64_t i = 0; i < fill; ++i) {
      if (Kept* k = batch_kept[size_t(i)]) {
        k->top = top_k(d + i * V, V, 5);
        for (auto j : k->top) k->top_p.push_back(d[i * V + j]);
      }
    }
    ctx->count("eval.batches");
    fill = 0;
    batch_kept.assign(size_t(batch), nullptr);
  }
};

EvalStage::EvalStage() : impl_(std::make_unique<Impl>()) {}
EvalStage::~EvalStage() = default;

StageSchema EvalStage::schema() {
  using I = Impl;
  StageSchema s;
  s.type = "eval.catlip";
  s.kind = StageKind::Sink;
  s.doc =
      "Evaluates a CatLIP checkpoint on held-out samples: mAP over synsets with at least one "
      "positive, micro/macro F1 at a threshold and precision@k, against ground-truth objects (from "
      "`json`, where present) and against caption labels (`labels`), with the label-frequency prior "
      "as a baseline; per-synset AP. Writes eval.json, eval_per_synset.tsv and eval_samples.json "
      "(+ PNGs) into the run directory and logs a summary.";
  s.reads = {"image", "labels", "json", "txt"};
  s.params = {
      Param("checkpoint", &EvalStage::impl_, &I::checkpoint).require().existing_path().describe(
          "Weights: a ckpt-*.catlip checkpoint, a .safetensors export, or a directory (training run "
          "dir, export dir or checkpoint dir; the export is preferred, then the newest checkpoint)"),
      Param("ema", &EvalStage::impl_, &I::ema).def(true).describe("Use the EMA weights when the checkpoint/export has them"),
      Param("vocab", &EvalStage::impl_, &I::vocab_path).require().existing_file().describe(
          "Vocabulary TSV the model was trained with (index, wnid, lemma, count, gloss); the count "
          "column gives the label-frequency prior"),
      Param("batch_size", &EvalStage::impl_, &I::batch).def(64).range(1, 65536).describe("Images per forward pass"),
      Param("threshold", &EvalStage::impl_, &I::threshold).def(0.5).range(0, 1).describe("Sigmoid score at or above which a synset is predicted (F1)"),
      Param("top_k", &EvalStage::impl_, &I::ks).def({1, 5}).range(1, 1000).describe("k values for precision@k"),
      Param("device", &EvalStage::impl_, &I::device).def("cpu").describe("cpu, cuda, cuda:N or auto"),
      Param("threads", &EvalStage::impl_, &I::threads).def(0).range(0, 1024).describe("Intra-op CPU threads; 0 = one per core"),
      Param("mean", &EvalStage::impl_, &I::mean).def({}).describe("Per-channel mean; empty = what the checkpoint records from training"),
      Param("std", &EvalStage::impl_, &I::std).def({}).describe("Per-channel std; empty = what the checkpoint records from training"),
      Param("gt_field", &EvalStage::impl_, &I::gt_field).def("json").describe(
          "Text field with ground-truth objects ({\"wnids\": [...]} or {\"objects\": [lemmas]}); "
          "samples without it are scored only against captions"),
      Param("max_samples", &EvalStage::impl_, &I::max_samples).def(0).at_least(0).describe(
          "Evaluate at most this many samples (later ones are counted as eval.ignored); 0 = all"),
      Param("samples", &EvalStage::impl_, &I::keep_n).def(16).range(0, 1024).describe(
          "Number of held-out images kept for the report grid (PNG + caption synsets + top predictions)"),
      Param("output", &EvalStage::impl_, &I::output).def("eval.json").describe("Summary JSON; relative paths are in the run dir"),
      Param("per_synset", &EvalStage::impl_, &I::per_synset).def("eval_per_synset.tsv").describe("Per-synset AP TSV"),
      Param("samples_json", &EvalStage::impl_, &I::samples_json).def("eval_samples.json").describe("Report grid description"),
      Param("samples_dir", &EvalStage::impl_, &I::samples_dir).def("eval_samples").describe("Directory for the grid PNGs"),
  };
  return s;
}

void EvalStage::configure() {
  auto& m = *impl_;
  m.ctx = &ctx();
  if (ctx().replicas() > 1)
    throw std::invalid_argument("eval.catlip must run as a single replica (it computes metrics over all samples)");
  // Derived from the bound values: threads (0 = one per core), the model the
  // checkpoint resolves to, the outputs' paths in the run dir.
  at::set_num_threads(m.threads ? m.threads : int(std::max(1u, std::thread::hardware_concurrency())));
  m.vocab = load_eval_vocab(m.vocab_path);
  m.weights_path = resolve_checkpoint(m.checkpoint, m.ema);
  m.model = model::load_model(m.weights_path, m.ema, m.device);
  if (m.model.config.num_classes != m.vocab.size())
    throw std::invalid_argument(m.weights_path + " has " + std::to_string(m.model.config.num_classes) +
                                " outputs but vocabulary " + m.vocab_path + " has " +
                                std::to_string(m.vocab.size()) + " rows");
  if (m.mean.size() != m.std.size() || (!m.mean.empty() && m.mean.size() != 3))
    throw std::invalid_argument("mean and std must both have 3 values (or both be empty)");
  if (m.mean.empty()) m.mean = m.model.config.mean, m.std = m.model.config.std;  // what training used
  m.output = in_run_dir(ctx(), m.output);
  m.per_synset = in_run_dir(ctx(), m.per_synset);
  m.samples_json = in_run_dir(ctx(), m.samples_json);
  const int64_t S = m.model.config.image_size;
  m.images = torch::empty({m.batch, S, S, 3}, torch::kUInt8);
  m.batch_kept.assign(size_t(m.batch), nullptr);
  ctx().log(LogLevel::Info, "evaluating " + m.weights_path + (m.model.ema ? " (EMA weights)" : "") + " step " +
                              std::to_string(m.model.step) + ", model " + m.model.config.to_string() +
                              ", vocabulary " + std::to_string(m.vocab.size()) + " synsets");
}

void EvalStage::process(Sample&& in, Emitter&) {
  auto& m = *impl_;
  if (m.max_samples > 0 && m.n >= m.max_samples) {
    m.ctx->count("eval.ignored");
    return;
  }
  const Tensor* img = in.tensor("image");
  if (!img || img->dtype != DType::U8 || img->shape.size() != 3 || img->shape[2] != 3 || !img->valid() ||
      img->shape[0] <= 0 || img->shape[1] <= 0) {
    m.ctx->count(img ? "skipped.bad_image" : "skipped.no_image");
    return;
  }
  const int64_t S = m.model.config.image_size;
  auto src = torch::from_blob(const_cast<char*>(img->data.data()), {img->shape[0], img->shape[1], 3}, torch::kUInt8);
  auto slot = m.images[m.fill];
  if (img->shape[0] == S && img->shape[1] == S) {
    slot.copy_(src);
  } else {
    auto f = src.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32);
    f = torch::nn::functional::interpolate(f, torch::nn::functional::InterpolateFuncOptions()
                                                  .size(std::vector<int64_t>{S, S})
                                                  .mode(torch::kBilinear)
                                                  .align_corners(false));
    slot.copy_(f.squeeze(0).permute({1, 2, 0}).round().clamp(0, 255).to(torch::kUInt8));
    m.ctx->count("eval.resized");
  }
  std::vector<int64_t> cap;
  if (const IntList* l = in.ints("labels")) {
    for (auto x : *l)
      if (x >= 0 && x < m.vocab.size()) cap.push_back(x);
  } else {
    m.ctx->count("eval.no_caption_labels");
  }
  GroundTruth gt;
  if (const std::string* j = in.text(m.gt_field)) {
    gt = parse_ground_truth(*j, m.vocab);
    if (!gt.error.empty()) {
      m.ctx->count("eval.bad_ground_truth_json");
      m.ctx->log(LogLevel::Warn, "sample " + in.key + " (" + in.origin.url + " #" +
                                     std::to_string(in.origin.index) + "): " + m.gt_field + ": " + gt.error);
    }
    if (gt.outside) m.ctx->count("eval.gt_objects_outside_vocab", gt.outside);
  }
  if (m.keep_n > int64_t(m.kept.size())) {
    auto k = std::make_unique<Kept>();
    k->key = in.key;
    if (const std::string* t = in.text("txt")) k->caption = *t;
    k->caption_rows = cap;
    k->gt_rows = gt.rows;
    k->gt_names = gt.names;
    char name[64];
    std::snprintf(name, sizeof name, "%03zu.png", m.kept.size());
    k->png = m.samples_dir + "/" + name;
    auto u8 = slot.contiguous();
    write_file_bytes(in_run_dir(*m.ctx, k->png), encode_png_rgb(u8.data_ptr<uint8_t>(), int(S), int(S)));
    m.batch_kept[size_t(m.fill)] = k.get();
    m.kept.push_back(std::move(k));
  }
  m.caption_targets.push_back(std::move(cap));
  m.has_gt.push_back(gt.present && gt.error.empty() ? 1 : 0);
  m.gt_targets.push_back(std::move(gt.rows));
  ++m.n;
  ++m.fill;
  m.ctx->count("eval.samples");
  if (m.fill == m.batch) m.run_batch();
}

namespace {

// Metrics keep 6 significant digits in the JSON (and the TSV); NaN is null.
double num6(double v) { return json::round_sig(v, 6); }
std::string tsv_num(double v) {
  if (!std::isfinite(v)) return "null";
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

json::Ordered precision_at(const MultiLabelMetrics& m) {
  json::Ordered o = json::Ordered::object();
  for (size_t i = 0; i < m.ks.size(); ++i) o[std::to_string(m.ks[i])] = num6(m.precision_at_k[i]);
  return o;
}

json::Ordered metrics_json(const MultiLabelMetrics& m, const MultiLabelMetrics* prior) {
  json::Ordered o = {{"samples", m.samples},
                     {"classes_scored", m.classes_scored},
                     {"mAP", num6(m.map)},
                     {"f1_micro", num6(m.f1_micro)},
                     {"f1_macro", num6(m.f1_macro)},
                     {"precision_micro", num6(m.precision_micro)},
                     {"recall_micro", num6(m.recall_micro)},
                     {"precision_at", precision_at(m)}};
  if (prior) {
    o["prior_mAP"] = num6(prior->map);
    o["prior_precision_at"] = precision_at(*prior);
  }
  return o;
}

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4f", v);
  return b;
}

}  // namespace

void EvalStage::flush(Emitter&) {
  auto& m = *impl_;
  if (m.finished) return;
  m.finished = true;
  m.run_batch();
  const int64_t V = m.vocab.size();
  if (m.n == 0) {
    m.ctx->log(LogLevel::Warn, "no samples to evaluate; writing an empty " + m.output);
  }
  // The label-frequency prior: every image gets the training frequency of
  // each synset as its score (the best a model that ignores pixels can do).
  double total = 0;
  for (auto c : m.vocab.counts) total += double(c);
  std::vector<float> prior_row(static_cast<size_t>(V));
  for (int64_t j = 0; j < V; ++j) prior_row[size_t(j)] = total > 0 ? float(double(m.vocab.counts[size_t(j)]) / total) : 0.f;

  auto evaluate = [&](const std::vector<std::vector<int64_t>>& targets, const std::vector<uint8_t>* mask,
                      MultiLabelMetrics& model_m, MultiLabelMetrics& prior_m) {
    std::vector<float> sc, pr;
    std::vector<std::vector<int64_t>> tg;
    for (int64_t i = 0; i < m.n; ++i) {
      if (mask && !(*mask)[size_t(i)]) continue;
      sc.insert(sc.end(), m.scores.begin() + i * V, m.scores.begin() + (i + 1) * V);
      pr.insert(pr.end(), prior_row.begin(), prior_row.end());
      tg.push_back(targets[size_t(i)]);
    }
    const int64_t k = int64_t(tg.size());
    model_m = compute_metrics(sc, k, V, tg, m.threshold, m.ks);
    prior_m = compute_metrics(pr, k, V, tg, m.threshold, m.ks);
    return k;
  };
  MultiLabelMetrics gt, gt_prior, cap, cap_prior;
  int64_t n_gt = 0;
  for (auto h : m.has_gt) n_gt += h;
  if (n_gt > 0) evaluate(m.gt_targets, &m.has_gt, gt, gt_prior);
  evaluate(m.caption_targets, nullptr, cap, cap_prior);

  json::Ordered j = {{"checkpoint", m.weights_path}, {"step", m.model.step},  {"ema", m.model.ema},
                     {"model", m.model.config.to_string()}, {"vocab", m.vocab_path}, {"vocab_size", V},
                     {"samples", m.n},                      {"threshold", num6(m.threshold)}};
  if (n_gt > 0) j["ground_truth"] = metrics_json(gt, &gt_prior);
  j["captions"] = metrics_json(cap, &cap_prior);
  j["per_synset"] = fs::path(m.per_synset).filename().string();
  j["samples_file"] = fs::path(m.samples_json).filename().string();
  write_file_bytes(m.output, json::dump(j, 1) + "\n");

  std::ostringstream t;
  t << "index\twnid\tlemma\ttrain_count\tgt_positives\tgt_ap\tcaption_positives\tcaption_ap\n";
  for (int64_t c = 0; c < V; ++c) {
    t << c << "\t" << m.vocab.wnids[size_t(c)] << "\t" << m.vocab.lemmas[size_t(c)] << "\t"
      << m.vocab.counts[size_t(c)] << "\t";
    if (n_gt > 0) t << gt.per_class[size_t(c)].positives << "\t" << tsv_num(gt.per_class[size_t(c)].ap);
    else t << "0\tnull";
    t << "\t" << cap.per_class[size_t(c)].positives << "\t" << tsv_num(cap.per_class[size_t(c)].ap) << "\n";
  }
  write_file_bytes(m.per_synset, t.str());

  auto lemmas = [&](const std::vector<int64_t>& rows) {
    json::Ordered o = json::Ordered::array();
    for (auto r : rows) o.push_back(m.vocab.lemmas[size_t(r)]);
    return o;
  };
  json::Ordered samples = json::Ordered::array();
  for (auto& kept : m.kept) {
    auto& k = *kept;
    json::Ordered top = json::Ordered::array();
    for (size_t q = 0; q < k.top.size(); ++q)
      top.push_back({{"lemma", m.vocab.lemmas[size_t(k.top[q])]},
                     {"wnid", m.vocab.wnids[size_t(k.top[q])]},
                     {"p", num6(k.top_p[q])}});
    samples.push_back({{"key", k.key},
                       {"png", k.png},
                       {"caption", k.caption},
                       {"caption_synsets", lemmas(k.caption_rows)},
                       {"ground_truth", lemmas(k.gt_rows)},
                       {"top", std::move(top)}});
  }
  write_file_bytes(m.samples_json, json::dump(samples, 1) + "\n");

  std::string summary = "evaluated " + std::to_string(m.n) + " samples: ";
  if (n_gt > 0)
    summary += "mAP vs ground truth " + fmt(gt.map) + " (prior " + fmt(gt_prior.map) + ", " +
               std::to_string(gt.classes_scored) + " synsets), F1 micro " + fmt(gt.f1_micro) + " macro " +
               fmt(gt.f1_macro) + "; ";
  summary += "mAP vs captions " + fmt(cap.map) + " (prior " + fmt(cap_prior.map) + ", " +
             std::to_string(cap.classes_scored) + " synsets); wrote " + m.output;
  m.ctx->log(LogLevel::Info, summary);
  if (n_gt > 0) {
    m.ctx->gauge("eval.map_gt", gt.map);
    m.ctx->gauge("eval.prior_map_gt", gt_prior.map);
  }
  m.ctx->gauge("eval.map_captions", cap.map);
}

void EvalStage::close() {}

}  // namespace catlip::eval
