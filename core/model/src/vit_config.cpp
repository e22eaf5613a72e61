// The implementation of catlip/model/vit_config.h: named ViT sizes, checks, the
// key=value line saved in checkpoints, and FLOPs per image.
#include "catlip/model/vit_config.h"

#include <cstdlib>
#include <map>
#include <sstream>
#include <stdexcept>

namespace catlip::model {

bool vit_size(const std::string& name, ViTConfig* cfg) {
  struct S { const char* n; int64_t dim, depth, heads; };
  static const S sizes[] = {{"tiny", 192, 12, 3},    {"small", 384, 12, 6},
                            {"base", 768, 12, 12},   {"large", 1024, 24, 16},
                            {"huge", 1280, 32, 20}};
  for (auto& s : sizes)
    if (name == s.n) {
      cfg->dim = s.dim;
      cfg->depth = s.depth;
      cfg->heads = s.heads;
      return true;
    }
  return false;
}

std::string ViTConfig::check() const {
  if (dim <= 0 || depth <= 0 || heads <= 0 || mlp_ratio <= 0) return "dim, depth, heads must be > 0";
  if (dim % heads) return "dim " + std::to_string(dim) + " is not divisible by heads " + std::to_string(heads);
  if (patch_size <= 0 || image_size % patch_size)
    return "image_size " + std::to_string(image_size) + " is not a multiple of patch_size " +
           std::to_string(patch_size);
  if (stem != "patchify" && stem != "conv3" && stem != "cnn") return "stem must be patchify, conv3 or cnn";
  if (pool != "token" && pool != "avg" && pool != "max") return "pool must be token, avg or max";
  if (stem == "cnn") {
    if (patch_size < 2 || (patch_size & (patch_size - 1)))
      return "the cnn stem (one 2x2 max-pool per stage) needs a power-of-two patch_size >= 2";
    if (dim % (patch_size / 2)) return "the cnn stem needs dim divisible by patch_size/2";
  }
  if (stem == "conv3" && patch_size != 16) return "the conv3 stem (strides 4,2,2) needs patch_size 16";
  if (stem == "conv3" && dim % 4) return "the conv3 stem needs dim divisible by 4";
  if (num_classes <= 0) return "num_classes must be > 0";
  if (mean.size() != std.size() || (!mean.empty() && mean.size() != 3))
    return "mean and std must both have 3 values (or both be empty)";
  for (double v : std)
    if (!(v > 0)) return "std values must be > 0";
  return "";
}

std::string ViTConfig::to_string() const {
  std::ostringstream s;
  s << "dim=" << dim << " depth=" << depth << " heads=" << heads << " mlp_ratio=" << mlp_ratio
    << " image_size=" << image_size << " patch_size=" << patch_size << " stem=" << stem << " pool=" << pool
    << " num_classes=" << num_classes << " ln_eps=" << ln_eps;
  auto list = [&](const char* k, const std::vector<double>& v) {
    s << " " << k << "=";
    for (size_t i = 0; i < v.size(); ++i) s << (i ? "," : "") << v[i];
  };
  if (!mean.empty()) list("mean", mean), list("std", std);
  return s.str();
}

ViTConfig ViTConfig::parse(const std::string& str) {
  ViTConfig c;
  std::istringstream in(str);
  std::string kv;
  while (in >> kv) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) throw std::runtime_error("model config: bad entry '" + kv + "'");
    std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    try {
      if (k == "dim") c.dim = std::stoll(v);
      else if (k == "depth") c.depth = std::stoll(v);
      else if (k == "heads") c.heads = std::stoll(v);
      else if (k == "mlp_ratio") c.mlp_ratio = std::stoll(v);
      else if (k == "image_size") c.image_size = std::stoll(v);
      else if (k == "patch_size") c.patch_size = std::stoll(v);
      else if (k == "stem") c.stem = v;
      else if (k == "pool") c.pool = v;  // absent in older checkpoints: token
      else if (k == "num_classes") c.num_classes = std::stoll(v);
      else if (k == "ln_eps") c.ln_eps = std::stod(v);
      else if (k == "mean" || k == "std") {
        auto& out = k == "mean" ? c.mean : c.std;
        std::istringstream vs(v);
        for (std::string x; std::getline(vs, x, ',');) out.push_back(std::stod(x));
      }
      else throw std::runtime_error("unknown key");
    } catch (const std::exception& e) {
      throw std::runtime_error("model config: bad entry '" + kv + "': " + e.what());
    }
  }
  if (auto e = c.check(); !e.empty()) throw std::runtime_error("model config '" + str + "': " + e);
  return c;
}

