// Model, loss and optimizer pieces.

#include <torch/torch.h>
// LibTorch pulls in glog, whose CHECK would silently replace Catch's.
#undef CHECK
#include <catch2/catch.hpp>

#include <cmath>
#include <set>

#include "catlip/model/state_io.h"
#include "catlip/model/vit.h"
#include "catlip/train/loss.h"
#include "catlip/train/optim.h"

using namespace catlip::model;
using namespace catlip::train;

namespace {
ViTConfig small_cfg(const std::string& stem = "patchify") {
  ViTConfig c;
  c.dim = 64;
  c.depth = 2;
  c.heads = 2;
  c.image_size = stem == "conv3" ? 32 : 32;
  c.patch_size = stem == "conv3" ? 16 : 8;
  c.stem = stem;
  c.num_classes = 10;
  return c;
}

void copy_state(const torch::nn::Module& dst, const NamedTensors& src) {
  torch::NoGradGuard g;
  std::map<std::string, torch::Tensor> by_name(src.begin(), src.end());
  for (auto& [n, t] : named_state(dst)) t.copy_(by_name.at(n));
}
}  // namespace

TEST_CASE("BCE reduction equals a hand computation (sum over classes and batch / batch)") {
  std::vector<float> lg = {2.0f, -1.0f, 0.5f, 0.0f, 3.0f, -2.5f};
  std::vector<float> tg = {1, 0, 1, 0, 0, 1};
  auto logits = torch::tensor(lg).view({2, 3});
  auto targets = torch::tensor(tg).view({2, 3});
  double want = 0;
  for (size_t i = 0; i < lg.size(); ++i) {
    double p = 1.0 / (1.0 + std::exp(-double(lg[i])));
    want += -(tg[i] * std::log(p) + (1 - tg[i]) * std::log(1 - p));
  }
  want /= 2.0;  // batch size, not batch * classes
  CHECK(catlip_bce_loss(logits, targets).item<double>() == Approx(want).epsilon(1e-6));
  // bf16 logits are promoted: the loss stays fp32.
  CHECK(catlip_bce_loss(logits.to(torch::kBFloat16), targets).scalar_type() == torch::kFloat32);
}

TEST_CASE("multi-hot targets from label indices") {
  auto t = multi_hot({{0, 3}, {}, {4}}, 5, torch::kCPU);
  REQUIRE(t.sizes() == torch::IntArrayRef({3, 5}));
  auto expect = torch::tensor({1.f, 0.f, 0.f, 1.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 1.f}).view({3, 5});
  CHECK(torch::equal(t, expect));
}

TEST_CASE("ViT parameter names and shapes follow timm's VisionTransformer") {
  auto c = small_cfg();
  ViT m(c);
  std::map<std::string, std::vector<int64_t>> got;
  for (auto& [n, t] : named_state(*m)) got[n] = t.sizes().vec();
  const int64_t D = 64, H = 4 * D, T = (32 / 8) * (32 / 8) + 1;
  std::map<std::string, std::vector<int64_t>> want = {
      {"cls_token", {1, 1, D}}, {"pos_embed", {1, T, D}},
      {"patch_embed.proj.weight", {D, 3, 8, 8}}, {"patch_embed.proj.bias", {D}},
      {"norm.weight", {D}}, {"norm.bias", {D}}, {"head.weight", {10, D}}, {"head.bias", {10}}};
  for (int b = 0; b < 2; ++b) {
    std::string p = "blocks." + std::to_string(b) + ".";
    want[p + "norm1.weight"] = {D};
    want[p + "norm1.bias"] = {D};
    want[p + "attn.qkv.weight"] = {3 * D, D};
    want[p + "attn.qkv.bias"] = {3 * D};
    want[p + "attn.proj.weight"] = {D, D};
    want[p + "attn.proj.bias"] = {D};
    want[p + "norm2.weight"] = {D};
    want[p + "norm2.bias"] = {D};
    want[p + "mlp.fc1.weight"] = {H, D};
    want[p + "mlp.fc1.bias"] = {H};
    want[p + "mlp.fc2.weight"] = {D, H};
    want[p + "mlp.fc2.bias"] = {D};
  }
  CHECK(got == want);
  auto out = m->forward(torch::rand({3, 3, 32, 32}));
  CHECK(out.sizes() == torch::IntArrayRef({3, 10}));
}

