// catlip-interop: the catlip side of tests/interop (timm, OpenCLIP), driven by
// the Python checks there; every answer comes from catlip's own code paths.
//
//   catlip-interop vit CONFIG CLASSES SEED DIR INPUT
//       builds ViT(CONFIG) (every parameter perturbed, so biases and norms
//       count), exports it with export_model into DIR, loads the export back
//       with load_model (the evaluator's path) and writes its logits on
//       INPUT's "x" [B,3,H,W] to DIR/logits.safetensors ("logits").
//   catlip-interop bpe TOKENIZER CONTEXT TEXTS.json OUT.json
//       BpeTokenizer::load(TOKENIZER); OUT = [encode_context(t, CONTEXT)...]
//       for the JSON array of strings TEXTS (as text.bpe_encode does).
//   catlip-interop captions N OUT.json
//       the captions of the synthetic data set's first N samples (the
//       quickstart's data: catlip::synth::generate_sample), a JSON array.
//   catlip-interop clip-loss IN RANK WORLD PORT OUT
//       IN: "image", "text" [WORLD*B,E] raw features, "logit_scale" (a log).
//       This rank's rows are L2-normalised, gathered with gradient over
//       WORLD ranks (DataParallel on tcp://127.0.0.1:PORT, Gloo) and given to
//       clip_loss, as train.clip does; OUT: "loss" and the gradients of this
//       rank's raw rows ("grad_image", "grad_text") and of "logit_scale".
//   catlip-interop clip-zeroshot DIR
//       trains a small CLIP (patchify ViT, max pooling, mean/std input
//       normalisation; clip_loss, AdamW) on coloured images captioned "a
//       photo of a NAME.", exports it with export_clip into DIR/export, loads
//       it with load_clip and runs catlip's zero-shot evaluator on a held-out
//       set: DIR/zeroshot.safetensors ("images" uint8 [N,S,S,3], "labels",
//       "scores" [N,C] cosines) and DIR/zeroshot.json (names, prompts,
//       accuracy).
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "catlip/model/clip_model.h"
#include "catlip/model/model_io.h"
#include "catlip/model/safetensors.h"
#include "catlip/model/state_io.h"
#include "catlip/model/vocab.h"
#include "catlip/synth/generator.h"
#include "catlip/text/bpe.h"
#include "catlip/train/data_parallel.h"
#include "catlip/train/loss.h"
#include "catlip/transfer/clip_eval.h"

namespace fs = std::filesystem;
using namespace catlip;

