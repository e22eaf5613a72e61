// The training step's fast paths, each against its plain path on the CPU:
// SDPA vs bmm-softmax-bmm attention (ViT and CLIP's causal text tower),
// _fused_adamw_ vs the per-tensor AdamW, channels-last vs contiguous conv
// stems, activation checkpointing vs keeping activations (fp32 within 1e-5),
// and bf16 autocast vs fp32 (within a stated tolerance).

#include <torch/torch.h>
#undef CHECK
#include <catch2/catch.hpp>

#include <functional>
#include <map>

#include "catlip/local.h"
#include "catlip/model/clip_model.h"
#include "catlip/model/model_io.h"
#include "catlip/model/state_io.h"
#include "catlip/model/vit.h"
#include "catlip/train/loss.h"
#include "catlip/train/objective.h"
#include "catlip/train/optim.h"

using namespace catlip::model;
using namespace catlip::train;

namespace {

ViTConfig cfg_for(const std::string& stem) {
  ViTConfig c;
  c.dim = 64;
  c.depth = 3;
  c.heads = 4;
  c.image_size = 32;
  c.patch_size = stem == "conv3" ? 16 : 8;
  c.stem = stem;
  c.num_classes = 12;
  return c;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// Output and every parameter gradient of one forward+backward of `model`
// (a BCE loss on the logits), by parameter name.
struct Pass {
  torch::Tensor out;
  std::map<std::string, torch::Tensor> grads;
};

Pass run(torch::nn::Module& model, const std::function<torch::Tensor()>& fwd, bool bf16 = false) {
  for (auto& p : model.parameters()) p.mutable_grad() = torch::Tensor();
  torch::Tensor out;
  {
    AutocastScope ac(false, bf16);
    out = fwd();
  }
  auto target = torch::zeros_like(out, torch::kFloat32);
  target.index_put_({torch::indexing::Slice(), 0}, 1.0);
  catlip_bce_loss(out, target).backward();
  Pass r;
  r.out = out.detach().to(torch::kFloat32);
  for (auto& kv : model.named_parameters(true))
    if (kv.value().grad().defined()) r.grads[kv.key()] = kv.value().grad().clone();
  return r;
}

// Largest difference of outputs and of gradients, each relative to the
// plain path's largest magnitude.
std::pair<double, double> compare(const Pass& plain, const Pass& fast) {
  double out = max_abs_diff(plain.out, fast.out) / std::max(1e-12, plain.out.abs().max().item<double>());
  double g = 0;
  REQUIRE(plain.grads.size() == fast.grads.size());
  for (auto& [n, t] : plain.grads) {
    REQUIRE(fast.grads.count(n));
    double scale = std::max(1e-12, t.abs().max().item<double>());
    g = std::max(g, max_abs_diff(t, fast.grads.at(n)) / scale);
  }
  return {out, g};
}

}  // namespace

TEST_CASE("fast path: SDPA attention equals the plain bmm-softmax-bmm (fp32, ViT and causal text tower)") {
  torch::manual_seed(1);
  ViT m(cfg_for("patchify"));
  auto x = torch::randn({4, 3, 32, 32});
  FastPaths plain;
  plain.attention = "math";
  plain.channels_last = false;
  apply_fast_paths(*m, plain);
  auto a = run(*m, [&] { return m->forward(x); });
  FastPaths fast = plain;
  fast.attention = "sdpa";
  apply_fast_paths(*m, fast);
  auto b = run(*m, [&] { return m->forward(x); });
  auto [dout, dgrad] = compare(a, b);
  CHECK(dout < 1e-5);
  CHECK(dgrad < 1e-5);

  TextConfig tc;
  tc.vocab_size = 50;
  tc.width = 32;
  tc.depth = 2;
  tc.heads = 4;
  tc.context_length = 9;
  tc.embed_dim = 12;
  TextTransformer t(tc);
  auto tokens = torch::randint(1, 49, {3, 9}, torch::kInt64);
  apply_fast_paths(*t, plain);
  auto ta = run(*t, [&] { return t->forward(tokens); });
  apply_fast_paths(*t, fast);
  auto tb = run(*t, [&] { return t->forward(tokens); });
  auto [tout, tgrad] = compare(ta, tb);
  CHECK(tout < 1e-5);
  CHECK(tgrad < 1e-5);
  // Causality holds on both paths: changing the last token leaves the
  // first position's hidden state unchanged.
  for (auto* f : {&plain, &fast}) {
    apply_fast_paths(*t, *f);
    torch::NoGradGuard g;
    auto t2 = tokens.clone();
    t2.index_put_({torch::indexing::Slice(), 8}, 3);
    CHECK(max_abs_diff(t->hidden(tokens).select(1, 0), t->hidden(t2).select(1, 0)) == 0.0);
  }
}

TEST_CASE("fast path: channels-last conv stems equal the contiguous ones (fp32)") {
  for (std::string stem : {"patchify", "conv3", "cnn"}) {
    INFO("stem " << stem);
    torch::manual_seed(2);
    ViT m(cfg_for(stem));
    auto x = torch::randn({4, 3, 32, 32});
    FastPaths plain;
    plain.channels_last = false;
    apply_fast_paths(*m, plain);
    auto a = run(*m, [&] { return m->forward(x); });
    FastPaths fast = plain;
    fast.channels_last = true;
    apply_fast_paths(*m, fast);
    // The conv weights really are NHWC now.
    for (auto& p : m->patch_embed->parameters())
      if (p.dim() == 4) CHECK(p.is_contiguous(at::MemoryFormat::ChannelsLast));
    auto b = run(*m, [&] { return m->forward(x); });
    auto [dout, dgrad] = compare(a, b);
    CHECK(dout < 1e-5);
    CHECK(dgrad < 1e-5);
  }
}

TEST_CASE("fast path: activation checkpointing gives the gradients of the plain backward (fp32 and bf16)") {
  torch::manual_seed(3);
  ViT m(cfg_for("conv3"));
  m->train();
  auto x = torch::randn({4, 3, 32, 32});
  for (bool bf16 : {false, true}) {
    INFO((bf16 ? "bf16 autocast" : "fp32"));
    FastPaths plain;
    apply_fast_paths(*m, plain);
    auto a = run(*m, [&] { return m->forward(x); }, bf16);
    for (int64_t n : {int64_t{1}, int64_t{-1}}) {
      INFO("checkpoint_blocks " << n);
      FastPaths ck = plain;
      ck.checkpoint_blocks = n;
      apply_fast_paths(*m, ck);
      auto b = run(*m, [&] { return m->forward(x); }, bf16);
      auto [dout, dgrad] = compare(a, b);
      // The same kernels run again on the same inputs: equal up to the
      // order of gradient accumulation.
      CHECK(dout < 1e-5);
      CHECK(dgrad < 1e-5);
    }
  }
  // Outside training (eval, or no grad) nothing is recomputed: same output.
  FastPaths ck;
  ck.checkpoint_blocks = -1;
  apply_fast_paths(*m, ck);
  torch::NoGradGuard g;
  auto y1 = m->forward(x);
  ck.checkpoint_blocks = 0;
  apply_fast_paths(*m, ck);
  CHECK(max_abs_diff(y1, m->forward(x)) == 0.0);
}

TEST_CASE("fast path: bf16 autocast on the CPU stays within 2% of fp32 (outputs and gradients)") {
  torch::manual_seed(4);
  ViT m(cfg_for("patchify"));
  auto x = torch::randn({8, 3, 32, 32});
  FastPaths f;
  apply_fast_paths(*m, f);
  auto a = run(*m, [&] { return m->forward(x); }, false);
  auto b = run(*m, [&] { return m->forward(x); }, true);
  auto [dout, dgrad] = compare(a, b);
  // bf16 keeps 8 bits of mantissa (relative step 2^-8 = 0.4%); over 3 blocks
  // the logits and gradients move by up to a few steps.
  CHECK(dout < 0.02);
  CHECK(dgrad < 0.05);
  CHECK(dout > 0.0);  // autocast really ran in bf16
}

TEST_CASE("fast path: _fused_adamw_ equals the per-tensor AdamW over several steps (fp32, both groups)") {
  torch::manual_seed(5);
  ViT a(cfg_for("patchify")), b(cfg_for("patchify"));
  {
    torch::NoGradGuard g;
    auto sb = named_state(*b);
    std::map<std::string, torch::Tensor> src;
    for (auto& [n, t] : named_state(*a)) src[n] = t;
    for (auto& [n, t] : sb) t.copy_(src.at(n));
  }
  auto named = [](ViT& m) {
    NamedTensors v;
    for (auto& kv : m->named_parameters(true)) v.emplace_back(kv.key(), kv.value());
    return v;
  };
  AdamWOptions lo, fu;
  lo.impl = "loop";
  fu.impl = "fused";
  AdamW oa(named(a), lo), ob(named(b), fu);
  REQUIRE(ob.impl() == "fused");
  REQUIRE(!oa.no_decay_names().empty());
  REQUIRE(!oa.decay_names().empty());
  auto x = torch::randn({4, 3, 32, 32});
  // The same gradients for both (the key bias's gradient is pure rounding
  // noise, which Adam would amplify to ~lr: compare optimizers, not noise).
  for (int step = 0; step < 5; ++step) {
    oa.zero_grad();
    ob.zero_grad();
    auto target = torch::zeros({4, 12});
    target.index_put_({torch::indexing::Slice(), step % 12}, 1.0);
    catlip_bce_loss(a->forward(x), target).backward();
    auto pa = a->named_parameters(true);
    auto pb = b->named_parameters(true);
    for (auto& kv : pa) pb[kv.key()].mutable_grad() = kv.value().grad().clone();
    // A parameter without a gradient is skipped by both.
    a->cls_token.mutable_grad() = torch::Tensor();
    b->cls_token.mutable_grad() = torch::Tensor();
    oa.step(1e-2 * (step + 1));
    ob.step(1e-2 * (step + 1));
  }
  double worst = 0;
  auto sa = named_state(*a), sb = named_state(*b);
  for (size_t i = 0; i < sa.size(); ++i) {
    INFO(sa[i].first);
    const double d = max_abs_diff(sa[i].second, sb[i].second);
    if (d >= 1e-5) WARN(sa[i].first << " differs by " << d);
    worst = std::max(worst, d);
  }
  CHECK(worst < 1e-5);
  for (size_t i = 0; i < oa.slots().size(); ++i) {
    CHECK(max_abs_diff(oa.slots()[i].exp_avg, ob.slots()[i].exp_avg) < 1e-6);
    CHECK(max_abs_diff(oa.slots()[i].exp_avg_sq, ob.slots()[i].exp_avg_sq) < 1e-6);
  }
  // Resume: the step count set from a checkpoint drives the fused kernel's
  // bias correction too.
  ob.set_steps(oa.steps());
  CHECK(ob.steps() == 5);
  CHECK_THROWS_WITH(AdamW(named(a), [] { AdamWOptions o; o.impl = "sgd"; return o; }()),
                    Catch::Contains("fused or loop"));
}

TEST_CASE("fast path: unknown attention implementation is refused by name") {
  ViT m(cfg_for("patchify"));
  FastPaths f;
  f.attention = "flash";
  CHECK_THROWS_WITH(apply_fast_paths(*m, f), Catch::Contains("sdpa or math"));
}

TEST_CASE("preprocess_images: (x/255 - mean)/std per channel, NCHW float") {
  auto u8 = torch::randint(0, 256, {2, 5, 7, 3}, torch::kUInt8);
  std::vector<double> mean{0.48, 0.46, 0.41}, stdv{0.27, 0.26, 0.28};
  auto x = preprocess_images(u8, torch::kCPU, mean, stdv);
  auto want = (u8.permute({0, 3, 1, 2}).to(torch::kFloat64) / 255.0 -
               torch::tensor(mean, torch::kFloat64).view({1, 3, 1, 1})) /
              torch::tensor(stdv, torch::kFloat64).view({1, 3, 1, 1});
  REQUIRE(x.sizes() == torch::IntArrayRef({2, 3, 5, 7}));
  CHECK(x.scalar_type() == torch::kFloat32);
  CHECK(max_abs_diff(x, want) < 1e-5);
  CHECK(max_abs_diff(preprocess_images(u8, torch::kCPU, {}, {}), u8.permute({0, 3, 1, 2}).to(torch::kFloat64) / 255.0) < 1e-6);
}
