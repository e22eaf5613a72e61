// The implementation of catlip/train/optim.h: AdamW (fused and loop), the weight-decay
// exclusions, gradient-norm clipping and the weight EMA.
#include "catlip/train/optim.h"

#include <cmath>
#include <stdexcept>

namespace catlip::train {

bool excluded_from_weight_decay(const std::string& name, const torch::Tensor& p) {
  if (p.dim() <= 1) return true;  // biases, LayerNorm/BatchNorm weights
  if (name == "cls_token" || name == "pos_embed") return true;
  auto ends = [&](const char* s) {
    std::string suf = s;
    return name.size() >= suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
  };
  return ends(".bias");
}

AdamW::AdamW(const std::vector<std::pair<std::string, torch::Tensor>>& named_params, AdamWOptions opt)
    : opt_(opt) {
  if (opt_.impl != "fused" && opt_.impl != "loop")
    throw std::invalid_argument("adamw implementation must be fused or loop, not '" + opt_.impl + "'");
  for (auto& [name, p] : named_params) {
    if (!p.requires_grad()) continue;
    Slot s;
    s.name = name;
    s.param = p;
    s.exp_avg = torch::zeros_like(p, torch::MemoryFormat::Preserve);
    s.exp_avg_sq = torch::zeros_like(p, torch::MemoryFormat::Preserve);
    s.decay = !excluded_from_weight_decay(name, p);
    slots_.push_back(std::move(s));
  }
}

void AdamW::step(double lr) {
  torch::NoGradGuard g;
  ++steps_;
  if (opt_.impl == "fused") return step_fused(lr);
  const double bc1 = 1.0 - std::pow(opt_.beta1, double(steps_));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(opt_.beta2, double(steps_)));
  step_loop(lr, bc1, bc2_sqrt);
}

void AdamW::step_loop(double lr, double bc1, double bc2_sqrt) {
  const double step_size = lr / bc1;
  for (auto& s : slots_) {
    auto& grad = s.param.mutable_grad();
    if (!grad.defined()) continue;
    if (s.decay && opt_.weight_decay != 0) s.param.mul_(1.0 - lr * opt_.weight_decay);
    s.exp_avg.mul_(opt_.beta1).add_(grad, 1.0 - opt_.beta1);
    s.exp_avg_sq.mul_(opt_.beta2).addcmul_(grad, grad, 1.0 - opt_.beta2);
    auto denom = (s.exp_avg_sq.sqrt() / bc2_sqrt).add_(opt_.eps);
    s.param.addcdiv_(s.exp_avg, denom, -step_size);
  }
}

// One _fused_adamw_ call per (weight decay, device) group. The kernel reads
// the step count from a tensor per parameter (it does not change them):
// every parameter's entry is the same one-element tensor, set once per step.
void AdamW::step_fused(double lr) {
  if (slots_.empty()) return;
  if (!step_t_.defined() || step_t_.device() != slots_.front().param.device())
    step_t_ = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(slots_.front().param.device()));
  step_t_.fill_(double(steps_));
  for (bool decay : {true, false}) {
    std::vector<torch::Tensor> p, gr, m, v, st;
    for (auto& s : slots_) {
      if (s.decay != decay || !s.param.grad().defined()) continue;
      if (s.param.device() != step_t_.device())
        throw std::logic_error("AdamW: parameters on more than one device (" + s.name + ")");
      p.push_back(s.param);
      gr.push_back(s.param.grad());
      m.push_back(s.exp_avg);
      v.push_back(s.exp_avg_sq);
      st.push_back(step_t_);
    }
    if (p.empty()) continue;
    at::_fused_adamw_(p, gr, m, v, /*max_exp_avg_sqs=*/{}, st, lr, opt_.beta1, opt_.beta2,
                      decay ? opt_.weight_decay : 0.0, opt_.eps, /*amsgrad=*/false, /*maximize=*/false);
  }
}

void AdamW::zero_grad() {
  for (auto& s : slots_) s.param.mutable_grad() = torch::Tensor();
}

std::vector<std::string> AdamW::decay_names() const {
  std::vector<std::string> out;
  for (auto& s : slots_)
    if (s.decay) out.push_back(s.name);
  return out;
}

std::vector<std::string> AdamW::no_decay_names() const {
  std::vector<std::string> out;
  for (auto& s : slots_)
    if (!s.decay) out.push_back(s.name);
  return out;
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard g;
  std::vector<torch::Tensor> grads;
  for (auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  // One multi-tensor norm kernel, then the scale on the device (as
  // torch.nn.utils.clip_grad_norm_: clamp(max_norm / (total + 1e-6), max=1)).
  auto total = torch::stack(at::_foreach_norm(grads, 2.0)).to(torch::kFloat32).norm(2);
  if (max_norm > 0) {
    auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
    at::_foreach_mul_(grads, coef);
  }
  return total.item<double>();  // the one device->host sync
}

Ema::Ema(const std::vector<std::pair<std::string, torch::Tensor>>& named_tensors, double decay)
    : decay_(decay) {
  torch::NoGradGuard g;
  for (auto& [name, t] : named_tensors) ema_.emplace_back(name, t.detach().clone());
}

void Ema::update(const std::vector<std::pair<std::string, torch::Tensor>>& named_tensors) {
  torch::NoGradGuard g;
  if (named_tensors.size() != ema_.size()) throw std::logic_error("EMA: tensor list changed");
  for (size_t i = 0; i < ema_.size(); ++i) {
    auto& e = ema_[i].second;
    const auto& t = named_tensors[i].second;
    if (e.is_floating_point()) e.lerp_(t.detach(), 1.0 - decay_);  // = decay*e + (1-decay)*t
    else e.copy_(t);
  }
}

}  // namespace catlip::train
