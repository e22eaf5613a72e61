// The four pre-training objectives as timed training steps on one image
// tower, shared by `catlip bench objectives` (bench_objectives.cpp) and
// `catlip bench clip` (bench_clip.cpp).
//
// One ObjectiveStep per objective (bench_objectives_steps.cpp) holds its
// model and AdamW and says three things: its image tower's output, its text
// tower's output (CLIP and SigLIP), and its loss on those, made of the
// trainer's own functions (catlip/train/loss.h, superclass.h) and
// DataParallel's collectives. ObjectiveStep::step runs a training step from
// them, either as one graph or "split": the graph cut at the towers'
// outputs (detached leaves requiring grad), so that each part is timed:
//   image   image tower forward + its backward from the leaf's gradient
//   text    the same for the text tower
//   loss    loss forward + backward into the leaves, with the collectives
//           inside it (CLIP's feature all-gather, SigLIP's ring, SuperClass's
//           IDF count allreduce); `comm` holds their seconds
//   opt     the exposed gradient-allreduce wait (`allreduce`), clipping,
//           AdamW, the objective's after-step (logit clamp, IDF commit)
// The towers' graphs are disjoint, so the split backward calls do exactly
// the work of one loss.backward().
//
// The runner (bench_objectives_run.cpp) builds the steps, takes turns
// between them at each batch size (warmup rounds untimed), and with
// --ranks N re-executes the command as N processes over c10d Gloo (one
// DataParallel group per objective), collecting their records.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "catlip/model/clip_config.h"
#include "catlip/model/vit_config.h"

namespace catlip::train {
class DataParallel;
}

namespace catlip::bench::objectives {

struct Spec {
  model::ViTConfig vit;    // num_classes: CatLIP's synset vocabulary
  model::TextConfig text;  // vocab_size: the BPE tokenizer (CLIP/SigLIP text, SuperClass head)
  std::vector<int64_t> batches{32, 256, 1024};  // per rank
  int threads = 2, steps = 3, warmup = 1, ranks = 1;
  int64_t min_tokens = 12;
  std::string device = "cpu";  // "cuda": rank r on cuda:r
  int threads_per_rank() const { return std::max(1, threads / ranks); }
};

// One batch: images, CatLIP's multi-hot synsets, caption token rows
// (SOT, ids, EOT) padded for the text towers.
struct Batch {
  torch::Tensor x, y, ids;
  std::vector<std::vector<int64_t>> rows;  // the captions' tokens, unpadded
  double mean_tokens = 0;
  int64_t padded = 0;  // ids.size(1)
};
Batch make_batch(const Spec& s, int64_t B, int rank, const torch::Device& device);

// One timed step's figures. Seconds, then bytes this rank handed to
// collectives (DataParallel::take_traffic).
struct Rec {
  double total = 0, image = 0, text = 0, loss = 0, comm = 0, allreduce = 0, opt = 0;
  double grad_bytes = 0, feature_bytes = 0, count_bytes = 0;
  static constexpr int kFields = 10;
  double* field(int k) { return &total + k; }
  double get(int k) const { return (&total)[k]; }
  double exchanged() const { return grad_bytes + feature_bytes + count_bytes; }
};

// Bytes per rank and step by formula (see each objective's expected_bytes).
struct Bytes {
  double grads = 0, features = 0, counts = 0;
  double total() const { return grads + features + counts; }
};

class ObjectiveStep {
 public:
  virtual ~ObjectiveStep() = default;
  virtual std::string name() const = 0;   // "catlip", "clip", "siglip", "superclass"
  virtual std::string title() const = 0;  // "CatLIP", ...
  virtual bool has_text() const { return false; }
  virtual std::string describe() const = 0;  // the model and loss, one line
  // Per-sample forward FLOPs of the towers and the loss's matmuls at global
  // batch N with captions padded to `tokens` (see bench_objectives_steps.cpp).
  virtual double flops(int64_t N, int64_t tokens) const = 0;
  // What this rank hands to collectives per step at per-rank batch B, W ranks.
  virtual Bytes expected_bytes(int64_t B, int W) const = 0;

  std::vector<torch::Tensor>& params() { return params_; }
  int64_t parameter_count() const;
  // One training step; dp null on one rank (then nothing is communicated).
  Rec step(const Batch& b, train::DataParallel* dp, bool split);

