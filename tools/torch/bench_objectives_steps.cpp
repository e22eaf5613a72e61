// The four objectives as ObjectiveSteps (bench_objectives.h): the model each
// trainer objective builds, and its loss from the trainer's own functions.
//
// FLOPs (flops()): per sample, forward, matrix products only at 2 FLOPs per
// multiply-add (ViTConfig::forward_flops, TextConfig::forward_flops at the
// padded caption length the text tower runs on) plus the similarity
// matrices at global batch N (CLIP: image x text^T and text x image^T, 2 x
// 2 x E x N; SigLIP: image x text^T only, 2 x E x N, whichever rank holds
// the texts). The losses' element-wise work (BCE over V synsets, softmax
// over V BPE ids, sigmoid over N pairs) is left out: under 1% at these
// sizes. A training step is about 3x the forward.
//
// Bytes (expected_bytes()): what a rank hands to collectives per step, in
// fp32 unless said (DataParallel::Traffic counts the same when measuring):
//   every objective   its gradients, 4 x parameters (the bucket allreduce)
//   CLIP              forward: allgather of this rank's [B,E] image and text
//                     features (2 x 4BE); backward: allreduce of the
//                     gathered [W*B,E] gradients (2 x 4WBE)
//   SigLIP            the ring (siglip_ring_loss): per bidirectional round
//                     two [B,E] sent forward and two gradients back (16BE),
//                     (W-1)/2 rounds, plus one one-way round for an even W
//                     (4BE forward + 4BE back); W = 2: 8BE
//   SuperClass        the document counts, int64 [V+1] (TokenIdf::add)
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "bench_objectives.h"
#include "catlip/model/clip_model.h"
#include "catlip/model/vit.h"
#include "catlip/train/data_parallel.h"
#include "catlip/train/loss.h"
#include "catlip/train/optim.h"
#include "catlip/train/superclass.h"

namespace catlip::bench::objectives {

using Clock = std::chrono::steady_clock;
using train::DataParallel;
namespace F = torch::nn::functional;

const char* const kObjectiveNames[4] = {"catlip", "clip", "siglip", "superclass"};

namespace {

double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

torch::Tensor normalise(const torch::Tensor& t) { return F::normalize(t, F::NormalizeFuncOptions().dim(-1)); }

// CatLIP (train.catlip): the ViT with a head of V synsets, BCE on multi-hot.
class CatlipStep : public ObjectiveStep {
 public:
  CatlipStep(const Spec& s, const torch::Device& d) : cfg_(s.vit) {
    model_ = model::ViT(cfg_);
    init(*model_, d);
  }
  std::string name() const override { return "catlip"; }
  std::string title() const override { return "CatLIP"; }
  std::string describe() const override {
    return "ViT + " + std::to_string(cfg_.num_classes) + "-synset head, multi-hot BCE (catlip_bce_loss)";
  }
  double flops(int64_t, int64_t) const override { return cfg_.forward_flops(); }
  Bytes expected_bytes(int64_t, int) const override { return {4.0 * double(parameter_count()), 0, 0}; }

 protected:
  torch::Tensor image(const Batch& b) override { return model_->forward(b.x); }
  torch::Tensor loss(const torch::Tensor& img, const torch::Tensor&, const Batch& b, DataParallel*) override {
    return train::catlip_bce_loss(img, b.y);
  }

 private:
  model::ViTConfig cfg_;
  model::ViT model_{nullptr};
};

// CLIP (train.clip) and SigLIP (train.siglip): the ViT as image tower
// (head = projection to E) and CLIP's text transformer.
class TwoTowerStep : public ObjectiveStep {
 public:
  TwoTowerStep(const Spec& s, const torch::Device& d, bool siglip)
      : vit_(s.vit), text_cfg_(s.text), siglip_(siglip) {
    vit_.num_classes = s.text.embed_dim;
    // train.clip's init_logit_scale 1/0.07; train.siglip's t = 10, b = -10.
    model_ = siglip ? model::ClipModel(s.vit, s.text, 10.0, -10.0) : model::ClipModel(s.vit, s.text);
    init(*model_, d);
  }
  bool has_text() const override { return true; }
  double towers(int64_t tokens) const { return vit_.forward_flops() + text_cfg_.forward_flops(tokens); }

 protected:
  torch::Tensor image(const Batch& b) override { return model_->encode_image(b.x); }
  torch::Tensor text(const Batch& b) override { return model_->encode_text(b.ids); }
  void after_step() override { model_->clamp_logit_scale(100); }  // max_logit_scale's default

