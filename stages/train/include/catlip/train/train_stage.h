// catlip/train/train_stage.h - train.catlip, train.clip and train.siglip:
// the trainer as a dataflow sink.
//
// train.catlip consumes samples with `image` (Tensor uint8 [H,W,3]) and
// `labels` (IntList of vocabulary indices); train.clip `image` and `tokens`
// (IntList of BPE ids from text.bpe_encode), as does train.siglip. One at a time or as Batch
// messages; both drive a Trainer (with its CatLIP or CLIP objective) and
// share the image-tower and training-loop parameters. The time between the end of one process() call and the start of
// the next is time spent waiting for input; the trainer reports it as the
// input-wait fraction.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "catlip/stage.h"
#include "catlip/train/sample_order.h"
#include "catlip/train/trainer.h"

namespace catlip::train {

class Trainer;

class TrainStage : public Stage {
 public:
  TrainStage();
  ~TrainStage() override;
  static StageSchema schema();

  void configure() override;
  void process(Sample&& in, Emitter& out) override;
  void process(Batch&& in, Emitter& out) override;
  void flush(Emitter& out) override;
  void close() override;
  // Several data-parallel ranks on one node cannot share one "cuda:N".
  std::string check_placement(int replicas, int per_node) const override;

  // The trainer options the bound parameters give, before the context adds
  // ranks and run_dir: "0 = derived" values resolved (dim/depth/heads from
  // model, threads = 0 from `cores`), mean/std checked. Exposed for tests
  // and tools.
  TrainOptions options(int cores) const;
  Trainer* trainer() { return trainer_.get(); }

 protected:
  TrainStage(std::string objective, std::string ints_field);
  // Parameters shared by train.catlip and train.clip.
  static std::vector<ParamSpec> image_params();  // the ViT
  static std::vector<ParamSpec> text_params();   // CLIP's text tower (train.clip, train.siglip)
  static std::vector<ParamSpec> loop_params();   // batching, optimizer, schedule, devices, checkpoints
  TrainOptions opt_;                // bound parameters
  std::string model_size_ = "tiny";  // the named ViT size; dim/depth/heads = 0 take its values

 private:
  std::string objective_ = "catlip";
  std::string ints_field_ = "labels";
  void begin_item();
  void take(Sample& s);
  void take_numbered(Sample&& s);  // order = "deterministic": through the reorder buffer
  void end_item();

  std::unique_ptr<Trainer> trainer_;
  std::unique_ptr<SampleOrder> order_;  // order = "deterministic"
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

// train.siglip: CLIP's towers with SigLIP's sigmoid loss (train_stage_siglip.cpp).
class SiglipTrainStage : public TrainStage {
 public:
  SiglipTrainStage();
  static StageSchema schema();
};

// train.superclass: the same stage with the SuperClass objective (reads
// `image` and `tokens`; train_stage_superclass.cpp).
class SuperclassTrainStage : public TrainStage {
 public:
  SuperclassTrainStage();
  static StageSchema schema();
};

}  // namespace catlip::train
