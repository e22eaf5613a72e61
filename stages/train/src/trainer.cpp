// The implementation of catlip/train/trainer.h: the training loop (collate, forward, loss,
// backward, AdamW, EMA, metrics, checkpoints, resume, export) behind the pimpl.
#include "catlip/train/trainer.h"

#include "catlip/train/data_parallel.h"

#include "batch_stager.h"

#include <torch/torch.h>

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "catlip/model/checkpoint_file.h"
#include "catlip/model/model_io.h"
#include "catlip/model/state_io.h"
#include "catlip/model/vit.h"
#include "catlip/model/vocab.h"
#include "catlip/train/loss.h"
#include "catlip/train/objective.h"
#include "catlip/train/optim.h"

namespace fs = std::filesystem;

namespace catlip::train {

using Clock = std::chrono::steady_clock;

LrSchedule TrainOptions::schedule() const {
  LrSchedule s;
  s.lr = lr;
  s.min_lr = min_lr;
  s.warmup_init_lr = warmup_init_lr;
  s.warmup = warmup_steps;
  s.total = steps > 0 ? steps : schedule_steps;
  return s;
}

std::string id_log_name(int rank) {
  return rank == 0 ? "train_ids.tsv" : "train_ids.rank-" + std::to_string(rank) + ".tsv";
}

namespace {
double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

struct Trainer::Impl {
  TrainOptions opt;
  StageContext& ctx;
  std::unique_ptr<Objective> obj;  // the model and its loss
  model::ViTConfig cfg;                   // the image tower's (obj->image_config())
  torch::Device device = torch::kCPU;
  bool bf16_cuda = false, bf16_cpu = false;
  model::NamedTensors state;  // parameters + buffers by timm name
  std::vector<torch::Tensor> params;
  std::unique_ptr<AdamW> optim;
  std::unique_ptr<Ema> ema;
  LrSchedule sched;
  int64_t step = 0;
  int64_t last_ckpt_step = -1;
  std::string ckpt_dir, export_dir;
  // The background checkpoint write (async_checkpoint): at most one.
  std::thread ckpt_writer;
  std::string ckpt_written, ckpt_error;  // set by the writer: its path, or why it failed
  int64_t ckpt_writing_step = -1;
  double ckpt_snapshot_s = 0;
  Clock::time_point ckpt_started;

  // The batch being collated.
  std::unique_ptr<BatchStager> batches;  // [B,H,W,3] uint8 collation buffers (pinned, double on CUDA)
  std::vector<std::vector<int64_t>> labels;
  int64_t fill = 0;
  // Samples since the last optimizer step (every micro-batch of it), in
  // arrival order, with their keys for the id log.
  std::vector<std::pair<Origin, std::string>> pending;
  DataPosition pending_set;     // the same, for duplicate checks
  DataPosition position;        // consumed: trained on in a completed optimizer step
  DataPosition resume_position;  // as loaded from the checkpoint (to count resume skips)
  bool warned_exceptions = false;
  std::ofstream id_log;

  // Timing of the input-wait fraction.
  bool started = false;
  Clock::time_point first_item, window_start;
  double wait_window = 0, wait_total = 0;

  std::ofstream metrics;
  int bad_images_logged = 0;
  StepMetrics last;
  bool finished = false;

  // Data parallel.
  std::unique_ptr<DataParallel> dp;
  bool group_ended = false;  // a rank's input ended: every rank stopped
  bool budget_reached = false;  // time_budget_s spent (agreed by every rank)
  // Time-based decisions (budget, lr over the budget, checkpoints every N s)
  // use rank 0's clock, agreed once per step, so every rank decides alike.
  double agreed_s = 0, next_ckpt_s = 0;
  double ckpt_at_s = -1;  // >= 0: the train seconds a step's checkpoint records (agreed_s)
  double cpu_at_first = 0;  // process CPU seconds at the first sample
  double lr_used = 0;       // the lr of the last step
  bool time_based() const { return opt.time_budget_s > 0 || opt.checkpoint_every_s > 0; }
  bool time_schedule() const { return opt.time_budget_s > 0 && opt.steps == 0 && opt.schedule_steps == 0; }
  double lr_for(int64_t s) const {
    return time_schedule() ? sched.at_fraction(s, agreed_s / opt.time_budget_s) : sched.at(s);
  }
  int64_t micro = 0;         // micro-steps accumulated toward the next optimizer step
  int64_t slots = 0;         // ordered: slots of the open micro-batch taken (samples or dropped)
  int64_t order_seq = 0, order_step = 0;  // ordered: the global number reached at step order_step
  int64_t order_position() const { return order_seq + (step - order_step) * global_batch(); }
  double loss_accum = 0, exposed_s = 0;
  int rank() const { return opt.dist.rank; }
  int64_t global_batch() const { return opt.batch_size * opt.dist.world_size * opt.accumulate_steps; }

