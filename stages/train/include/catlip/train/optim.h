// catlip/train/optim.h - AdamW with CatLIP's parameter groups, gradient
// clipping and an EMA of the weights.
//
// Written out rather than using torch::optim::AdamW so that the per-parameter
// state is plain named tensors (checkpointed by name, inspectable in tests).
// Two implementations of one update: "fused" (default), ATen's
// _fused_adamw_ kernel (what torch.optim.AdamW(fused=True) runs: one pass
// over every tensor of a group, on CPU and CUDA), and "loop", the plain
// per-tensor ops it is tested against. Both are exactly PyTorch's AdamW:
//   p *= 1 - lr * wd                 (decoupled decay; wd = 0 for excluded params)
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
#pragma once

#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace catlip::train {

// CatLIP/timm rule: no weight decay on biases, normalisation parameters (all
// 1-D parameters), the position embedding and the CLS token.
bool excluded_from_weight_decay(const std::string& name, const torch::Tensor& p);

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.2;
  std::string impl = "fused";  // fused | loop
};

class AdamW {
 public:
  struct Slot {
    std::string name;
    torch::Tensor param, exp_avg, exp_avg_sq;
    bool decay = true;
  };

  AdamW(const std::vector<std::pair<std::string, torch::Tensor>>& named_params, AdamWOptions opt);
  // One update with learning rate `lr`; parameters without a gradient are skipped.
  void step(double lr);
  const std::string& impl() const { return opt_.impl; }
  // Drops gradients (sets them undefined, so the next backward writes rather than adds).
  void zero_grad();
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }
  std::vector<Slot>& slots() { return slots_; }
  const std::vector<Slot>& slots() const { return slots_; }
  std::vector<std::string> decay_names() const;
  std::vector<std::string> no_decay_names() const;

 private:
  void step_loop(double lr, double bc1, double bc2_sqrt);
  void step_fused(double lr);

  AdamWOptions opt_;
  std::vector<Slot> slots_;
  torch::Tensor step_t_;  // fused: the step count as the kernel reads it (float32 on the device)
  int64_t steps_ = 0;
};

// Scales gradients so their global L2 norm is at most max_norm (if > 0);
// returns the norm before clipping (as torch.nn.utils.clip_grad_norm_).
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

// Exponential moving average of parameters and buffers:
//   ema = decay * ema + (1 - decay) * value   (buffers are copied)
class Ema {
 public:
  Ema(const std::vector<std::pair<std::string, torch::Tensor>>& named_tensors, double decay);
  void update(const std::vector<std::pair<std::string, torch::Tensor>>& named_tensors);
  std::vector<std::pair<std::string, torch::Tensor>>& tensors() { return ema_; }
  double decay() const { return decay_; }

 private:
  double decay_;
  std::vector<std::pair<std::string, torch::Tensor>> ema_;
};

}  // namespace catlip::train
