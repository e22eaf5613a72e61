// tools/torch/bench_train.h - what `catlip bench train`'s two modes share:
// the trainer's model and optimizer as the trainer sets them up, the timed
// C++ step, and the data-parallel mode's entry points (bench_train_dp.cpp).
// Internal to catlip-torch; includes LibTorch.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "catlip/model/state_io.h"
#include "catlip/model/vit.h"
#include "catlip/train/optim.h"

namespace catlip::bench {

using train::AdamW;
using train::AdamWOptions;
using model::FastPaths;
using model::NamedTensors;
using model::ViT;
using model::ViTConfig;
using Clock = std::chrono::steady_clock;

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// The trainer's model and optimizer as trainer.cpp sets them up: on the
// device, training mode, its default fast paths (SDPA attention,
// channels-last stem), AdamW with the default (fused) kernel.
struct StepModel {
  ViT model{nullptr};
  std::vector<torch::Tensor> params;
  std::unique_ptr<AdamW> opt;

  StepModel(const ViTConfig& cfg, const torch::Device& device) : model(cfg) {
    model->to(device);
    model->train();
    model::apply_fast_paths(*model, FastPaths{});
    NamedTensors named;
    for (auto& kv : model->named_parameters(true)) {
      named.emplace_back(kv.key(), kv.value());
      params.push_back(kv.value());
    }
    opt = std::make_unique<AdamW>(named, AdamWOptions{});
  }
};

// One training step's seconds, `steps` of them after `warmup` untimed ones.
// bf16: autocast around the forward pass (as the objectives do), loss in fp32.
std::vector<double> cpp_steps(const ViTConfig& cfg, int64_t batch, int steps, int warmup,
                              const torch::Device& device = torch::kCPU, bool bf16 = false);

// ---- data parallel: --ranks N (bench_train_dp.cpp) ----

struct DpSpec {
  ViTConfig cfg;
  std::string size;
  int64_t batch = 32;  // per rank
  int ranks = 2, threads = 2, steps = 20, warmup = 2;
  double bucket_mb = 1;
  int threads_per_rank() const { return std::max(1, threads / ranks); }
};

// One rank's process (the binary re-executed with --dp-rank).
int dp_worker(const DpSpec& d, int rank, const std::string& endpoint);
// Starts the ranks, times `rounds` rounds of the three modes, prints the table.
int dp_bench(const DpSpec& d, int rounds);

}  // namespace catlip::bench
