// The implementation of catlip/model/vit.h: the ViT's modules (attention, MLP, block,
// patch embedding), timm's weight init, and the fast paths (SDPA, checkpointing).
#include "catlip/model/vit.h"

#include <ATen/autocast_mode.h>

#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>

namespace catlip::model {

namespace nn = torch::nn;

void trunc_normal_(torch::Tensor t, double std) {
  torch::NoGradGuard g;
  // Sample uniformly in CDF space between the bounds and map back.
  auto cdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
  double l = cdf(-2.0), u = cdf(2.0);
  t.uniform_(2 * l - 1, 2 * u - 1).erfinv_().mul_(std * std::sqrt(2.0)).clamp_(-2 * std, 2 * std);
}

namespace {
// at::linear, not Linear::forward: LibTorch 1.13's C++ functional linear (kept: costs nothing on 2.x)
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

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask, bool causal) {
  const auto B = x.size(0), T = x.size(1), D = x.size(2);
  // [B,T,3,H,hd] -> [3,B,H,T,hd]
  // unbind, not qkv_[i]: three selects would each scatter a full-size
  // zero tensor in backward; unbind's backward is one stack.
  auto parts = linear(qkv, x).reshape({B, T, 3, heads, head_dim}).permute({2, 0, 3, 1, 4}).unbind(0);
  auto &q = parts[0], &k = parts[1], &v = parts[2];
  torch::Tensor out;  // [B,H,T,hd]
  if (sdpa) {
    std::optional<torch::Tensor> m;
    if (mask.defined()) m = mask.to(q.scalar_type());  // under autocast q is bf16
    out = at::scaled_dot_product_attention(q, k, v, m, 0.0, causal && !mask.defined(), scale);
  } else {
    // Scale in place after the bmm (no extra tensor). Not baddbmm(alpha=scale):
    // on CPU that runs a per-matrix addmm_ loop that is several times slower.
    auto attn = at::bmm(q.reshape({B * heads, T, head_dim}), k.reshape({B * heads, T, head_dim}).transpose(1, 2));
    attn.mul_(scale);
    if (mask.defined()) attn.add_(mask.to(attn.scalar_type()));
    if (causal && !mask.defined())
      attn.masked_fill_(torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(x.device())).triu(1),
                        -std::numeric_limits<float>::infinity());
    attn = attn.softmax(-1);
    out = at::bmm(attn, v.reshape({B * heads, T, head_dim})).view({B, heads, T, head_dim});
  }
  out = out.transpose(1, 2).reshape({B, T, D});
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

torch::Tensor BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& mask, bool causal) {
  auto h = x + attn->forward(norm1->forward(x), mask, causal);
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
  auto in = channels_last ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
  auto y = conv ? conv->forward(in) : stem->forward(in);  // [B,D,g,g]
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
  const bool ckpt = checkpoint_blocks != 0 && is_training() && torch::GradMode::is_enabled();
  int64_t i = 0;
  for (auto& b : *blocks) {
    auto* blk = b->as<BlockImpl>();
    bool recompute = ckpt && (checkpoint_blocks < 0 || i++ < checkpoint_blocks);
    x = recompute ? checkpointed(*blk, x) : blk->forward(x);
  }
  // Pool first, then normalise only the pooled row.
  if (config.pool == "avg") return norm->forward(x.narrow(1, 1, x.size(1) - 1).mean(1));
  if (config.pool == "max") return norm->forward(std::get<0>(x.narrow(1, 1, x.size(1) - 1).max(1)));
  return norm->forward(x.select(1, 0));
}

torch::Tensor ViTImpl::forward(const torch::Tensor& images) {
  return linear(head, features(images));
}

