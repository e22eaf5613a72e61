// catlip/eval/report.h - `catlip report RUN_DIR`: one self-contained HTML
// file from the artefacts of a run.
//
// Inputs, each looked for in RUN_DIR, then RUN_DIR/train, RUN_DIR/eval,
// RUN_DIR/transfer (the quickstart layout), any of them optional:
//   train_metrics.jsonl   trainer: step, loss, lr, images_per_s, input_wait_frac
//   metrics.jsonl         runtime: per-stage rates, busy %, wait % each second
//                         (the training run's; the one beside train_metrics
//                         wins)
//   eval.json, eval_per_synset.tsv, eval_samples.json (+ PNGs)   evaluator
//   transfer.json         Transfer Init experiments
//   transfer_coverage.txt how other class lists (the quickstart: ImageNet-1k)
//                         map to the vocabulary; each line explained
// Charts are inline SVG that scale to the window (390 px phones up), each
// with a one-line caption; per-second and per-step noise is drawn as faint
// dots under a moving average; legends sit below the plot. Images are
// embedded as base64 PNG data URIs, so the file can be mailed or opened
// offline.
#pragma once

#include <string>
#include <vector>

namespace catlip::eval {

struct ReportInfo {
  std::string html_path;
  std::vector<std::string> sections;  // titles of sections with data
  std::vector<std::string> missing;   // inputs not found
  int images = 0, charts = 0;
  double map_gt = -1, prior_map_gt = -1, map_captions = -1;  // -1 = unknown
  double zero_shot = -1, chance = -1;
};

// Builds the HTML. Throws std::runtime_error if RUN_DIR does not exist or
// holds none of the inputs.
std::string build_report(const std::string& run_dir, ReportInfo* info = nullptr);
// Builds and writes it (default <run_dir>/report.html); returns the info.
ReportInfo write_report(const std::string& run_dir, const std::string& out_path = "");

}  // namespace catlip::eval
