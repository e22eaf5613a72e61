// catlip/train/trainer.h - the CatLIP training loop, independent of the
// dataflow runtime (the train.catlip stage and tests drive it directly).
//
// Feed samples one by one with add(); each full batch runs one iteration:
// collate uint8 HWC images, move to the device, normalise there, forward
// (bf16 autocast where enabled), BCE loss, backward, gradient clipping,
// AdamW with the scheduled lr, EMA update, metrics, and every
// checkpoint_every steps an atomic checkpoint. finish() writes the final
// checkpoint and the export. LibTorch stays behind the pimpl so that this
// header is cheap to include.
//
// Data parallel (opt.dist.world_size > 1): the ranks form a c10d group
// (data_parallel.h); rank 0's weights are broadcast at the start and
// checked; gradients are averaged by a bucketed allreduce that overlaps
// backward, so clipping sees the global norm and weights, optimizer state and
// EMA stay identical; logged loss is the mean over ranks; rank 0 alone writes
// checkpoints (with every rank's data position), exports and the metrics
// file. Before every micro-step the ranks agree, with a collective on "I have
// a batch", to go on or to stop together: a rank whose input ends never
// leaves the others waiting in an allreduce.
//
// Data position (data_position.h): the exact set of samples consumed
// (trained on in a completed optimizer step), per stream (url, epoch, shard)
// a high-water mark plus the indices consumed ahead of a gap. Checkpoints
// store it; after resume a sample is skipped iff it is in the set
// (skip_consumed), so a source restarted from the beginning replays nothing
// twice and misses nothing, in whatever order decode replicas deliver. A
// sample delivered twice within a run (re-delivery after an upstream crash)
// is skipped the second time (train.duplicate_skipped). With data
// parallelism rank 0's checkpoint holds the union of every rank's set; a
// duplicate that lands on another rank than its first copy within one run is
// not caught (each rank checks its own set and the resumed union).
//
// Id log (id_log): one TSV line per sample of every optimizer step,
// <run_dir>/train_ids.tsv (rank K > 0: train_ids.rank-K.tsv); at start,
// lines of steps after the starting step are dropped (they were lost with
// the run that wrote them), so the log lists exactly the samples whose
// training is in the weights.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "catlip/model/clip_config.h"
#include "catlip/model/vit_config.h"
#include "catlip/sample.h"
#include "catlip/stage.h"
#include "catlip/train/data_position.h"
#include "catlip/train/schedule.h"

namespace catlip::train {

// Synchronous data parallelism: the trainer stage's replicas are the ranks.
struct DistOptions {
  int rank = 0, world_size = 1;
  std::string endpoint;     // "tcp://host:port": rank 0 serves the group's c10d TCPStore there
  std::string address;      // this rank's address as the others reach it ("" = the one towards rank 0)
  double timeout_s = 600;   // joining, and each collective
  double bucket_mb = 5;     // gradient allreduce buckets (5 MB measured best on CPU; one bucket cannot overlap)
};

// train.clip and train.siglip only: the text tower and the contrastive loss.
struct ClipOptions {
  model::TextConfig text;        // vocab_size comes from the tokenizer
  bool gather_features = true;   // clip, data parallel: contrast against every rank's batch (gather with grad)
  double init_logit_scale = 1.0 / 0.07;
  double max_logit_scale = 100;  // exp(logit_scale) is clamped to it after every step
  double init_logit_bias = -10;  // siglip: the learnable bias b of its sigmoid loss
};

// train.superclass only: classification on caption BPE tokens (objective_superclass.cpp).
struct SuperclassOptions {
  std::string loss = "softmax";  // softmax (SuperClass: CE on the L1-normalised IDF-weighted target) | bce (plain multi-hot)
};

struct TrainOptions {
  std::string objective = "catlip";  // catlip (BCE on synsets) | clip (InfoNCE with a text tower) | siglip | superclass
  std::string vocab_path;      // catlip: TSV vocabulary; its row count sets model.num_classes
  std::string tokenizer_path;  // clip, superclass: BPE tokenizer file (text.bpe_learn)
  ClipOptions clip;
  SuperclassOptions superclass;
  model::ViTConfig model;      // the image tower (clip: its head is the image projection)
  int64_t batch_size = 256;     // per rank and micro-step
  int64_t accumulate_steps = 1;  // micro-steps per optimizer step (gradient accumulation)
  DistOptions dist;
  int64_t steps = 0;           // total iterations; 0 = until the input ends
  double time_budget_s = 0;    // stop after this much training wall time (from the first sample); 0 = none
                               // (with steps = schedule_steps = 0 the cosine runs over the budget's time)
  double checkpoint_every_s = 0;  // also checkpoint every this many seconds of training wall time; 0 = off
  int64_t schedule_steps = 0;  // cosine horizon when steps = 0 (0: constant after warmup)
  double lr = 1e-3, min_lr = 1e-5, warmup_init_lr = 1e-6;
  int64_t warmup_steps = 0;
  double weight_decay = 0.2;
  double clip_grad_norm = 1.0;  // 0 = off
  double ema_decay = 0.0;       // 0 = no EMA
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  std::string precision = "auto";  // auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16
  // Fast paths of the step (vit.h FastPaths, optim.h), each with the plain
  // path it is tested against.
  std::string attention = "sdpa";  // sdpa (flash/efficient on CUDA, fused on CPU) | math
  std::string adamw = "fused";     // fused (_fused_adamw_) | loop
  bool channels_last = true;       // the conv stem in NHWC
  int64_t checkpoint_blocks = 0;   // activation checkpointing of the first N blocks; -1 = all
  int threads = 0;                 // intra-op threads; 0 = leave LibTorch's setting
  std::vector<double> mean, std;   // per-channel normalisation after /255; empty = none
  int64_t checkpoint_every = 1000;  // 0 = only at the end
  int keep_checkpoints = 3;
  // Write checkpoints in the background from a snapshot of the state (one
  // write at a time; the next checkpoint and the end of training wait for
  // it), so a step is held up only for the copy. false: write in the step.
  bool async_checkpoint = true;
  std::string checkpoint_dir;  // "" = <run_dir>/checkpoints
  bool resume = false;
  bool skip_consumed = true;
  bool export_weights = true;
  std::string export_dir;  // "" = <run_dir>/export
  int64_t seed = 0;
  int64_t log_every = 50;
  std::string run_dir = ".";
  bool write_metrics = true;  // <run_dir>/train_metrics.jsonl
  bool id_log = false;        // <run_dir>/train_ids.tsv (rank K > 0: train_ids.rank-K.tsv)
  // order = "deterministic" (sample_order.h): micro-batches are slots of the
  // numbered sequence, batch_size numbers each, whether or not every sample
  // arrived (a dropped one leaves its slot empty); checkpoints record the
  // global number reached (catlip.order_seq).
  bool ordered = false;
  int64_t reorder_window = 1024;  // samples a rank may hold waiting for an earlier one

