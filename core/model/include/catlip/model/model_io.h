// catlip/model/model_io.h - loading trained weights for inference (the API
// the evaluator uses) and writing the timm-named export.
//
//   auto m = catlip::model::load_model("run/export/model.safetensors");
//   auto x = catlip::model::preprocess_images(u8_bhwc, m.device);
//   auto logits = m.model->forward(x);   // [B, num_classes]
//
// Both catlip checkpoints (ckpt-*.catlip) and exported .safetensors files
// carry the model config ("catlip.model") in their metadata, so the model is
// rebuilt from the file alone.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "catlip/model/state_io.h"
#include "catlip/model/vit.h"
#include "catlip/model/vocab.h"

namespace catlip::model {

// "auto" -> cuda if available else cpu; "cpu"; "cuda"; "cuda:N". Throws if
// CUDA is requested but unavailable.
torch::Device resolve_device(const std::string& spec);

struct LoadedModel {
  ViT model{nullptr};
  ViTConfig config;
  torch::Device device = torch::kCPU;
  std::string vocab_checksum;  // "" if the file does not say
  std::string objective = "catlip";  // catlip.objective: catlip, or superclass (outputs are BPE ids)
  std::string tokenizer_checksum;    // superclass: the tokenizer's, as recorded ("" if none)
  int64_t step = -1;
  bool ema = false;  // the EMA weights were loaded
};

// Loads a checkpoint (prefer_ema: its EMA weights when it has them) or an
// export, in eval mode on `device`. Throws std::runtime_error naming the file.
LoadedModel load_model(const std::string& path, bool prefer_ema = true,
                       const std::string& device = "cpu");

// uint8 [B,H,W,3] (any device) -> float [B,3,H,W] on `device`, scaled to
// [0,1]; then (x - mean) / std per channel when mean/std are given (CoreNet's
// default for CatLIP is no mean/std normalisation).
torch::Tensor preprocess_images(const torch::Tensor& u8_bhwc, const torch::Device& device,
                                const std::vector<double>& mean = {},
                                const std::vector<double>& std = {});

// Writes <dir>/<name>.safetensors (timm VisionTransformer names, F32 for
// floating tensors; with avg or max pooling the final norm is timm's
// fc_norm.*) plus <dir>/vocab.tsv and <dir>/config.json, whose "timm" entry
// names the timm model and kwargs that load it strictly (timm_form; "exact":
// false and a "note" for stems timm lacks). Returns the weights path.
std::string export_model(const std::string& dir, const std::string& name, const NamedTensors& weights,
                         const ViTConfig& cfg, const Vocab& vocab, int64_t step);
// The same without the vocabulary: the weights (metadata catlip.model,
// catlip.step and `extra_meta`) and config.json. train.superclass writes its
// tokenizer beside them instead.
std::string export_vit(const std::string& dir, const std::string& name, const NamedTensors& weights,
                       const ViTConfig& cfg, const std::map<std::string, std::string>& extra_meta, int64_t step);

}  // namespace catlip::model
