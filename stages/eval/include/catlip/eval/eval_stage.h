// catlip/eval/eval_stage.h - eval.catlip: the evaluator as a dataflow sink.
//
// Consumes eval-transform images (`image`, uint8 [H,W,3]) with caption
// labels (`labels`, vocabulary indices from text.labels) and, where the data
// has them, ground-truth objects (`json`, see ground_truth.h). Runs a trained
// checkpoint or export in batches, keeps every sample's sigmoid scores, and
// at the end writes into the run directory:
//   eval.json            mAP, F1 micro/macro, precision@k against ground truth
//                        and against caption labels, plus the label-frequency
//                        prior's figures for comparison
//   eval_per_synset.tsv  per-synset positives and AP (both targets)
//   eval_samples.json    the first `samples` images (PNG under
//                        eval_samples/) with caption synsets, ground truth
//                        and top predictions, for the report
// Scores are kept in memory (samples x vocabulary floats): size max_samples
// accordingly for large vocabularies.
#pragma once

#include <memory>

#include "catlip/stage.h"

namespace catlip::eval {

class EvalStage : public Stage {
 public:
  EvalStage();
  ~EvalStage() override;
  static StageSchema schema();
  void configure() override;
  void process(Sample&& in, Emitter& out) override;
  void flush(Emitter& out) override;
  void close() override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace catlip::eval
