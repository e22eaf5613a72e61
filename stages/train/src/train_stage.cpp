// The implementation of catlip/train/train_stage.h: the train.catlip and train.clip
// stages, their parameters, and feeding samples or batches to the Trainer.
#include "catlip/train/train_stage.h"

#include <torch/cuda.h>

#include <cmath>
#include <stdexcept>
#include <thread>

#include "catlip/train/trainer.h"

namespace catlip::train {

TrainStage::TrainStage() = default;
TrainStage::TrainStage(std::string objective, std::string ints_field)
    : objective_(std::move(objective)), ints_field_(std::move(ints_field)) {}
TrainStage::~TrainStage() = default;
ClipTrainStage::ClipTrainStage() : TrainStage("clip", "tokens") {}

namespace {
using S = TrainStage;
using O = TrainOptions;
}  // namespace

// The image tower: the same ViT for train.catlip and train.clip.
std::vector<ParamSpec> TrainStage::image_params() {
  return {
      Param("model", &S::model_size_).def("tiny")
          .one_of({"tiny", "small", "base", "large", "huge"})
          .describe("ViT size: tiny 192/12/3, small 384/12/6, base 768/12/12, large 1024/24/16, "
                    "huge 1280/32/20 (dim/depth/heads)"),
      Param("dim", &S::opt_, &O::model, &model::ViTConfig::dim).def(0).at_least(0).describe("Embedding width; 0 = from model"),
      Param("depth", &S::opt_, &O::model, &model::ViTConfig::depth).def(0).at_least(0).describe("Number of blocks; 0 = from model"),
      Param("heads", &S::opt_, &O::model, &model::ViTConfig::heads).def(0).at_least(0).describe("Attention heads; 0 = from model"),
      Param("mlp_ratio", &S::opt_, &O::model, &model::ViTConfig::mlp_ratio).def(4).range(1, 16).describe("MLP hidden width / dim"),
      Param("image_size", &S::opt_, &O::model, &model::ViTConfig::image_size).def(224).range(16, 4096)
          .describe("Input side in pixels; other sizes are resized (and counted as train.resized)"),
      Param("patch_size", &S::opt_, &O::model, &model::ViTConfig::patch_size).def(16).range(1, 256).describe("Patch side in pixels"),
      Param("stem", &S::opt_, &O::model, &model::ViTConfig::stem).def("patchify").one_of({"patchify", "conv3", "cnn"})
          .describe("Patch embedding: one patchify conv; CoreNet's 3-conv stem (kernels/strides "
                    "4,2,2 with BatchNorm+GELU; needs patch_size 16); or cnn, a hybrid-ViT stem of "
                    "log2(patch_size) stages of 3x3 conv + BatchNorm + GELU + 2x2 max-pool (learns "
                    "fastest on small data and CPUs)"),
      Param("pool", &S::opt_, &O::model, &model::ViTConfig::pool).def("token").one_of({"token", "avg", "max"})
          .describe("Features for the head: the CLS token (ViT, CatLIP), or the mean or max over "
                    "patch tokens (max suits multi-label presence of small objects)"),
  };
}

// The text tower: CLIP's, for train.clip and train.siglip.
std::vector<ParamSpec> TrainStage::text_params() {
  return {
      Param("tokenizer", &S::opt_, &O::tokenizer_path).require().existing_file().describe(
          "BPE tokenizer file written by text.bpe_learn (the same one text.bpe_encode uses); its "
          "vocabulary size sets the text tower's embedding rows"),
      Param("embed_dim", &S::opt_, &O::clip, &ClipOptions::text, &model::TextConfig::embed_dim).def(512).range(1, 1 << 16).describe("Joint image-text embedding width"),
      Param("text_width", &S::opt_, &O::clip, &ClipOptions::text, &model::TextConfig::width).def(512).range(1, 1 << 16).describe("Text transformer width"),
      Param("text_depth", &S::opt_, &O::clip, &ClipOptions::text, &model::TextConfig::depth).def(12).range(1, 1024).describe("Text transformer blocks"),
      Param("text_heads", &S::opt_, &O::clip, &ClipOptions::text, &model::TextConfig::heads).def(8).range(1, 1024).describe("Text attention heads"),
      Param("text_mlp_ratio", &S::opt_, &O::clip, &ClipOptions::text, &model::TextConfig::mlp_ratio).def(4).range(1, 16).describe("Text MLP hidden width / width"),
      Param("context_length", &S::opt_, &O::clip, &ClipOptions::text, &model::TextConfig::context_length).def(77).range(2, 4096).describe(
          "Tokens per caption (start and end of text included); longer token rows are cut, keeping the end token"),
  };
}

// The training loop: batching, optimizer, schedule, devices, checkpoints.
std::vector<ParamSpec> TrainStage::loop_params() {
  return {
      Param("batch_size", &S::opt_, &O::batch_size).def(256).range(1, 1 << 20).describe(
          "Images per rank and micro-step; the global batch is batch_size x replicas x accumulate_steps"),
      Param("accumulate_steps", &S::opt_, &O::accumulate_steps).def(1).range(1, 1 << 20).describe(
          "Micro-steps whose gradients are accumulated before each optimizer step"),
      Param("allreduce_bucket_mb", &S::opt_, &O::dist, &DistOptions::bucket_mb).def(5.0).range(0.01, 4096).describe(
          "Data parallel (replicas > 1): gradient allreduce bucket size; buckets overlap backward"),
      Param("dist_timeout_s", &S::opt_, &O::dist, &DistOptions::timeout_s).def(600.0).range(1, 86400).describe(
          "Data parallel: how long ranks wait for each other to join and in each collective"),
      Param("steps", &S::opt_, &O::steps).def(0).at_least(0)
          .describe("Total iterations; 0 = train until the input ends"),
      Param("time_budget_s", &S::opt_, &O::time_budget_s).def(0.0).range(0, 1e9)
          .describe("Stop after this much training wall time, counted from the first sample (equal-time "
                    "comparisons); 0 = no limit. With steps = schedule_steps = 0 the cosine then runs over "
                    "the budget's time, so models of different speed anneal fully in equal time. "
                    "Checkpoints record catlip.train_seconds and catlip.train_cpu_seconds"),
      Param("checkpoint_every_s", &S::opt_, &O::checkpoint_every_s).def(0.0).range(0, 1e9)
          .describe("Also checkpoint every this many seconds of training wall time (even points on a "
                    "time axis, as the CLIP comparison plots); 0 = off"),
      Param("schedule_steps", &S::opt_, &O::schedule_steps).def(0).at_least(0)
          .describe("Cosine horizon when steps = 0 (0: constant lr after warmup)"),
      Param("lr", &S::opt_, &O::lr).def(1e-3).range(0, 10).describe("Peak learning rate"),
      Param("min_lr", &S::opt_, &O::min_lr).def(1e-5).range(0, 10).describe("Learning rate at the end of the cosine"),
      Param("warmup_init_lr", &S::opt_, &O::warmup_init_lr).def(1e-6).range(0, 10).describe("Learning rate at step 0"),
      Param("warmup_steps", &S::opt_, &O::warmup_steps).def(1000).at_least(0)
          .describe("Linear warmup iterations from warmup_init_lr to lr"),
      Param("weight_decay", &S::opt_, &O::weight_decay).def(0.2).range(0, 10)
          .describe("AdamW decoupled weight decay on weights (not on biases, norms, pos_embed, cls_token)"),
      Param("clip_grad_norm", &S::opt_, &O::clip_grad_norm).def(1.0).at_least(0).describe("Max global gradient L2 norm; 0 = off"),
      Param("ema_decay", &S::opt_, &O::ema_decay).def(0.0).range(0, 1)
          .describe("EMA of weights: ema = d*ema + (1-d)*w each step; 0 = off (CoreNet: 0.9995)"),
      Param("device", &S::opt_, &O::device).def("auto")
          .describe("auto (CUDA if available), cpu, cuda or cuda:N"),
      Param("precision", &S::opt_, &O::precision).def("auto").one_of({"auto", "fp32", "bf16"})
          .describe("auto: bf16 autocast on CUDA, fp32 on CPU; bf16: autocast on either"),
      Param("attention", &S::opt_, &O::attention).def("sdpa").one_of({"sdpa", "math"})
          .describe("sdpa: at::scaled_dot_product_attention (flash / memory-efficient kernels on CUDA, "
                    "a fused kernel on CPU); math: bmm-softmax-bmm (the reference)"),
      Param("adamw", &S::opt_, &O::adamw).def("fused").one_of({"fused", "loop"})
          .describe("fused: ATen's _fused_adamw_ (torch.optim.AdamW(fused=True)); loop: per-tensor ops"),
      Param("channels_last", &S::opt_, &O::channels_last).def(true)
          .describe("Run the convolutional stem in channels-last (NHWC) memory format"),
      Param("checkpoint_blocks", &S::opt_, &O::checkpoint_blocks).def(0).range(-1, 1 << 20)
          .describe("Activation checkpointing: recompute the first N ViT blocks in backward instead of "
                    "keeping their activations (ViT-L/H memory, ~1/3 more compute for them); -1 = all"),
      Param("threads", &S::opt_, &O::threads).def(0).range(0, 1024)
          .describe("Intra-op CPU threads; 0 = one per core"),
      Param("mean", &S::opt_, &O::mean).def({})
          .describe("Per-channel mean subtracted after scaling to [0,1]; empty = none (CoreNet default)"),
      Param("std", &S::opt_, &O::std).def({})
          .describe("Per-channel std divided by after the mean; empty = none"),
      Param("checkpoint_every", &S::opt_, &O::checkpoint_every).def(1000).at_least(0)
          .describe("Checkpoint every N iterations (and always at the end); 0 = only at the end"),
      Param("keep_checkpoints", &S::opt_, &O::keep_checkpoints).def(3).range(0, 1000000)
          .describe("Keep the newest K checkpoints; 0 = keep all"),
      Param("async_checkpoint", &S::opt_, &O::async_checkpoint).def(true)
          .describe("Write checkpoints in the background from a snapshot of the state, so a step waits only "
                    "for the copy (rank 0; one write at a time; the end of training waits for the last). "
                    "Costs one more copy of model, EMA and optimizer state in host memory while it writes"),
      Param("checkpoint_dir", &S::opt_, &O::checkpoint_dir).def("")
          .describe("Checkpoint directory; empty = <run_dir>/checkpoints"),
      Param("resume", &S::opt_, &O::resume).def(false)
          .describe("Continue from the newest valid checkpoint (corrupt ones are skipped) at its "
                    "step, lr, optimizer state and data position"),
      Param("skip_consumed", &S::opt_, &O::skip_consumed).def(true)
          .describe("After resume, skip exactly the samples the checkpoint's data position holds as "
                    "consumed (so a restarted source replays nothing twice and misses nothing); false: "
                    "train on everything again"),
      Param("id_log", &S::opt_, &O::id_log).def(false)
          .describe("Write <run_dir>/train_ids.tsv (rank K > 0: train_ids.rank-K.tsv): per optimizer "
                    "step the ids (epoch, shard, index, url, key) of its samples; on resume the lines of "
                    "steps after the checkpoint are dropped"),
      Param("order", &S::opt_, &O::ordered).values({{"arrival", false}, {"deterministic", true}}).def(false)
          .describe("deterministic: train the samples a shards.source with order = \"deterministic\" numbered, "
                    "sample g on rank g % replicas (routed there by the runtime), each rank in number order; "
                    "optimizer step t then covers samples [t x G, (t+1) x G), G the global batch, at any "
                    "world size and accumulation (resuming with other replicas continues the sequence). "
                    "arrival: as they come, balanced by demand"),
      Param("reorder_window", &S::opt_, &O::reorder_window).def(int64_t{1024}).range(1, 1 << 24)
          .describe("order = \"deterministic\": samples a rank may hold while waiting for an earlier one; "
                    "more fails the run naming the missing sample"),
      Param("export", &S::opt_, &O::export_weights).def(true)
          .describe("At the end, write timm-named safetensors + vocab.tsv + config.json"),
      Param("export_dir", &S::opt_, &O::export_dir).def("").describe("Export directory; empty = <run_dir>/export"),
      Param("seed", &S::opt_, &O::seed).def(0).describe("Seed for weight initialisation"),
      Param("log_every", &S::opt_, &O::log_every).def(50).at_least(0)
          .describe("Log a progress line every N iterations (metrics are written every iteration)"),
  };
}

namespace {
std::vector<ParamSpec> join(std::vector<ParamSpec> a, const std::vector<ParamSpec>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
}  // namespace

std::string TrainStage::check_placement(int replicas, int per_node) const {
  const std::string& dev = opt_.device;
  if (replicas > 1 && per_node > 1 && dev.rfind("cuda:", 0) == 0)
    return std::to_string(per_node) + " data-parallel ranks on one node would share " + dev +
           "; set device = \"cuda\" (each rank takes its own GPU) or one rank per node";
  return "";
}

StageSchema TrainStage::schema() {
  StageSchema s;
  s.type = "train.catlip";
  s.kind = StageKind::Sink;
  s.doc =
      "CatLIP trainer: a ViT trained with binary cross-entropy on each image's multi-hot synset "
      "vector (AdamW, warmup + cosine lr, gradient clipping, optional EMA). Collates samples into "
      "batches itself (or accepts Batch messages), normalises on the device, writes "
      "train_metrics.jsonl, checkpoints (<run_dir>/checkpoints) and a timm-named safetensors "
      "export with the vocabulary beside it (<run_dir>/export).";
  s.reads = {"image", "labels"};
  s.group = true;  // replicas are data-parallel ranks
  s.params = join(join({
      Param("vocab", &S::opt_, &O::vocab_path).require().existing_file().describe(
          "Vocabulary TSV (header [#]index\\twnid\\tlemma\\tcount\\tgloss, one row per class, as written by text.vocab_merge); its "
          "row count is the number of outputs"),
  }, image_params()), loop_params());
  return s;
}

StageSchema ClipTrainStage::schema() {
  using C = ClipTrainStage;  // opt_ is protected: named through the derived class
  StageSchema s;
  s.type = "train.clip";
  s.kind = StageKind::Sink;
  s.doc =
      "CLIP trainer, for comparing with CatLIP on the same data and image tower: the train.catlip ViT "
      "(its head is the image projection) plus CLIP's text transformer (causal mask, end-of-text "
      "pooling, projection) on BPE tokens from text.bpe_encode, trained with symmetric InfoNCE and a "
      "learnable logit scale (init 1/0.07, clamped at 100). With replicas > 1 every rank contrasts "
      "its batch against all ranks' features, gathered with gradient (OpenCLIP --gather-with-grad "
      "--local-loss). Same loop, checkpoints, resume and exactly-once data position as train.catlip; "
      "the export carries the tokenizer beside the weights.";
  s.reads = {"image", "tokens"};
  s.group = true;  // replicas are data-parallel ranks
  s.params = join(join(join(text_params(), {
      Param("gather_features", &C::opt_, &O::clip, &ClipOptions::gather_features).def(true).describe(
          "Data parallel: contrast against every rank's features, gathered with gradient; false: each rank "
          "contrasts only within its own batch"),
      Param("init_logit_scale", &C::opt_, &O::clip, &ClipOptions::init_logit_scale).def(1.0 / 0.07).range(1, 1000).describe(
          "Initial exp(logit_scale), the inverse temperature"),
      Param("max_logit_scale", &C::opt_, &O::clip, &ClipOptions::max_logit_scale).def(100.0).range(1, 1000).describe(
          "exp(logit_scale) is clamped to this after every optimizer step"),
  }), image_params()), loop_params());
  return s;
}

TrainOptions TrainStage::options(int cores) const {
  TrainOptions o = opt_;
  o.objective = objective_;
  // "0 = from model": the named size fills what was left at 0.
  model::ViTConfig preset;
  model::vit_size(model_size_, &preset);
  for (auto [field, from] : {std::pair{&o.model.dim, preset.dim}, std::pair{&o.model.depth, preset.depth},
                             std::pair{&o.model.heads, preset.heads}})
    if (*field == 0) *field = from;
  if (o.threads == 0) o.threads = std::max(1, cores);
  for (double m : o.mean)
    if (!std::isfinite(m)) throw std::invalid_argument("train: mean values must be finite numbers");
  for (double d : o.std)
    if (!(std::isfinite(d) && d > 0)) throw std::invalid_argument("train: std values must be finite and > 0");
  return o;
}

void TrainStage::configure() {
  StageContext& c = ctx();
  // threads = 0 with several ranks on a node: share the node's cores.
  int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  if (c.replicas() > 1) cores = std::max(1, cores / c.node_replicas());
  auto opt = options(cores);
  opt.run_dir = c.run_dir();
  // Replicas are data-parallel ranks.
  opt.dist.rank = c.replica();
  opt.dist.world_size = c.replicas();
  opt.dist.endpoint = c.group_endpoint();
  opt.dist.address = c.node_address();
  if (opt.dist.world_size > 1) {
    if (opt.dist.endpoint.empty())
      throw std::invalid_argument("train." + objective_ + " with " + std::to_string(c.replicas()) +
                                  " replicas needs the group endpoint the plan reserves (run it with catlip run or "
                                  "catlip node)");
    // One GPU per rank: "cuda" (or "auto" with GPUs) gives local rank k the
    // GPU k % count; an explicit "cuda:N" for several ranks of a node would
    // make them share it.
    if (opt.device.rfind("cuda:", 0) == 0 && c.node_replicas() > 1)
      throw std::invalid_argument(std::to_string(c.node_replicas()) + " ranks on node " + std::to_string(c.node()) +
                                  " would share " + opt.device + "; set device = \"cuda\" to give each its own GPU");
    if ((opt.device == "cuda" || opt.device == "auto") && torch::cuda::is_available())
      opt.device = "cuda:" + std::to_string(c.node_replica() % static_cast<int>(torch::cuda::device_count()));
  }
  steps_ = opt.steps;
  bool ordered = opt.ordered;
  size_t window = static_cast<size_t>(opt.reorder_window);
  trainer_ = std::make_unique<Trainer>(std::move(opt), c);
  if (ordered) {
    // After a resume the sequence goes on where the checkpoint left it.
    order_ = std::make_unique<SampleOrder>(c.replica(), c.replicas(), trainer_->order_position(), window);
    if (trainer_->order_position() % c.replicas() != 0)
      c.log(LogLevel::Warn, "deterministic order: resuming at sample " + std::to_string(trainer_->order_position()) +
                                ", not a multiple of " + std::to_string(c.replicas()) +
                                " ranks: the global batch changed, so steps no longer start at multiples of it");
  }
}

bool TrainStage::steps_reached() const { return steps_ > 0 && trainer_->step() >= steps_; }

void TrainStage::begin_item() {
  auto now = std::chrono::steady_clock::now();
  if (have_last_) trainer_->note_input_wait(std::chrono::duration<double>(now - last_return_).count());
}

void TrainStage::end_item() {
  last_return_ = std::chrono::steady_clock::now();
  have_last_ = true;
  // Reached `steps`: write the final checkpoint and export now rather than at
  // end of stream, so the results exist even if upstream keeps producing.
  if (trainer_->done() && !finished_) {
    finished_ = true;
    trainer_->finish();
    if (trainer_->step() == 0)  // another rank's input ended before the first step
      throw std::runtime_error("train: input ended before the first step: no training data reached the trainer");
    // Sources may be endless (epochs = 0): training decides when the run
    // ends, through rank 0, once it has written the checkpoint and export.
    if (trainer_->rank() == 0)
      ctx().finish_run(trainer_->time_budget_reached()
                           ? "reached the time budget at step " + std::to_string(trainer_->step())
                       : trainer_->step() > 0 && trainer_->world_size() > 1 && !steps_reached()
                           ? "a rank's input ended; all ranks stopped at step " + std::to_string(trainer_->step())
                           : "reached the configured number of training steps");
  }
}

void TrainStage::take(Sample& s) {
  const Tensor* img = s.tensor("image");
  const IntList* labels = s.ints(ints_field_);
  if (!img) {
    ctx().count("skipped.no_image");
    return;
  }
  if (!labels) {
    ctx().count("skipped.no_" + ints_field_);
    return;
  }
  trainer_->add(*img, *labels, s.origin, s.key);
}

void TrainStage::take_numbered(Sample&& s) {
  int64_t seq = sample_seq(s);
  if (seq < 0)
    throw std::runtime_error("train: order = \"deterministic\" but sample '" + s.key + "' from " +
                             (s.origin.url.empty() ? std::string("?") : s.origin.url) +
                             " has no number (field " + kSeqField +
                             "): set order = \"deterministic\" on the shards.source that feeds this trainer");
  if (order_->put(seq, std::move(s)) == SampleOrder::Put::Consumed) {
    ctx().count("train.order_consumed_skipped");  // trained before a resume, or a copy
    return;
  }
  while (auto next = order_->pop()) {
    if (trainer_->done()) return;
    if (next->has(kDroppedField)) trainer_->skip_slot();
    else if (!next->tensor("image") || !next->ints(ints_field_)) {
      take(*next);  // counts why
      trainer_->skip_slot();
    } else {
      take(*next);
    }
  }
}

void TrainStage::process(Sample&& in, Emitter&) {
  ++items_;
  begin_item();
  if (order_) take_numbered(std::move(in));
  else take(in);
  end_item();
}

void TrainStage::process(Batch&& in, Emitter&) {
  items_ += static_cast<int64_t>(in.samples.size());
  begin_item();
  for (auto& s : in.samples)
    if (order_) take_numbered(std::move(s));
    else take(s);
  end_item();
}

void TrainStage::flush(Emitter&) {
  if (!trainer_) return;
  if (order_ && order_->held() > 0 && !trainer_->done())
    ctx().log(LogLevel::Warn, "deterministic order: input ended with " + std::to_string(order_->held()) +
                                  " samples held waiting for sample " + std::to_string(order_->next()) +
                                  " (first held: " + std::to_string(order_->first_held()) + "); they are not trained on");
  trainer_->finish();
  // End of input without a single optimizer step: nothing was trained and
  // nothing exported; that is a failed run, not a finished one.
  if (trainer_->step() == 0)
    throw std::runtime_error(
        "train: input ended before the first step: no training data reached the trainer (" +
        std::to_string(items_) + " item(s) received; a step needs batch_size x accumulate_steps usable samples)");
}

void TrainStage::close() {
  order_.reset();
  trainer_.reset();
}

}  // namespace catlip::train
