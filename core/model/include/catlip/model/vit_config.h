// catlip/model/vit_config.h - the shape of a ViT, without LibTorch.
//
// Named sizes follow ViT/DeiT: tiny 192/12/3, small 384/12/6, base 768/12/12,
// large 1024/24/16, huge 1280/32/20 (dim/depth/heads). Any of dim, depth or
// heads may be overridden. The config is saved into checkpoints and exports
// as a one-line "key=value ..." string so the evaluator can rebuild the model
// from a weights file alone.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace catlip::model {

struct ViTConfig {
  int64_t dim = 192, depth = 12, heads = 3, mlp_ratio = 4;
  int64_t image_size = 224, patch_size = 16;
  // "patchify" | "conv3" (CoreNet 3-conv stem) | "cnn" (hybrid ViT: log2(patch)
  // stages of 3x3 conv + BN + GELU + 2x2 max-pool; see vit.h)
  std::string stem = "patchify";
  // What the head sees: "token" (the CLS token, ViT/CatLIP), "avg" or "max"
  // over the patch tokens (timm's global_pool). Max suits multi-label
  // presence of small objects: one token that sees the object is enough.
  std::string pool = "token";
  int64_t num_classes = 1000;
  // Input normalisation the weights were trained with ((x/255 - mean)/std
  // per channel; empty = none). Part of the config so the evaluator and
  // Transfer Init apply what training applied without being told.
  std::vector<double> mean, std;
  double ln_eps = 1e-6;  // timm's ViT LayerNorm eps, so exported weights match

  int64_t grid() const { return image_size / patch_size; }
  int64_t num_patches() const { return grid() * grid(); }
  // "" if consistent, else a message (dim not divisible by heads, ...).
  std::string check() const;
  std::string to_string() const;
  static ViTConfig parse(const std::string& s);  // throws std::runtime_error
  // Approximate multiply-adds x2 of one forward pass for one image.
  double forward_flops() const;
  bool operator==(const ViTConfig& o) const { return to_string() == o.to_string(); }
};

// Fills dim/depth/heads for a named size; false if the name is unknown.
bool vit_size(const std::string& name, ViTConfig* cfg);

// The timm model that holds exactly this ViT, as the export names it:
// timm.create_model(model, num_classes=N, **kwargs) loads the exported
// safetensors with strict=True and computes the same logits (tests/interop).
// kwargs (JSON values as text) always carry the full shape, since catlip's
// sizes need not equal timm's (huge: catlip 20 heads as CoreNet, timm 16).
// Not exact (the cnn and conv3 stems, a LayerNorm eps other than timm's
// 1e-6): model is the nearest timm form and note says what differs.
struct TimmForm {
  bool exact = false;
  std::string model;
  std::vector<std::pair<std::string, std::string>> kwargs;
  std::string note;  // "" when exact
};
TimmForm timm_form(const ViTConfig& cfg);

}  // namespace catlip::model
