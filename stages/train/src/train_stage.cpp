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

using T = ParamType;

// The image tower: the same ViT for train.catlip and train.clip.
std::vector<ParamSpec> image_params() {
  return {
      Param("model", T::String).def(std::string("tiny"))
          .one_of({"tiny", "small", "base", "large", "huge"})
          .describe("ViT size: tiny 192/12/3, small 384/12/6, base 768/12/12, large 1024/24/16, "
                    "huge 1280/32/20 (dim/depth/heads)"),
      Param("dim", T::Int).def(int64_t{0}).at_least(0).describe("Embedding width; 0 = from model"),
      Param("depth", T::Int).def(int64_t{0}).at_least(0).describe("Number of blocks; 0 = from model"),
      Param("heads", T::Int).def(int64_t{0}).at_least(0).describe("Attention heads; 0 = from model"),
      Param("mlp_ratio", T::Int).def(int64_t{4}).range(1, 16).describe("MLP hidden width / dim"),
      Param("image_size", T::Int).def(int64_t{224}).range(16, 4096)
          .describe("Input side in pixels; other sizes are resized (and counted as train.resized)"),
      Param("patch_size", T::Int).def(int64_t{16}).range(1, 256).describe("Patch side in pixels"),
      Param("stem", T::String).def(std::string("patchify")).one_of({"patchify", "conv3", "cnn"})
          .describe("Patch embedding: one patchify conv; CoreNet's 3-conv stem (kernels/strides "
                    "4,2,2 with BatchNorm+GELU; needs patch_size 16); or cnn, a hybrid-ViT stem of "
                    "log2(patch_size) stages of 3x3 conv + BatchNorm + GELU + 2x2 max-pool (learns "
                    "fastest on small data and CPUs)"),
      Param("pool", T::String).def(std::string("token")).one_of({"token", "avg", "max"})
          .describe("Features for the head: the CLS token (ViT, CatLIP), or the mean or max over "
                    "patch tokens (max suits multi-label presence of small objects)"),
  };
}