  model::ViTConfig vit_;
  model::TextConfig text_cfg_;
  bool siglip_;
  model::ClipModel model_{nullptr};
};

class ClipStep : public TwoTowerStep {
 public:
  ClipStep(const Spec& s, const torch::Device& d) : TwoTowerStep(s, d, false) {}
  std::string name() const override { return "clip"; }
  std::string title() const override { return "CLIP"; }
  std::string describe() const override {
    return "image tower + text transformer, symmetric InfoNCE (clip_loss), features all-gathered with gradient";
  }
  double flops(int64_t N, int64_t tokens) const override {
    return towers(tokens) + 4.0 * double(text_cfg_.embed_dim) * double(N);
  }
  Bytes expected_bytes(int64_t B, int W) const override {
    const double f = 4.0 * double(B) * double(text_cfg_.embed_dim);
    return {4.0 * double(parameter_count()), W > 1 ? 2 * f + 2 * f * W : 0, 0};
  }

 protected:
  // ClipObjective::loss (objective_clip.h), with gather_features on.
  torch::Tensor loss(const torch::Tensor& img_raw, const torch::Tensor& txt_raw, const Batch&,
                     DataParallel* dp) override {
    auto img = normalise(img_raw), txt = normalise(txt_raw);
    if (!dp) return train::clip_loss(img, txt, model_->logit_scale, img, txt, 0);
    auto all_img = dp->gather_with_grad(img);
    auto all_txt = dp->gather_with_grad(txt);
    return train::clip_loss(img, txt, model_->logit_scale, all_img, all_txt, int64_t(dp->rank()) * img.size(0));
  }
};

class SiglipStep : public TwoTowerStep {
 public:
  SiglipStep(const Spec& s, const torch::Device& d) : TwoTowerStep(s, d, true) {}
  std::string name() const override { return "siglip"; }
  std::string title() const override { return "SigLIP"; }
  std::string describe() const override {
    return "image tower + text transformer, sigmoid loss with learnable t', b (siglip_ring_loss), texts round the "
           "ring";
  }
  double flops(int64_t N, int64_t tokens) const override {
    return towers(tokens) + 2.0 * double(text_cfg_.embed_dim) * double(N);
  }
  Bytes expected_bytes(int64_t B, int W) const override {
    const double f = 4.0 * double(B) * double(text_cfg_.embed_dim);
    const int rounds = (W - 1) / 2, one_way = (W - 1) % 2;
    return {4.0 * double(parameter_count()), W > 1 ? 4 * f * rounds + 2 * f * one_way : 0, 0};
  }

 protected:
  // SiglipObjective::loss (objective_siglip.cpp).
  torch::Tensor loss(const torch::Tensor& img, const torch::Tensor& txt, const Batch&, DataParallel* dp) override {
    return train::siglip_ring_loss(normalise(img), normalise(txt), model_->logit_scale, model_->logit_bias, dp);
  }
};

// SuperClass (train.superclass): the ViT with one output per BPE id, softmax
// CE against the online-IDF-weighted multi-hot of the caption's tokens.
class SuperclassStep : public ObjectiveStep {
 public:
  SuperclassStep(const Spec& s, const torch::Device& d) : cfg_(s.vit), idf_(s.text.vocab_size, d) {
    cfg_.num_classes = s.text.vocab_size;
    model_ = model::ViT(cfg_);
    init(*model_, d);
  }
  std::string name() const override { return "superclass"; }
  std::string title() const override { return "SuperClass"; }
  std::string describe() const override {
    return "ViT + " + std::to_string(cfg_.num_classes) +
           "-BPE-id head, online IDF (TokenIdf, counts allreduced), softmax CE (superclass_softmax_loss)";
  }
  double flops(int64_t, int64_t) const override { return cfg_.forward_flops(); }
  Bytes expected_bytes(int64_t, int W) const override {
    return {4.0 * double(parameter_count()), 0, W > 1 ? 8.0 * double(cfg_.num_classes + 1) : 0};
  }

 protected:
  torch::Tensor image(const Batch& b) override { return model_->forward(b.x); }
  // SuperclassObjective::take_ints and ::loss (objective_superclass.cpp).
  torch::Tensor loss(const torch::Tensor& logits, const torch::Tensor&, const Batch& b, DataParallel* dp) override {
    const int64_t V = cfg_.num_classes;
    std::vector<std::vector<int64_t>> ids;
    for (auto& r : b.rows) ids.push_back(train::superclass_target_ids(r, V - 2, V - 1));
    idf_.add(ids, dp);
    return train::superclass_softmax_loss(logits, train::superclass_targets(ids, idf_.idf(), V, device_));
  }
  void after_step() override { idf_.commit(); }

 private:
  model::ViTConfig cfg_;
  train::TokenIdf idf_;
  model::ViT model_{nullptr};
};

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.has_index() ? d.index() : -1);
}

}  // namespace

