#include "catlip/train/vit.h"

#include <cmath>
#include <stdexcept>

namespace catlip::train {

namespace nn = torch::nn;

void trunc_normal_(torch::Tensor t, double std) {
  torch::NoGradGuard g;
  // Sample uniformly in CDF space between the bounds and map back.
  auto cdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
  double l = cdf(-2.0), u = cdf(2.0);
  t.uniform_(2 * l - 1, 2 * u - 1).erfinv_().mul_(std * std::sqrt(2.0)).clamp_(-2 * std, 2 * std);
}

namespace {
// at::linear, not Linear::forward: LibTorch 1.13's C++ functional linear
// runs a matmul plus a separate bias add for 3-D inputs, where ATen's
// at::linear (what Python calls) folds [B,T,D] into one fused addmm. That
// alone made the C++ step ~1.4x slower than Python's.
inline torch::Tensor linear(const torch::nn::Linear& l, const torch::Tensor& x) {
  return at::linear(x, l->weight, l->bias);
}
}  // namespace

AttentionImpl::AttentionImpl(int64_t dim, int64_t h)
    : heads(h), head_dim(dim / h), scale(1.0 / std::sqrt(double(dim / h))) {
  qkv = register_module("qkv", nn::Linear(nn::LinearOptions(dim, 3 * dim).bias(true)));
  proj = register_module("proj", nn::Linear(dim, dim));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  const auto B = x.size(0), T = x.size(1), D = x.size(2);
  // [B,T,3,H,hd] -> [3,B,H,T,hd]
  // unbind, not qkv_[i]: three selects would each scatter a full-size
  // zero tensor in backward; unbind's backward is one stack.
  auto parts = linear(qkv, x).reshape({B, T, 3, heads, head_dim}).permute({2, 0, 3, 1, 4}).unbind(0);
  auto &q = parts[0], &k = parts[1], &v = parts[2];
  // Scale in place after the bmm (no extra tensor). Not baddbmm(alpha=scale):
  // on CPU that runs a per-matrix addmm_ loop that is several times slower.
  auto attn = at::bmm(q.reshape({B * heads, T, head_dim}),
                      k.reshape({B * heads, T, head_dim}).transpose(1, 2));
  attn.mul_(scale);
  if (mask.defined()) attn.add_(mask.to(attn.scalar_type()));
  attn = attn.softmax(-1);
  auto out = at::bmm(attn, v.reshape({B * heads, T, head_dim}));
  out = out.view({B, heads, T, head_dim}).transpose(1, 2).reshape({B, T, D});
  return linear(proj, out);
}

MlpImpl::MlpImpl(int64_t dim, int64_t mlp_ratio) {
  fc1 = register_module("fc1", nn::Linear(dim, dim * mlp_ratio));
  fc2 = register_module("fc2", nn::Linear(dim * mlp_ratio, dim));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return linear(fc2, torch::gelu(linear(fc1, x)));
}

BlockImpl::BlockImpl(int64_t dim, int64_t heads, int64_t mlp_ratio, double ln_eps) {
  auto ln = [&] { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(ln_eps)); };
  norm1 = register_module("norm1", ln());
  attn = register_module("attn", Attention(dim, heads));
  norm2 = register_module("norm2", ln());
  mlp = register_module("mlp", Mlp(dim, mlp_ratio));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  auto h = x + attn->forward(norm1->forward(x), mask);
  return h + mlp->forward(norm2->forward(h));
}

PatchEmbedImpl::PatchEmbedImpl(const ViTConfig& c) {
  if (c.stem == "patchify") {
    conv = register_module(
        "proj", nn::Conv2d(nn::Conv2dOptions(3, c.dim, c.patch_size).stride(c.patch_size).bias(true)));
  } else if (c.stem == "cnn") {
    // Hybrid ViT stem (the ViT paper's "hybrid", here a small VGG-style
    // CNN): log2(patch) stages of 3x3 conv (no bias) + BN + GELU + 2x2
    // max-pool, widths doubling to dim. Full-resolution 3x3 convolutions give
    // the tokens local shape features from the first step, which a tiny ViT
    // on little data otherwise takes very long to learn.
    int64_t stages = 0;
    while ((int64_t{1} << stages) < c.patch_size) ++stages;
    nn::Sequential seq;
    int64_t in = 3;
    for (int64_t i = 0; i < stages; ++i) {
      const int64_t out = c.dim >> (stages - 1 - i);
      seq->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1).bias(false)));
      seq->push_back(nn::BatchNorm2d(out));
      seq->push_back(nn::GELU());
      seq->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
      in = out;
    }
    stem = register_module("proj", seq);
  } else {
    // CoreNet's conv stem: conv k4 s4 (no bias) + BN + GELU, conv k2 s2 (no
    // bias) + BN + GELU, conv k2 s2 (bias), widths dim/4, dim/4, dim.
    const int64_t w = c.dim / 4;
    stem = register_module(
        "proj", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(3, w, 4).stride(4).bias(false)),
                               nn::BatchNorm2d(w), nn::GELU(),
                               nn::Conv2d(nn::Conv2dOptions(w, w, 2).stride(2).bias(false)),
                               nn::BatchNorm2d(w), nn::GELU(),
                               nn::Conv2d(nn::Conv2dOptions(w, c.dim, 2).stride(2).bias(true))));
  }
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& x) {
  auto y = conv ? conv->forward(x) : stem->forward(x);  // [B,D,g,g]
  return y.flatten(2).transpose(1, 2);
}

ViTImpl::ViTImpl(const ViTConfig& c) : config(c) {
  if (auto e = c.check(); !e.empty()) throw std::invalid_argument("ViT config: " + e);
  // Registration order = timm's state_dict order.
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, c.dim}));
  pos_embed = register_parameter("pos_embed", torch::zeros({1, c.num_patches() + 1, c.dim}));
  patch_embed = register_module("patch_embed", PatchEmbed(c));
  blocks = register_module("blocks", nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i) blocks->push_back(Block(c));
  norm = register_module("norm", nn::LayerNorm(nn::LayerNormOptions({c.dim}).eps(c.ln_eps)));
  head = register_module("head", nn::Linear(c.dim, c.num_classes));
  reset_weights();
}

void ViTImpl::reset_weights() {
  torch::NoGradGuard g;
  trunc_normal_(pos_embed, 0.02);
  cls_token.normal_(0.0, 1e-6);
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* l = m->as<nn::Linear>()) {
      trunc_normal_(l->weight, 0.02);
      if (l->bias.defined()) l->bias.zero_();
    } else if (auto* ln = m->as<nn::LayerNorm>()) {
      ln->weight.fill_(1.0);
      ln->bias.zero_();
    }
  }
}

torch::Tensor ViTImpl::features(const torch::Tensor& images) {
  auto x = patch_embed->forward(images);  // [B,N,D]
  x = torch::cat({cls_token.expand({x.size(0), -1, -1}), x}, 1) + pos_embed;
  for (auto& b : *blocks) x = b->as<Block>()->forward(x);
  // Pool first, then normalise only the pooled row.
  if (config.pool == "avg") return norm->forward(x.narrow(1, 1, x.size(1) - 1).mean(1));
  if (config.pool == "max") return norm->forward(std::get<0>(x.narrow(1, 1, x.size(1) - 1).max(1)));
  return norm->forward(x.select(1, 0));
}

torch::Tensor ViTImpl::forward(const torch::Tensor& images) {
  return linear(head, features(images));
}

}  // namespace catlip::train