  Impl(TrainOptions o, StageContext& c) : opt(std::move(o)), ctx(c) {}

  void log(LogLevel l, const std::string& m) { ctx.log(l, m); }

  void setup() {
    if (opt.threads > 0) at::set_num_threads(opt.threads);
    if (opt.batch_size <= 0) throw std::invalid_argument("batch_size must be > 0");
    if (!opt.mean.empty() && (opt.mean.size() != 3 || opt.std.size() != 3))
      throw std::invalid_argument("mean and std must both have 3 values (or both be empty)");
    device = model::resolve_device(opt.device);
    const bool cuda = device.is_cuda();
    if (opt.precision == "bf16") {
      (cuda ? bf16_cuda : bf16_cpu) = true;
    } else if (opt.precision == "auto") {
      bf16_cuda = cuda;  // Ampere and newer; set precision = "fp32" on older GPUs
    } else if (opt.precision != "fp32") {
      throw std::invalid_argument("precision must be auto, fp32 or bf16");
    }
    {
      // Seeding and initialisation use the global generator: trainers in
      // one process (ranks as threads in tests) must not interleave them.
      static std::mutex init_mu;
      std::lock_guard<std::mutex> l(init_mu);
      torch::manual_seed(uint64_t(opt.seed));
      if (opt.objective == "catlip") obj = make_catlip_objective(opt);
      else if (opt.objective == "clip") obj = make_clip_objective(opt);
      else if (opt.objective == "siglip") obj = make_siglip_objective(opt);
      else if (opt.objective == "superclass") obj = make_superclass_objective(opt);
      else throw std::invalid_argument("objective must be catlip, clip, siglip or superclass, not '" + opt.objective + "'");
    }
    cfg = obj->image_config();
    auto& model = obj->module();
    model.to(device);
    model.train();
    model::FastPaths fast;
    fast.attention = opt.attention;
    fast.channels_last = opt.channels_last;
    fast.checkpoint_blocks = opt.checkpoint_blocks;
    model::apply_fast_paths(model, fast);  // before the optimizer state copies the parameters' layout
    state = model::named_state(model);
    model::NamedTensors named_params;
    for (auto& kv : model.named_parameters(true)) {
      named_params.emplace_back(kv.key(), kv.value());
      params.push_back(kv.value());
    }
    AdamWOptions ao;
    ao.weight_decay = opt.weight_decay;
    ao.impl = opt.adamw;
    optim = std::make_unique<AdamW>(named_params, ao);
    if (opt.ema_decay > 0) ema = std::make_unique<Ema>(state, opt.ema_decay);
    sched = opt.schedule();
    ckpt_dir = opt.checkpoint_dir.empty() ? opt.run_dir + "/checkpoints" : opt.checkpoint_dir;
    export_dir = opt.export_dir.empty() ? opt.run_dir + "/export" : opt.export_dir;

    batches = std::make_unique<BatchStager>(opt.batch_size, cfg.image_size, device);

    if (opt.accumulate_steps < 1) throw std::invalid_argument("accumulate_steps must be >= 1");
    if (opt.dist.world_size > 1) {
      dp = std::make_unique<DataParallel>(opt.dist, device);
      dp->attach(params);
    }
    if (opt.resume && rank() == 0) resume();
    if (dp) sync_from_rank0();
    if (opt.write_metrics && rank() == 0) {
      fs::create_directories(opt.run_dir);
      metrics.open(opt.run_dir + "/train_metrics.jsonl", std::ios::app);
    }
    if (opt.id_log) open_id_log();
    int64_t nparams = 0;
    for (auto& p : params) nparams += p.numel();
    std::ostringstream m;
    m << obj->describe() << " (" << nparams << " parameters) on " << device.str()
      << (bf16_cuda || bf16_cpu ? " bf16 autocast" : " fp32") << ", attention " << opt.attention << ", AdamW "
      << opt.adamw << (opt.channels_last ? ", channels-last stem" : "")
      << (opt.checkpoint_blocks ? ", checkpointing " + std::string(opt.checkpoint_blocks < 0 ? "all" : std::to_string(opt.checkpoint_blocks)) + " blocks" : "")
      << ", " << at::get_num_threads()
      << " threads, global batch " << global_batch() << " = " << opt.batch_size << " x " << opt.dist.world_size
      << " rank" << (opt.dist.world_size > 1 ? "s (" + dp->backend() + ", this is rank " + std::to_string(rank()) + ")" : "")
      << " x " << opt.accumulate_steps << " accumulation, starting at step " << step;
    log(LogLevel::Info, m.str());
  }