// The training loop: batching, optimizer, schedule, devices, checkpoints.
std::vector<ParamSpec> loop_params() {
  return {
      Param("batch_size", T::Int).def(int64_t{256}).range(1, 1 << 20).describe(
          "Images per rank and micro-step; the global batch is batch_size x replicas x accumulate_steps"),
      Param("accumulate_steps", T::Int).def(int64_t{1}).range(1, 1 << 20).describe(
          "Micro-steps whose gradients are accumulated before each optimizer step"),
      Param("allreduce_bucket_mb", T::Float).def(5.0).range(0.01, 4096).describe(
          "Data parallel (replicas > 1): gradient allreduce bucket size; buckets overlap backward"),
      Param("dist_timeout_s", T::Float).def(600.0).range(1, 86400).describe(
          "Data parallel: how long ranks wait for each other to join and in each collective"),
      Param("steps", T::Int).def(int64_t{0}).at_least(0)
          .describe("Total iterations; 0 = train until the input ends"),
      Param("time_budget_s", T::Float).def(0.0).range(0, 1e9)
          .describe("Stop after this much training wall time, counted from the first sample (equal-time "
                    "comparisons); 0 = no limit. With steps = schedule_steps = 0 the cosine then runs over "
                    "the budget's time, so models of different speed anneal fully in equal time. "
                    "Checkpoints record catlip.train_seconds and catlip.train_cpu_seconds"),
      Param("checkpoint_every_s", T::Float).def(0.0).range(0, 1e9)
          .describe("Also checkpoint every this many seconds of training wall time (even points on a "
                    "time axis, as the CLIP comparison plots); 0 = off"),
      Param("schedule_steps", T::Int).def(int64_t{0}).at_least(0)
          .describe("Cosine horizon when steps = 0 (0: constant lr after warmup)"),
      Param("lr", T::Float).def(1e-3).range(0, 10).describe("Peak learning rate"),
      Param("min_lr", T::Float).def(1e-5).range(0, 10).describe("Learning rate at the end of the cosine"),
      Param("warmup_init_lr", T::Float).def(1e-6).range(0, 10).describe("Learning rate at step 0"),
      Param("warmup_steps", T::Int).def(int64_t{1000}).at_least(0)
          .describe("Linear warmup iterations from warmup_init_lr to lr"),
      Param("weight_decay", T::Float).def(0.2).range(0, 10)
          .describe("AdamW decoupled weight decay on weights (not on biases, norms, pos_embed, cls_token)"),
      Param("clip_grad_norm", T::Float).def(1.0).at_least(0).describe("Max global gradient L2 norm; 0 = off"),
      Param("ema_decay", T::Float).def(0.0).range(0, 1)
          .describe("EMA of weights: ema = d*ema + (1-d)*w each step; 0 = off (CoreNet: 0.9995)"),
      Param("device", T::String).def(std::string("auto"))
          .describe("auto (CUDA if available), cpu, cuda or cuda:N"),
      Param("precision", T::String).def(std::string("auto")).one_of({"auto", "fp32", "bf16"})
          .describe("auto: bf16 autocast on CUDA, fp32 on CPU; bf16: autocast on either"),
      Param("attention", T::String).def(std::string("sdpa")).one_of({"sdpa", "math"})
          .describe("sdpa: at::scaled_dot_product_attention (flash / memory-efficient kernels on CUDA, "
                    "a fused kernel on CPU); math: bmm-softmax-bmm (the reference)"),
      Param("adamw", T::String).def(std::string("fused")).one_of({"fused", "loop"})
          .describe("fused: ATen's _fused_adamw_ (torch.optim.AdamW(fused=True)); loop: per-tensor ops"),
      Param("channels_last", T::Bool).def(true)
          .describe("Run the convolutional stem in channels-last (NHWC) memory format"),
      Param("checkpoint_blocks", T::Int).def(int64_t{0}).range(-1, 1 << 20)
          .describe("Activation checkpointing: recompute the first N ViT blocks in backward instead of "
                    "keeping their activations (ViT-L/H memory, ~1/3 more compute for them); -1 = all"),
      Param("threads", T::Int).def(int64_t{0}).range(0, 1024)
          .describe("Intra-op CPU threads; 0 = one per core"),
      Param("mean", T::FloatList).def(std::vector<double>{})
          .describe("Per-channel mean subtracted after scaling to [0,1]; empty = none (CoreNet default)"),
      Param("std", T::FloatList).def(std::vector<double>{})
          .describe("Per-channel std divided by after the mean; empty = none"),
      Param("checkpoint_every", T::Int).def(int64_t{1000}).at_least(0)
          .describe("Checkpoint every N iterations (and always at the end); 0 = only at the end"),
      Param("keep_checkpoints", T::Int).def(int64_t{3}).range(0, 1000000)
          .describe("Keep the newest K checkpoints; 0 = keep all"),
      Param("checkpoint_dir", T::String).def(std::string(""))
          .describe("Checkpoint directory; empty = <run_dir>/checkpoints"),
      Param("resume", T::Bool).def(false)
          .describe("Continue from the newest valid checkpoint (corrupt ones are skipped) at its "
                    "step, lr, optimizer state and data position"),
      Param("skip_consumed", T::Bool).def(true)
          .describe("After resume, skip exactly the samples the checkpoint's data position holds as "
                    "consumed (so a restarted source replays nothing twice and misses nothing); false: "
                    "train on everything again"),
      Param("id_log", T::Bool).def(false)
          .describe("Write <run_dir>/train_ids.tsv (rank K > 0: train_ids.rank-K.tsv): per optimizer "
                    "step the ids (epoch, shard, index, url, key) of its samples; on resume the lines of "
                    "steps after the checkpoint are dropped"),
      Param("export", T::Bool).def(true)
          .describe("At the end, write timm-named safetensors + vocab.tsv + config.json"),
      Param("export_dir", T::String).def(std::string("")).describe("Export directory; empty = <run_dir>/export"),
      Param("seed", T::Int).def(int64_t{0}).describe("Seed for weight initialisation"),
      Param("log_every", T::Int).def(int64_t{50}).at_least(0)
          .describe("Log a progress line every N iterations (metrics are written every iteration)"),
  };
}

std::vector<ParamSpec> join(std::vector<ParamSpec> a, const std::vector<ParamSpec>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::string check_ranks_placement(const Params& p, int replicas, int per_node) {
  const std::string dev = p.get_string("device");
  if (replicas > 1 && per_node > 1 && dev.rfind("cuda:", 0) == 0)
    return std::to_string(per_node) + " data-parallel ranks on one node would share " + dev +
           "; set device = \"cuda\" (each rank takes its own GPU) or one rank per node";
  return "";
}

}  // namespace

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
  s.check_placement = check_ranks_placement;
  s.params = join(join({
      Param("vocab", T::String).require().describe(
          "Vocabulary TSV (header [#]index\\twnid\\tlemma\\tcount\\tgloss, one row per class, as written by text.vocab_merge); its "
          "row count is the number of outputs"),
  }, image_params()), loop_params());
  return s;
}

