// train.siglip on tiny models: the sigmoid loss (and its gradients) against
// a hand computation, the ring exchange over 2, 3 and 4 real c10d ranks
// against one process on the whole batch, memorising a small fixed set
// through the Trainer (retrieval accuracy, export, zero-shot loading), an
// exact resume that keeps the logit scale and bias, and the stage itself.
#include <torch/torch.h>
// LibTorch pulls in glog, whose CHECK would silently replace Catch's.
#undef CHECK
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <future>
#include <random>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "catlip/local.h"
#include "catlip/model/checkpoint_file.h"
#include "catlip/model/clip_model.h"
#include "catlip/model/model_io.h"
#include "catlip/train/data_parallel.h"
#include "catlip/train/loss.h"
#include "catlip/train/train_stage.h"
#include "catlip/train/trainer.h"
#include "test_util.h"
#include "token_pairs.h"

using namespace catlip;
using namespace catlip::model;
using namespace catlip::train;
using namespace catlip::test;
namespace fs = std::filesystem;

namespace {

TrainOptions siglip_options(const std::string& dir) {
  TrainOptions o = tiny_text_options(dir, "siglip");
  o.clip.init_logit_scale = 10;
  o.clip.init_logit_bias = -10;
  return o;
}

// Image -> text retrieval top-1 over the set (cosine: t and b do not change the ranking).
double retrieval_accuracy(LoadedClip& m, const std::vector<Pair>& ps) {
  torch::NoGradGuard g;
  namespace F = torch::nn::functional;
  auto b = torch::empty({int64_t(ps.size()), 32, 32, 3}, torch::kUInt8);
  std::vector<std::vector<int64_t>> tok;
  for (size_t i = 0; i < ps.size(); ++i) {
    std::memcpy(b[int64_t(i)].data_ptr(), ps[i].image.data.data(), ps[i].image.data.size());
    tok.emplace_back(ps[i].tokens.begin(), ps[i].tokens.end());
  }
  auto img = F::normalize(m.model->encode_image(preprocess_images(b, m.device)), F::NormalizeFuncOptions().dim(-1));
  auto txt = F::normalize(m.model->encode_text(pad_tokens(tok, m.device)), F::NormalizeFuncOptions().dim(-1));
  auto hit = img.matmul(txt.t()).argmax(1).eq(torch::arange(int64_t(ps.size())));
  return hit.to(torch::kFloat64).mean().item<double>();
}

const Tensor& named(const std::vector<std::pair<std::string, Tensor>>& w, const std::string& name) {
  for (auto& [n, t] : w)
    if (n == name) return t;
  throw std::runtime_error("no tensor " + name);
}

double scalar_of(const Tensor& t) {
  REQUIRE(t.dtype == DType::F32);
  REQUIRE(t.data.size() == 4);
  float v;
  std::memcpy(&v, t.data.data(), 4);
  return v;
}

}  // namespace