  // Rank 0's weights, buffers, EMA, optimizer state, step and data position
  // on every rank (rank 0 may have resumed from a checkpoint), checked.
  void sync_from_rank0() {
    std::vector<torch::Tensor> ts;
    for (auto& [n, t] : state) ts.push_back(t);
    dp->broadcast_from_rank0(ts, "model weights");
    ts.clear();
    if (ema)
      for (auto& [n, t] : ema->tensors()) ts.push_back(t);
    for (auto& sl : optim->slots()) {
      ts.push_back(sl.exp_avg);
      ts.push_back(sl.exp_avg_sq);
    }
    if (!ts.empty()) dp->broadcast_from_rank0(ts, "optimizer state and EMA");
    ts.clear();
    for (auto& [n, t] : obj->extra_state()) ts.push_back(t);
    if (!ts.empty()) dp->broadcast_from_rank0(ts, "objective state");
    auto scalars = dp->sum({rank() == 0 ? double(step) : 0.0, rank() == 0 ? double(optim->steps()) : 0.0,
                            rank() == 0 ? double(order_seq) : 0.0});
    step = static_cast<int64_t>(scalars[0]);
    optim->set_steps(static_cast<int64_t>(scalars[1]));
    order_seq = static_cast<int64_t>(scalars[2]);
    order_step = step;
    last_ckpt_step = step;
    resume_position = DataPosition::parse(dp->allgather(rank() == 0 ? resume_position.to_json() : "{}")[0]);
    position = resume_position;
  }

  // Every rank's data position (a collective when data parallel): the union
  // of the samples every rank consumed.
  DataPosition all_positions() {
    if (!dp) return position;
    DataPosition all;
    for (auto& js : dp->allgather(position.to_json())) all.merge(DataPosition::parse(js));
    return all;
  }

  // ---- id log ----

  // Opens this rank's id log, first dropping the lines of steps after the
  // current one (lost with the run that wrote them) and a torn last line.
  // Rank 0 also trims the files of ranks beyond the current world size.
  void open_id_log() {
    fs::create_directories(opt.run_dir);
    auto trim = [&](const std::string& path) {
      std::ifstream in(path);
      if (!in) return;
      std::string kept, line;
      int64_t dropped = 0;
      while (std::getline(in, line)) {
        if (in.eof()) {  // no newline: torn by a kill mid-write
          ++dropped;
          break;
        }
        if (line.empty() || line[0] == '#') {
          kept += line + "\n";
          continue;
        }
        char* end = nullptr;
        long long st = std::strtoll(line.c_str(), &end, 10);
        if (end == line.c_str() || *end != '\t' || st > step) {
          ++dropped;
          continue;
        }
        kept += line + "\n";
      }
      in.close();
      if (dropped == 0) return;
      std::string tmp = path + ".tmp";
      {
        std::ofstream out(tmp, std::ios::trunc);
        out << kept;
        out.flush();
        if (!out) throw std::runtime_error("id log: cannot write " + tmp);
      }
      fs::rename(tmp, path);
      log(LogLevel::Info, "id log " + path + ": dropped " + std::to_string(dropped) + " entries of steps after " +
                              std::to_string(step) + " (not in the weights)");
    };
    std::string path = opt.run_dir + "/" + id_log_name(rank());
    trim(path);
    if (rank() == 0)
      for (auto& e : fs::directory_iterator(opt.run_dir)) {
        std::string n = e.path().filename().string();
        const std::string pre = "train_ids.rank-";
        if (n.rfind(pre, 0) != 0 || n.size() < pre.size() + 5 || n.substr(n.size() - 4) != ".tsv") continue;
        int k = std::atoi(n.c_str() + pre.size());
        if (k >= opt.dist.world_size) trim(e.path().string());
      }
    bool fresh = !fs::exists(path) || fs::file_size(path) == 0;
    id_log.open(path, std::ios::app);
    if (!id_log) throw std::runtime_error("id log: cannot open " + path);
    if (fresh) id_log << "# step\tepoch\tshard\tindex\turl\tkey\n";
    id_log.flush();
  }

