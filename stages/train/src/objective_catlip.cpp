// The CatLIP objective: ViT + synset head, BCE on multi-hot labels.
#include <ATen/autocast_mode.h>

#include <stdexcept>

#include "catlip/model/model_io.h"
#include "catlip/model/vit.h"
#include "catlip/model/vocab.h"
#include "catlip/train/loss.h"
#include "catlip/train/objective.h"

namespace catlip::train {

AutocastScope::AutocastScope(bool cuda_bf16, bool cpu_bf16) : cuda_(cuda_bf16), cpu_(cpu_bf16) {
  if (cuda_) {
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
  }
  if (cpu_) {
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCPU, true);
  }
}

AutocastScope::~AutocastScope() {
  if (cuda_) at::autocast::set_autocast_enabled(at::kCUDA, false);
  if (cpu_) at::autocast::set_autocast_enabled(at::kCPU, false);
  if (cuda_ || cpu_) at::autocast::clear_cache();
}

namespace {

class CatlipObjective : public Objective {
 public:
  explicit CatlipObjective(const TrainOptions& opt) {
    if (opt.vocab_path.empty()) throw std::invalid_argument("train.catlip: vocab is required");
    vocab_ = model::load_vocab(opt.vocab_path);
    cfg_ = opt.model;
    cfg_.num_classes = vocab_.size();
    cfg_.mean = opt.mean;  // recorded in checkpoints and exports for the evaluator
    cfg_.std = opt.std;
    if (auto e = cfg_.check(); !e.empty()) throw std::invalid_argument("model: " + e);
    model_ = model::ViT(cfg_);
  }
  const char* name() const override { return "catlip"; }
  torch::nn::Module& module() override { return *model_; }
  const model::ViTConfig& image_config() const override { return cfg_; }

  bool take_ints(std::vector<int64_t>& labels, StageContext& ctx) override {
    size_t k = 0;
    for (int64_t l : labels) {
      if (l < 0 || l >= vocab_.size()) ctx.count("skipped.label_out_of_range");
      else labels[k++] = l;
    }
    labels.resize(k);
    if (labels.empty()) ctx.count("train.no_labels");  // trained on as a negative for every class
    return true;
  }

  torch::Tensor loss(const torch::Tensor& x, const std::vector<std::vector<int64_t>>& labels,
                     const ObjectiveEnv& env) override {
    auto target = multi_hot(labels, vocab_.size(), env.device);
    torch::Tensor logits;
    {
      AutocastScope ac(env.bf16_cuda, env.bf16_cpu);
      logits = model_->forward(x);
    }
    return catlip_bce_loss(logits, target);
  }

  const std::string& checksum() const override { return vocab_.checksum; }

  std::map<std::string, std::string> meta() const override {
    return {{"catlip.objective", "catlip"},
            {"catlip.model", cfg_.to_string()},
            {"catlip.vocab_checksum", vocab_.checksum},
            {"catlip.vocab_size", std::to_string(vocab_.size())}};
  }

  void check_resume(const std::map<std::string, std::string>& m, const std::string& path) const override {
    auto get = [&](const std::string& k) -> std::string {
      auto it = m.find(k);
      if (it == m.end()) throw std::runtime_error(path + ": metadata '" + k + "' missing");
      return it->second;
    };
    if (auto it = m.find("catlip.objective"); it != m.end() && it->second != "catlip")
      throw std::runtime_error(path + " is a " + it->second + " checkpoint; train.catlip cannot resume it");
    if (get("catlip.vocab_checksum") != vocab_.checksum)
      throw std::runtime_error(path + " was trained with vocabulary " + get("catlip.vocab_checksum") + " but " +
                               vocab_.path + " is " + vocab_.checksum +
                               "; refusing to resume with another vocabulary");
    if (model::ViTConfig::parse(get("catlip.model")) != cfg_)
      throw std::runtime_error(path + " holds model '" + get("catlip.model") + "' but the configuration asks for '" +
                               cfg_.to_string() + "'");
  }

  std::string export_weights(const std::string& dir, const std::string& name, const model::NamedTensors& state,
                             int64_t step) const override {
    return model::export_model(dir, name, state, cfg_, vocab_, step);
  }

  std::string describe() const override {
    return "CatLIP: ViT " + cfg_.to_string() + ", vocabulary " + std::to_string(vocab_.size()) + " (" +
           vocab_.checksum + ")";
  }

 private:
  model::Vocab vocab_;
  model::ViTConfig cfg_;
  model::ViT model_{nullptr};
};

}  // namespace

std::unique_ptr<Objective> make_catlip_objective(const TrainOptions& opt) {
  return std::make_unique<CatlipObjective>(opt);
}

}  // namespace catlip::train
