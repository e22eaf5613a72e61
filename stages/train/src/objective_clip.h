// The CLIP objective's class (objective_clip.cpp), private to the trainer
// library so that train.siglip (objective_siglip.cpp) can reuse it, changing
// only the loss and adding the logit bias.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "catlip/model/clip_model.h"
#include "catlip/train/data_parallel.h"
#include "catlip/train/loss.h"
#include "catlip/train/objective.h"

namespace catlip::train {

// The CatLIP ViT as image tower + CLIP's text transformer; symmetric
// InfoNCE with a learnable logit scale, features gathered across ranks with
// gradient (OpenCLIP's --gather-with-grad --local-loss).
class ClipObjective : public Objective {
 public:
  // name: what checkpoints record as catlip.objective ("clip"; "siglip" for
  // the subclass, which also passes its logit bias's initial value).
  explicit ClipObjective(const TrainOptions& opt, std::string name = "clip",
                         std::optional<double> init_logit_bias = std::nullopt)
      : name_(std::move(name)), tok_(model::read_tokenizer_info(opt.tokenizer_path)),
        gather_(opt.clip.gather_features), max_scale_(opt.clip.max_logit_scale) {
    vision_ = opt.model;
    vision_.mean = opt.mean;
    vision_.std = opt.std;
    text_ = opt.clip.text;
    text_.vocab_size = tok_.vocab_size;
    vision_.num_classes = text_.embed_dim;
    if (auto e = vision_.check(); !e.empty()) throw std::invalid_argument("image model: " + e);
    if (auto e = text_.check(); !e.empty()) throw std::invalid_argument("text model: " + e);
    if (!(opt.clip.init_logit_scale >= 1 && opt.clip.init_logit_scale <= max_scale_))
      throw std::invalid_argument("init_logit_scale must be within [1, max_logit_scale]");
    model_ = model::ClipModel(vision_, text_, opt.clip.init_logit_scale, init_logit_bias);
  }
  const char* name() const override { return name_.c_str(); }
  torch::nn::Module& module() override { return *model_; }
  const model::ViTConfig& image_config() const override { return vision_; }

  bool take_ints(std::vector<int64_t>& tokens, StageContext& ctx) override {
    const int64_t eot = text_.vocab_size - 1;
    if (tokens.size() < 2) {
      ctx.count("skipped.no_tokens");
      return false;
    }
    for (int64_t t : tokens)
      if (t < 0 || t >= text_.vocab_size) {
        ctx.count("skipped.token_out_of_range");
        return false;
      }
    if (tokens.back() != eot) {
      ctx.count("skipped.tokens_without_eot");
      return false;
    }
    if (int64_t(tokens.size()) > text_.context_length) {
      tokens.resize(size_t(text_.context_length));
      tokens.back() = eot;
      ctx.count("train.tokens_truncated");
    }
    return true;
  }

  torch::Tensor loss(const torch::Tensor& x, const std::vector<std::vector<int64_t>>& tokens,
                     const ObjectiveEnv& env) override {
    auto [img, txt] = features(x, tokens, env);
    if (env.dp && gather_) {
      auto all_img = env.dp->gather_with_grad(img);
      auto all_txt = env.dp->gather_with_grad(txt);
      return clip_loss(img, txt, model_->logit_scale, all_img, all_txt, int64_t(env.rank) * img.size(0));
    }
    return clip_loss(img, txt, model_->logit_scale, img, txt, 0);
  }

  void after_step() override { model_->clamp_logit_scale(max_scale_); }
  void report(StageContext& ctx) override {
    ctx.gauge("train.logit_scale", model_->logit_scale.detach().exp().item<double>());
  }

  const std::string& checksum() const override { return tok_.checksum; }

  std::map<std::string, std::string> meta() const override {
    return {{"catlip.objective", name_},
            {"catlip.model", vision_.to_string()},
            {"catlip.text_model", text_.to_string()},
            {"catlip.tokenizer_checksum", tok_.checksum},
            {"catlip.vocab_checksum", tok_.checksum}};
  }

  void check_resume(const std::map<std::string, std::string>& m, const std::string& path) const override {
    auto get = [&](const std::string& k) -> std::string {
      auto it = m.find(k);
      if (it == m.end()) throw std::runtime_error(path + ": metadata '" + k + "' missing");
      return it->second;
    };
    if (get("catlip.objective") != name_)
      throw std::runtime_error(path + " is a " + get("catlip.objective") + " checkpoint; train." + name_ +
                               " cannot resume it");
    if (get("catlip.tokenizer_checksum") != tok_.checksum)
      throw std::runtime_error(path + " was trained with tokenizer " + get("catlip.tokenizer_checksum") + " but " +
                               tok_.path + " is " + tok_.checksum + "; refusing to resume with another tokenizer");
    if (model::ViTConfig::parse(get("catlip.model")) != vision_ || model::TextConfig::parse(get("catlip.text_model")) != text_)
      throw std::runtime_error(path + " holds model '" + get("catlip.model") + "' / '" + get("catlip.text_model") +
                               "' but the configuration asks for '" + vision_.to_string() + "' / '" +
                               text_.to_string() + "'");
  }

  std::string export_weights(const std::string& dir, const std::string& name, const model::NamedTensors& state,
                             int64_t step) const override {
    return model::export_clip(dir, name, state, vision_, text_, tok_.path, tok_.checksum, step, name_);
  }

  std::string describe() const override {
    return "CLIP: image ViT " + vision_.to_string() + "; text " + text_.to_string() + "; tokenizer " + tok_.path +
           " (" + tok_.checksum + ")" + (gather_ ? "" : "; features not gathered across ranks");
  }

 protected:
  // The forward pass under env's autocast: this batch's image and text
  // features [B,E], L2-normalised, in fp32.
  std::pair<torch::Tensor, torch::Tensor> features(const torch::Tensor& x,
                                                   const std::vector<std::vector<int64_t>>& tokens,
                                                   const ObjectiveEnv& env) {
    auto ids = model::pad_tokens(tokens, env.device);
    torch::Tensor img, txt;
    {
      AutocastScope ac(env.bf16_cuda, env.bf16_cpu);
      img = model_->encode_image(x);
      txt = model_->encode_text(ids);
    }
    namespace F = torch::nn::functional;
    img = F::normalize(img.to(torch::kFloat32), F::NormalizeFuncOptions().dim(-1));
    txt = F::normalize(txt.to(torch::kFloat32), F::NormalizeFuncOptions().dim(-1));
    return {img, txt};
  }

  std::string name_;
  model::TokenizerInfo tok_;
  bool gather_;
  double max_scale_;
  model::ViTConfig vision_;
  model::TextConfig text_;
  model::ClipModel model_{nullptr};
};

}  // namespace catlip::train