  // The samples of the optimizer step just taken, flushed before its
  // checkpoint can be written.
  void write_id_log() {
    if (!id_log.is_open()) return;
    std::string out;
    for (auto& [o, key] : pending)
      out += std::to_string(step) + "\t" + std::to_string(o.epoch) + "\t" + std::to_string(o.shard) + "\t" +
             std::to_string(o.index) + "\t" + o.url + "\t" + key + "\n";
    id_log << out;
    id_log.flush();
    if (!id_log) throw std::runtime_error("id log: write failed");
  }

  // ---- checkpoints ----

  // Waits for the background write, if any; reports it, or throws why it
  // failed (the run must not go on believing it has a checkpoint).
  std::string wait_checkpoint() {
    if (!ckpt_writer.joinable()) return "";
    ckpt_writer.join();
    if (!ckpt_error.empty()) {
      std::string e = ckpt_error;
      ckpt_error.clear();
      throw std::runtime_error("checkpoint at step " + std::to_string(ckpt_writing_step) + " failed: " + e);
    }
    ctx.count("train.checkpoints");
    char b[160];
    std::snprintf(b, sizeof b, " (step %lld; snapshot %.3f s in the step, written in %.2f s in the background)",
                  (long long)ckpt_writing_step, ckpt_snapshot_s, secs(Clock::now() - ckpt_started));
    log(LogLevel::Info, "checkpoint " + ckpt_written + b);
    return ckpt_written;
  }

  // Called by every rank at the same step; rank 0 alone writes, in the
  // background when opt.async_checkpoint (from a snapshot; the previous
  // write is waited for first).
  std::string save_checkpoint() {
    auto positions = all_positions();
    if (rank() != 0) {
      last_ckpt_step = step;
      return "";
    }
    wait_checkpoint();
    const auto t0 = Clock::now();
    model::TensorStash st(opt.async_checkpoint);
    st.add_all("model.", state);
    if (ema) st.add_all("ema.", ema->tensors());
    st.add_all("objective.", obj->extra_state());
    for (auto& s : optim->slots()) {
      st.add("optim.exp_avg." + s.name, s.exp_avg);
      st.add("optim.exp_avg_sq." + s.name, s.exp_avg_sq);
    }
    auto gen = at::detail::getDefaultCPUGenerator();
    {
      std::lock_guard<std::mutex> l(gen.mutex());
      st.add("rng.cpu", gen.get_state());
    }
    std::map<std::string, std::string> meta = obj->meta();
    meta.insert({
        {"catlip.format", "checkpoint/1"},
        {"catlip.step", std::to_string(step)},
        {"catlip.optim_steps", std::to_string(optim->steps())},
        {"catlip.data_position", positions.to_json()},
        {"catlip.world_size", std::to_string(opt.dist.world_size)},
        {"catlip.accumulate_steps", std::to_string(opt.accumulate_steps)},
        {"catlip.global_batch", std::to_string(global_batch())},
        {"catlip.ema_decay", std::to_string(opt.ema_decay)},
        {"catlip.lr_at_step", std::to_string(lr_for(step))},
        // A checkpoint the clock asked for records the time it was decided
        // at (rank 0's, agreed): read again here it could fall past the
        // next checkpoint_every_s mark on a loaded machine.
        {"catlip.train_seconds", std::to_string(ckpt_at_s >= 0 ? ckpt_at_s : train_seconds())},
        {"catlip.train_cpu_seconds", std::to_string(cpu_seconds() - cpu_at_first)},
    });
    if (opt.ordered) meta["catlip.order_seq"] = std::to_string(order_position());
    last_ckpt_step = step;
    if (opt.async_checkpoint) {
      ckpt_writing_step = step;
      ckpt_snapshot_s = secs(Clock::now() - t0);
      ckpt_started = Clock::now();
      ckpt_written.clear();
      // The writer touches only the snapshot, its own strings and files.
      ckpt_writer = std::thread([this, st = std::move(st), meta = std::move(meta), s = step]() {
        try {
          ckpt_written = model::write_checkpoint_file(ckpt_dir, s, meta, st.views());
          model::prune_checkpoints(ckpt_dir, opt.keep_checkpoints);
        } catch (const std::exception& e) {
          ckpt_error = e.what();
        }
      });
      return "";
    }
    std::string path = model::write_checkpoint_file(ckpt_dir, step, meta, st.views());
    model::prune_checkpoints(ckpt_dir, opt.keep_checkpoints);
    ctx.count("train.checkpoints");
    log(LogLevel::Info, "checkpoint " + path + " (step " + std::to_string(step) + ")");
    return path;
  }

