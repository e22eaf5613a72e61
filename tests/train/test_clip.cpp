// train.clip's pieces on tiny models: the InfoNCE loss against a hand
// computation, the text tower's causal mask, the feature gather with
// gradient across two real c10d ranks against one process on the whole
// batch, overfitting a small fixed set through the Trainer (retrieval
// accuracy), checkpoints/export/resume checks, and the time budget.
#include <torch/torch.h>
// LibTorch pulls in glog, whose CHECK would silently replace Catch's.
#undef CHECK
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <future>
#include <random>

#include "catlip/local.h"
#include "catlip/model/checkpoint_file.h"
#include "catlip/model/clip_model.h"
#include "catlip/model/model_io.h"
#include "catlip/train/data_parallel.h"
#include "catlip/train/loss.h"
#include "catlip/train/schedule.h"
#include "catlip/train/trainer.h"
#include "test_util.h"
#include "token_pairs.h"

using namespace catlip;
using namespace catlip::model;
using namespace catlip::train;
using namespace catlip::test;
namespace fs = std::filesystem;

namespace {

TrainOptions clip_options(const std::string& dir) { return tiny_text_options(dir, "clip"); }

torch::Tensor images_of(const std::vector<Pair>& ps, int size = 32) {
  auto b = torch::empty({int64_t(ps.size()), size, size, 3}, torch::kUInt8);
  for (size_t i = 0; i < ps.size(); ++i) std::memcpy(b[int64_t(i)].data_ptr(), ps[i].image.data.data(), ps[i].image.data.size());
  return b;
}

std::vector<std::vector<int64_t>> tokens_of(const std::vector<Pair>& ps) {
  std::vector<std::vector<int64_t>> t;
  for (auto& p : ps) t.emplace_back(p.tokens.begin(), p.tokens.end());
  return t;
}

// Image -> text retrieval top-1 over the set.
double retrieval_accuracy(LoadedClip& m, const std::vector<Pair>& ps) {
  torch::NoGradGuard g;
  namespace F = torch::nn::functional;
  auto img = F::normalize(m.model->encode_image(preprocess_images(images_of(ps), m.device)), F::NormalizeFuncOptions().dim(-1));
  auto txt = F::normalize(m.model->encode_text(pad_tokens(tokens_of(ps), m.device)), F::NormalizeFuncOptions().dim(-1));
  auto hit = img.matmul(txt.t()).argmax(1).eq(torch::arange(int64_t(ps.size())));
  return hit.to(torch::kFloat64).mean().item<double>();
}

}  // namespace

TEST_CASE("clip: InfoNCE equals a hand computation, on one rank and as a rank's local loss") {
  torch::manual_seed(5);
  namespace F = torch::nn::functional;
  auto norm = [](torch::Tensor t) { return F::normalize(t, F::NormalizeFuncOptions().dim(-1)); };
  auto img = norm(torch::randn({6, 4}, torch::kFloat64)), txt = norm(torch::randn({6, 4}, torch::kFloat64));
  const double ls = std::log(7.5);
  auto logit_scale = torch::tensor(ls);
  // By hand: s = exp(ls); row i of image->text: -log softmax_j(s <img_i, txt_j>)[i]; and text->image.
  auto hand = [&](int64_t begin, int64_t n) {
    const double s = std::exp(ls);
    double total = 0;
    for (int64_t i = begin; i < begin + n; ++i)
      for (int dir = 0; dir < 2; ++dir) {
        const auto& a = dir == 0 ? img : txt;
        const auto& b = dir == 0 ? txt : img;
        double denom = 0, pos = 0;
        for (int64_t j = 0; j < 6; ++j) {
          double d = 0;
          for (int64_t k = 0; k < 4; ++k) d += a[i][k].item<double>() * b[j][k].item<double>();
          denom += std::exp(s * d);
          if (j == i) pos = s * d;
        }
        total += -(pos - std::log(denom));
      }
    return total / (2.0 * double(n));
  };
  double whole = clip_loss(img, txt, logit_scale, img, txt, 0).item<double>();
  CHECK(whole == Approx(hand(0, 6)).epsilon(1e-5));
  // Rank 1 of 2 with 3 rows each: its rows against every rank's features.
  double local = clip_loss(img.narrow(0, 3, 3), txt.narrow(0, 3, 3), logit_scale, img, txt, 3).item<double>();
  CHECK(local == Approx(hand(3, 3)).epsilon(1e-5));
  // Perfectly aligned features and a large scale: loss near 0.
  auto eye = torch::eye(4, torch::kFloat64);
  CHECK(clip_loss(eye, eye, torch::tensor(std::log(100.0)), eye, eye, 0).item<double>() < 1e-6);
}

