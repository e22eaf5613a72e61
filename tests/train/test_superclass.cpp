// train.superclass on tiny models: targets, online IDF and the loss against
// a hand computation; two real c10d ranks (Gloo) against one process on the
// whole batch (the IDF allreduce); the IDF counts across a checkpoint and
// resume, also across Trainer ranks; memorising 16 image-caption pairs (top-5
// token recall).
#include <torch/torch.h>
// LibTorch pulls in glog, whose CHECK would silently replace Catch's.
#undef CHECK
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <random>
#include <set>

#include "catlip/local.h"
#include "catlip/model/checkpoint_file.h"
#include "catlip/model/model_io.h"
#include "catlip/model/state_io.h"
#include "catlip/train/data_parallel.h"
#include "catlip/train/objective.h"
#include "catlip/train/superclass.h"
#include "catlip/train/trainer.h"
#include "test_util.h"
#include "token_pairs.h"

using namespace catlip;
using namespace catlip::model;
using namespace catlip::train;
using namespace catlip::test;
namespace fs = std::filesystem;

namespace {

// n noise images with captions of 3-5 distinct ids below 500 (a few ids
// shared, so document frequencies differ); some rows carry zero padding
// after EOT, which must not count.
std::vector<Pair> make_distinct_pairs(int n, int size = 32, uint32_t seed = 5) {
  std::mt19937 rng(seed);
  std::vector<Pair> out;
  for (int i = 0; i < n; ++i) {
    Pair p;
    p.image = noise_image(size, rng);
    std::set<int64_t> ids;
    const size_t len = 3 + rng() % 3;
    if (i % 3 == 0) ids.insert(7);  // a common id
    while (ids.size() < len) ids.insert(int64_t(10 + rng() % 490));
    p.tokens.push_back(kSot);
    for (int64_t t : ids) p.tokens.push_back(t);
    p.tokens.push_back(kEot);
    if (i % 4 == 1) p.tokens.insert(p.tokens.end(), 5, 0);
    p.origin = Origin{"shard-000.tar", 0, i, 0};
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<int64_t> ids_of(const Pair& p) {
  return superclass_target_ids(std::vector<int64_t>(p.tokens.begin(), p.tokens.end()), kSot, kEot);
}

TrainOptions sc_options(const std::string& dir) {
  TrainOptions o = tiny_text_options(dir, "superclass");
  o.model.pool = "avg";
  o.batch_size = 4;
  return o;
}

torch::Tensor checkpoint_counts(const std::string& path) {
  auto f = read_checkpoint_file(path);
  REQUIRE(f.ok());
  auto it = f->tensors.find("objective.superclass.idf_counts");
  REQUIRE(it != f->tensors.end());
  return to_torch(it->second);
}

// df per id and N over captions, in plain loops.
std::vector<int64_t> hand_counts(const std::vector<Pair>& ps, size_t from, size_t to) {
  std::vector<int64_t> c(size_t(kVocab + 1), 0);
  for (size_t i = from; i < to; ++i) {
    std::set<int64_t> seen;
    for (int64_t t : ps[i].tokens) {
      if (t == kEot) break;
      if (t != kSot) seen.insert(t);
    }
    for (int64_t t : seen) ++c[size_t(t)];
    ++c[size_t(kVocab)];
  }
  return c;
}

}  // namespace

TEST_CASE("superclass: targets, online IDF and loss of three captions equal a hand computation") {
  // V = 10: ids 8 and 9 are SOT and EOT; zeros after EOT are padding, a 0
  // before it is the byte token 0.
  const int64_t V = 10, sot = 8, eot = 9;
  std::vector<std::vector<int64_t>> caps = {{sot, 1, 2, 2, 3, eot, 0, 0}, {sot, 2, 4, eot}, {sot, 0, 2, 1, eot, 0}};
  std::vector<std::vector<int64_t>> ids;
  for (auto& c : caps) ids.push_back(superclass_target_ids(c, sot, eot));
  REQUIRE(ids[0] == std::vector<int64_t>{1, 2, 3});
  REQUIRE(ids[1] == std::vector<int64_t>{2, 4});
  REQUIRE(ids[2] == std::vector<int64_t>{0, 1, 2});

  TokenIdf idf(V, torch::kCPU);
  idf.add(ids, nullptr);
  REQUIRE(idf.documents() == 3);
  // Expected, from the formula: df_j = captions holding j, N = 3,
  // idf_j = log((N + 1) / (df_j + 1)); target = in * idf / sum(in * idf).
  std::vector<double> df(size_t(V), 0.0);
  for (auto& c : caps) {
    std::set<int64_t> s;
    for (int64_t t : c) {
      if (t == eot) break;
      if (t != sot) s.insert(t);
    }
    for (int64_t t : s) df[size_t(t)] += 1;
  }
  const double N = 3;
  std::vector<double> want_idf(static_cast<size_t>(V), 0.0);
  for (int64_t j = 0; j < V; ++j) want_idf[size_t(j)] = std::log((N + 1) / (df[size_t(j)] + 1));
  auto got_idf = idf.idf();
  for (int64_t j = 0; j < V; ++j) REQUIRE(got_idf[j].item<double>() == Approx(want_idf[size_t(j)]).margin(1e-6));
  REQUIRE(got_idf[2].item<double>() == Approx(0.0).margin(1e-7));  // in every caption: no weight

  auto target = superclass_targets(ids, got_idf, V, torch::kCPU);
  std::vector<std::vector<double>> want_t(3, std::vector<double>(size_t(V), 0.0));
  for (size_t r = 0; r < 3; ++r) {
    double sum = 0;
    for (int64_t t : ids[r]) sum += want_idf[size_t(t)];
    for (int64_t t : ids[r]) want_t[r][size_t(t)] = want_idf[size_t(t)] / sum;
  }
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t j = 0; j < V; ++j) REQUIRE(target[r][j].item<double>() == Approx(want_t[size_t(r)][size_t(j)]).margin(1e-6));

  // Softmax cross-entropy against the target, averaged over the captions.
  torch::manual_seed(3);
  auto logits = torch::randn({3, V});
  double want_loss = 0;
  for (int64_t r = 0; r < 3; ++r) {
    double mx = -1e30, z = 0;
    for (int64_t j = 0; j < V; ++j) mx = std::max(mx, logits[r][j].item<double>());
    for (int64_t j = 0; j < V; ++j) z += std::exp(logits[r][j].item<double>() - mx);
    for (int64_t j = 0; j < V; ++j)
      want_loss -= want_t[size_t(r)][size_t(j)] * (logits[r][j].item<double>() - mx - std::log(z));
  }
  want_loss /= 3;
  REQUIRE(superclass_softmax_loss(logits, target).item<double>() == Approx(want_loss).epsilon(1e-6));

  // Online: a second batch adds to the counts; a caption whose every id is in
  // every document so far has an all-zero target.
  idf.add({{2}}, nullptr);
  REQUIRE(idf.documents() == 4);
  REQUIRE(idf.idf()[2].item<double>() == Approx(0.0).margin(1e-7));
  REQUIRE(idf.idf()[1].item<double>() == Approx(std::log(5.0 / 3.0)).margin(1e-6));
  REQUIRE(superclass_targets({{2}}, idf.idf(), V, torch::kCPU).abs().sum().item<double>() == 0.0);
  // Pending until the optimizer step commits them.
  REQUIRE(idf.counts().sum().item<int64_t>() == 0);
  idf.commit();
  REQUIRE(idf.counts()[2].item<int64_t>() == 4);
  REQUIRE(idf.counts()[V].item<int64_t>() == 4);
}

TEST_CASE("superclass: two ranks' averaged gradients equal one process on the whole batch (global IDF)") {
  test::TempDir dir("sc-dp");
  auto o = sc_options(dir.path());
  const int64_t B = 4;
  torch::manual_seed(9);
  auto x = torch::randn({2 * B, 3, 32, 32});
  // Rank 0's captions all hold id 7, rank 1's none: IDF over one rank's
  // batch differs from the global one.
  std::vector<std::vector<int64_t>> ids = {{7, 11, 12}, {7, 13}, {7, 11, 14}, {7, 15, 16},
                                           {11, 20}, {21, 22, 23}, {13, 24}, {25, 26}};
  auto make = [&] {
    torch::manual_seed(1);
    return make_superclass_objective(o);
  };
  auto grads_of = [](Objective& obj) {
    std::vector<torch::Tensor> g;
    for (auto& p : obj.module().parameters()) g.push_back(p.grad().clone());
    return g;
  };
  ObjectiveEnv env;
  auto full = make();
  full->loss(x, ids, env).backward();
  auto want = grads_of(*full);

  std::vector<std::unique_ptr<Objective>> rk;
  for (int r = 0; r < 2; ++r) rk.push_back(make());
  std::vector<std::vector<torch::Tensor>> got(2);
  std::vector<torch::Tensor> counts(2);
  const int port = test::free_port();
  std::vector<std::future<void>> fut;
  for (int r = 0; r < 2; ++r)
    fut.push_back(std::async(std::launch::async, [&, r] {
      DistOptions d;
      d.rank = r;
      d.world_size = 2;
      d.endpoint = "tcp://127.0.0.1:" + std::to_string(port);
      d.timeout_s = 60;
      DataParallel dp(d, torch::kCPU);
      ObjectiveEnv e;
      e.dp = &dp;
      e.rank = r;
      std::vector<std::vector<int64_t>> mine(ids.begin() + r * B, ids.begin() + (r + 1) * B);
      rk[size_t(r)]->loss(x.narrow(0, r * B, B), mine, e).backward();
      got[size_t(r)] = grads_of(*rk[size_t(r)]);
      rk[size_t(r)]->after_step();
      counts[size_t(r)] = rk[size_t(r)]->extra_state().at(0).second.clone();
    }));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (auto& f : fut) {
    REQUIRE(f.wait_until(deadline) == std::future_status::ready);
    f.get();
  }
  // Both ranks hold the global counts: id 7 in 4 documents of 8.
  full->after_step();
  auto want_counts = full->extra_state().at(0).second;
  REQUIRE(torch::equal(counts[0], want_counts));
  REQUIRE(torch::equal(counts[1], want_counts));
  REQUIRE(want_counts[7].item<int64_t>() == 4);
  REQUIRE(want_counts[kVocab].item<int64_t>() == 8);
  double worst = 0, scale = 0, worst_local = 0;
  // Control: each rank on its own batch's IDF (no allreduce) is wrong.
  std::vector<std::vector<torch::Tensor>> local(2);
  for (int r = 0; r < 2; ++r) {
    auto obj = make();
    std::vector<std::vector<int64_t>> mine(ids.begin() + r * B, ids.begin() + (r + 1) * B);
    obj->loss(x.narrow(0, r * B, B), mine, env).backward();
    local[size_t(r)] = grads_of(*obj);
  }
  for (size_t k = 0; k < want.size(); ++k) {
    worst = std::max(worst, ((got[0][k] + got[1][k]) / 2 - want[k]).abs().max().item<double>());
    worst_local = std::max(worst_local, ((local[0][k] + local[1][k]) / 2 - want[k]).abs().max().item<double>());
    scale = std::max(scale, want[k].abs().max().item<double>());
  }
  INFO("largest gradient " << scale << ", largest difference " << worst << ", without the allreduce " << worst_local);
  REQUIRE(scale > 1e-3);
  REQUIRE(worst <= 1e-5);
  REQUIRE(worst_local > 1e-4);
}

TEST_CASE("superclass: the IDF counts survive a checkpoint and resume exactly") {
  test::TempDir a("sc-resA"), b("sc-resB");
  auto pairs = make_distinct_pairs(16);
  auto feed = [&](Trainer& t) {
    for (auto& p : pairs) t.add(p.image, p.tokens, p.origin, "k");
  };
  std::vector<std::pair<std::string, Tensor>> want;
  torch::Tensor want_counts;
  {
    auto o = sc_options(a.path());
    o.steps = 4;
    LocalContext ctx;
    Trainer t(o, ctx);
    feed(t);
    REQUIRE(t.step() == 4);
    t.finish();
    want = t.weights();
    want_counts = checkpoint_counts(list_checkpoints(a.path() + "/checkpoints").front());
  }
  // All 16 captions, counted by hand.
  auto h16 = hand_counts(pairs, 0, 16);
  REQUIRE(torch::equal(want_counts, torch::tensor(h16, torch::kInt64)));
  {
    auto o = sc_options(b.path());
    o.steps = 2;
    LocalContext ctx;
    Trainer t(o, ctx);
    feed(t);
    t.finish();
    REQUIRE(t.step() == 2);
  }
  auto ck2 = list_checkpoints(b.path() + "/checkpoints").front();
  REQUIRE(torch::equal(checkpoint_counts(ck2), torch::tensor(hand_counts(pairs, 0, 8), torch::kInt64)));
  {
    auto o = sc_options(b.path());
    o.steps = 4;
    o.resume = true;
    LocalContext ctx;
    Trainer t(o, ctx);
    REQUIRE(t.step() == 2);
    feed(t);
    REQUIRE(ctx.counter("train.resume_skipped_consumed") == 8);
    REQUIRE(t.step() == 4);
    t.finish();
    // Same counts, and (the loss weights depend on them) the same weights.
    REQUIRE(torch::equal(checkpoint_counts(list_checkpoints(b.path() + "/checkpoints").front()), want_counts));
    auto got = t.weights();
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      INFO(got[i].first);
      REQUIRE(torch::equal(to_torch(got[i].second), to_torch(want[i].second)));
    }
  }
}

