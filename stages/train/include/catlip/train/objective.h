// catlip/train/objective.h - what a Trainer optimises (LibTorch).
//
// The Trainer (trainer.h) owns everything common to image pre-training:
// collating images, the data position and duplicate checks, AdamW and its
// schedule, EMA, data parallelism, checkpoints, metrics and the id log. An
// Objective owns the model and its loss, the per-sample integer payload, and
// what checkpoints and exports say about the model:
//
//   CatLIP (objective_catlip.cpp)  ViT with a synset head; ints = synset
//                                  indices; binary cross-entropy on the
//                                  multi-hot target (loss.h).
//   CLIP   (objective_clip.cpp)    the same ViT (its head is the image
//                                  projection) + CLIP's text transformer
//                                  (clip_model.h); ints = caption tokens;
//                                  symmetric InfoNCE, features gathered
//                                  across ranks with gradient.
//   SigLIP (objective_siglip.cpp)  CLIP's objective (objective_clip.h) with
//                                  the pairwise sigmoid loss, a logit bias,
//                                  texts exchanged round the ring of ranks.
//   SuperClass (objective_superclass.cpp, superclass.h)  the CatLIP ViT with
//                                  one output per BPE id; ints = caption
//                                  tokens; softmax CE on the IDF-weighted
//                                  multi-hot target (or BCE).
//
// Ownership: the Trainer owns its Objective; the Objective owns the model.
// Include only from translation units that already pay for <torch/torch.h>.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "catlip/model/state_io.h"
#include "catlip/model/vit_config.h"
#include "catlip/stage.h"
#include "catlip/train/trainer.h"

namespace catlip::train {

class DataParallel;

// What loss() may use, owned by the Trainer.
struct ObjectiveEnv {
  torch::Device device = torch::kCPU;
  bool bf16_cuda = false, bf16_cpu = false;  // autocast for the forward pass
  DataParallel* dp = nullptr;                // null on one rank
  int rank = 0;
};

class Objective {
 public:
  virtual ~Objective() = default;

  // Required: "catlip", "clip", "siglip" or "superclass" (recorded as catlip.objective).
  virtual const char* name() const = 0;
  // Required: the model (built on the CPU by the constructor; the Trainer
  // moves it to the device and owns the optimizer over its parameters).
  virtual torch::nn::Module& module() = 0;
  // Required: the image tower's config (input size, normalisation).
  virtual const model::ViTConfig& image_config() const = 0;
  // Required: checks one sample's integers (labels or tokens), fixing them
  // in place where that is safe. Returns false to drop the sample; counts
  // what it drops or fixes on ctx.
  virtual bool take_ints(std::vector<int64_t>& ints, StageContext& ctx) = 0;
  // Required: forward pass (under the autocast env asks for) and loss on one
  // batch: x is [B,3,H,W] normalised on env.device, ints has B rows. The
  // loss is a scalar in fp32 whose gradient the Trainer averages over ranks.
  virtual torch::Tensor loss(const torch::Tensor& x, const std::vector<std::vector<int64_t>>& ints,
                             const ObjectiveEnv& env) = 0;
  // Optional (default: nothing): after each optimizer step.
  virtual void after_step() {}
  // Optional (default: none): state outside the module that checkpoints hold
  // (as "objective.<name>"), resume restores in place and rank 0 broadcasts
  // at the start of data-parallel training (SuperClass: its IDF counts).
  virtual model::NamedTensors extra_state() { return {}; }
  // Optional (default: nothing): gauges after each optimizer step.
  virtual void report(StageContext&) {}
  // Required: checksum of the file that defines the ints (vocabulary or
  // tokenizer), recorded in checkpoints and refused on resume if it changed.
  virtual const std::string& checksum() const = 0;
  // Required: checkpoint metadata describing the model (catlip.model, ...).
  virtual std::map<std::string, std::string> meta() const = 0;
  // Required: throws std::runtime_error naming `path` if a checkpoint with
  // metadata `m` cannot be resumed into this objective.
  virtual void check_resume(const std::map<std::string, std::string>& m, const std::string& path) const = 0;
  // Required: writes <dir>/<name>.safetensors and what belongs beside it;
  // returns the weights path.
  virtual std::string export_weights(const std::string& dir, const std::string& name, const model::NamedTensors& state,
                                     int64_t step) const = 0;
  // Required: the model for the start-up log line.
  virtual std::string describe() const = 0;
};

// Build the objective TrainOptions::objective names (the model is built
// with the global generator, seeded by the caller).
std::unique_ptr<Objective> make_catlip_objective(const TrainOptions& opt);
std::unique_ptr<Objective> make_clip_objective(const TrainOptions& opt);
std::unique_ptr<Objective> make_siglip_objective(const TrainOptions& opt);
std::unique_ptr<Objective> make_superclass_objective(const TrainOptions& opt);

// Turns autocast on for one forward pass.
class AutocastScope {
 public:
  AutocastScope(bool cuda_bf16, bool cpu_bf16);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool cuda_, cpu_;
};

}  // namespace catlip::train