TEST_CASE("clip: the text tower's causal mask holds: a later token leaves earlier features unchanged") {
  torch::manual_seed(1);
  TextConfig c;
  c.vocab_size = 50;
  c.context_length = 12;
  c.width = 32;
  c.depth = 2;
  c.heads = 4;
  c.embed_dim = 16;
  TextTransformer t(c);
  t->eval();
  torch::NoGradGuard g;
  auto a = torch::tensor({{48, 5, 7, 9, 11, 13, 15, 49, 0, 0}}, torch::kInt64);
  auto b = a.clone();
  b[0][5] = 21;  // change token 5
  auto ha = t->hidden(a), hb = t->hidden(b);
  for (int64_t pos = 0; pos < 5; ++pos) {
    INFO("position " << pos);
    CHECK(torch::allclose(ha[0][pos], hb[0][pos], 0, 1e-6));
  }
  for (int64_t pos = 5; pos < 8; ++pos) {
    INFO("position " << pos);
    CHECK_FALSE(torch::allclose(ha[0][pos], hb[0][pos], 0, 1e-4));
  }
  // Pooled at end of text: padding after it changes nothing; a token before it does.
  auto pad = a.clone();
  pad[0][9] = 3;
  CHECK(torch::allclose(t->forward(a), t->forward(pad), 0, 1e-6));
  CHECK_FALSE(torch::allclose(t->forward(a), t->forward(b), 0, 1e-4));
  // Without the mask position 2 would see token 5: check the mask is what holds it.
  auto m = causal_mask(4, torch::kCPU);
  CHECK(m[0][1].item<float>() == -std::numeric_limits<float>::infinity());
  CHECK(m[1][0].item<float>() == 0.0f);
  CHECK(m[3][3].item<float>() == 0.0f);
}

TEST_CASE("clip: features gathered with gradient over 2 ranks give the whole batch's loss and gradients") {
  torch::manual_seed(11);
  const int64_t B = 4, E = 8, D = 6;
  auto x = torch::randn({2 * B, D}), y = torch::randn({2 * B, D});
  auto w_img0 = torch::randn({D, E}), w_txt0 = torch::randn({D, E});
  namespace F = torch::nn::functional;
  auto norm = [](torch::Tensor t) { return F::normalize(t, F::NormalizeFuncOptions().dim(-1)); };
  const auto ls = std::log(10.0);
  // One process, the whole batch.
  auto wi = w_img0.clone().requires_grad_(true), wt = w_txt0.clone().requires_grad_(true);
  auto img = norm(x.matmul(wi)), txt = norm(y.matmul(wt));
  auto full = clip_loss(img, txt, torch::tensor(ls), img, txt, 0);
  full.backward();
  const double want_loss = full.item<double>();
  auto want_gi = wi.grad().clone(), want_gt = wt.grad().clone();

  int port = test::free_port();
  std::vector<double> loss(2);
  std::vector<torch::Tensor> gi(2), gt(2);
  std::vector<std::future<void>> fut;
  for (int r = 0; r < 2; ++r)
    fut.push_back(std::async(std::launch::async, [&, r] {
      DistOptions d;
      d.rank = r;
      d.world_size = 2;
      d.endpoint = "tcp://127.0.0.1:" + std::to_string(port);
      d.timeout_s = 60;
      DataParallel dp(d, torch::kCPU);
      auto wi_r = w_img0.clone().requires_grad_(true), wt_r = w_txt0.clone().requires_grad_(true);
      auto im = norm(x.narrow(0, r * B, B).matmul(wi_r)), tx = norm(y.narrow(0, r * B, B).matmul(wt_r));
      auto all_im = dp.gather_with_grad(im), all_tx = dp.gather_with_grad(tx);
      REQUIRE(all_im.size(0) == 2 * B);
      auto l = clip_loss(im, tx, torch::tensor(ls), all_im, all_tx, r * B);
      l.backward();
      loss[size_t(r)] = l.item<double>();
      gi[size_t(r)] = wi_r.grad().clone();
      gt[size_t(r)] = wt_r.grad().clone();
      CHECK(dp.take_gather_seconds() > 0);
    }));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (auto& f : fut) {
    REQUIRE(f.wait_until(deadline) == std::future_status::ready);
    f.get();
  }
  // The ranks' local losses average to the whole batch's; their gradients,
  // averaged as the trainer's allreduce does, equal the whole batch's.
  CHECK((loss[0] + loss[1]) / 2 == Approx(want_loss).epsilon(1e-5));
  CHECK(torch::allclose((gi[0] + gi[1]) / 2, want_gi, 1e-4, 1e-5));
  CHECK(torch::allclose((gt[0] + gt[1]) / 2, want_gt, 1e-4, 1e-5));
  // Without the gradient through the gather the text->image half would be
  // missing from the other rank's rows: the gradients would differ.
  CHECK_FALSE(torch::allclose(gi[0], want_gi, 1e-3, 1e-4));
}

