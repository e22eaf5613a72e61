// catlip/transfer/compare.h - any number of training runs (CatLIP, CLIP,
// SigLIP, SuperClass) along the wall clock: `catlip compare`,
// `catlip quickstart --compare clip|all`.
//
// Every checkpoint of every run is evaluated on the same class-labeled
// held-out set, each with its own objective's zero-shot (compare_eval.cpp):
//   catlip      Transfer Init's synset rows (transfer_ops.h's
//               synset_class_scores: the max over a class's mapped rows)
//   clip/siglip the prompts "a photo of a {name}." through the text tower,
//               cosine ranking (clip_eval.h; SigLIP's t and b do not change
//               the ranking)
//   superclass  the mean logit of the class name's BPE ids
//               (superclass_eval.h's superclass_class_scores)
// and the same linear probe (transfer_ops.h's linear_probe) on frozen pooled
// image features (the ViT's features before its head / projection), each
// against the checkpoint's catlip.train_seconds (training wall time from the
// first sample). Each image passes through the tower once per checkpoint:
// the zero-shot scores come from the held-out features through the head, as
// the model's forward computes them.
//
// The report (compare_report.cpp): one chart per metric with every run on
// the same axes, a time-to-target table (for each target accuracy, the first
// training time each run reaches it, interpolated linearly between
// checkpoints; targets: fractions of the best final accuracy and each run's
// final accuracy), and what each run cost: its training wall time and the
// CPU seconds the trainer and the whole run (every process of its graph on
// this host: summary.json's cpu_s) got. compare.json, compare.html and a
// plain-text table.
//
// Include only from translation units that already pay for <torch/torch.h>.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "catlip/transfer/transfer_ops.h"

namespace catlip::transfer {

// ---- Accuracy against wall clock.

struct AccuracyPoint {
  double seconds = 0;  // training wall time (catlip.train_seconds)
  double accuracy = 0;
};

struct TimeToAccuracy {
  bool reached = false;         // false: never within the curve ("never within the budget")
  bool at_first_point = false;  // already reached at the first point: seconds is an upper bound
  double seconds = 0;           // when reached
};

// The first time the piecewise-linear curve (points in time order) reaches
// `target`: the first point at or above it, interpolated linearly from the
// point before it. Points without a finite time or accuracy are skipped.
TimeToAccuracy time_to_accuracy(const std::vector<AccuracyPoint>& curve, double target);

// "123.4 s", "<= 12.0 s" (at the first point) or "never within the budget".
std::string describe(const TimeToAccuracy& t);

// ---- Runs and their scores.

struct CompareRun {
  std::string name;       // display name ("" = the objective's: CatLIP, CLIP, SigLIP, SuperClass)
  std::string dir;        // training run dir (its checkpoints/) or a checkpoint dir
  std::string objective;  // "" = read from the checkpoints (catlip.objective); else must match them
};

struct CompareOptions {
  std::vector<CompareRun> runs;  // in report order
  std::string vocab;             // the CatLIP models' vocabulary TSV (needed for catlip runs only)
  std::string classes;           // class list (line i = class i)
  std::string tokenizer;         // BPE tokenizer for CLIP/SigLIP/SuperClass ("" = each run's export/)
  std::string prompt = "a photo of a {}.";
  std::string wordnet_dir = "/usr/share/wordnet";
  int max_distance = 4;
  std::vector<std::string> train_urls, test_urls;     // probe training set, held-out set
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

// What a run's training cost (NaN where not recorded).
struct RunCost {
  double run_wall_s = std::nan("");  // the graph's wall time, start-up included (summary.json elapsed_s)
  double run_cpu_s = std::nan("");   // every process of the graph on this host (summary.json cpu_s.total)
};

struct ModelCurve {
  std::string name, objective, run, summary;  // display name, catlip|clip|siglip|superclass, dir, model
  std::string zero_shot_method;               // how its zero-shot was computed (one line)
  double mapping_coverage = std::nan("");     // classes its zero-shot can score (fraction)
  std::vector<CheckpointScore> points;        // in step order
  RunCost cost;
  std::vector<AccuracyPoint> zero_shot() const;
  std::vector<AccuracyPoint> linear_probe() const;
  const CheckpointScore& last() const { return points.back(); }
};

// One row of the time-to-target table: a target accuracy of one metric and,
// per model (same order as CompareResult::models), when it got there.
struct TargetRow {
  std::string metric;  // "zero_shot" or "linear_probe"
  std::string label;   // "90% of the best final", "CLIP's final", ...
  double target = 0;
  std::vector<TimeToAccuracy> times;
};

struct CompareResult {
  std::vector<ModelCurve> models;
  int64_t classes = 0, train_n = 0, test_n = 0;
  double chance = 0, majority = 0;
  std::vector<TargetRow> targets;  // compute_targets
  double seconds = 0;              // the evaluation's own time
};

// Fractions of the best final accuracy (per metric) that are targets, before
// each model's own final accuracy.
inline const std::vector<double> kTargetFractions = {0.5, 0.9};

// Fills r.targets from the curves: per metric (zero-shot, then linear
// probe), kTargetFractions of the best final accuracy, then each model's
// final accuracy; for each, every model's time to reach it.
void compute_targets(CompareResult& r);

// Evaluates every checkpoint of every run; writes <out_dir>/compare.json and
// <out_dir>/compare.html. Throws std::runtime_error on missing or
// inconsistent inputs, naming the run and file.
CompareResult run_compare(const CompareOptions& opt, void (*log)(const std::string&));

// The run's cost from its summary.json (dir or, for a checkpoint dir, its
// parent); NaN fields where there is none.
RunCost read_run_cost(const std::string& run_dir);

// "CatLIP", "CLIP", "SigLIP", "SuperClass" (else the objective as given).
std::string objective_display_name(const std::string& objective);

std::string compare_json(const CompareResult& r);
std::string compare_html(const CompareResult& r);
// The plain-text report `catlip compare` prints: checkpoints, time to
// target, cost.
std::string compare_table(const CompareResult& r);

}  // namespace catlip::transfer
