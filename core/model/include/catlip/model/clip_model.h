// catlip/model/clip_model.h - CLIP as train.clip trains it (LibTorch).
//
// Image tower: the ViT of vit.h, unchanged (the code train.catlip trains);
// its head is the image projection (ViTConfig::num_classes = embed_dim).
// Text tower: CLIP's transformer. Token embedding + learned positional
// embedding, `depth` pre-norm blocks (the ViT's Block, with an additive
// causal mask so token t sees tokens <= t), ln_final, the features at the
// end-of-text token (the highest id in each row: CLIP's argmax pooling, so
// <|endoftext|> must be the tokenizer's last id) and a projection
// [width, embed_dim] without bias. A learnable logit scale (a log; init
// log(1/0.07); the trainer clamps it to [0, log 100] after every step).
// train.siglip trains the same model plus a learnable logit bias (SigLIP's
// b, init -10); its checkpoints and exports say catlip.objective = siglip
// and load and evaluate zero-shot as CLIP's do (cosine ranking ignores the
// scale and the bias).
//
// State names: visual.<timm ViT names>, text.token_embedding.weight,
// text.positional_embedding, text.blocks.N.*, text.ln_final.*,
// text.text_projection, logit_scale (and logit_bias for SigLIP).
//
// Include only from translation units that already pay for <torch/torch.h>.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "catlip/model/clip_config.h"
#include "catlip/model/state_io.h"
#include "catlip/model/vit.h"

namespace catlip::model {

struct TextTransformerImpl : torch::nn::Module {
  explicit TextTransformerImpl(const TextConfig& c);
  // tokens: int64 [B,T], T <= context_length, each row <|startoftext|> ...
  // <|endoftext|> then zero padding -> projected features [B, embed_dim]
  // (not normalised).
  torch::Tensor forward(const torch::Tensor& tokens);
  // Every position's features after ln_final, [B,T,width] (forward pools
  // the end-of-text one): under the causal mask, position t depends only on
  // tokens 0..t.
  torch::Tensor hidden(const torch::Tensor& tokens);
  // OpenCLIP's initialisation (normal: tokens 0.02, positions 0.01,
  // attention width^-0.5, projections scaled by (2 depth)^-0.5).
  void reset_weights();

  TextConfig config;
  torch::nn::Embedding token_embedding{nullptr};
  torch::Tensor positional_embedding, text_projection;
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm ln_final{nullptr};
};
TORCH_MODULE(TextTransformer);

// Additive causal mask [T,T]: 0 on and below the diagonal, -inf above.
torch::Tensor causal_mask(int64_t T, const torch::Device& device);

struct ClipModelImpl : torch::nn::Module {
  // vision.num_classes is replaced by text.embed_dim. With init_logit_bias
  // (SigLIP) the model also has the parameter logit_bias.
  ClipModelImpl(ViTConfig vision, const TextConfig& text, double init_logit_scale = 1.0 / 0.07,
                std::optional<double> init_logit_bias = std::nullopt);
  torch::Tensor encode_image(const torch::Tensor& images);  // [B,E], not normalised
  torch::Tensor encode_text(const torch::Tensor& tokens);   // [B,E], not normalised
  // Keeps exp(logit_scale) within [1, max_scale] (after each optimizer step).
  void clamp_logit_scale(double max_scale = 100.0);

  ViT visual{nullptr};
  TextTransformer text{nullptr};
  torch::Tensor logit_scale;  // scalar, a log
  torch::Tensor logit_bias;   // scalar (SigLIP only; undefined for CLIP)
};
TORCH_MODULE(ClipModel);

// Token rows -> int64 [B, T] on `device`, T = the longest row, zero-padded.
torch::Tensor pad_tokens(const std::vector<std::vector<int64_t>>& rows, const torch::Device& device);

// A CLIP model loaded for inference (eval mode).
struct LoadedClip {
  ClipModel model{nullptr};
  ViTConfig vision;
  TextConfig text;
  torch::Device device = torch::kCPU;
  std::string tokenizer_path;      // the tokenizer beside the export ("" if not found)
  std::string tokenizer_checksum;  // as recorded in the file
  std::string objective = "clip";  // "clip" or "siglip" (catlip.objective; siglip has logit_bias)
  int64_t step = -1;
  bool ema = false;
};

// True if the checkpoint or export at `path` holds a CLIP model (train.clip
// or train.siglip).
bool is_clip_file(const std::string& path);
// Loads a train.clip or train.siglip checkpoint (prefer_ema: its EMA weights
// when present) or export. Throws std::runtime_error naming the file.
LoadedClip load_clip(const std::string& path, bool prefer_ema = true, const std::string& device = "cpu");

// Writes <dir>/<name>.safetensors (F32, the state names above, metadata
// catlip.objective=`objective` (clip or siglip), catlip.model, catlip.text_model,
// catlip.tokenizer_checksum), copies the tokenizer to <dir>/tokenizer.txt and
// writes <dir>/config.json (shapes in OpenCLIP's vision_cfg/text_cfg terms,
// preprocess_cfg mean/std when training normalised its input; see
// tools/python/catlip_peers.py for loading it into OpenCLIP; for siglip also
// "loss": "siglip" and OpenCLIP's "init_logit_bias", which makes OpenCLIP
// create the logit_bias the weights then fill). Returns the weights path.
std::string export_clip(const std::string& dir, const std::string& name, const NamedTensors& weights,
                        const ViTConfig& vision, const TextConfig& text, const std::string& tokenizer_path,
                        const std::string& tokenizer_checksum, int64_t step, const std::string& objective = "clip");

}  // namespace catlip::model