  void resume() {
    for (auto& path : model::list_checkpoints(ckpt_dir)) {
      auto f = model::read_checkpoint_file(path);
      if (!f.ok()) {
        log(LogLevel::Warn, f.status().message() + "; skipped, trying an older one");
        ctx.count("skipped.bad_checkpoint");
        continue;
      }
      load(*f, path);
      return;
    }
    log(LogLevel::Info, "resume: no valid checkpoint in " + ckpt_dir + "; starting from step 0");
    ctx.gauge("train.resumed_step", 0);
  }

  void load(const model::SafeTensorsFile& f, const std::string& path) {
    auto meta = [&](const std::string& k) -> std::string {
      auto it = f.metadata.find(k);
      if (it == f.metadata.end()) throw std::runtime_error(path + ": metadata '" + k + "' missing");
      return it->second;
    };
    obj->check_resume(f.metadata, path);
    model::load_into(state, f.tensors, "model.", path);
    if (auto extra = obj->extra_state(); !extra.empty()) model::load_into(extra, f.tensors, "objective.", path);
    if (ema) {
      if (f.tensors.count("ema." + state.front().first)) model::load_into(ema->tensors(), f.tensors, "ema.", path);
      else ema = std::make_unique<Ema>(state, opt.ema_decay);  // EMA newly enabled: start from weights
    }
    model::NamedTensors m, v;
    for (auto& s : optim->slots()) {
      m.emplace_back(s.name, s.exp_avg);
      v.emplace_back(s.name, s.exp_avg_sq);
    }
    model::load_into(m, f.tensors, "optim.exp_avg.", path);
    model::load_into(v, f.tensors, "optim.exp_avg_sq.", path);
    optim->set_steps(std::stoll(meta("catlip.optim_steps")));
    step = std::stoll(meta("catlip.step"));
    last_ckpt_step = step;
    if (auto it = f.tensors.find("rng.cpu"); it != f.tensors.end()) {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> l(gen.mutex());
      gen.set_state(model::to_torch(it->second));
    }
    if (opt.ordered) {
      auto it = f.metadata.find("catlip.order_seq");
      if (it == f.metadata.end())
        throw std::runtime_error(path + ": written without order = \"deterministic\" (no catlip.order_seq): its "
                                 "samples cannot be continued in the deterministic order; resume with order = "
                                 "\"arrival\" or start a new run");
      order_seq = std::stoll(it->second);
      order_step = step;
    }
    resume_position = DataPosition::parse(meta("catlip.data_position"));
    std::string pos_summary = resume_position.summary();
    if (!opt.skip_consumed) resume_position.clear();  // replay everything
    position = resume_position;
    log(LogLevel::Info, "resumed from " + path + " at step " + std::to_string(step) + ", lr " +
                            std::to_string(lr_for(step)) + ", data position: " + pos_summary +
                            (opt.skip_consumed ? "" : " (ignored: skip_consumed = false)"));
    ctx.count("train.resumed");
    ctx.gauge("train.resumed_step", double(step));  // the supervisor's count of steps lost at a run restart
  }

  // ---- samples and steps ----

  // Ordered: every numbered sample takes a slot, trained on or not; the
  // micro-batch ends after batch_size slots.
  bool add(const Tensor& image, const IntList& lab, const Origin& origin, const std::string& key) {
    if (finished || group_ended || budget_reached || (opt.steps > 0 && step >= opt.steps)) {
      ctx.count("train.ignored_after_last_step");
      return false;
    }
    bool took = add_sample(image, lab, origin, key);
    if (opt.ordered) end_slot();
    else if (took && fill == opt.batch_size) run_step();
    return took;
  }

  void skip_slot() {
    if (finished || group_ended || budget_reached || (opt.steps > 0 && step >= opt.steps)) return;
    ctx.count("train.order_empty_slots");
    end_slot();
  }

  void end_slot() {
    if (++slots < opt.batch_size) return;
    slots = 0;
    if (fill == 0)
      throw std::runtime_error("deterministic order: every sample of a micro-batch (" +
                               std::to_string(opt.batch_size) + " slots ending at step " + std::to_string(step) +
                               ") was dropped; nothing to train on");
    run_step();
  }