TEST_CASE("clip: a small fixed set is memorised (image->text retrieval near 1), export and checks") {
  test::TempDir dir("clip-overfit");
  auto o = clip_options(dir.path());
  const int N = 16, S = 60;
  o.batch_size = N;
  o.steps = S;
  o.lr = 2e-3;
  o.min_lr = o.lr;
  o.model.pool = "avg";  // noise images: patch averages separate them sooner than the CLS token
  auto pairs = make_pairs(N);
  LocalContext ctx;
  double first = 0, last = 0;
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
    CHECK(t.step() == S);
    t.finish();
  }
  INFO("first loss " << first << ", last " << last);
  CHECK(first > 2.0);  // ~ ln 16 at initialisation
  CHECK(last < 0.25 * first);
  // The export: CLIP metadata, the tokenizer beside it, features reloaded.
  const std::string exp = dir.path() + "/export/model.safetensors";
  REQUIRE(fs::is_regular_file(exp));
  CHECK(is_clip_file(exp));
  CHECK(fs::is_regular_file(dir.path() + "/export/tokenizer.txt"));
  auto m = load_clip(exp);
  CHECK(m.step == S);
  CHECK(m.text.vocab_size == kVocab);
  CHECK(m.tokenizer_path == dir.path() + "/export/tokenizer.txt");
  double acc = retrieval_accuracy(m, pairs);
  INFO("retrieval accuracy " << acc);
  CHECK(acc >= 0.9);
  // Same from the final checkpoint.
  auto ck = load_clip(list_checkpoints(dir.path() + "/checkpoints").front(), false);
  CHECK(retrieval_accuracy(ck, pairs) == Approx(acc));
  // The logit scale stays within its clamp.
  double scale = std::exp(m.model->logit_scale.item<double>());
  CHECK(scale >= 1.0);
  CHECK(scale <= 100.0 + 1e-6);
}

TEST_CASE("clip: resume refuses another tokenizer, train.catlip refuses a CLIP checkpoint, bad tokens are skipped") {
  test::TempDir dir("clip-resume");
  auto o = clip_options(dir.path());
  o.steps = 2;
  auto pairs = make_pairs(16);
  {
    LocalContext ctx;
    Trainer t(o, ctx);
    for (auto& p : pairs) t.add(p.image, p.tokens, p.origin, "k");
    t.finish();
    REQUIRE(t.step() == 2);
  }
  {
    auto o2 = o;
    o2.resume = true;
    o2.steps = 4;
    o2.tokenizer_path = write_tokenizer(dir.path() + "/..", "x y\n");  // another file
    LocalContext ctx;
    REQUIRE_THROWS_WITH(Trainer(o2, ctx), Catch::Contains("another tokenizer"));
  }
  {
    TrainOptions c;
    c.vocab_path = dir.path() + "/vocab.tsv";
    test::write_file(c.vocab_path, "index\twnid\tlemma\tcount\tgloss\n0\tn01\tdog\t1\tg\n");
    c.model = o.model;
    c.resume = true;
    c.checkpoint_dir = dir.path() + "/checkpoints";
    c.run_dir = dir.path() + "/catlip";
    c.device = "cpu";
    LocalContext ctx;
    REQUIRE_THROWS_WITH(Trainer(c, ctx), Catch::Contains("is a clip checkpoint"));
  }
  {
    LocalContext ctx;
    auto o3 = o;
    o3.run_dir = dir.path() + "/bad";
    o3.checkpoint_dir = o3.run_dir + "/ck";
    Trainer t(o3, ctx);
    auto p = pairs[0];
    p.tokens = {kSot, 5, 6};  // no end of text
    CHECK_FALSE(t.add(p.image, p.tokens, p.origin, "a"));
    p.tokens = {kSot, 5, kVocab + 3, kEot};
    p.origin.index = 1;
    CHECK_FALSE(t.add(p.image, p.tokens, p.origin, "b"));
    p.tokens.assign(40, 7);  // longer than context_length 16: cut, end kept
    p.tokens.front() = kSot;
    p.tokens.back() = kEot;
    p.origin.index = 2;
    CHECK(t.add(p.image, p.tokens, p.origin, "c"));
    CHECK(ctx.counter("skipped.tokens_without_eot") == 1);
    CHECK(ctx.counter("skipped.token_out_of_range") == 1);
    CHECK(ctx.counter("train.tokens_truncated") == 1);
  }
}