 protected:
  // The parameters and AdamW over `m` (call once, from the constructor).
  void init(torch::nn::Module& m, const torch::Device& device);
  virtual torch::Tensor image(const Batch& b) = 0;
  virtual torch::Tensor text(const Batch&) { return {}; }
  virtual torch::Tensor loss(const torch::Tensor& img, const torch::Tensor& txt, const Batch& b,
                             train::DataParallel* dp) = 0;
  virtual void after_step() {}
  torch::Device device_ = torch::kCPU;

 private:
  std::vector<torch::Tensor> params_;
  std::shared_ptr<void> opt_;  // train::AdamW (kept out of this header)
};

// "catlip", "clip", "siglip", "superclass"; null for another name.
std::unique_ptr<ObjectiveStep> make_objective_step(const std::string& name, const Spec& s,
                                                   const torch::Device& device);
extern const char* const kObjectiveNames[4];

// What the runner times: objective `objective`, split or not, recorded
// under `key` (bench clip: "catlip", "clip", "split").
struct Kind {
  std::string key, objective;
  bool split = true;
};

// Per batch size (per rank) and kind key: the timed steps, in order; on
// several ranks step i is the slowest rank's total, the ranks' mean parts.
using Records = std::map<std::string, std::vector<Rec>>;
using Results = std::map<int64_t, Records>;

// One rank's run over every batch size, the kinds taking turns; `sink`
// gets each batch size's records as it completes. dps: one group per kind
// objective (null on one rank).
void run_points(const Spec& s, const std::vector<Kind>& kinds, int rank,
                const std::map<std::string, train::DataParallel*>& dps,
                const std::function<void(int64_t, const Batch&, Records&)>& sink);

// --ranks N: N processes of `command` ("bench objectives") with `args` and
// the internal --dp-rank/--endpoints options; false with *err naming the
// failed rank and its output.
bool run_ranks(const Spec& s, const std::vector<Kind>& kinds, const std::string& command,
               const std::vector<std::string>& args, Results* res, std::string* err);
// The body of one rank process: joins a group per objective at `endpoints`
// (one per distinct objective of kinds, in order) and prints its records.
int rank_main(const Spec& s, const std::vector<Kind>& kinds, int rank, const std::vector<std::string>& endpoints);

// Command-line options the two benches share. parse_common takes argv[i]
// (and its value) if it is one of them and returns true; throws
// std::invalid_argument on a bad value.
struct Common {
  Spec spec;
  std::string batches;  // as given
  int dp_rank = -1;
  std::vector<std::string> endpoints;
  std::vector<std::string> pass;  // options a rank process gets again
};
bool parse_common(int argc, char** argv, int& i, Common* c);
extern const std::vector<std::string> kCommonOptions;
// "" or what is wrong with the spec.
std::string check_spec(const Spec& s);
std::vector<int64_t> parse_batches(const std::string& list);  // throws std::invalid_argument

double median(std::vector<double> v);

// ---- bench objectives' report (bench_objectives_report.cpp) ----

// One point: ranks, global batch, objective.
struct Point {
  int ranks = 1;
  int64_t batch = 0, per_rank = 0;
  std::string objective, title;
  Rec fastest;  // the fastest step (its parts add up)
  double median_s = 0, ratio = 0, ratio_median = 0;  // ratios: step time / CatLIP's
  double flops = 0, flop_ratio = 0;                  // per-sample forward FLOPs, / CatLIP's
  Bytes measured, formula;                           // per rank and step (0 on one rank)
  double bytes_ratio = 0;                            // measured total / CatLIP's
};

// The points of one rank count from its records (CatLIP first in `steps`).
std::vector<Point> make_points(const Spec& s, const std::vector<int64_t>& global_batches, const Results& res,
                               const std::vector<const ObjectiveStep*>& steps, int64_t padded_tokens);
void print_points(const Spec& s, const std::vector<Point>& pts);
// The closing table: every point's step-time ratio to CatLIP.
void print_ratio_table(const std::vector<Point>& pts, const std::vector<std::string>& titles);
bool write_json(const std::string& path, const Spec& s, const std::vector<std::string>& objectives,
                const std::vector<Point>& pts);

}  // namespace catlip::bench::objectives