TEST_CASE("conv3 stem: CoreNet's kernels/strides 4,2,2 with BN+GELU") {
  auto c = small_cfg("conv3");
  ViT m(c);
  std::map<std::string, std::vector<int64_t>> got;
  for (auto& [n, t] : named_state(*m)) got[n] = t.sizes().vec();
  CHECK(got.at("patch_embed.proj.0.weight") == std::vector<int64_t>({16, 3, 4, 4}));
  CHECK(got.count("patch_embed.proj.0.bias") == 0);
  CHECK(got.at("patch_embed.proj.1.running_mean") == std::vector<int64_t>({16}));
  CHECK(got.at("patch_embed.proj.3.weight") == std::vector<int64_t>({16, 16, 2, 2}));
  CHECK(got.at("patch_embed.proj.6.weight") == std::vector<int64_t>({64, 16, 2, 2}));
  CHECK(got.at("patch_embed.proj.6.bias") == std::vector<int64_t>({64}));
  CHECK(m->forward(torch::rand({2, 3, 32, 32})).sizes() == torch::IntArrayRef({2, 10}));
}

TEST_CASE("cnn stem: log2(patch) stages of 3x3 conv + BN + GELU + 2x2 max-pool, widths doubling to dim") {
  auto c = small_cfg();
  c.stem = "cnn";  // patch 8: three stages, widths 16, 32, 64
  ViT m(c);
  std::map<std::string, std::vector<int64_t>> got;
  for (auto& [n, t] : named_state(*m)) got[n] = t.sizes().vec();
  CHECK(got.at("patch_embed.proj.0.weight") == std::vector<int64_t>({16, 3, 3, 3}));
  CHECK(got.count("patch_embed.proj.0.bias") == 0);
  CHECK(got.at("patch_embed.proj.1.running_var") == std::vector<int64_t>({16}));
  CHECK(got.at("patch_embed.proj.4.weight") == std::vector<int64_t>({32, 16, 3, 3}));
  CHECK(got.at("patch_embed.proj.8.weight") == std::vector<int64_t>({64, 32, 3, 3}));
  CHECK(got.count("patch_embed.proj.12.weight") == 0);
  // 32x32 input / 8 = a 4x4 grid: 16 tokens + CLS.
  CHECK(got.at("pos_embed") == std::vector<int64_t>({1, 17, 64}));
  CHECK(m->forward(torch::rand({2, 3, 32, 32})).sizes() == torch::IntArrayRef({2, 10}));
  c.patch_size = 12;
  c.image_size = 36;
  CHECK(c.check().find("power-of-two") != std::string::npos);
}

TEST_CASE("pool: the head sees the CLS token, or the mean or max over patch tokens") {
  torch::manual_seed(3);
  auto c = small_cfg();
  ViT tok(c);
  c.pool = "max";
  ViT mx(c);
  c.pool = "avg";
  ViT avg(c);
  // Same weights in all three: only the pooling differs.
  copy_state(*mx, named_state(*tok));
  copy_state(*avg, named_state(*tok));
  auto x = torch::rand({3, 3, 32, 32});
  torch::NoGradGuard g;
  auto tokens = tok->patch_embed->forward(x);
  tokens = torch::cat({tok->cls_token.expand({3, -1, -1}), tokens}, 1) + tok->pos_embed;
  for (auto& b : *tok->blocks) tokens = b->as<Block>()->forward(tokens);
  auto patches = tokens.narrow(1, 1, tokens.size(1) - 1);
  CHECK(torch::allclose(tok->features(x), tok->norm->forward(tokens.select(1, 0)), 1e-5, 1e-6));
  CHECK(torch::allclose(mx->features(x), tok->norm->forward(std::get<0>(patches.max(1))), 1e-5, 1e-6));
  CHECK(torch::allclose(avg->features(x), tok->norm->forward(patches.mean(1)), 1e-5, 1e-6));
  CHECK_FALSE(torch::allclose(mx->features(x), avg->features(x), 1e-3, 1e-3));
}