namespace {

torch::Tensor read_tensor(const model::SafeTensorsFile& f, const std::string& name, const std::string& path) {
  auto it = f.tensors.find(name);
  if (it == f.tensors.end()) throw std::runtime_error(path + ": no tensor '" + name + "'");
  return model::to_torch(it->second);
}

void write_tensors(const std::string& path, const model::NamedTensors& ts) {
  model::TensorStash stash;
  for (auto& [n, t] : ts) stash.add(n, t.detach().contiguous().cpu());
  model::safetensors_save(path, {{"format", "pt"}}, stash.views());
}

// Perturbs every parameter and buffer of floating type: a zero bias or a
// unit LayerNorm would hide a transposed or misnamed one.
void perturb(torch::nn::Module& m, double scale) {
  torch::NoGradGuard g;
  for (auto& p : m.parameters()) p.add_(torch::randn_like(p) * scale);
}

int cmd_vit(const std::vector<std::string>& a) {
  if (a.size() != 5) throw std::invalid_argument("vit CONFIG CLASSES SEED DIR INPUT");
  auto cfg = model::ViTConfig::parse(a[0]);
  cfg.num_classes = std::stoll(a[1]);
  torch::manual_seed(std::stoll(a[2]));
  const std::string dir = a[3];
  fs::create_directories(dir);
  model::ViT vit(cfg);
  perturb(*vit, 0.05);
  // A vocabulary of CLASSES rows (the export carries it beside the weights).
  {
    std::ofstream v(dir + "/classes.tsv");
    v << "index\twnid\tlemma\tcount\tgloss\n";
    for (int64_t i = 0; i < cfg.num_classes; ++i) {
      char wnid[16];
      std::snprintf(wnid, sizeof wnid, "n%08lld", static_cast<long long>(1000000 + i));
      v << i << "\t" << wnid << "\tclass_" << i << "\t1\tclass " << i << "\n";
    }
  }
  auto vocab = model::load_vocab(dir + "/classes.tsv");
  auto path = model::export_model(dir, "model", model::named_state(*vit), cfg, vocab, 1);
  auto m = model::load_model(path, true, "cpu");
  auto in = model::safetensors_load(a[4]);
  auto x = read_tensor(in, "x", a[4]).to(torch::kFloat32);
  torch::NoGradGuard g;
  write_tensors(dir + "/logits.safetensors", {{"logits", m.model->forward(x)}});
  std::cout << "exported " << path << " (" << cfg.to_string() << ")\n";
  return 0;
}

int cmd_bpe(const std::vector<std::string>& a) {
  if (a.size() != 4) throw std::invalid_argument("bpe TOKENIZER CONTEXT TEXTS.json OUT.json");
  auto tok = text::BpeTokenizer::load(a[0]);
  const int64_t ctx = std::stoll(a[1]);
  auto texts = json::read_file(a[2]);
  nlohmann::json out = nlohmann::json::array();
  for (auto& t : texts) out.push_back(tok.encode_context(t.get<std::string>(), ctx));
  std::ofstream(a[3]) << out.dump() << "\n";
  return 0;
}

int cmd_captions(const std::vector<std::string>& a) {
  if (a.size() != 2) throw std::invalid_argument("captions N OUT.json");
  synth::SynthOptions o;
  o.size = 32;  // the captions do not depend on the size; small images render fast
  nlohmann::json out = nlohmann::json::array();
  for (int64_t i = 0, n = std::stoll(a[0]); i < n; ++i) out.push_back(synth::generate_sample(o, i).caption);
  std::ofstream(a[1]) << out.dump() << "\n";
  return 0;
}

int cmd_clip_loss(const std::vector<std::string>& a) {
  if (a.size() != 5) throw std::invalid_argument("clip-loss IN RANK WORLD PORT OUT");
  auto in = model::safetensors_load(a[0]);
  const int rank = std::stoi(a[1]), world = std::stoi(a[2]);
  auto image = read_tensor(in, "image", a[0]).to(torch::kFloat32);
  auto text = read_tensor(in, "text", a[0]).to(torch::kFloat32);
  auto ls = read_tensor(in, "logit_scale", a[0]).to(torch::kFloat32).reshape({}).requires_grad_(true);
  const int64_t B = image.size(0) / world;
  auto im = image.narrow(0, rank * B, B).clone().requires_grad_(true);
  auto tx = text.narrow(0, rank * B, B).clone().requires_grad_(true);
  namespace F = torch::nn::functional;
  auto ni = F::normalize(im, F::NormalizeFuncOptions().dim(-1)), nt = F::normalize(tx, F::NormalizeFuncOptions().dim(-1));
  torch::Tensor loss;
  std::unique_ptr<train::DataParallel> dp;
  if (world > 1) {
    train::DistOptions d;
    d.rank = rank;
    d.world_size = world;
    d.endpoint = "tcp://127.0.0.1:" + a[3];
    d.timeout_s = 60;
    dp = std::make_unique<train::DataParallel>(d, torch::kCPU);
    auto all_i = dp->gather_with_grad(ni), all_t = dp->gather_with_grad(nt);
    loss = train::clip_loss(ni, nt, ls, all_i, all_t, int64_t(rank) * B);
  } else {
    loss = train::clip_loss(ni, nt, ls, ni, nt, 0);
  }
  loss.backward();
  write_tensors(a[4], {{"loss", loss.detach().reshape({1})},
                       {"grad_image", im.grad()},
                       {"grad_text", tx.grad()},
                       {"grad_logit_scale", ls.grad().reshape({1})}});
  return 0;
}

int cmd_clip_zeroshot(const std::vector<std::string>& a) {
  if (a.size() != 1) throw std::invalid_argument("clip-zeroshot DIR");
  const std::string dir = a[0];
  fs::create_directories(dir);
  at::set_num_threads(1);
  const std::vector<std::string> names = {"ball", "cup", "tree", "kite"};
  const int64_t C = int64_t(names.size()), S = 16;
  // The tokenizer, learned by catlip from the captions.
  text::BpeWordCounts counts;
  for (auto& n : names)
    for (auto& w : text::bpe_pretokenize(text::bpe_normalize("a photo of a " + n + ".")))
      counts[w] += 10;
  auto tok = text::BpeTokenizer::learn(counts, 540);
  tok.save(dir + "/bpe.txt");
  auto info = model::read_tokenizer_info(dir + "/bpe.txt");

  model::ViTConfig v;
  v.dim = 32, v.depth = 2, v.heads = 2, v.image_size = S, v.patch_size = 4, v.pool = "max";
  v.mean = {0.485, 0.456, 0.406};
  v.std = {0.229, 0.224, 0.225};
  model::TextConfig t;
  t.vocab_size = tok.vocab_size(), t.context_length = 16, t.width = 32, t.depth = 2, t.heads = 2, t.embed_dim = 16;
  torch::manual_seed(0);
  model::ClipModel clip(v, t);

  // Class c: channel c % 3 bright (c >= 3: two channels), with noise.
  auto make = [&](int64_t per_class, uint64_t seed) {
    torch::manual_seed(seed);
    std::vector<torch::Tensor> imgs;
    std::vector<int64_t> labels;
    for (int64_t i = 0; i < per_class; ++i)
      for (int64_t c = 0; c < C; ++c) {
        auto x = torch::randint(0, 120, {S, S, 3}, torch::kInt64);
        x.select(2, c % 3).add_(130);
        if (c >= 3) x.select(2, (c + 1) % 3).add_(130);
        imgs.push_back(x.clamp(0, 255).to(torch::kUInt8));
        labels.push_back(c);
      }
    return transfer::LabeledSet{torch::stack(imgs), torch::tensor(labels, torch::kInt64), 0};
  };
  auto train_set = make(2, 1);  // 8 images: one batch, each class twice
  std::vector<std::vector<int64_t>> rows;
  for (int64_t i = 0; i < train_set.images.size(0); ++i)
    rows.push_back(tok.encode_context("a photo of a " + names[size_t(train_set.labels[i].item<int64_t>())] + ".",
                                      t.context_length));
  auto tokens = model::pad_tokens(rows, torch::kCPU);
  torch::optim::AdamW opt(clip->parameters(), torch::optim::AdamWOptions(3e-3).weight_decay(0.0));
  clip->train();
  namespace F = torch::nn::functional;
  double loss_v = 0;
  for (int s = 0; s < 25; ++s) {
    auto x = model::preprocess_images(train_set.images, torch::kCPU, v.mean, v.std);
    auto fi = F::normalize(clip->encode_image(x), F::NormalizeFuncOptions().dim(1));
    auto ft = F::normalize(clip->encode_text(tokens), F::NormalizeFuncOptions().dim(1));
    auto loss = train::clip_loss(fi, ft, clip->logit_scale, fi, ft, 0);
    opt.zero_grad();
    loss.backward();
    opt.step();
    clip->clamp_logit_scale(100.0);
    loss_v = loss.item<double>();
  }
  auto path = model::export_clip(dir + "/export", "model", model::named_state(*clip), v, t, dir + "/bpe.txt",
                                 info.checksum, 25);

  // catlip's evaluator on the export.
  auto m = model::load_clip(path);
  auto tk = transfer::load_clip_tokenizer(m);
  auto prompts = transfer::clip_prompts(names);
  auto cls = transfer::clip_text_classifier(m, tk, prompts);
  auto test_set = make(6, 2);
  auto scores = transfer::clip_zero_shot_scores(m, test_set.images, cls);
  const double acc = transfer::top1_accuracy(scores, test_set.labels);
  write_tensors(dir + "/zeroshot.safetensors",
                {{"images", test_set.images}, {"labels", test_set.labels}, {"scores", scores}});
  nlohmann::json j = {{"names", names}, {"prompts", prompts}, {"accuracy", acc}, {"final_loss", loss_v},
                      {"export", path}};
  std::ofstream(dir + "/zeroshot.json") << j.dump(1) << "\n";
  std::cout << "zero-shot accuracy " << acc << " on " << test_set.images.size(0) << " images (final loss " << loss_v
            << ")\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: catlip-interop vit|bpe|captions|clip-loss|clip-zeroshot ARGS (see the source's header)\n";
    return 2;
  }
  const std::string cmd = argv[1];
  std::vector<std::string> a(argv + 2, argv + argc);
  try {
    if (cmd == "vit") return cmd_vit(a);
    if (cmd == "bpe") return cmd_bpe(a);
    if (cmd == "captions") return cmd_captions(a);
    if (cmd == "clip-loss") return cmd_clip_loss(a);
    if (cmd == "clip-zeroshot") return cmd_clip_zeroshot(a);
    std::cerr << "catlip-interop: unknown command '" << cmd << "'\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "catlip-interop " << cmd << ": " << e.what() << "\n";
    return 1;
  }
}
