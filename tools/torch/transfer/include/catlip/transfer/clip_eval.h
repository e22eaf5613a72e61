// catlip/transfer/clip_eval.h - CLIP zero-shot, and CatLIP vs CLIP along the
// wall clock (`catlip compare`, `catlip quickstart --compare clip`).
//
// CLIP zero-shot (as CLIP's paper): one prompt per class ("a photo of a
// {name}."), encoded with the model's own BPE tokenizer (the tokenizer.txt
// beside its export, or one given, checked against the checksum the weights
// record), text features L2-normalised; image features L2-normalised; the
// class is the argmax of the cosine similarities.
//
// The comparison evaluates every checkpoint of a train.catlip run and of a
// train.clip run on the same class-labeled held-out set:
//   zero-shot     CatLIP: Transfer Init's synset rows (transfer_ops.h),
//                 CLIP: the prompts above;
//   linear probe  the same code (transfer_ops.h's linear_probe) on frozen
//                 image features: the ViT's pooled features before the head
//                 (CatLIP: ViT::features; CLIP: visual->features, i.e. before
//                 the image projection);
// each against the checkpoint's catlip.train_seconds (training wall time
// from the first sample). From the two curves: the time each model needs to
// reach the other's final accuracy, by linear interpolation between
// checkpoints. Writes compare.json and compare.html (inline-SVG curves).
//
// Include only from translation units that already pay for <torch/torch.h>.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "catlip/model/clip_model.h"
#include "catlip/text/bpe.h"
#include "catlip/transfer/transfer_ops.h"

namespace catlip::transfer {

// ---- CLIP zero-shot.

// "{}" in `templ` replaced by each name (the names as given).
std::vector<std::string> clip_prompts(const std::vector<std::string>& names,
                                      const std::string& templ = "a photo of a {}.");

// The tokenizer of a loaded CLIP model: `path` if given, else the one
// load_clip found beside the weights. Throws if none is found or its
// checksum differs from the one the weights record.
text::BpeTokenizer load_clip_tokenizer(const model::LoadedClip& m, const std::string& path = "");

// Normalised text features of the prompts, [C, embed_dim] on the model's
// device (the zero-shot classifier).
torch::Tensor clip_text_classifier(model::LoadedClip& m, const text::BpeTokenizer& tok,
                                   const std::vector<std::string>& prompts);

// Cosine similarities [N, C] of the images (uint8 [N,S,S,3]) to the
// classifier rows, on the CPU.
torch::Tensor clip_zero_shot_scores(model::LoadedClip& m, const torch::Tensor& images, const torch::Tensor& classifier);

// Top-1 accuracy of CLIP zero-shot on `test`, class c's prompt made from
// classes.names[c] (the wnid when a class has no name).
double clip_zero_shot(model::LoadedClip& m, const text::BpeTokenizer& tok, const eval::ClassList& classes,
                      const LabeledSet& test, const std::string& templ = "a photo of a {}.");

// ---- Accuracy against wall clock.

struct AccuracyPoint {
  double seconds = 0;  // training wall time (catlip.train_seconds)
  double accuracy = 0;
};

struct TimeToAccuracy {
  bool reached = false;        // false: never within the curve ("never within the budget")
  bool at_first_point = false;  // already reached at the first point: seconds is an upper bound
  double seconds = 0;          // when reached
};

// The first time the piecewise-linear curve (points in time order) reaches
// `target`: the first point at or above it, interpolated linearly from the
// point before it.
TimeToAccuracy time_to_accuracy(const std::vector<AccuracyPoint>& curve, double target);

// "123.4 s", "<= 12.0 s" (at the first point) or "never within the budget".
std::string describe(const TimeToAccuracy& t);

// ---- The comparison.

struct CompareOptions {
  std::string catlip_run, clip_run;  // training run dirs (their checkpoints/) or checkpoint dirs
  std::string vocab;                 // the CatLIP model's vocabulary TSV
  std::string classes;               // class list (line i = class i)
  std::string tokenizer;             // CLIP's tokenizer ("" = beside its export)
  std::string prompt = "a photo of a {}.";
  std::string wordnet_dir = "/usr/share/wordnet";
  int max_distance = 4;
  std::vector<std::string> train_urls, test_urls;  // probe training set, held-out set
  int64_t train_samples = 1000, test_samples = 1000;  // 0 = all
  ProbeOptions probe;
  bool ema = true;
  int threads = 0;
  std::string device = "cpu";
  std::string out_dir = ".";  // compare.json, compare.html
};

struct CheckpointScore {
  std::string path;
  int64_t step = 0;
  double seconds = 0;  // catlip.train_seconds (NaN if the checkpoint does not record it)
  double zero_shot = 0, linear_probe = 0;
  double cpu_seconds = std::nan("");  // catlip.train_cpu_seconds: the trainer's CPU time over the same span
};

struct ModelCurve {
  std::string name, run, summary;  // "CatLIP"/"CLIP", run dir, model description
  std::vector<CheckpointScore> points;  // in step order
  std::vector<AccuracyPoint> zero_shot() const;
  std::vector<AccuracyPoint> linear_probe() const;
  const CheckpointScore& last() const { return points.back(); }
};

struct CompareResult {
  ModelCurve catlip, clip;
  int64_t classes = 0, train_n = 0, test_n = 0;
  double chance = 0, majority = 0, mapping_coverage = 0;
  // a_to_b: the time model a needs to reach model b's final accuracy.
  TimeToAccuracy zs_catlip_to_clip, zs_clip_to_catlip, lp_catlip_to_clip, lp_clip_to_catlip;
  double seconds = 0;  // the evaluation's own time
};

// Evaluates every checkpoint of both runs; writes <out_dir>/compare.json and
// <out_dir>/compare.html. Throws std::runtime_error on missing inputs.
CompareResult run_compare(const CompareOptions& opt, void (*log)(const std::string&));

// Fills the four times from the curves (run_compare does).
void compute_times(CompareResult& r);

std::string compare_json(const CompareResult& r);
std::string compare_html(const CompareResult& r);
// The plain-text table `catlip compare` prints.
std::string compare_table(const CompareResult& r);

}  // namespace catlip::transfer
