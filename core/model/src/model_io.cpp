// The implementation of catlip/model/model_io.h: loading a checkpoint or export for
// inference, image preprocessing, and writing the timm-named export.
#include "catlip/model/model_io.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "catlip/model/checkpoint_file.h"
#include "catlip/model/safetensors.h"

namespace fs = std::filesystem;

namespace catlip::model {

torch::Device resolve_device(const std::string& spec) {
  if (spec == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::kCPU;
  if (spec == "cpu") return torch::kCPU;
  if (spec.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      throw std::runtime_error("device '" + spec +
                               "' requested but CUDA is not available (LibTorch built without "
                               "CUDA, or no GPU); use device = \"cpu\" or \"auto\"");
    return torch::Device(spec);
  }
  throw std::runtime_error("unknown device '" + spec + "' (auto, cpu, cuda, cuda:N)");
}

LoadedModel load_model(const std::string& path, bool prefer_ema, const std::string& device) {
  SafeTensorsFile f;
  bool is_ckpt = path.size() > 7 && path.substr(path.size() - 7) == ".catlip";
  if (is_ckpt) {
    auto c = read_checkpoint_file(path);
    if (!c.ok()) throw std::runtime_error(c.status().message());
    f = std::move(c).value();
  } else {
    f = safetensors_load(path);
  }
  auto it = f.metadata.find("catlip.model");
  if (it == f.metadata.end())
    throw std::runtime_error(path + ": no 'catlip.model' metadata; cannot rebuild the model");
  LoadedModel m;
  m.config = ViTConfig::parse(it->second);
  if (auto v = f.metadata.find("catlip.vocab_checksum"); v != f.metadata.end()) m.vocab_checksum = v->second;
  if (auto v = f.metadata.find("catlip.objective"); v != f.metadata.end()) m.objective = v->second;
  if (auto v = f.metadata.find("catlip.tokenizer_checksum"); v != f.metadata.end()) m.tokenizer_checksum = v->second;
  if (auto s = f.metadata.find("catlip.step"); s != f.metadata.end()) m.step = std::stoll(s->second);
  m.device = resolve_device(device);
  m.model = ViT(m.config);
  std::string prefix;
  if (is_ckpt) {
    bool has_ema = f.tensors.count("ema.head.weight") != 0;
    m.ema = prefer_ema && has_ema;
    prefix = m.ema ? "ema." : "model.";
  }
  // Exports of avg/max pooling name the final norm as timm does (fc_norm).
  if (!is_ckpt)
    for (const char* k : {"weight", "bias"})
      if (auto fc = f.tensors.find(std::string("fc_norm.") + k); fc != f.tensors.end() && !f.tensors.count(std::string("norm.") + k)) {
        f.tensors.emplace(std::string("norm.") + k, std::move(fc->second));
        f.tensors.erase(fc);
      }
  load_into(named_state(*m.model), f.tensors, prefix, path);
  m.model->to(m.device);
  m.model->eval();
  return m;
}

torch::Tensor preprocess_images(const torch::Tensor& u8_bhwc, const torch::Device& device,
                                const std::vector<double>& mean, const std::vector<double>& std) {
  // Convert after the transfer: uint8 is a quarter of the bytes of float.
  auto x = u8_bhwc.to(device, /*non_blocking=*/true).permute({0, 3, 1, 2}).to(torch::kFloat32).contiguous();
  if (mean.empty()) return x.div_(255.0);
  // Per channel (x/255 - m)/s as one multiply-subtract with host scalars:
  // no small tensor is copied to the device (a copy from pageable memory
  // would wait for the GPU's queue to drain).
  for (int64_t c = 0; c < x.size(1); ++c) {
    const double m = mean.at(size_t(c)), s = std.at(size_t(c));
    x.select(1, c).mul_(1.0 / (255.0 * s)).sub_(m / s);
  }
  return x;
}

std::string export_model(const std::string& dir, const std::string& name, const NamedTensors& weights,
                         const ViTConfig& cfg, const Vocab& vocab, int64_t step) {
  std::string path = export_vit(dir, name, weights, cfg, {{"catlip.vocab_checksum", vocab.checksum}}, step);
  // The vocabulary beside the weights: row i of vocab.tsv is output i.
  fs::copy_file(vocab.path, dir + "/vocab.tsv", fs::copy_options::overwrite_existing);
  return path;
}

std::string export_vit(const std::string& dir, const std::string& name, const NamedTensors& weights,
                       const ViTConfig& cfg, const std::map<std::string, std::string>& extra_meta, int64_t step) {
  fs::create_directories(dir);
  TensorStash stash;
  // timm normalises after avg/max pooling with fc_norm (its norm is then an
  // Identity): the same LayerNorm as catlip's norm, which also runs after
  // pooling, under timm's name.
  const bool fc_norm = cfg.pool != "token";
  for (auto& [n, t] : weights)
    stash.add(fc_norm && n.rfind("norm.", 0) == 0 ? "fc_" + n : n, t.is_floating_point() ? t.to(torch::kFloat32) : t);
  std::map<std::string, std::string> meta = {{"format", "pt"},
                                             {"catlip.model", cfg.to_string()},
                                             {"catlip.step", std::to_string(step)}};
  meta.insert(extra_meta.begin(), extra_meta.end());
  std::string path = dir + "/" + name + ".safetensors";
  safetensors_save(path, meta, stash.views());
  json::Ordered cfg_json = {{"architecture", "vit"},  {"num_classes", cfg.num_classes},
                            {"embed_dim", cfg.dim},      {"depth", cfg.depth},
                            {"num_heads", cfg.heads},    {"mlp_ratio", cfg.mlp_ratio},
                            {"img_size", cfg.image_size}, {"patch_size", cfg.patch_size},
                            {"stem", cfg.stem},          {"global_pool", cfg.pool},
                            {"class_token", true},       {"norm_eps", cfg.ln_eps}};
  // How timm builds this model (model_io.h, timm_form), or why it cannot.
  const TimmForm tf = timm_form(cfg);
  json::Ordered kw = json::Ordered::object();
  for (auto& [k, v] : tf.kwargs) kw[k] = json::Ordered::parse(v);
  cfg_json["timm"] = {{"model", tf.model}, {"kwargs", kw}, {"exact", tf.exact}};
  if (!tf.exact) cfg_json["timm"]["note"] = tf.note;
  // timm's pretrained_cfg keys for the input normalisation.
  if (!cfg.mean.empty()) {
    cfg_json["mean"] = cfg.mean;
    cfg_json["std"] = cfg.std;
  }
  std::ofstream(dir + "/config.json") << json::dump(cfg_json, 1) << "\n";
  return path;
}

}  // namespace catlip::model