TEST_CASE("train: the time budget stops training on a step boundary and is recorded") {
  test::TempDir dir("clip-budget");
  auto o = clip_options(dir.path());
  o.batch_size = 4;
  o.time_budget_s = 1.5;       // long enough for two steps even on a loaded machine
  o.checkpoint_every_s = 0.1;  // besides the final one
  o.lr = 1e-3;
  o.min_lr = 1e-5;  // steps = schedule_steps = 0: the cosine runs over the budget's time
  auto pairs = make_pairs(16);
  LocalContext ctx;
  Trainer t(o, ctx);
  int epoch = 0;
  while (!t.done() && epoch < 10000) {
    for (auto& p : pairs) {
      p.origin.epoch = epoch;
      t.add(p.image, p.tokens, p.origin, "k");
    }
    ++epoch;
  }
  REQUIRE(t.done());
  CHECK(t.time_budget_reached());
  CHECK(t.step() > 0);
  CHECK(t.train_seconds() >= 1.5);
  const int64_t at = t.step();
  for (auto& p : pairs) p.origin.epoch = epoch;
  for (auto& p : pairs) CHECK_FALSE(t.add(p.image, p.tokens, p.origin, "k"));
  CHECK(t.step() == at);
  t.finish();
  auto ck = read_checkpoint_file(list_checkpoints(dir.path() + "/checkpoints").front());
  REQUIRE(ck.ok());
  REQUIRE(ck->metadata.count("catlip.train_seconds"));
  CHECK(std::stod(ck->metadata.at("catlip.train_seconds")) >= 1.5);
  CHECK(std::stod(ck->metadata.at("catlip.train_cpu_seconds")) > 0);
  CHECK(ck->metadata.at("catlip.objective") == "clip");
  // The schedule ran over the budget: the last step's lr is the cosine's end.
  CHECK(std::stod(ck->metadata.at("catlip.lr_at_step")) == Approx(1e-5).epsilon(1e-3));
  // Checkpoints every 0.1 s of training: the first after 0.1 s, then one at
  // the first step past each later 0.1 s mark (a slow step may pass several
  // marks at once, so a loaded machine gets fewer), never two per mark.
  // (A step that outlasts the whole budget, on a very loaded machine, leaves
  // one step and so one checkpoint: the timed one and the final coincide.)
  auto all = list_checkpoints(dir.path() + "/checkpoints");
  INFO("steps " << t.step());
  REQUIRE(all.size() >= static_cast<size_t>(std::min<int64_t>(2, t.step())));
  std::vector<double> secs;
  for (auto& p : all) {
    auto f = read_checkpoint_file(p);
    REQUIRE(f.ok());
    secs.push_back(std::stod(f->metadata.at("catlip.train_seconds")));
  }
  std::sort(secs.begin(), secs.end());
  CHECK(secs.front() >= 0.1);
  for (size_t i = 1; i < secs.size(); ++i) {
    INFO("checkpoints at " << secs[i - 1] << " s and " << secs[i] << " s");
    CHECK(std::floor(secs[i] / 0.1) > std::floor(secs[i - 1] / 0.1));
  }
}

TEST_CASE("train: the lr schedule by fraction of a time budget") {
  LrSchedule s;
  s.lr = 1.0;
  s.min_lr = 0.0;
  s.warmup_init_lr = 0.0;
  s.warmup = 4;
  CHECK(s.at_fraction(2, 0.9) == Approx(0.5));  // warmup by step
  CHECK(s.at_fraction(10, 0.0) == Approx(1.0));
  CHECK(s.at_fraction(10, 0.5) == Approx(0.5));
  CHECK(s.at_fraction(10, 1.0) == Approx(0.0).margin(1e-12));
  CHECK(s.at_fraction(10, 7.0) == Approx(0.0).margin(1e-12));
}