double ViTConfig::forward_flops() const {
  const double D = double(dim), T = double(num_patches() + 1), N = double(num_patches());
  double f = 0;
  if (stem == "patchify") {
    f += 2.0 * N * D * 3.0 * double(patch_size * patch_size);
  } else if (stem == "cnn") {
    // stage i: 3x3 conv from c_in to c_out at side s, then a 2x2 max-pool.
    int64_t stages = 0;
    while ((int64_t{1} << stages) < patch_size) ++stages;
    double c_in = 3, side = double(image_size);
    for (int64_t i = 0; i < stages; ++i) {
      double c_out = D / double(int64_t{1} << (stages - 1 - i));
      f += 2.0 * side * side * c_in * c_out * 9;
      c_in = c_out, side /= 2;
    }
  } else {
    double g1 = double(image_size / 4), g2 = double(image_size / 8);
    f += 2.0 * g1 * g1 * (D / 4) * 3 * 16 + 2.0 * g2 * g2 * (D / 4) * (D / 4) * 4 +
         2.0 * N * D * (D / 4) * 4;
  }
  double block = 2.0 * T * D * 3 * D      // qkv
                 + 2.0 * T * T * D * 2     // q k^T and attn v
                 + 2.0 * T * D * D         // proj
                 + 2.0 * T * D * D * double(mlp_ratio) * 2;  // fc1 + fc2
  f += double(depth) * block;
  f += 2.0 * D * double(num_classes);  // head on the pooled features
  return f;
}

TimmForm timm_form(const ViTConfig& c) {
  // timm's named ViTs (dim/depth/heads); huge is ViT-H/14 with 16 heads.
  struct N { const char* name; int64_t dim; };
  static const N names[] = {{"vit_tiny_patch16_224", 192},  {"vit_small_patch16_224", 384},
                            {"vit_base_patch16_224", 768},  {"vit_large_patch16_224", 1024},
                            {"vit_huge_patch14_224", 1280}};
  TimmForm f;
  const N* best = &names[0];
  for (auto& n : names)
    if (std::llabs(n.dim - c.dim) < std::llabs(best->dim - c.dim)) best = &n;
  f.model = best->name;
  auto num = [](int64_t v) { return std::to_string(v); };
  f.kwargs = {{"img_size", num(c.image_size)}, {"patch_size", num(c.patch_size)}, {"embed_dim", num(c.dim)},
              {"depth", num(c.depth)},         {"num_heads", num(c.heads)},       {"mlp_ratio", num(c.mlp_ratio)},
              {"global_pool", "\"" + c.pool + "\""}, {"class_token", "true"}};
  std::vector<std::string> why;
  if (c.stem == "cnn")
    why.push_back("stem 'cnn' (the hybrid ViT's conv3x3+BatchNorm+GELU+max-pool stages) has no timm equivalent; "
                  "nearest timm forms: a hybrid VisionTransformer with a CNN backbone "
                  "(timm.models.vision_transformer_hybrid, e.g. vit_small_r26_s32_224), or " + f.model +
                  " itself with stem = \"patchify\" (exact)");
  else if (c.stem == "conv3")
    why.push_back("stem 'conv3' (CoreNet's 3-conv stem) is not a timm VisionTransformer option; nearest timm form: "
                  "the ConvStem of vit_base_mci_224 (timm.models.vision_transformer_hybrid: the same 4/2/2 "
                  "convolutions with BatchNorm and GELU, named patch_embed.backbone.*, with no_embed_class=False), "
                  "or " + f.model + " with stem = \"patchify\" (exact)");
  if (c.ln_eps != 1e-6) why.push_back("LayerNorm eps " + std::to_string(c.ln_eps) + " (timm's ViT uses 1e-6)");
  f.exact = why.empty();
  for (auto& w : why) f.note += (f.note.empty() ? "" : "; ") + w;
  if (!f.exact) f.note += "; the export loads with catlip (load_model, eval.catlip) only";
  return f;
}

}  // namespace catlip::model