  bool add_sample(const Tensor& image, const IntList& lab, const Origin& origin, const std::string& key) {
    auto now = Clock::now();
    if (!started) {
      started = true;
      first_item = window_start = now;
      cpu_at_first = cpu_seconds();
      next_ckpt_s = opt.checkpoint_every_s;
    }
    // Consumed already (before a resume, or delivered twice), or waiting in
    // the open batch: skipped, so every sample is trained on at most once.
    if (position.contains(origin) || pending_set.contains(origin)) {
      ctx.count(resume_position.contains(origin) ? "train.resume_skipped_consumed" : "train.duplicate_skipped");
      return false;
    }
    const auto& sh = image.shape;
    if (image.dtype != DType::U8 || sh.size() != 3 || sh[2] != 3 || sh[0] <= 0 || sh[1] <= 0 ||
        !image.valid()) {
      ctx.count("skipped.bad_image");
      if (++bad_images_logged <= 10)  // the counter keeps the total; do not flood the log
        log(LogLevel::Warn, "sample " + key + " (" + origin.url + " #" + std::to_string(origin.index) +
                              "): image must be uint8 [H,W,3]; skipped");
      return false;
    }
    std::vector<int64_t> ls(lab.begin(), lab.end());
    if (!obj->take_ints(ls, ctx)) return false;
    auto slot = batches->host()[fill];
    auto src = torch::from_blob(const_cast<char*>(image.data.data()), {sh[0], sh[1], 3}, torch::kUInt8);
    if (sh[0] == cfg.image_size && sh[1] == cfg.image_size) {
      std::memcpy(slot.data_ptr(), image.data.data(), image.data.size());
    } else {
      // The decode stage should already produce image_size; resize as a fallback.
      auto f = src.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32);
      f = torch::nn::functional::interpolate(
          f, torch::nn::functional::InterpolateFuncOptions()
                 .size(std::vector<int64_t>{cfg.image_size, cfg.image_size})
                 .mode(torch::kBilinear)
                 .align_corners(false));
      slot.copy_(f.squeeze(0).permute({1, 2, 0}).round().clamp(0, 255).to(torch::kUInt8));
      ctx.count("train.resized");
    }
    labels.push_back(std::move(ls));
    pending.emplace_back(origin, key);
    pending_set.insert(origin);
    ++fill;
    ctx.count("train.samples");
    return true;
  }

  // A rank's input ended: every rank stops here, dropping what it holds.
  void end_group() {
    group_ended = true;
    if (fill > 0 || micro > 0)
      ctx.count("train.dropped_partial_batch_samples", fill + micro * opt.batch_size);
    fill = 0;
    micro = 0;
    slots = 0;
    labels.clear();
    pending.clear();
    pending_set.clear();
    log(LogLevel::Info, "a rank's input ended: all " + std::to_string(opt.dist.world_size) + " ranks stop at step " +
                            std::to_string(step));
  }