  LrSchedule schedule() const;
};

struct StepMetrics {
  int64_t step = 0;  // iterations completed after this one
  double loss = 0, lr = 0, grad_norm = 0;
  double step_s = 0;             // compute time of the iteration
  double window_s = 0;           // wall time since the previous iteration ended
  double images_per_s = 0;       // batch / window_s
  double input_wait_frac = 0;    // waiting for input / window_s
  double input_wait_frac_total = 0;  // same, since the first sample
};

class Trainer {
 public:
  // ctx receives logs, counters and gauges (a LocalContext in tests).
  Trainer(TrainOptions opt, StageContext& ctx);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Takes one sample (image: U8 [H,W,3]; labels: vocabulary indices). Bad
  // input is counted (skipped.<reason>) and dropped. Returns true if the
  // sample went into a batch.
  bool add(const Tensor& image, const IntList& labels, const Origin& origin, const std::string& key);
  // Deterministic order: the slot of a sample that was dropped (upstream, or
  // unusable here) counts toward the micro-batch without a sample.
  void skip_slot();
  // Deterministic order: the global sample number the next optimizer step
  // starts at (0, or the resumed checkpoint's catlip.order_seq, plus the
  // steps since times global_batch()).
  int64_t order_position() const;
  // Seconds the caller spent blocked waiting for the next input.
  void note_input_wait(double seconds);
  // End of input: drop the partial batch, write the final checkpoint and
  // the export. Idempotent.
  void finish();
  // Writes a checkpoint now; returns its path.
  std::string save_checkpoint();

  int64_t step() const;
  bool done() const;  // steps or time budget reached, or (data parallel) a rank's input ended and all ranks stopped
  bool time_budget_reached() const;
  // Wall seconds since the first sample (what checkpoints record as catlip.train_seconds).
  double train_seconds() const;
  // batch_size x ranks x accumulate_steps: images per optimizer step.
  int64_t global_batch() const;
  int rank() const;
  int world_size() const;
  // Data parallel: seconds of allreduce that backward did not hide in the
  // last step, and gradient bytes allreduced per step (0 on one rank).
  double last_exposed_allreduce_s() const;
  int64_t allreduce_bytes_per_step() const;
  const model::ViTConfig& model_config() const;
  const std::string& vocab_checksum() const;
  const DataPosition& data_position() const;
  const StepMetrics& last_metrics() const;
  // Weights by timm name (CPU copies); ema = true for the EMA weights.
  std::vector<std::pair<std::string, Tensor>> weights(bool ema = false) const;
  std::string device_name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The id log's file name for a rank.
std::string id_log_name(int rank);

}  // namespace catlip::train