TEST_CASE("superclass: 16 image-caption pairs are memorised (top-5 token recall), export and checks") {
  test::TempDir dir("sc-memo");
  auto o = sc_options(dir.path());
  const int N = 16, S = 80;
  o.batch_size = N;
  o.steps = S;
  o.lr = 2e-3;
  o.min_lr = o.lr;
  auto pairs = make_distinct_pairs(N);
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
    REQUIRE(t.step() == S);
    t.finish();
  }
  INFO("first loss " << first << ", last " << last);
  REQUIRE(first > 5.0);  // ~ ln 600 at initialisation
  REQUIRE(last < 0.5 * first);
  const std::string exp = dir.path() + "/export/model.safetensors";
  REQUIRE(fs::is_regular_file(dir.path() + "/export/tokenizer.txt"));
  auto f = safetensors_load(exp);
  REQUIRE(f.metadata.at("catlip.objective") == "superclass");
  auto m = load_model(exp);
  REQUIRE(m.config.num_classes == kVocab);
  auto b = torch::empty({N, 32, 32, 3}, torch::kUInt8);
  std::vector<std::vector<int64_t>> ids;
  for (int i = 0; i < N; ++i) {
    std::memcpy(b[i].data_ptr(), pairs[size_t(i)].image.data.data(), pairs[size_t(i)].image.data.size());
    ids.push_back(ids_of(pairs[size_t(i)]));
  }
  torch::NoGradGuard g;
  auto logits = m.model->forward(preprocess_images(b, m.device));
  const double recall = token_recall_at_k(logits, ids, 5);
  INFO("top-5 token recall " << recall);
  REQUIRE(recall >= 0.9);
  // An untrained model is far from it (the recall is not trivially high).
  torch::manual_seed(0);
  ViT fresh(m.config);
  fresh->eval();
  REQUIRE(token_recall_at_k(fresh->forward(preprocess_images(b, m.device)), ids, 5) < 0.2);
}