  // One micro-step on the full batch; every accumulate_steps-th also steps
  // the optimizer.
  void run_step() {
    if (dp && !dp->all_true(true)) return end_group();
    auto t0 = Clock::now();
    const double lr = lr_for(step);
    lr_used = lr;
    const bool last_micro = micro + 1 == opt.accumulate_steps;
    // Ordered, with dropped slots: the micro-batch holds fewer samples.
    auto staged = batches->stage();
    if (fill < opt.batch_size) staged = staged.narrow(0, 0, fill);
    auto x = model::preprocess_images(staged, device, opt.mean, opt.std);
    ObjectiveEnv env;
    env.device = device;
    env.bf16_cuda = bf16_cuda;
    env.bf16_cpu = bf16_cpu;
    env.dp = dp.get();
    env.rank = rank();
    auto loss = obj->loss(x, labels, env);
    if (micro == 0) optim->zero_grad();
    if (dp) dp->begin_backward(last_micro);
    (opt.accumulate_steps > 1 ? loss / double(opt.accumulate_steps) : loss).backward();
    loss_accum += loss.item<double>() / double(opt.accumulate_steps);  // also waits for the device
    labels.clear();
    fill = 0;
    slots = 0;
    if (!last_micro) {
      ++micro;
      return;
    }
    micro = 0;
    exposed_s = dp ? dp->finish_backward() : 0;
    double gn = clip_grad_norm(params, opt.clip_grad_norm);  // of the averaged gradients: the global norm
    optim->step(lr);
    obj->after_step();
    if (ema) ema->update(state);
    double loss_v = loss_accum;
    loss_accum = 0;
    if (dp) loss_v = dp->sum({loss_v})[0] / opt.dist.world_size;
    ++step;
    for (auto& [o, key] : pending) {
      position.insert(o);
      if (!warned_exceptions && DataPosition::tracked(o) &&
          position.find(o)->exceptions().size() > DataPosition::kExceptionWarn) {
        warned_exceptions = true;
        log(LogLevel::Warn, "data position: stream " + o.url + " (epoch " + std::to_string(o.epoch) + ") holds " +
                                std::to_string(position.find(o)->exceptions().size()) +
                                " samples consumed ahead of a gap (index " +
                                std::to_string(position.find(o)->hwm()) +
                                " has not arrived); all are kept, checkpoints grow with them");
      }
    }
    write_id_log();
    pending.clear();
    pending_set.clear();

    auto t1 = Clock::now();
    StepMetrics m;
    m.step = step;
    m.loss = loss_v;
    m.lr = lr;
    m.grad_norm = gn;
    m.step_s = secs(t1 - t0);
    m.window_s = secs(t1 - window_start);
    m.images_per_s = m.window_s > 0 ? double(global_batch()) / m.window_s : 0;
    m.input_wait_frac = m.window_s > 0 ? std::min(1.0, wait_window / m.window_s) : 0;
    double total = secs(t1 - first_item);
    m.input_wait_frac_total = total > 0 ? std::min(1.0, wait_total / total) : 0;
    last = m;
    window_start = t1;
    wait_window = 0;
    report(m);
    if (!std::isfinite(loss_v)) {
      ctx.count("error.nonfinite_loss");
      log(LogLevel::Error, "step " + std::to_string(step) + ": loss is " + std::to_string(loss_v));
    }
    bool ckpt_due = opt.checkpoint_every > 0 && step % opt.checkpoint_every == 0;
    if (time_based()) {
      agreed_s = train_seconds();
      if (dp) agreed_s = dp->sum({rank() == 0 ? agreed_s : 0.0})[0];  // rank 0's clock, on every rank
      if (opt.checkpoint_every_s > 0 && agreed_s >= next_ckpt_s) {
        ckpt_due = true;
        while (next_ckpt_s <= agreed_s) next_ckpt_s += opt.checkpoint_every_s;
      }
      if (opt.time_budget_s > 0 && agreed_s >= opt.time_budget_s) {
        budget_reached = true;
        log(LogLevel::Info, "time budget of " + std::to_string(opt.time_budget_s) + " s reached at step " +
                                std::to_string(step));
      }
    }
    if (ckpt_due) {
      ckpt_at_s = time_based() ? agreed_s : -1;
      save_checkpoint();
      ckpt_at_s = -1;
    }
  }

  static double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  }

  double train_seconds() const { return started ? secs(Clock::now() - first_item) : 0.0; }

  void report(const StepMetrics& m) {
    obj->report(ctx);
    ctx.count("train.steps");
    ctx.gauge("train.step", double(m.step));
    ctx.gauge("train.loss", m.loss);
    ctx.gauge("train.lr", m.lr);
    ctx.gauge("train.grad_norm", m.grad_norm);
    ctx.gauge("train.step_s", m.step_s);
    ctx.gauge("train.images_per_s", m.images_per_s);
    ctx.gauge("train.input_wait_frac", m.input_wait_frac);
    ctx.gauge("train.input_wait_frac_total", m.input_wait_frac_total);
    if (metrics.is_open()) {
      // Fixed precision per field (loss 6 digits, times to the microsecond, ...):
      // short lines; non-finite values (a diverged loss) are written as null.
      const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
      json::Ordered line = {{"step", m.step},
                            {"time", json::round_fixed(now, 3)},
                            {"loss", json::round_sig(m.loss, 6)},
                            {"lr", json::round_sig(m.lr, 6)},
                            {"grad_norm", json::round_sig(m.grad_norm, 6)},
                            {"step_s", json::round_fixed(m.step_s, 6)},
                            {"window_s", json::round_fixed(m.window_s, 6)},
                            {"images_per_s", json::round_fixed(m.images_per_s, 3)},
                            {"input_wait_frac", json::round_fixed(m.input_wait_frac, 4)},
                            {"input_wait_frac_total", json::round_fixed(m.input_wait_frac_total, 4)}};
      metrics << json::dump(line) << "\n";
      metrics.flush();
    }
    if (opt.log_every > 0 && rank() == 0 && (m.step % opt.log_every == 0 || m.step == 1)) {
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "step %lld loss %.4f lr %.3g grad-norm %.3g %.1f img/s step %.3fs input-wait %.1f%%",
                    static_cast<long long>(m.step), m.loss, m.lr, m.grad_norm, m.images_per_s,
                    m.step_s, 100.0 * m.input_wait_frac);
      log(LogLevel::Info, buf);
    }
  }

  void finish() {
    if (finished) return;
    finished = true;
    // This rank's input ended first: the others stop with it (they learn it
    // in their next agreement), so nobody waits in an allreduce.
    if (dp && !group_ended && !budget_reached && !(opt.steps > 0 && step >= opt.steps)) {
      dp->all_true(false);
      group_ended = true;
    }
    if (fill > 0 || micro > 0) {
      int64_t n = fill + micro * opt.batch_size;
      ctx.count("train.dropped_partial_batch_samples", n);
      log(LogLevel::Info, "dropping the last partial batch of " + std::to_string(n) + " samples");
      fill = 0;
      micro = 0;
      slots = 0;
      labels.clear();
      pending.clear();
      pending_set.clear();
    }
    if (step > 0 && last_ckpt_step != step) save_checkpoint();
    wait_checkpoint();  // the last checkpoint is on disk before the run reports success
    if (opt.export_weights && step > 0 && rank() == 0) {
      auto p = obj->export_weights(export_dir, "model", state, step);
      log(LogLevel::Info, "exported " + p);
      // Say when timm cannot load it, and what comes nearest.
      if (std::string(obj->name()) == "catlip")
        if (auto tf = model::timm_form(obj->image_config()); !tf.exact)
          log(LogLevel::Warn, "export: not loadable by timm: " + tf.note);
      if (ema) log(LogLevel::Info, "exported " + obj->export_weights(export_dir, "model_ema", ema->tensors(), step));
    }
    log(LogLevel::Info, "training finished at step " + std::to_string(step));
  }
};

