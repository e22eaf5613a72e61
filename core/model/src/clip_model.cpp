// The implementation of catlip/model/clip_model.h: CLIP's text tower and joint model
// (LibTorch), loading CLIP weights and writing CLIP's export.
#include "catlip/model/clip_model.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "catlip/model/checkpoint_file.h"
#include "catlip/model/model_io.h"
#include "catlip/model/safetensors.h"

namespace fs = std::filesystem;

namespace catlip::model {

namespace nn = torch::nn;

TextTransformerImpl::TextTransformerImpl(const TextConfig& c) : config(c) {
  if (auto e = c.check(); !e.empty()) throw std::invalid_argument("text config: " + e);
  token_embedding = register_module("token_embedding", nn::Embedding(c.vocab_size, c.width));
  positional_embedding = register_parameter("positional_embedding", torch::zeros({c.context_length, c.width}));
  blocks = register_module("blocks", nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i) blocks->push_back(Block(c.width, c.heads, c.mlp_ratio, c.ln_eps));
  ln_final = register_module("ln_final", nn::LayerNorm(nn::LayerNormOptions({c.width}).eps(c.ln_eps)));
  text_projection = register_parameter("text_projection", torch::zeros({c.width, c.embed_dim}));
  reset_weights();
}

void TextTransformerImpl::reset_weights() {
  torch::NoGradGuard g;
  const double W = double(config.width);
  const double attn_std = std::pow(W, -0.5);
  const double proj_std = attn_std * std::pow(2.0 * double(config.depth), -0.5);
  const double fc_std = std::pow(2.0 * W, -0.5);
  token_embedding->weight.normal_(0, 0.02);
  positional_embedding.normal_(0, 0.01);
  for (auto& m : *blocks) {
    auto* b = m->as<Block>();
    b->attn->qkv->weight.normal_(0, attn_std);
    b->attn->qkv->bias.zero_();
    b->attn->proj->weight.normal_(0, proj_std);
    b->attn->proj->bias.zero_();
    b->mlp->fc1->weight.normal_(0, fc_std);
    b->mlp->fc1->bias.zero_();
    b->mlp->fc2->weight.normal_(0, proj_std);
    b->mlp->fc2->bias.zero_();
    for (auto* ln : {b->norm1.get(), b->norm2.get()}) {
      ln->weight.fill_(1.0);
      ln->bias.zero_();
    }
  }
  text_projection.normal_(0, attn_std);
}

torch::Tensor causal_mask(int64_t T, const torch::Device& device) {
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  return torch::full({T, T}, -std::numeric_limits<float>::infinity(), opts).triu(1);
}

torch::Tensor TextTransformerImpl::hidden(const torch::Tensor& tokens) {
  TORCH_CHECK(tokens.dim() == 2, "text tokens must be [B,T]");
  const int64_t T = tokens.size(1);
  TORCH_CHECK(T >= 1 && T <= config.context_length, "text: ", T, " tokens exceed context_length ",
              config.context_length);
  auto x = token_embedding->forward(tokens) + positional_embedding.narrow(0, 0, T);
  // Causal attention (SDPA's is_causal; the math path builds the mask).
  for (auto& b : *blocks) x = b->as<BlockImpl>()->forward(x, {}, /*causal=*/true);
  return ln_final->forward(x);
}

torch::Tensor TextTransformerImpl::forward(const torch::Tensor& tokens) {
  auto x = hidden(tokens);
  // The end-of-text token's features: the highest id in each row.
  auto eot = tokens.argmax(1);
  auto pooled = x.index({torch::arange(x.size(0), tokens.options()), eot});
  return pooled.matmul(text_projection);
}

ClipModelImpl::ClipModelImpl(ViTConfig vision, const TextConfig& t, double init_logit_scale,
                             std::optional<double> init_logit_bias) {
  vision.num_classes = t.embed_dim;
  visual = register_module("visual", ViT(vision));
  text = register_module("text", TextTransformer(t));
  logit_scale = register_parameter("logit_scale", torch::tensor(std::log(init_logit_scale)));
  if (init_logit_bias) logit_bias = register_parameter("logit_bias", torch::tensor(*init_logit_bias));
}

torch::Tensor ClipModelImpl::encode_image(const torch::Tensor& images) { return visual->forward(images); }
torch::Tensor ClipModelImpl::encode_text(const torch::Tensor& tokens) { return text->forward(tokens); }

void ClipModelImpl::clamp_logit_scale(double max_scale) {
  torch::NoGradGuard g;
  logit_scale.clamp_(0.0, std::log(max_scale));
}

torch::Tensor pad_tokens(const std::vector<std::vector<int64_t>>& rows, const torch::Device& device) {
  size_t T = 1;
  for (auto& r : rows) T = std::max(T, r.size());
  auto t = torch::zeros({int64_t(rows.size()), int64_t(T)}, torch::kInt64);
  auto* p = t.data_ptr<int64_t>();
  for (size_t i = 0; i < rows.size(); ++i) std::copy(rows[i].begin(), rows[i].end(), p + i * T);
  return t.to(device);
}

namespace {
SafeTensorsFile read_weights(const std::string& path, bool* is_ckpt) {
  *is_ckpt = path.size() > 7 && path.substr(path.size() - 7) == ".catlip";
  if (!*is_ckpt) return safetensors_load(path);
  auto c = read_checkpoint_file(path);
  if (!c.ok()) throw std::runtime_error(c.status().message());
  return std::move(c).value();
}
std::string meta_of(const SafeTensorsFile& f, const std::string& path, const std::string& k) {
  auto it = f.metadata.find(k);
  if (it == f.metadata.end()) throw std::runtime_error(path + ": metadata '" + k + "' missing");
  return it->second;
}
}  // namespace

bool is_clip_file(const std::string& path) {
  bool ck = false;
  auto f = read_weights(path, &ck);
  auto it = f.metadata.find("catlip.objective");
  return it != f.metadata.end() && (it->second == "clip" || it->second == "siglip");
}

LoadedClip load_clip(const std::string& path, bool prefer_ema, const std::string& device) {
  bool is_ckpt = false;
  auto f = read_weights(path, &is_ckpt);
  auto obj = f.metadata.find("catlip.objective");
  if (obj == f.metadata.end() || (obj->second != "clip" && obj->second != "siglip"))
    throw std::runtime_error(path + " does not hold a CLIP model (train.clip writes catlip.objective = clip, "
                             "train.siglip siglip)");
  LoadedClip m;
  m.objective = obj->second;
  m.vision = ViTConfig::parse(meta_of(f, path, "catlip.model"));
  m.text = TextConfig::parse(meta_of(f, path, "catlip.text_model"));
  if (auto it = f.metadata.find("catlip.tokenizer_checksum"); it != f.metadata.end()) m.tokenizer_checksum = it->second;
  if (auto it = f.metadata.find("catlip.step"); it != f.metadata.end()) m.step = std::stoll(it->second);
  m.device = resolve_device(device);
  m.model = m.objective == "siglip" ? ClipModel(m.vision, m.text, 10.0, -10.0) : ClipModel(m.vision, m.text);
  std::string prefix;
  if (is_ckpt) {
    m.ema = prefer_ema && f.tensors.count("ema.logit_scale") != 0;
    prefix = m.ema ? "ema." : "model.";
  }
  load_into(named_state(*m.model), f.tensors, prefix, path);
  m.model->to(m.device);
  m.model->eval();
  // The tokenizer: beside an export; for a checkpoint, in the run's export dir.
  fs::path p(path);
  for (auto cand : {p.parent_path() / "tokenizer.txt", p.parent_path().parent_path() / "export" / "tokenizer.txt"})
    if (fs::is_regular_file(cand)) {
      m.tokenizer_path = cand.string();
      break;
    }
  return m;
}

std::string export_clip(const std::string& dir, const std::string& name, const NamedTensors& weights,
                        const ViTConfig& vision, const TextConfig& text, const std::string& tokenizer_path,
                        const std::string& tokenizer_checksum, int64_t step, const std::string& objective) {
  fs::create_directories(dir);
  TensorStash stash;
  for (auto& [n, t] : weights) stash.add(n, t.is_floating_point() ? t.to(torch::kFloat32) : t);
  ViTConfig v = vision;
  v.num_classes = text.embed_dim;
  std::map<std::string, std::string> meta = {{"format", "pt"},
                                             {"catlip.objective", objective},
                                             {"catlip.model", v.to_string()},
                                             {"catlip.text_model", text.to_string()},
                                             {"catlip.tokenizer_checksum", tokenizer_checksum},
                                             {"catlip.step", std::to_string(step)}};
  std::string path = dir + "/" + name + ".safetensors";
  safetensors_save(path, meta, stash.views());
  // The tokenizer beside the weights: its ids are the text tower's rows.
  if (fs::path(tokenizer_path) != fs::path(dir) / "tokenizer.txt")
    fs::copy_file(tokenizer_path, dir + "/tokenizer.txt", fs::copy_options::overwrite_existing);
  json::Ordered cj = {{"architecture", "clip"},
                      {"embed_dim", text.embed_dim},
                      {"vision_cfg",
                       {{"width", v.dim},
                        {"layers", v.depth},
                        {"heads", v.heads},
                        {"mlp_ratio", v.mlp_ratio},
                        {"image_size", v.image_size},
                        {"patch_size", v.patch_size},
                        {"stem", v.stem},
                        {"pool", v.pool}}},
                      {"text_cfg",
                       {{"vocab_size", text.vocab_size},
                        {"context_length", text.context_length},
                        {"width", text.width},
                        {"layers", text.depth},
                        {"heads", text.heads},
                        {"mlp_ratio", text.mlp_ratio}}},
                      {"tokenizer", "tokenizer.txt"}};
  cj["text_cfg"]["ln_eps"] = text.ln_eps;
  if (objective == "siglip") {
    cj["loss"] = "siglip";
    for (auto& [n, t] : weights)
      if (n == "logit_bias") cj["init_logit_bias"] = t.to(torch::kCPU, torch::kFloat64).item<double>();
  }
  // The input normalisation training applied (OpenCLIP's preprocess_cfg).
  if (!v.mean.empty()) cj["preprocess_cfg"] = {{"mean", v.mean}, {"std", v.std}};
  std::ofstream(dir + "/config.json") << json::dump(cj, 1) << "\n";
  return path;
}

}  // namespace catlip::model