namespace {

// Reentrant checkpoint (as torch.utils.checkpoint with use_reentrant=True):
// the block's parameters are not inputs of this node; the nested backward
// in backward() accumulates their gradients directly (firing their hooks,
// so the data-parallel buckets see them as usual).
struct CheckpointFn : torch::autograd::Function<CheckpointFn> {
  // `mask` by pointer: an undefined tensor cannot be an autograd input.
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, BlockImpl* block,
                               const torch::Tensor* mask_p, bool causal) {
    const torch::Tensor mask = mask_p ? *mask_p : torch::Tensor();
    ctx->save_for_backward({x});
    ctx->saved_data["block"] = reinterpret_cast<int64_t>(block);
    ctx->saved_data["causal"] = causal;
    if (mask.defined()) ctx->saved_data["mask"] = mask.detach();
    ctx->saved_data["ac_cpu"] = at::autocast::is_autocast_enabled(at::kCPU);
    ctx->saved_data["ac_cuda"] = at::autocast::is_autocast_enabled(at::kCUDA);
    ctx->saved_data["ac_cpu_dtype"] = int64_t(at::autocast::get_autocast_dtype(at::kCPU));
    ctx->saved_data["ac_cuda_dtype"] = int64_t(at::autocast::get_autocast_dtype(at::kCUDA));
    torch::NoGradGuard g;
    return block->forward(x, mask, causal);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    auto* block = reinterpret_cast<BlockImpl*>(ctx->saved_data["block"].toInt());
    torch::Tensor mask;
    if (auto it = ctx->saved_data.find("mask"); it != ctx->saved_data.end()) mask = it->second.toTensor();
    torch::Tensor y;
    {
      // The forward's autocast state, restored for the recomputation.
      const bool cpu = ctx->saved_data["ac_cpu"].toBool(), cuda = ctx->saved_data["ac_cuda"].toBool();
      const bool prev_cpu = at::autocast::is_autocast_enabled(at::kCPU);
      const bool prev_cuda = at::autocast::is_autocast_enabled(at::kCUDA);
      const auto prev_cpu_dt = at::autocast::get_autocast_dtype(at::kCPU);
      const auto prev_cuda_dt = at::autocast::get_autocast_dtype(at::kCUDA);
      at::autocast::set_autocast_dtype(at::kCPU, at::ScalarType(ctx->saved_data["ac_cpu_dtype"].toInt()));
      at::autocast::set_autocast_dtype(at::kCUDA, at::ScalarType(ctx->saved_data["ac_cuda_dtype"].toInt()));
      at::autocast::set_autocast_enabled(at::kCPU, cpu);
      at::autocast::set_autocast_enabled(at::kCUDA, cuda);
      torch::AutoGradMode on(true);
      y = block->forward(x, mask, ctx->saved_data["causal"].toBool());
      at::autocast::set_autocast_enabled(at::kCPU, prev_cpu);
      at::autocast::set_autocast_enabled(at::kCUDA, prev_cuda);
      at::autocast::set_autocast_dtype(at::kCPU, prev_cpu_dt);
      at::autocast::set_autocast_dtype(at::kCUDA, prev_cuda_dt);
      if (cpu || cuda) at::autocast::clear_cache();
    }
    torch::autograd::backward({y}, {grad_out[0]});
    return {x.grad(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor checkpointed(BlockImpl& block, const torch::Tensor& x, const torch::Tensor& mask, bool causal) {
  return CheckpointFn::apply(x, &block, mask.defined() ? &mask : nullptr, causal);
}

void apply_fast_paths(torch::nn::Module& root, const FastPaths& f) {
  if (f.attention != "sdpa" && f.attention != "math")
    throw std::invalid_argument("attention must be sdpa or math, not '" + f.attention + "'");
  auto visit = [&](torch::nn::Module& m) {
    if (auto* a = dynamic_cast<AttentionImpl*>(&m)) a->sdpa = f.attention == "sdpa";
    if (auto* v = dynamic_cast<ViTImpl*>(&m)) v->checkpoint_blocks = f.checkpoint_blocks;
    if (auto* pe = dynamic_cast<PatchEmbedImpl*>(&m)) {
      pe->channels_last = f.channels_last;
      torch::NoGradGuard g;
      const auto fmt = f.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
      for (auto& p : pe->parameters())
        if (p.dim() == 4) p.set_data(p.contiguous(fmt));
    }
  };
  visit(root);
  for (auto& m : root.modules(/*include_self=*/false)) visit(*m);
}

}  // namespace catlip::model
