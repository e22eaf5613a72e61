// The SuperClass objective (superclass.h): the CatLIP ViT with one output per
// BPE id, softmax CE on the online-IDF-weighted caption tokens (or BCE).
#include "catlip/train/superclass.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "catlip/model/clip_config.h"
#include "catlip/model/model_io.h"
#include "catlip/model/vit.h"
#include "catlip/train/data_parallel.h"
#include "catlip/train/loss.h"
#include "catlip/train/objective.h"

namespace catlip::train {

std::vector<int64_t> superclass_target_ids(const std::vector<int64_t>& row, int64_t sot, int64_t eot) {
  std::vector<int64_t> ids;
  for (int64_t t : row) {
    if (t == eot) break;  // what follows is padding
    if (t != sot) ids.push_back(t);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

TokenIdf::TokenIdf(int64_t vocab_size, torch::Device device)
    : vocab_(vocab_size),
      counts_(torch::zeros({vocab_size + 1}, torch::TensorOptions().dtype(torch::kInt64).device(device))),
      pending_(torch::zeros_like(counts_)) {}

void TokenIdf::add(const std::vector<std::vector<int64_t>>& rows, DataParallel* dp) {
  torch::NoGradGuard g;
  // Every id of every row once, then the slot N once per row: one bincount
  // on the device gives the batch's df and documents together.
  std::vector<int64_t> flat;
  for (auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  flat.insert(flat.end(), rows.size(), vocab_);
  auto ids = torch::from_blob(flat.data(), {int64_t(flat.size())}, torch::kInt64).to(counts_.device());
  auto inc = torch::bincount(ids, {}, vocab_ + 1).to(torch::kInt64).contiguous();
  if (dp) dp->sum_(inc);
  pending_.add_(inc);
}

void TokenIdf::commit() {
  torch::NoGradGuard g;
  counts_.add_(pending_);
  pending_.zero_();
}

torch::Tensor TokenIdf::idf() const {
  auto c = (counts_ + pending_).to(torch::kFloat64);
  auto n = c.narrow(0, vocab_, 1);
  return torch::log((n + 1.0) / (c.narrow(0, 0, vocab_) + 1.0)).to(torch::kFloat32);
}

int64_t TokenIdf::documents() const { return (counts_[vocab_] + pending_[vocab_]).item<int64_t>(); }

void TokenIdf::to(const torch::Device& device) {
  if (counts_.device() == device) return;
  counts_ = counts_.to(device);
  pending_ = pending_.to(device);
}

torch::Tensor superclass_targets(const std::vector<std::vector<int64_t>>& rows, const torch::Tensor& idf,
                                 int64_t vocab_size, const torch::Device& device) {
  auto t = multi_hot(rows, vocab_size, device) * idf.to(device, torch::kFloat32).unsqueeze(0);
  return t / t.sum(1, true).clamp_min(1e-12);  // F.normalize(p=1): a zero row stays zero
}

torch::Tensor superclass_softmax_loss(const torch::Tensor& logits, const torch::Tensor& targets) {
  auto lp = torch::log_softmax(logits.to(torch::kFloat32), 1);
  return -(targets.to(torch::kFloat32) * lp).sum(1).mean();
}

double token_recall_at_k(const torch::Tensor& logits, const std::vector<std::vector<int64_t>>& ids, int64_t k) {
  auto top = std::get<1>(logits.detach().to(torch::kCPU).topk(std::min(k, logits.size(1)), 1));
  double sum = 0;
  int64_t n = 0;
  for (size_t r = 0; r < ids.size(); ++r) {
    if (ids[r].empty()) continue;
    auto row = top[int64_t(r)];
    const int64_t* p = row.data_ptr<int64_t>();
    int64_t hit = 0;
    for (int64_t j = 0; j < row.size(0); ++j)
      hit += std::binary_search(ids[r].begin(), ids[r].end(), p[j]) ? 1 : 0;
    sum += double(hit) / double(std::min<int64_t>(int64_t(ids[r].size()), k));
    ++n;
  }
  return n ? sum / double(n) : 0.0;
}

namespace {

class SuperclassObjective : public Objective {
 public:
  explicit SuperclassObjective(const TrainOptions& opt)
      : tok_(model::read_tokenizer_info(opt.tokenizer_path)), loss_(opt.superclass.loss),
        idf_(tok_.vocab_size, torch::kCPU) {
    if (loss_ != "softmax" && loss_ != "bce")
      throw std::invalid_argument("train.superclass: loss must be softmax or bce, not '" + loss_ + "'");
    cfg_ = opt.model;
    cfg_.num_classes = tok_.vocab_size;  // every BPE id; see superclass.h
    cfg_.mean = opt.mean;
    cfg_.std = opt.std;
    if (auto e = cfg_.check(); !e.empty()) throw std::invalid_argument("model: " + e);
    model_ = model::ViT(cfg_);
  }
  const char* name() const override { return "superclass"; }
  torch::nn::Module& module() override { return *model_; }
  const model::ViTConfig& image_config() const override { return cfg_; }

  // The row becomes its target ids (superclass_target_ids).
  bool take_ints(std::vector<int64_t>& tokens, StageContext& ctx) override {
    for (int64_t t : tokens)
      if (t < 0 || t >= tok_.vocab_size) {
        ctx.count("skipped.token_out_of_range");
        return false;
      }
    tokens = superclass_target_ids(tokens, tok_.vocab_size - 2, tok_.vocab_size - 1);
    if (tokens.empty()) {
      ctx.count("skipped.no_tokens");  // nothing to classify: no target at all
      return false;
    }
    return true;
  }

  torch::Tensor loss(const torch::Tensor& x, const std::vector<std::vector<int64_t>>& ids,
                     const ObjectiveEnv& env) override {
    idf_.to(env.device);
    // The batch's own documents count (as SuperClass's ClsLoss), on every rank.
    idf_.add(ids, env.dp);
    torch::Tensor logits;
    {
      AutocastScope ac(env.bf16_cuda, env.bf16_cpu);
      logits = model_->forward(x);
    }
    if (loss_ == "bce") return catlip_bce_loss(logits, multi_hot(ids, tok_.vocab_size, env.device));
    return superclass_softmax_loss(logits, superclass_targets(ids, idf_.idf(), tok_.vocab_size, env.device));
  }

  // On the model's device (the Trainer moved it there), so that resume loads
  // into it and NCCL can broadcast it.
  model::NamedTensors extra_state() override {
    idf_.to(model_->parameters().front().device());
    return {{"superclass.idf_counts", idf_.counts()}};
  }
  void after_step() override { idf_.commit(); }
  void report(StageContext& ctx) override { ctx.gauge("train.idf_documents", double(idf_.documents())); }

  const std::string& checksum() const override { return tok_.checksum; }

  std::map<std::string, std::string> meta() const override {
    return {{"catlip.objective", "superclass"},
            {"catlip.model", cfg_.to_string()},
            {"catlip.superclass_loss", loss_},
            {"catlip.tokenizer_checksum", tok_.checksum},
            {"catlip.vocab_checksum", tok_.checksum}};
  }

  void check_resume(const std::map<std::string, std::string>& m, const std::string& path) const override {
    auto get = [&](const std::string& k) -> std::string {
      auto it = m.find(k);
      if (it == m.end()) throw std::runtime_error(path + ": metadata '" + k + "' missing");
      return it->second;
    };
    if (get("catlip.objective") != "superclass")
      throw std::runtime_error(path + " is a " + get("catlip.objective") +
                               " checkpoint; train.superclass cannot resume it");
    if (get("catlip.tokenizer_checksum") != tok_.checksum)
      throw std::runtime_error(path + " was trained with tokenizer " + get("catlip.tokenizer_checksum") + " but " +
                               tok_.path + " is " + tok_.checksum + "; refusing to resume with another tokenizer");
    if (model::ViTConfig::parse(get("catlip.model")) != cfg_)
      throw std::runtime_error(path + " holds model '" + get("catlip.model") + "' but the configuration asks for '" +
                               cfg_.to_string() + "'");
  }

  std::string export_weights(const std::string& dir, const std::string& name, const model::NamedTensors& state,
                             int64_t step) const override {
    auto p = model::export_vit(dir, name, state, cfg_,
                               {{"catlip.objective", "superclass"},
                                {"catlip.tokenizer_checksum", tok_.checksum},
                                {"catlip.vocab_checksum", tok_.checksum}},
                               step);
    // The tokenizer beside the weights: output i is BPE id i.
    namespace fs = std::filesystem;
    if (fs::path(tok_.path) != fs::path(dir) / "tokenizer.txt")
      fs::copy_file(tok_.path, dir + "/tokenizer.txt", fs::copy_options::overwrite_existing);
    return p;
  }

  std::string describe() const override {
    return "SuperClass: ViT " + cfg_.to_string() + ", " + std::to_string(tok_.vocab_size) + " BPE outputs (" +
           tok_.path + ", " + tok_.checksum + "), loss " + loss_ + (loss_ == "softmax" ? " with online IDF" : "");
  }

 private:
  model::TokenizerInfo tok_;
  std::string loss_;
  TokenIdf idf_;
  model::ViTConfig cfg_;
  model::ViT model_{nullptr};
};

}  // namespace

std::unique_ptr<Objective> make_superclass_objective(const TrainOptions& opt) {
  return std::make_unique<SuperclassObjective>(opt);
}

}  // namespace catlip::train
