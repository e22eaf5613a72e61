// catlip/train/train_stage.h - train.catlip and train.clip: the trainer as a
// dataflow sink.
//
// train.catlip consumes samples with `image` (Tensor uint8 [H,W,3]) and
// `labels` (IntList of vocabulary indices); train.clip `image` and `tokens`
// (IntList of BPE ids from text.bpe_encode). One at a time or as Batch
// messages; both drive a Trainer (with its CatLIP or CLIP objective) and
// share the image-tower and training-loop parameters. The time between the end of one process() call and the start of
// the next is time spent waiting for input; the trainer reports it as the
// input-wait fraction.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "catlip/stage.h"

namespace catlip::train {

class Trainer;
struct TrainOptions;

class TrainStage : public Stage {
 public:
  TrainStage();
  ~TrainStage() override;
  static StageSchema schema();
  // Maps validated parameters to trainer options (exposed for tests/tools);
  // objective "catlip" or "clip" (the schema the parameters were checked against).
  static TrainOptions options_from(const Params& p, const std::string& run_dir,
                                   const std::string& objective = "catlip");

  void configure(const Params& params, StageContext& ctx) override;
  void process(Sample&& in, Emitter& out) override;
  void process(Batch&& in, Emitter& out) override;
  void flush(Emitter& out) override;
  void close() override;

  Trainer* trainer() { return trainer_.get(); }

 protected:
  TrainStage(std::string objective, std::string ints_field);

 private:
  std::string objective_ = "catlip";
  std::string ints_field_ = "labels";
  void begin_item();
  void take(Sample& s);
  void end_item();

  StageContext* ctx_ = nullptr;
  std::unique_ptr<Trainer> trainer_;
  bool have_last_ = false;
  bool finished_ = false;
  int64_t steps_ = 0;  // the configured step budget
  int64_t items_ = 0;  // samples received
  bool steps_reached() const;
  std::chrono::steady_clock::time_point last_return_;
};

// train.clip: the same stage with the CLIP objective.
class ClipTrainStage : public TrainStage {
 public:
  ClipTrainStage();
  static StageSchema schema();
};

}  // namespace catlip::train