TEST_CASE("siglip: the sigmoid loss and its gradients on a 4x4 example equal a hand computation") {
  torch::manual_seed(5);
  namespace F = torch::nn::functional;
  auto norm = [](torch::Tensor t) { return F::normalize(t, F::NormalizeFuncOptions().dim(-1)); };
  const int64_t B = 4, E = 5;
  auto img = norm(torch::randn({B, E}, torch::kFloat64)), txt = norm(torch::randn({B, E}, torch::kFloat64));
  // Plain loops in double precision: logit_ij = t <img_i, txt_j> + b, label +1 on the diagonal (or -1
  // everywhere for another rank's texts); loss = -sum_ij log sigmoid(label * logit) / B;
  // d/db = -sum_ij label (1 - sigmoid(label logit)) / B; d/dt' = t * -sum_ij label <.,.> (1 - sigmoid) / B.
  struct Hand {
    double loss = 0, d_bias = 0, d_scale = 0;
  };
  auto hand = [&](double ls, double bias, bool positives) {
    const double t = std::exp(ls);
    Hand h;
    for (int64_t i = 0; i < B; ++i)
      for (int64_t j = 0; j < B; ++j) {
        double d = 0;
        for (int64_t k = 0; k < E; ++k) d += img[i][k].item<double>() * txt[j][k].item<double>();
        const double label = positives && i == j ? 1.0 : -1.0;
        const double z = label * (t * d + bias);
        const double sig = 1.0 / (1.0 + std::exp(-z));
        h.loss += -std::log(sig);
        h.d_bias += -label * (1 - sig);
        h.d_scale += -label * t * d * (1 - sig);
      }
    h.loss /= double(B);
    h.d_bias /= double(B);
    h.d_scale /= double(B);
    return h;
  };
  struct Case {
    double ls, bias;
    bool positives;
  };
  for (Case c : {Case{std::log(10.0), -10.0, true}, Case{std::log(3.7), -0.8, true}, Case{std::log(3.7), -0.8, false},
                 Case{std::log(25.0), 2.0, true}}) {
    INFO("t = " << std::exp(c.ls) << ", b = " << c.bias << ", positives " << c.positives);
    auto ls = torch::tensor(c.ls, torch::kFloat32).requires_grad_(true);
    auto b = torch::tensor(c.bias, torch::kFloat32).requires_grad_(true);
    auto l = siglip_loss(img, txt, ls, b, c.positives);
    REQUIRE(l.scalar_type() == torch::kFloat32);
    l.backward();
    Hand h = hand(c.ls, c.bias, c.positives);
    REQUIRE(l.item<double>() == Approx(h.loss).epsilon(1e-5));
    REQUIRE(b.grad().item<double>() == Approx(h.d_bias).epsilon(1e-4).margin(1e-6));
    REQUIRE(ls.grad().item<double>() == Approx(h.d_scale).epsilon(1e-4).margin(1e-6));
  }
  // On one rank the ring loss is the local loss.
  auto ls = torch::tensor(std::log(10.0)), b = torch::tensor(-10.0);
  REQUIRE(siglip_ring_loss(img, txt, ls, b, nullptr).item<double>() == Approx(hand(std::log(10.0), -10, true).loss).epsilon(1e-5));
  // Swapping two texts turns two positives into negatives and vice versa: the loss changes.
  auto swapped = txt.index({torch::tensor({1, 0, 2, 3})});
  REQUIRE(std::abs(siglip_loss(img, swapped, ls, b, true).item<double>() - siglip_loss(img, txt, ls, b, true).item<double>()) > 1e-3);
}

TEST_CASE("siglip: the ring over 2, 3 and 4 c10d ranks gives the whole batch's loss and gradients") {
  for (int W : {2, 3, 4}) {
    INFO(W << " ranks");
    torch::manual_seed(11 + W);
    const int64_t B = 3, E = 8, D = 6;
    auto x = torch::randn({W * B, D}), y = torch::randn({W * B, D});
    auto w_img0 = torch::randn({D, E}), w_txt0 = torch::randn({D, E});
    namespace F = torch::nn::functional;
    auto norm = [](torch::Tensor t) { return F::normalize(t, F::NormalizeFuncOptions().dim(-1)); };
    const double ls0 = std::log(10.0) - 0.4, b0 = -2.0;  // away from the init, so every pair matters
    struct Grads {
      double loss = 0;
      torch::Tensor wi, wt, ls, b;
    };
    auto run = [&](int64_t first, int64_t rows, DataParallel* dp) {
      auto wi = w_img0.clone().requires_grad_(true), wt = w_txt0.clone().requires_grad_(true);
      auto ls = torch::tensor(ls0, torch::kFloat32).requires_grad_(true);
      auto b = torch::tensor(b0, torch::kFloat32).requires_grad_(true);
      auto im = norm(x.narrow(0, first, rows).matmul(wi)), tx = norm(y.narrow(0, first, rows).matmul(wt));
      auto l = siglip_ring_loss(im, tx, ls, b, dp);
      l.backward();
      return Grads{l.item<double>(), wi.grad().clone(), wt.grad().clone(), ls.grad().clone(), b.grad().clone()};
    };
    // One process, the whole batch.
    Grads want = run(0, W * B, nullptr);

    int port = test::free_port();
    std::vector<Grads> got(static_cast<size_t>(W));
    std::vector<double> exchange_s(static_cast<size_t>(W));
    std::vector<std::future<void>> fut;
    for (int r = 0; r < W; ++r)
      fut.push_back(std::async(std::launch::async, [&, r] {
        DistOptions d;
        d.rank = r;
        d.world_size = W;
        d.endpoint = "tcp://127.0.0.1:" + std::to_string(port);
        d.timeout_s = 60;
        DataParallel dp(d, torch::kCPU);
        got[size_t(r)] = run(r * B, B, &dp);
        exchange_s[size_t(r)] = dp.take_gather_seconds();
      }));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    for (auto& f : fut) {
      REQUIRE(f.wait_until(deadline) == std::future_status::ready);
      f.get();
    }
    // The ranks' losses average to the whole batch's; their gradients,
    // averaged as the trainer's allreduce does, equal the whole batch's.
    Grads avg{0, torch::zeros_like(want.wi), torch::zeros_like(want.wt), torch::zeros_like(want.ls), torch::zeros_like(want.b)};
    for (auto& g : got) {
      avg.loss += g.loss / W;
      avg.wi += g.wi / W;
      avg.wt += g.wt / W;
      avg.ls += g.ls / W;
      avg.b += g.b / W;
    }
    REQUIRE(avg.loss == Approx(want.loss).epsilon(1e-5));
    REQUIRE(torch::allclose(avg.wi, want.wi, 0, 1e-5));
    REQUIRE(torch::allclose(avg.wt, want.wt, 0, 1e-5));
    REQUIRE(torch::allclose(avg.ls, want.ls, 0, 1e-5));
    REQUIRE(torch::allclose(avg.b, want.b, 0, 1e-5));
    for (double s : exchange_s) REQUIRE(s > 0);
    // Each rank alone is not the whole batch (the check above is not vacuous).
    REQUIRE_FALSE(torch::allclose(got[0].wt, want.wt, 0, 1e-3));
  }
}