void ObjectiveStep::init(torch::nn::Module& m, const torch::Device& device) {
  device_ = device;
  m.to(device);
  m.train();
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (auto& kv : m.named_parameters(true)) {
    named.emplace_back(kv.key(), kv.value());
    params_.push_back(kv.value());
  }
  opt_ = std::make_shared<train::AdamW>(named, train::AdamWOptions{});
}

int64_t ObjectiveStep::parameter_count() const {
  int64_t n = 0;
  for (auto& p : params_) n += p.numel();
  return n;
}

Rec ObjectiveStep::step(const Batch& b, DataParallel* dp, bool split) {
  auto& opt = *static_cast<train::AdamW*>(opt_.get());
  Rec r;
  if (dp) dp->take_gather_seconds(), dp->take_traffic();
  sync(device_);
  auto t0 = Clock::now();
  opt.zero_grad();
  if (dp) dp->begin_backward(true);
  torch::Tensor loss;
  if (!split) {
    loss = this->loss(image(b), text(b), b, dp);
    loss.backward();
  } else {
    auto img = image(b);
    sync(device_);
    auto t1 = Clock::now();
    auto txt = text(b);
    sync(device_);
    auto t2 = Clock::now();
    auto img_d = img.detach().requires_grad_(true);
    auto txt_d = txt.defined() ? txt.detach().requires_grad_(true) : txt;
    loss = this->loss(img_d, txt_d, b, dp);
    loss.backward();
    sync(device_);
    auto t3 = Clock::now();
    img.backward(img_d.grad());
    sync(device_);
    auto t4 = Clock::now();
    if (txt.defined()) txt.backward(txt_d.grad());
    sync(device_);
    auto t5 = Clock::now();
    r.image = secs(t0, t1) + secs(t3, t4);
    r.text = secs(t1, t2) + secs(t4, t5);
    r.loss = secs(t2, t3);
  }
  auto t6 = Clock::now();
  if (dp) r.allreduce = dp->finish_backward();
  train::clip_grad_norm(params_, 1.0);
  opt.step(1e-4);
  after_step();
  loss.item<double>();
  sync(device_);
  auto t7 = Clock::now();
  r.opt = secs(t6, t7);
  r.total = secs(t0, t7);
  if (dp) {
    auto tr = dp->take_traffic();
    r.comm = dp->take_gather_seconds() + tr.counts_s;
    r.grad_bytes = double(tr.grads);
    r.feature_bytes = double(tr.gather + tr.ring);
    r.count_bytes = double(tr.counts);
  }
  return r;
}

std::unique_ptr<ObjectiveStep> make_objective_step(const std::string& name, const Spec& s,
                                                   const torch::Device& device) {
  torch::manual_seed(0);  // the same initial weights on every rank and in every run
  if (name == "catlip") return std::make_unique<CatlipStep>(s, device);
  if (name == "clip") return std::make_unique<ClipStep>(s, device);
  if (name == "siglip") return std::make_unique<SiglipStep>(s, device);
  if (name == "superclass") return std::make_unique<SuperclassStep>(s, device);
  return nullptr;
}

Batch make_batch(const Spec& s, int64_t B, int rank, const torch::Device& device) {
  std::mt19937_64 rng(uint64_t(1000 * B + rank));
  Batch b;
  torch::manual_seed(int64_t(1000 * B + rank));
  b.x = torch::rand({B, 3, s.vit.image_size, s.vit.image_size}).to(device);
  // CatLIP: 1..8 synsets per image.
  std::vector<std::vector<int64_t>> labels(static_cast<size_t>(B));
  std::uniform_int_distribution<int64_t> nl(1, 8), lab(0, s.vit.num_classes - 1), tok(1, s.text.vocab_size - 3),
      len(std::min(s.min_tokens, s.text.context_length), s.text.context_length);
  for (auto& l : labels) {
    for (int64_t k = nl(rng); k-- > 0;) l.push_back(lab(rng));
    std::sort(l.begin(), l.end());
    l.erase(std::unique(l.begin(), l.end()), l.end());
  }
  b.y = train::multi_hot(labels, s.vit.num_classes, device);
  // Captions: <|startoftext|> ids... <|endoftext|> (the tokenizer's last two ids).
  b.rows.resize(static_cast<size_t>(B));
  for (auto& r : b.rows) {
    int64_t n = len(rng);
    r.push_back(s.text.vocab_size - 2);
    for (int64_t k = 2; k < n; ++k) r.push_back(tok(rng));
    r.push_back(s.text.vocab_size - 1);
    b.mean_tokens += double(n) / double(B);
  }
  b.ids = model::pad_tokens(b.rows, device);
  b.padded = b.ids.size(1);
  return b;
}

}  // namespace catlip::bench::objectives