StageSchema ClipTrainStage::schema() {
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
  s.check_placement = check_ranks_placement;
  s.params = join(join({
      Param("tokenizer", T::String).require().describe(
          "BPE tokenizer file written by text.bpe_learn (the same one text.bpe_encode uses); its "
          "vocabulary size sets the text tower's embedding rows"),
      Param("embed_dim", T::Int).def(int64_t{512}).range(1, 1 << 16).describe("Joint image-text embedding width"),
      Param("text_width", T::Int).def(int64_t{512}).range(1, 1 << 16).describe("Text transformer width"),
      Param("text_depth", T::Int).def(int64_t{12}).range(1, 1024).describe("Text transformer blocks"),
      Param("text_heads", T::Int).def(int64_t{8}).range(1, 1024).describe("Text attention heads"),
      Param("text_mlp_ratio", T::Int).def(int64_t{4}).range(1, 16).describe("Text MLP hidden width / width"),
      Param("context_length", T::Int).def(int64_t{77}).range(2, 4096).describe(
          "Tokens per caption (start and end of text included); longer token rows are cut, keeping the end token"),
      Param("gather_features", T::Bool).def(true).describe(
          "Data parallel: contrast against every rank's features, gathered with gradient; false: each rank "
          "contrasts only within its own batch"),
      Param("init_logit_scale", T::Float).def(1.0 / 0.07).range(1, 1000).describe(
          "Initial exp(logit_scale), the inverse temperature"),
      Param("max_logit_scale", T::Float).def(100.0).range(1, 1000).describe(
          "exp(logit_scale) is clamped to this after every optimizer step"),
  }, image_params()), loop_params());
  return s;
}

TrainOptions TrainStage::options_from(const Params& p, const std::string& run_dir, const std::string& objective) {
  TrainOptions o;
  o.objective = objective;
  if (objective == "clip") {
    o.tokenizer_path = p.get_string("tokenizer");
    o.clip.text.embed_dim = p.get_int("embed_dim");
    o.clip.text.width = p.get_int("text_width");
    o.clip.text.depth = p.get_int("text_depth");
    o.clip.text.heads = p.get_int("text_heads");
    o.clip.text.mlp_ratio = p.get_int("text_mlp_ratio");
    o.clip.text.context_length = p.get_int("context_length");
    o.clip.gather_features = p.get_bool("gather_features");
    o.clip.init_logit_scale = p.get_float("init_logit_scale");
    o.clip.max_logit_scale = p.get_float("max_logit_scale");
  } else {
    o.vocab_path = p.get_string("vocab");
  }
  ViTConfig c;
  vit_size(p.get_string("model"), &c);
  if (p.get_int("dim")) c.dim = p.get_int("dim");
  if (p.get_int("depth")) c.depth = p.get_int("depth");
  if (p.get_int("heads")) c.heads = p.get_int("heads");
  c.mlp_ratio = p.get_int("mlp_ratio");
  c.image_size = p.get_int("image_size");
  c.patch_size = p.get_int("patch_size");
  c.stem = p.get_string("stem");
  c.pool = p.get_string("pool");
  o.model = c;
  o.batch_size = p.get_int("batch_size");
  o.accumulate_steps = p.get_int("accumulate_steps");
  o.dist.bucket_mb = p.get_float("allreduce_bucket_mb");
  o.dist.timeout_s = p.get_float("dist_timeout_s");
  o.steps = p.get_int("steps");
  o.time_budget_s = p.get_float("time_budget_s");
  o.checkpoint_every_s = p.get_float("checkpoint_every_s");
  o.schedule_steps = p.get_int("schedule_steps");
  o.lr = p.get_float("lr");
  o.min_lr = p.get_float("min_lr");
  o.warmup_init_lr = p.get_float("warmup_init_lr");
  o.warmup_steps = p.get_int("warmup_steps");
  o.weight_decay = p.get_float("weight_decay");
  o.clip_grad_norm = p.get_float("clip_grad_norm");
  o.ema_decay = p.get_float("ema_decay");
  o.device = p.get_string("device");
  o.precision = p.get_string("precision");
  o.attention = p.get_string("attention");
  o.adamw = p.get_string("adamw");
  o.channels_last = p.get_bool("channels_last");
  o.checkpoint_blocks = p.get_int("checkpoint_blocks");
  o.threads = int(p.get_int("threads"));
  if (o.threads == 0) o.threads = int(std::max(1u, std::thread::hardware_concurrency()));
  o.mean = p.get_floats("mean");
  o.std = p.get_floats("std");
  for (double m : o.mean)
    if (!std::isfinite(m)) throw std::invalid_argument("train: mean values must be finite numbers");
  for (double d : o.std)
    if (!(std::isfinite(d) && d > 0)) throw std::invalid_argument("train: std values must be finite and > 0");
  o.checkpoint_every = p.get_int("checkpoint_every");
  o.keep_checkpoints = int(p.get_int("keep_checkpoints"));
  o.checkpoint_dir = p.get_string("checkpoint_dir");
  o.resume = p.get_bool("resume");
  o.skip_consumed = p.get_bool("skip_consumed");
  o.id_log = p.get_bool("id_log");
  o.export_weights = p.get_bool("export");
  o.export_dir = p.get_string("export_dir");
  o.seed = p.get_int("seed");
  o.log_every = p.get_int("log_every");
  o.run_dir = run_dir;
  return o;
}