TEST_CASE("siglip: a small fixed set is memorised (image->text retrieval near 1), exported with t and b") {
  test::TempDir dir("siglip-overfit");
  auto o = siglip_options(dir.path());
  // More steps than CLIP's 60 with the paper's init (t = 10, b = -10): the
  // positive pairs' pull dominates at first (the loss sits near 3.7 while
  // the features bunch together), the negatives' push takes over once the
  // positives' cosines near 1; retrieval is perfect from about step 110 on
  // this set (constant lr, so a shorter run is this run's prefix).
  const int N = 16, S = 160;
  o.batch_size = N;
  o.steps = S;
  o.lr = 2e-3;
  o.min_lr = o.lr;
  o.model.pool = "avg";  // noise images: patch averages separate them sooner than the CLS token
  auto pairs = make_pairs(N);
  LocalContext ctx;
  double first = 0, last = 0;
  std::vector<std::pair<std::string, Tensor>> final_weights;
  {
    Trainer t(o, ctx);
    for (int s = 0; s < S; ++s) {
      for (auto& p : pairs) {
        p.origin.epoch = s;
        t.add(p.image, p.tokens, p.origin, "k");
      }
      if (s == 0) first = t.last_metrics().loss;
      last = t.last_metrics().loss;
    }
    REQUIRE(t.step() == S);
    t.finish();
    final_weights = t.weights();
  }
  INFO("first loss " << first << ", last " << last);
  REQUIRE(first > 5.0);  // t = 10, b = -10: each image's positive pair costs ~ -log sigmoid(-10 + 10 cos) ~ 10
  REQUIRE(last < 0.05 * first);
  REQUIRE(ctx.gauges().count("train.logit_bias"));
  // The export: SigLIP metadata, t' and b, the tokenizer beside it, loaded for zero-shot as CLIP's.
  const std::string exp = dir.path() + "/export/model.safetensors";
  REQUIRE(fs::is_regular_file(exp));
  REQUIRE(is_clip_file(exp));
  auto m = load_clip(exp);
  REQUIRE(m.objective == "siglip");
  REQUIRE(m.step == S);
  REQUIRE(m.model->logit_bias.defined());
  const double bias = scalar_of(named(final_weights, "logit_bias"));
  REQUIRE(bias != -10.0);  // b is learned
  REQUIRE(m.model->logit_bias.item<double>() == bias);
  REQUIRE(m.model->logit_scale.item<double>() == scalar_of(named(final_weights, "logit_scale")));
  auto cfg = json::read_file(dir.path() + "/export/config.json");
  REQUIRE(json::string(json::at(cfg, "loss")) == "siglip");
  REQUIRE(json::number(json::at(cfg, "init_logit_bias")) == Approx(bias));
  double acc = retrieval_accuracy(m, pairs);
  INFO("retrieval accuracy " << acc);
  REQUIRE(acc >= 0.9);
  // Same from the final checkpoint.
  auto ck = load_clip(list_checkpoints(dir.path() + "/checkpoints").front(), false);
  REQUIRE(ck.objective == "siglip");
  REQUIRE(retrieval_accuracy(ck, pairs) == Approx(acc));
}