TEST_CASE("no weight decay on biases, norms, pos_embed and cls_token") {
  for (std::string stem : {"patchify", "conv3"}) {
    ViT m(small_cfg(stem));
    NamedTensors params;
    for (auto& kv : m->named_parameters(true)) params.emplace_back(kv.key(), kv.value());
    AdamWOptions o;
    o.weight_decay = 0.2;
    AdamW opt(params, o);
    std::set<std::string> no_decay, decay;
    for (auto& n : opt.no_decay_names()) no_decay.insert(n);
    for (auto& n : opt.decay_names()) decay.insert(n);
    CHECK(no_decay.count("cls_token"));
    CHECK(no_decay.count("pos_embed"));
    CHECK(no_decay.count("norm.weight"));
    CHECK(no_decay.count("blocks.0.norm1.weight"));
    CHECK(no_decay.count("blocks.1.attn.qkv.bias"));
    CHECK(no_decay.count("head.bias"));
    CHECK(decay.count("head.weight"));
    CHECK(decay.count("blocks.0.attn.qkv.weight"));
    CHECK(decay.count("blocks.0.mlp.fc1.weight"));
    for (auto& n : decay) {
      INFO(n);
      CHECK(n.find("bias") == std::string::npos);
      CHECK(n.find("norm") == std::string::npos);
    }
    if (stem == "conv3") {
      CHECK(no_decay.count("patch_embed.proj.1.weight"));  // BatchNorm
      CHECK(decay.count("patch_embed.proj.0.weight"));
    } else {
      CHECK(decay.count("patch_embed.proj.weight"));
      CHECK(no_decay.count("patch_embed.proj.bias"));
    }
    CHECK(decay.size() + no_decay.size() == params.size());

    // A step with zero gradients: Adam's update is zero, so only decay acts.
    std::map<std::string, torch::Tensor> before;
    for (auto& [n, p] : params) {
      before[n] = p.detach().clone();
      p.mutable_grad() = torch::zeros_like(p);
    }
    const double lr = 0.1;
    opt.step(lr);
    for (auto& [n, p] : params) {
      INFO(n);
      if (no_decay.count(n)) CHECK(torch::equal(p, before[n]));
      else CHECK(torch::allclose(p, before[n] * (1.0 - lr * 0.2), 1e-6, 1e-7));
    }
  }
}

TEST_CASE("AdamW update equals torch::optim::AdamW") {
  auto w1 = torch::randn({4, 3}).set_requires_grad(true);
  auto w2 = w1.detach().clone().set_requires_grad(true);
  AdamW mine({{"w", w1}}, AdamWOptions{0.9, 0.999, 1e-8, 0.2});
  torch::optim::AdamW ref({w2}, torch::optim::AdamWOptions(0.01).betas({0.9, 0.999}).eps(1e-8).weight_decay(0.2));
  for (int i = 0; i < 5; ++i) {
    auto g = torch::randn({4, 3});
    w1.mutable_grad() = g.clone();
    w2.mutable_grad() = g.clone();
    mine.step(0.01);
    ref.step();
  }
  CHECK(torch::allclose(w1, w2, 1e-5, 1e-6));
}

TEST_CASE("gradient clipping and EMA") {
  auto a = torch::zeros({2}).set_requires_grad(true);
  auto b = torch::zeros({1}).set_requires_grad(true);
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  CHECK(clip_grad_norm({a, b}, 1.0) == Approx(5.0));
  CHECK(a.grad()[0].item<double>() == Approx(0.6).epsilon(1e-5));
  CHECK(b.grad()[0].item<double>() == Approx(0.8).epsilon(1e-5));
  CHECK(clip_grad_norm({a, b}, 10.0) == Approx(1.0).epsilon(1e-5));  // below: unchanged
  CHECK(b.grad()[0].item<double>() == Approx(0.8).epsilon(1e-5));

  auto w = torch::ones({3});
  auto cnt = torch::zeros({1}, torch::kInt64);
  Ema ema({{"w", w}, {"n", cnt}}, 0.9);
  w.fill_(2.0);
  cnt.fill_(7);
  ema.update({{"w", w}, {"n", cnt}});
  CHECK(ema.tensors()[0].second[0].item<double>() == Approx(0.9 * 1 + 0.1 * 2));
  CHECK(ema.tensors()[1].second[0].item<int64_t>() == 7);  // integer buffers are copied
}