void TrainStage::configure(const Params& params, StageContext& ctx) {
  ctx_ = &ctx;
  auto opt = options_from(params, ctx.run_dir(), objective_);
  // Replicas are data-parallel ranks.
  opt.dist.rank = ctx.replica();
  opt.dist.world_size = ctx.replicas();
  opt.dist.endpoint = ctx.group_endpoint();
  opt.dist.address = ctx.node_address();
  if (opt.dist.world_size > 1) {
    if (opt.dist.endpoint.empty())
      throw std::invalid_argument("train." + objective_ + " with " + std::to_string(ctx.replicas()) +
                                  " replicas needs the group endpoint the plan reserves (run it with catlip run or "
                                  "catlip node)");
    // threads = 0: share the node's cores between its ranks.
    if (params.get_int("threads") == 0) opt.threads = std::max(1, opt.threads / ctx.node_replicas());
    // One GPU per rank: "cuda" (or "auto" with GPUs) gives local rank k the
    // GPU k % count; an explicit "cuda:N" for several ranks of a node would
    // make them share it.
    if (opt.device.rfind("cuda:", 0) == 0 && ctx.node_replicas() > 1)
      throw std::invalid_argument(std::to_string(ctx.node_replicas()) + " ranks on node " + std::to_string(ctx.node()) +
                                  " would share " + opt.device + "; set device = \"cuda\" to give each its own GPU");
    if ((opt.device == "cuda" || opt.device == "auto") && torch::cuda::is_available())
      opt.device = "cuda:" + std::to_string(ctx.node_replica() % static_cast<int>(torch::cuda::device_count()));
  }
  steps_ = opt.steps;
  trainer_ = std::make_unique<Trainer>(std::move(opt), ctx);
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
      ctx_->finish_run(trainer_->time_budget_reached()
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
    ctx_->count("skipped.no_image");
    return;
  }
  if (!labels) {
    ctx_->count("skipped.no_" + ints_field_);
    return;
  }
  trainer_->add(*img, *labels, s.origin, s.key);
}

void TrainStage::process(Sample&& in, Emitter&) {
  ++items_;
  begin_item();
  take(in);
  end_item();
}

void TrainStage::process(Batch&& in, Emitter&) {
  items_ += static_cast<int64_t>(in.samples.size());
  begin_item();
  for (auto& s : in.samples) take(s);
  end_item();
}

void TrainStage::flush(Emitter&) {
  if (!trainer_) return;
  trainer_->finish();
  // End of input without a single optimizer step: nothing was trained and
  // nothing exported; that is a failed run, not a finished one.
  if (trainer_->step() == 0)
    throw std::runtime_error(
        "train: input ended before the first step: no training data reached the trainer (" +
        std::to_string(items_) + " item(s) received; a step needs batch_size x accumulate_steps usable samples)");
}

void TrainStage::close() { trainer_.reset(); }

}  // namespace catlip::train