TEST_CASE("siglip: resume restores t' and b exactly and reaches the uninterrupted run's weights") {
  test::TempDir a("siglip-resA"), b("siglip-resB");
  auto pairs = make_pairs(32);
  auto feed = [&](Trainer& t, size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) t.add(pairs[i].image, pairs[i].tokens, pairs[i].origin, "k");
  };
  std::vector<std::pair<std::string, Tensor>> want;
  {
    LocalContext ctx;
    auto o = siglip_options(a.path());
    o.steps = 4;
    Trainer t(o, ctx);
    feed(t, 0, 32);
    REQUIRE(t.step() == 4);
    t.finish();
    want = t.weights();
  }
  std::vector<std::pair<std::string, Tensor>> at2;
  {
    LocalContext ctx;
    auto o = siglip_options(b.path());
    o.steps = 2;
    Trainer t(o, ctx);
    feed(t, 0, 16);
    REQUIRE(t.step() == 2);
    t.finish();
    at2 = t.weights();
  }
  REQUIRE(scalar_of(named(at2, "logit_bias")) != -10.0f);
  {
    auto o = siglip_options(b.path());
    o.steps = 4;
    o.resume = true;
    LocalContext ctx;
    Trainer t(o, ctx);
    REQUIRE(t.step() == 2);
    auto now = t.weights();
    for (const char* n : {"logit_scale", "logit_bias"}) {
      INFO(n);
      REQUIRE(named(now, n).data == named(at2, n).data);
    }
    feed(t, 0, 32);  // the first 16 were consumed before the checkpoint: skipped
    REQUIRE(t.step() == 4);
    t.finish();
    auto got = t.weights();
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      INFO(got[i].first);
      REQUIRE(got[i].first == want[i].first);
      REQUIRE(got[i].second.data == want[i].second.data);
    }
  }
  // train.clip refuses a SigLIP checkpoint by name.
  auto o = siglip_options(b.path());
  o.objective = "clip";
  o.resume = true;
  LocalContext ctx;
  REQUIRE_THROWS_WITH(Trainer(o, ctx), Catch::Contains("is a siglip checkpoint"));
}

TEST_CASE("train.siglip stage: SigLIP's defaults, CLIP's text parameters, trains on image and tokens") {
  test::TempDir dir("siglip-stage");
  auto schema = SiglipTrainStage::schema();
  REQUIRE(schema.type == "train.siglip");
  REQUIRE(schema.reads == std::vector<std::string>{"image", "tokens"});
  std::map<std::string, const ParamSpec*> by_name;
  for (auto& p : schema.params) {
    INFO(p.name);
    REQUIRE_FALSE(p.doc.empty());
    REQUIRE(by_name.emplace(p.name, &p).second);  // declared once
  }
  for (const char* n : {"tokenizer", "embed_dim", "text_width", "context_length", "model", "batch_size", "resume"})
    REQUIRE(by_name.count(n));
  REQUIRE_FALSE(by_name.count("gather_features"));  // nothing is gathered
  REQUIRE(std::get<double>(*by_name.at("init_logit_scale")->default_value) == 10.0);
  REQUIRE(std::get<double>(*by_name.at("init_logit_bias")->default_value) == -10.0);

  std::map<std::string, ParamValue> given = {
      {"tokenizer", write_tokenizer(dir.path())}, {"dim", int64_t{32}}, {"depth", int64_t{1}}, {"heads", int64_t{2}},
      {"image_size", int64_t{32}}, {"patch_size", int64_t{8}}, {"embed_dim", int64_t{16}}, {"text_width", int64_t{32}},
      {"text_depth", int64_t{1}}, {"text_heads", int64_t{2}}, {"context_length", int64_t{16}},
      {"init_logit_bias", -4.0}, {"batch_size", int64_t{4}}, {"steps", int64_t{2}}, {"warmup_steps", int64_t{0}},
      {"threads", int64_t{2}}, {"device", std::string("cpu")}, {"log_every", int64_t{0}}};
  LocalContext ctx("trainer", "train.siglip", 0, 1, dir.path());
  SiglipTrainStage stage;
  configure_stage(stage, schema, given, ctx);
  CollectEmitter out;
  for (auto& p : make_pairs(8)) {
    Sample s;
    s.origin = p.origin;
    s.set("image", p.image);
    s.set_ints("tokens", p.tokens);
    stage.process(std::move(s), out);
  }
  stage.flush(out);
  REQUIRE(stage.trainer()->step() == 2);
  auto ck = read_checkpoint_file(list_checkpoints(dir.path() + "/checkpoints").front());
  REQUIRE(ck.ok());
  REQUIRE(ck->metadata.at("catlip.objective") == "siglip");
  const double b = scalar_of(ck->tensors.at("model.logit_bias"));
  REQUIRE(b != -4.0);           // trained from the given init
  REQUIRE(std::abs(b + 4.0) < 0.1);  // two steps of lr 1e-3 from it
  stage.close();
}