TEST_CASE("superclass: bad token rows are skipped, another objective's checkpoint is refused") {
  test::TempDir dir("sc-checks");
  auto o = sc_options(dir.path());
  o.steps = 1;
  auto pairs = make_distinct_pairs(4);
  {
    LocalContext ctx;
    Trainer t(o, ctx);
    auto p = pairs[0];
    p.tokens = {kSot, 5, kVocab + 3, kEot};
    REQUIRE_FALSE(t.add(p.image, p.tokens, p.origin, "a"));
    p.tokens = {kSot, kEot, 0, 0};  // nothing but padding
    p.origin.index = 1;
    REQUIRE_FALSE(t.add(p.image, p.tokens, p.origin, "b"));
    REQUIRE(ctx.counter("skipped.token_out_of_range") == 1);
    REQUIRE(ctx.counter("skipped.no_tokens") == 1);
    for (auto& q : pairs) {
      q.origin.index += 10;
      REQUIRE(t.add(q.image, q.tokens, q.origin, "c"));
    }
    t.finish();
    REQUIRE(t.step() == 1);
  }
  auto c = o;
  c.objective = "clip";
  c.clip.text.width = 32;
  c.clip.text.depth = 1;
  c.clip.text.heads = 2;
  c.clip.text.embed_dim = 16;
  c.resume = true;
  LocalContext ctx;
  REQUIRE_THROWS_WITH(Trainer(c, ctx), Catch::Contains("superclass checkpoint"));
  o.resume = true;
  o.superclass.loss = "hinge";
  REQUIRE_THROWS_WITH(Trainer(o, ctx), Catch::Contains("softmax or bce"));
}