Trainer::Trainer(TrainOptions opt, StageContext& ctx) : impl_(std::make_unique<Impl>(std::move(opt), ctx)) {
  impl_->setup();
}
Trainer::~Trainer() {
  // A write still running (training stopped by an error): let it finish, so
  // no half-written temporary is left and the thread is joined.
  if (impl_ && impl_->ckpt_writer.joinable()) impl_->ckpt_writer.join();
}

bool Trainer::add(const Tensor& image, const IntList& labels, const Origin& origin, const std::string& key) {
  return impl_->add(image, labels, origin, key);
}
void Trainer::skip_slot() { impl_->skip_slot(); }
int64_t Trainer::order_position() const { return impl_->order_position(); }
void Trainer::note_input_wait(double seconds) {
  if (!impl_->started || seconds <= 0) return;  // time before the first item is start-up, not waiting
  impl_->wait_window += seconds;
  impl_->wait_total += seconds;
}
void Trainer::finish() { impl_->finish(); }
std::string Trainer::save_checkpoint() {
  std::string path = impl_->save_checkpoint();
  std::string waited = impl_->wait_checkpoint();  // the API's promise: on disk when it returns
  return waited.empty() ? path : waited;
}
int64_t Trainer::step() const { return impl_->step; }
bool Trainer::done() const {
  return impl_->group_ended || impl_->budget_reached || (impl_->opt.steps > 0 && impl_->step >= impl_->opt.steps);
}
bool Trainer::time_budget_reached() const { return impl_->budget_reached; }
double Trainer::train_seconds() const { return impl_->train_seconds(); }
int64_t Trainer::global_batch() const { return impl_->global_batch(); }
int Trainer::rank() const { return impl_->opt.dist.rank; }
int Trainer::world_size() const { return impl_->opt.dist.world_size; }
double Trainer::last_exposed_allreduce_s() const { return impl_->exposed_s; }
int64_t Trainer::allreduce_bytes_per_step() const { return impl_->dp ? impl_->dp->bytes_per_step() : 0; }
const model::ViTConfig& Trainer::model_config() const { return impl_->cfg; }
const std::string& Trainer::vocab_checksum() const { return impl_->obj->checksum(); }
const DataPosition& Trainer::data_position() const { return impl_->position; }
const StepMetrics& Trainer::last_metrics() const { return impl_->last; }
std::string Trainer::device_name() const { return impl_->device.str(); }

std::vector<std::pair<std::string, Tensor>> Trainer::weights(bool ema) const {
  std::vector<std::pair<std::string, Tensor>> out;
  const model::NamedTensors& src = ema && impl_->ema ? impl_->ema->tensors() : impl_->state;
  for (auto& [n, t] : src) out.emplace_back(n, model::to_catlip(t));
  return out;
}

}  // namespace catlip::train
