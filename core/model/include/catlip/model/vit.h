// catlip/model/vit.h - the Vision Transformer CatLIP trains (LibTorch).
//
// ViT as in CoreNet's CatLIP configs: patch embedding (a single patchify conv
// or CoreNet's 3-conv stem), a CLS token, learned position embeddings,
// pre-norm blocks (LayerNorm -> MHSA -> residual, LayerNorm -> GELU MLP 4x ->
// residual), a final LayerNorm and a classifier Linear(dim, num_classes) on
// the CLS token. No dropout (the CatLIP recipe uses none).
//
// Two options for small models on small data (the quickstart): stem "cnn", a
// hybrid ViT whose patch embedding is a small VGG-style CNN, and pool "max"
// (timm's global_pool="max"): the head sees the max over patch tokens.
//
// Submodule and parameter names are chosen so that state_dict() keys equal
// timm's VisionTransformer keys (cls_token, pos_embed, patch_embed.proj.*,
// blocks.N.norm1.*, blocks.N.attn.qkv.*, blocks.N.attn.proj.*, blocks.N.norm2.*,
// blocks.N.mlp.fc1.*, blocks.N.mlp.fc2.*, norm.*, head.*): the export is a
// straight dump. The conv3 stem exports as patch_embed.proj.{0,1,3,4,6}.* (an
// nn.Sequential of conv, BN, GELU, conv, BN, GELU, conv), which timm has no
// equivalent for; the cnn stem as patch_embed.proj.{0,1,4,5,8,9,...}.*
// (conv, BN, GELU, max-pool per stage).
//
// Fast paths (FastPaths, apply_fast_paths; each has a plain path it is
// tested against): attention through at::scaled_dot_product_attention
// (flash / memory-efficient kernels on CUDA, a fused kernel on CPU) or the
// plain bmm-softmax-bmm ("math"); the convolutional stem in channels-last
// memory format; and activation checkpointing of the first N blocks (their
// activations are recomputed in backward instead of kept: ViT-L/H memory).
//
// Include only from translation units that already pay for <torch/torch.h>.
#pragma once

#include <torch/torch.h>

#include "catlip/model/vit_config.h"

namespace catlip::model {

// Attention and blocks serve both towers: the ViT (no mask) and CLIP's text
// transformer (clip_model.h), which passes an additive causal mask [T,T].
struct AttentionImpl : torch::nn::Module {
  AttentionImpl(int64_t dim, int64_t heads);
  explicit AttentionImpl(const ViTConfig& c) : AttentionImpl(c.dim, c.heads) {}
  // mask: undefined, or added to the attention logits (broadcast over
  // [B,H]); causal: each position attends to itself and earlier ones.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask = {}, bool causal = false);
  int64_t heads, head_dim;
  double scale;
  bool sdpa = true;  // at::scaled_dot_product_attention; false: the plain math
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t dim, int64_t mlp_ratio);
  explicit MlpImpl(const ViTConfig& c) : MlpImpl(c.dim, c.mlp_ratio) {}
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

struct BlockImpl : torch::nn::Module {
  BlockImpl(int64_t dim, int64_t heads, int64_t mlp_ratio, double ln_eps);
  explicit BlockImpl(const ViTConfig& c) : BlockImpl(c.dim, c.heads, c.mlp_ratio, c.ln_eps) {}
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask = {}, bool causal = false);
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(Block);

struct PatchEmbedImpl : torch::nn::Module {
  explicit PatchEmbedImpl(const ViTConfig& c);
  // [B,3,H,W] float -> [B, num_patches, dim]
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};      // patchify: registered as "proj"
  torch::nn::Sequential stem{nullptr};  // conv3 / cnn: registered as "proj"
  bool channels_last = false;           // input and conv weights in NHWC memory format
};
TORCH_MODULE(PatchEmbed);

struct ViTImpl : torch::nn::Module {
  explicit ViTImpl(const ViTConfig& c);
  // images: [B,3,H,W] float (already normalised) -> logits [B, num_classes]
  torch::Tensor forward(const torch::Tensor& images);
  // Pooled features (CLS token, or mean/max over patch tokens) after the
  // final norm, before the head: [B, dim]
  torch::Tensor features(const torch::Tensor& images);
  // Re-initialises weights as timm does (trunc-normal 0.02 for linear
  // weights and pos_embed, zero biases, 1e-6 normal for the CLS token).
  void reset_weights();

  ViTConfig config;
  int64_t checkpoint_blocks = 0;  // recompute the first N blocks in backward (training only)
  torch::Tensor cls_token, pos_embed;
  PatchEmbed patch_embed{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(ViT);

// Runs a block with activation checkpointing: forward keeps only its input;
// backward runs the block again (under the autocast state of the forward)
// and back-propagates through it. Gradients equal the plain path's.
torch::Tensor checkpointed(BlockImpl& block, const torch::Tensor& x, const torch::Tensor& mask = {}, bool causal = false);

// The training step's fast paths, set on a built model (runtime choices:
// not part of the model's identity, checkpoints or exports).
struct FastPaths {
  std::string attention = "sdpa";  // sdpa | math
  bool channels_last = true;       // conv stem in NHWC (conv3 and cnn stems; patchify too)
  int64_t checkpoint_blocks = 0;   // ViT blocks recomputed in backward; -1 = all
};
// Applies `f` to every Attention, PatchEmbed and ViT under `root`; throws
// std::invalid_argument for an unknown attention name.
void apply_fast_paths(torch::nn::Module& root, const FastPaths& f);

// Truncated normal in [-2 std, 2 std] as torch.nn.init.trunc_normal_ (the
// inverse-CDF method), which LibTorch's C++ API lacks.
void trunc_normal_(torch::Tensor t, double std);

}  // namespace catlip::model
