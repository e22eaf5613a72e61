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
  const double bc1 = 1.0 - std::pow(opt_.beta1, double(steps_));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(opt_.beta2, double(steps_)));
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
  std::vector<torch::Tensor> norms;
  for (auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().norm(2).to(torch::kFloat32));
  if (norms.empty()) return 0.0;
  // One device->host sync for the whole model.
  double total = torch::stack(norms).norm(2).item<double>();
  if (max_norm > 0 && total > max_norm) {
    double coef = max_norm / (total + 1e-6);
    for (auto& p : params)
      if (p.grad().defined()) p.mutable_grad().mul_(coef);
  }
  return total;
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
    if (e.is_floating_point()) e.mul_(decay_).add_(t.detach(), 1.0 - decay_);
    else e.copy_(t);
  }
}

}  // namespace catlip::train