TEST_CASE("superclass: Trainer ranks checkpoint the global IDF counts, and resumed ranks share them") {
  test::TempDir a("sc-dpA"), b("sc-dpB");
  auto pairs = make_distinct_pairs(24, 32, 11);
  auto run_two = [&](const std::string& dir, int64_t steps, bool resume, size_t from, size_t to,
                     std::vector<std::pair<std::string, Tensor>>* weights) {
    const int port = test::free_port();
    // Written once, here: two ranks writing the tokenizer file at once could
    // each read the other's half-written (truncated) copy.
    const auto base = sc_options(dir);
    std::vector<std::future<void>> fut;
    for (int r = 0; r < 2; ++r)
      fut.push_back(std::async(std::launch::async, [&, r] {
        auto o = base;
        o.steps = steps;
        o.resume = resume;
        o.dist.rank = r;
        o.dist.world_size = 2;
        o.dist.endpoint = "tcp://127.0.0.1:" + std::to_string(port);
        o.dist.timeout_s = 60;
        LocalContext ctx;
        Trainer t(o, ctx);
        for (size_t i = from + size_t(r); i < to; i += 2) t.add(pairs[i].image, pairs[i].tokens, pairs[i].origin, "k");
        REQUIRE(t.step() == steps);
        if (r == 0 && weights) *weights = t.weights();
        t.finish();
      }));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    for (auto& f : fut) {
      REQUIRE(f.wait_until(deadline) == std::future_status::ready);
      f.get();
    }
  };
  // 2 ranks x 4 samples x 2 steps: rank 0's checkpoint counts all 16 captions.
  run_two(a.path(), 2, false, 0, 16, nullptr);
  auto ck = list_checkpoints(a.path() + "/checkpoints").front();
  REQUIRE(torch::equal(checkpoint_counts(ck), torch::tensor(hand_counts(pairs, 0, 16), torch::kInt64)));
  fs::create_directories(b.path() + "/checkpoints");
  fs::copy_file(ck, b.path() + "/checkpoints/" + fs::path(ck).filename().string());
  // One more step on 2 ranks (rank 1 gets the counts by broadcast) equals it
  // on 1 rank with the whole batch: with other counts on rank 1 its IDF
  // weights, and so the averaged gradient, would differ.
  std::vector<std::pair<std::string, Tensor>> two;
  run_two(a.path(), 3, true, 16, 24, &two);
  auto o = sc_options(b.path());
  o.batch_size = 8;
  o.steps = 3;
  o.resume = true;
  LocalContext ctx;
  Trainer one(o, ctx);
  REQUIRE(one.step() == 2);
  for (size_t i = 16; i < 24; ++i) one.add(pairs[i].image, pairs[i].tokens, pairs[i].origin, "k");
  REQUIRE(one.step() == 3);
  auto want = one.weights();
  one.finish();
  REQUIRE(torch::equal(checkpoint_counts(list_checkpoints(a.path() + "/checkpoints").front()),
                       torch::tensor(hand_counts(pairs, 0, 24), torch::kInt64)));
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i)
    worst = std::max(worst, (to_torch(two[i].second) - to_torch(want[i].second)).abs().max().item<double>());
  INFO("max |w(2 ranks) - w(1 rank)| = " << worst);
  REQUIRE(worst < 1e-5);
}

TEST_CASE("superclass: loss = bce is CatLIP's BCE on the plain multi-hot of the caption ids") {
  test::TempDir dir("sc-bce");
  auto o = sc_options(dir.path());
  o.superclass.loss = "bce";
  torch::manual_seed(1);
  auto obj = make_superclass_objective(o);
  auto& vit = dynamic_cast<ViTImpl&>(obj->module());
  torch::manual_seed(2);
  auto x = torch::randn({3, 3, 32, 32});
  std::vector<std::vector<int64_t>> ids = {{7, 11}, {7}, {12, 13, 14}};
  ObjectiveEnv env;
  const double got = obj->loss(x, ids, env).item<double>();
  torch::NoGradGuard g;
  auto logits = vit.forward(x).to(torch::kFloat64);
  double want = 0;  // sum over ids and captions of -log sigmoid(+-z), / captions
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t j = 0; j < kVocab; ++j) {
      const double z = logits[r][j].item<double>();
      const bool pos = std::find(ids[size_t(r)].begin(), ids[size_t(r)].end(), j) != ids[size_t(r)].end();
      want += std::log1p(std::exp(pos ? -z : z));
    }
  want /= 3;
  REQUIRE(got == Approx(want).epsilon(1e-5));
}
