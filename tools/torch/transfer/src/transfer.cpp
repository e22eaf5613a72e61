// The implementation of catlip/transfer/transfer.h: loading a labeled set from shards and
// the Transfer Init experiments (zero-shot, fine-tuning, linear probe).
#include "catlip/transfer/transfer.h"
#include "catlip/transfer/superclass_eval.h"
#include "catlip/transfer/transfer_ops.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "catlip/eval/checkpoint_path.h"
#include "catlip/eval/ground_truth.h"
#include "catlip/eval/metrics.h"
#include "catlip/eval/png_io.h"
#include "catlip/image/decode.h"
#include "catlip/json.h"
#include "catlip/local.h"
#include "catlip/model/model_io.h"
#include "catlip/rng.h"
#include "catlip/shards/shard_source.h"

namespace catlip::transfer {

LabeledSet load_labeled_set(const std::vector<std::string>& urls, int64_t limit, int size, const eval::ClassList& classes,
                            const std::string& what, void (*log)(const std::string&)) {
  std::map<std::string, ParamValue> given = {{"urls", urls},
                                             {"shuffle_shards", false},
                                             {"count_total", false},
                                             {"epochs", int64_t{1}}};
  LocalContext ctx("transfer." + what, "shards.source");
  shards::ShardSource src;
  configure_stage(src, shards::ShardSource::schema(), given, ctx);
  image::TransformSpec spec;
  spec.mode = image::TransformSpec::Eval;
  spec.size = size;
  spec.resize = size;
  std::vector<uint8_t> px;
  std::vector<torch::Tensor> imgs;
  std::vector<int64_t> labels;
  LabeledSet set;
  CollectEmitter out;
  bool more = true;
  while (more && (limit <= 0 || int64_t(labels.size()) < limit)) {
    more = src.produce(out);
    for (auto& s : out.samples) {
      if (limit > 0 && int64_t(labels.size()) >= limit) break;
      int64_t y = eval::parse_class_label(s.text("cls"), s.text("json"), classes.wnids, classes.names);
      const Bytes* b = nullptr;
      for (const char* f : {"jpg", "png", "webp"})
        if ((b = s.bytes(f))) break;
      if (y < 0 || !b) {
        ++set.skipped;
        continue;
      }
      Rng rng(0);
      auto r = image::decode_transform(b->data.data(), b->data.size(), spec, rng, px);
      if (!r.ok()) {
        ++set.skipped;
        continue;
      }
      imgs.push_back(torch::from_blob(px.data(), {size, size, 3}, torch::kUInt8).clone());
      labels.push_back(y);
    }
    out.samples.clear();
  }
  src.close();
  if (labels.empty())
    throw std::runtime_error("transfer: no class-labeled samples in the " + what + " shards (" +
                             (urls.empty() ? std::string("none given") : urls.front()) +
                             "); samples need .cls or a class in .json");
  set.images = torch::stack(imgs);
  set.labels = torch::tensor(labels, torch::kInt64);
  log("transfer: " + what + " set: " + std::to_string(labels.size()) + " samples (" + std::to_string(set.skipped) +
      " without a usable class or image skipped)");
  return set;
}

torch::Tensor map_batches(const torch::Tensor& images, int64_t bs, const std::function<torch::Tensor(torch::Tensor)>& f) {
  std::vector<torch::Tensor> outs;
  for (int64_t i = 0; i < images.size(0); i += bs) outs.push_back(f(images.narrow(0, i, std::min(bs, images.size(0) - i))));
  return torch::cat(outs);
}

double top1_accuracy(const torch::Tensor& logits, const torch::Tensor& labels) {
  return logits.argmax(1).eq(labels.to(logits.device())).to(torch::kFloat64).mean().item<double>();
}

torch::Tensor synset_class_scores(const torch::Tensor& logits, const eval::MappingReport& mapping) {
  const int64_t C = int64_t(mapping.classes.size());
  auto cls = torch::full({logits.size(0), C}, -1e30f, logits.options().dtype(torch::kFloat32));
  for (int64_t c = 0; c < C; ++c) {
    auto& rows = mapping.classes[size_t(c)].rows;
    if (rows.empty()) continue;
    auto idx = torch::tensor(rows, torch::kInt64).to(logits.device());
    cls.select(1, c).copy_(std::get<0>(logits.index_select(1, idx).max(1)));
  }
  return cls;
}

double synset_zero_shot(model::LoadedModel& m, const LabeledSet& test, const eval::MappingReport& mapping,
                        const std::vector<double>& mean, const std::vector<double>& stdv) {
  torch::NoGradGuard ng;
  auto logits = map_batches(test.images, 128, [&](torch::Tensor x) {
    return m.model->forward(model::preprocess_images(x, m.device, mean, stdv)).cpu();
  });
  return top1_accuracy(synset_class_scores(logits, mapping), test.labels);
}

double linear_probe(const torch::Tensor& ftr, const torch::Tensor& ytr_in, const torch::Tensor& fte,
                    const torch::Tensor& yte, int64_t C, const ProbeOptions& o) {
  const auto dev = ftr.device();
  torch::manual_seed(uint64_t(o.seed));
  torch::nn::Linear probe(ftr.size(1), C);
  probe->to(dev);
  torch::optim::Adam popt(probe->parameters(), torch::optim::AdamOptions(o.lr));
  auto ytr = ytr_in.to(dev);
  for (int64_t s = 0; s < o.steps; ++s) {
    auto loss = torch::nn::functional::cross_entropy(probe->forward(ftr), ytr);
    popt.zero_grad();
    loss.backward();
    popt.step();
  }
  torch::NoGradGuard ng;
  return top1_accuracy(probe->forward(fte.to(dev)).cpu(), yte);
}

namespace {

struct Model {
  model::LoadedModel m;
  torch::nn::Linear head{nullptr};
};

Model load(const std::string& path, const TransferOptions& o) {
  Model r;
  r.m = model::load_model(path, o.ema, o.device);
  return r;
}

}  // namespace

TransferResult run_transfer(const TransferOptions& o, void (*log)(const std::string&)) {
  auto t0 = std::chrono::steady_clock::now();
  int threads = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  TransferResult res;
  eval::WordNetGraph wn(o.wordnet_dir);
  eval::ClassList classes = eval::load_class_list(o.classes);
  res.classes = int64_t(classes.wnids.size());
  std::filesystem::create_directories(o.out_dir);
  const std::string path = eval::resolve_checkpoint(o.checkpoint, o.ema);
  Model base = load(path, o);
  if (base.m.objective == "superclass") {
    // Outputs are BPE ids: a class maps to its name's tokens.
    auto tok = load_superclass_tokenizer(path, base.m.tokenizer_checksum, o.tokenizer);
    if (base.m.config.num_classes != tok.vocab_size())
      throw std::runtime_error(path + " has " + std::to_string(base.m.config.num_classes) +
                               " outputs but its tokenizer has " + std::to_string(tok.vocab_size()) + " ids");
    res.zero_shot_mode = "superclass_tokens";
    res.mapping = superclass_token_mapping(classes, tok, &wn);
    eval::write_file_bytes(o.out_dir + "/transfer_mapping.tsv", superclass_mapping_tsv(res.mapping, tok));
    log("transfer: SuperClass model: " + std::to_string(res.classes) + " classes -> their names' BPE ids: " +
        std::to_string(res.mapping.exact) + " with tokens, " + std::to_string(res.mapping.unmapped) + " without");
  } else {
    if (o.vocab.empty()) throw std::runtime_error("--vocab is required for a CatLIP model (" + path + ")");
    eval::EvalVocab vocab = eval::load_eval_vocab(o.vocab);
    res.mapping = eval::map_classes(classes, vocab, wn, o.max_distance);
    eval::write_file_bytes(o.out_dir + "/transfer_mapping.tsv", eval::mapping_tsv(res.mapping, vocab));
    log("transfer: " + std::to_string(res.classes) + " classes -> vocabulary: " + std::to_string(res.mapping.exact) +
        " exact, " + std::to_string(res.mapping.hyponym) + " via hyponyms, " + std::to_string(res.mapping.hypernym) +
        " via hypernyms, " + std::to_string(res.mapping.unmapped) + " unmapped");
    if (base.m.config.num_classes != vocab.size())
      throw std::runtime_error(path + " has " + std::to_string(base.m.config.num_classes) + " outputs but " + o.vocab +
                               " has " + std::to_string(vocab.size()) + " rows");
  }
  const int S = int(base.m.config.image_size);
  LabeledSet train = load_labeled_set(o.train_urls, o.train_samples, S, classes, "train", log);
  LabeledSet test = load_labeled_set(o.test_urls, o.test_samples, S, classes, "test", log);
  res.train_n = train.images.size(0);
  res.test_n = test.images.size(0);
  const int64_t C = res.classes;
  res.chance = 1.0 / double(C);
  {
    auto counts = torch::bincount(test.labels, {}, C);
    res.majority = counts.max().item<double>() / double(res.test_n);
  }
  const auto dev = base.m.device;
  // Normalisation: as given, else what training recorded in the checkpoint.
  const auto& mean = o.mean.empty() ? base.m.config.mean : o.mean;
  const auto& stdv = o.mean.empty() ? base.m.config.std : o.std;
  auto prep = [&](const torch::Tensor& u8) { return model::preprocess_images(u8, dev, mean, stdv); };

  // ---- zero-shot: max over each class's mapped rows of the synset logits
  // (SuperClass: the mean over its name's token logits).
  {
    res.zero_shot = res.zero_shot_mode == "superclass_tokens"
                        ? superclass_zero_shot(base.m, test, res.mapping, mean, stdv)
                        : synset_zero_shot(base.m, test, res.mapping, mean, stdv);
    log("transfer: zero-shot accuracy " + std::to_string(res.zero_shot) + " (chance " + std::to_string(res.chance) +
        ", majority class " + std::to_string(res.majority) + ")");
  }

  // ---- head initialisation from the mapped rows, or random.
  auto make_head = [&](const std::string& init, const model::LoadedModel& m) {
    const int64_t D = m.config.dim;
    torch::nn::Linear head(D, C);
    torch::NoGradGuard ng;
    model::trunc_normal_(head->weight, 0.02);
    head->bias.zero_();
    if (init == "synsets") {
      auto W = m.model->head->weight.detach().cpu(), B = m.model->head->bias.detach().cpu();
      for (int64_t c = 0; c < C; ++c) {
        auto& rows = res.mapping.classes[size_t(c)].rows;
        if (rows.empty()) continue;
        auto idx = torch::tensor(rows, torch::kInt64);
        head->weight[c].copy_(W.index_select(0, idx).mean(0));
        head->bias[c].copy_(B.index_select(0, idx).mean());
      }
    } else if (init != "random") {
      throw std::runtime_error("init_head must be synsets or random, not '" + init + "'");
    }
    head->to(m.device);
    return head;
  };

  // ---- fine-tuning: same data order, steps and hyper-parameters per head.
  for (const auto& init : o.init_heads) {
    Model mm = load(path, o);
    auto head = make_head(init, mm.m);
    std::vector<torch::Tensor> params;
    for (auto& p : mm.m.model->parameters()) params.push_back(p);
    for (auto& p : head->parameters()) params.push_back(p);
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
    auto eval_now = [&](int64_t step, double loss) {
      torch::NoGradGuard ng;
      mm.m.model->eval();
      auto logits = map_batches(test.images, 128, [&](torch::Tensor x) {
        return head->forward(mm.m.model->features(prep(x))).cpu();
      });
      mm.m.model->train();
      return CurvePoint{step, top1_accuracy(logits, test.labels), loss};
    };
    std::vector<CurvePoint> curve{eval_now(0, std::nan(""))};
    torch::manual_seed(uint64_t(o.seed));
    auto gen_perm = torch::randperm(res.train_n, torch::kInt64);
    int64_t pos = 0;
    mm.m.model->train();
    for (int64_t step = 1; step <= o.steps; ++step) {
      std::vector<int64_t> idx;
      for (int64_t b = 0; b < o.batch_size; ++b) {
        idx.push_back(gen_perm[pos].item<int64_t>());
        pos = (pos + 1) % res.train_n;
      }
      auto it = torch::tensor(idx, torch::kInt64);
      auto x = prep(train.images.index_select(0, it));
      auto y = train.labels.index_select(0, it).to(dev);
      auto loss = torch::nn::functional::cross_entropy(head->forward(mm.m.model->features(x)), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      if (step % o.eval_every == 0 || step == o.steps) curve.push_back(eval_now(step, loss.item<double>()));
    }
    res.heads.push_back(init);
    res.final_accuracy.push_back(curve.back().accuracy);
    log("transfer: fine-tune init_head=" + init + ": accuracy " + std::to_string(curve.front().accuracy) +
        " at step 0, " + std::to_string(curve.back().accuracy) + " after " + std::to_string(o.steps) + " steps");
    res.curves.push_back(std::move(curve));
  }

  // ---- linear probe on frozen features.
  {
    torch::Tensor ftr, fte;
    {
      torch::NoGradGuard ng;
      ftr = map_batches(train.images, 128, [&](torch::Tensor x) { return base.m.model->features(prep(x)); });
      fte = map_batches(test.images, 128, [&](torch::Tensor x) { return base.m.model->features(prep(x)); });
    }
    res.linear_probe = linear_probe(ftr, train.labels, fte, test.labels, C, ProbeOptions{o.probe_steps, o.probe_lr, o.seed});
    log("transfer: linear probe (frozen features, " + std::to_string(o.probe_steps) + " full-batch Adam steps) accuracy " +
        std::to_string(res.linear_probe));
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  auto num6 = [](double v) { return json::round_sig(v, 6); };  // NaN: null
  json::Ordered heads = json::Ordered::object();
  for (size_t h = 0; h < res.heads.size(); ++h) {
    json::Ordered curve = json::Ordered::array();
    for (auto& p : res.curves[h])
      curve.push_back({{"step", p.step}, {"accuracy", num6(p.accuracy)}, {"loss", num6(p.loss)}});
    heads[res.heads[h]] = {{"final_accuracy", num6(res.final_accuracy[h])}, {"curve", std::move(curve)}};
  }
  json::Ordered j = {{"checkpoint", path},
                     {"classes_file", o.classes},
                     {"classes", C},
                     {"mapping",
                      {{"exact", res.mapping.exact},
                       {"hyponym", res.mapping.hyponym},
                       {"hypernym", res.mapping.hypernym},
                       {"unmapped", res.mapping.unmapped},
                       {"coverage", num6(res.mapping.coverage())}}},
                     {"train_samples", res.train_n},
                     {"test_samples", res.test_n},
                     {"chance", num6(res.chance)},
                     {"majority", num6(res.majority)},
                     {"zero_shot", num6(res.zero_shot)},
                     {"zero_shot_mode", res.zero_shot_mode},
                     {"linear_probe", num6(res.linear_probe)},
                     {"finetune",
                      {{"steps", o.steps}, {"batch_size", o.batch_size}, {"lr", num6(o.lr)}, {"heads", std::move(heads)}}},
                     {"seconds", num6(res.seconds)}};
  eval::write_file_bytes(o.out_dir + "/transfer.json", json::dump(j, 1) + "\n");
  return res;
}

}  // namespace catlip::transfer
