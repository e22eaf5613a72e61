// Data-parallel training over c10d (Gloo): ranks as threads of this process
// with a real TCPStore and process group. Exactness against one rank with the
// global batch, uneven inputs that must not hang, resume with the same and
// with another world size.
#include <torch/torch.h>
// LibTorch pulls in glog, whose CHECK would silently replace Catch's.
#undef CHECK
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "catlip/local.h"
#include "catlip/model/checkpoint_file.h"
#include "catlip/train/trainer.h"
#include "test_util.h"

using namespace catlip;
using namespace catlip::model;
using namespace catlip::train;

namespace {

constexpr int kClasses = 10;


struct Item {
  Tensor image;
  IntList labels;
  Origin origin;
};

// n samples of shard `url`, deterministic.
std::vector<Item> make_items(int n, const std::string& url, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Item> out;
  for (int i = 0; i < n; ++i) {
    Item it;
    it.image.dtype = DType::U8;
    it.image.shape = {32, 32, 3};
    it.image.data.resize(32 * 32 * 3);
    for (auto& c : it.image.data) c = char(rng() & 0xFF);
    std::set<int64_t> ls;
    int k = 1 + int(rng() % 3);
    while (int(ls.size()) < k) ls.insert(int64_t(rng() % kClasses));
    it.labels.assign(ls.begin(), ls.end());
    it.origin = Origin{url, 0, i, 0};
    out.push_back(std::move(it));
  }
  return out;
}

TrainOptions options(const std::string& dir) {
  TrainOptions o;
  std::string vocab = "index\twnid\tlemma\tcount\tgloss\n";
  for (int i = 0; i < kClasses; ++i)
    vocab += std::to_string(i) + "\tn0" + std::to_string(1000 + i) + "\tthing" + std::to_string(i) + "\t1\tg\n";
  test::write_file(dir + "/vocab.tsv", vocab);
  o.vocab_path = dir + "/vocab.tsv";
  o.model.dim = 64;
  o.model.depth = 2;
  o.model.heads = 2;
  o.model.image_size = 32;
  o.model.patch_size = 8;
  o.lr = 1e-3;
  o.warmup_init_lr = 1e-4;
  o.warmup_steps = 2;
  o.min_lr = 1e-5;
  o.clip_grad_norm = 0.5;  // binds: clipping must use the global norm
  o.ema_decay = 0.9;
  o.device = "cpu";
  o.threads = 1;
  o.log_every = 0;
  o.checkpoint_every = 0;
  o.keep_checkpoints = 0;
  o.write_metrics = false;
  o.export_weights = false;
  o.run_dir = dir;
  o.dist.bucket_mb = 0.02;  // several buckets even for this model
  o.dist.timeout_s = 60;
  return o;
}

void feed(Trainer& t, const std::vector<Item>& items, size_t begin, size_t end) {
  for (size_t i = begin; i < std::min(end, items.size()); ++i)
    t.add(items[i].image, items[i].labels, items[i].origin, "s" + std::to_string(i));
}

double max_abs_diff(const std::vector<std::pair<std::string, Tensor>>& a,
                    const std::vector<std::pair<std::string, Tensor>>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].first == b[i].first);
    REQUIRE(a[i].second.data.size() == b[i].second.data.size());
    auto x = torch::from_blob(const_cast<char*>(a[i].second.data.data()), {int64_t(a[i].second.data.size() / 4)}, torch::kFloat32);
    auto y = torch::from_blob(const_cast<char*>(b[i].second.data.data()), {int64_t(b[i].second.data.size() / 4)}, torch::kFloat32);
    m = std::max(m, (x - y).abs().max().item<double>());
  }
  return m;
}

// Runs `fn(rank)` for every rank in its own thread; fails (instead of
// hanging) if they have not all returned within `limit_s`.
template <class F>
void run_ranks(int world, double limit_s, F fn) {
  std::vector<std::future<void>> fs;
  for (int r = 0; r < world; ++r) fs.push_back(std::async(std::launch::async, fn, r));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit_s);
  for (auto& f : fs) {
    REQUIRE(f.wait_until(deadline) == std::future_status::ready);
    f.get();  // rethrows a rank's exception
  }
}

DistOptions dist(int rank, int world, int port) {
  DistOptions d;
  d.rank = rank;
  d.world_size = world;
  d.endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  d.timeout_s = 60;
  d.bucket_mb = 0.02;
  return d;
}

}  // namespace

TEST_CASE("data parallel: 2 ranks x 16 equal 1 rank x 32 after 5 AdamW steps") {
  test::TempDir one("dp1"), two("dp2");
  auto items = make_items(5 * 32, "shard-a.tar", 7);
  auto ref_opt = options(one.path());
  ref_opt.batch_size = 32;
  ref_opt.steps = 5;
  LocalContext ref_ctx;
  Trainer ref(ref_opt, ref_ctx);
  feed(ref, items, 0, items.size());
  REQUIRE(ref.step() == 5);
  auto want = ref.weights(), want_ema = ref.weights(true);

  int port = test::free_port();
  std::vector<std::vector<std::pair<std::string, Tensor>>> got(2), got_ema(2);
  std::vector<double> loss(2);
  const auto base = options(two.path());
  run_ranks(2, 120, [&](int rank) {
    auto o = base;
    o.batch_size = 16;
    o.steps = 5;
    o.dist = dist(rank, 2, port);
    LocalContext ctx;
    Trainer t(o, ctx);
    CHECK(t.global_batch() == 32);
    // Each global batch of 32: rank 0 takes the first half, rank 1 the second.
    for (size_t s = 0; s < 5; ++s) feed(t, items, s * 32 + rank * 16, s * 32 + rank * 16 + 16);
    CHECK(t.step() == 5);
    CHECK(t.done());
    got[size_t(rank)] = t.weights();
    got_ema[size_t(rank)] = t.weights(true);
    loss[size_t(rank)] = t.last_metrics().loss;
    t.finish();
  });
  INFO("max |w(2 ranks) - w(1 rank)| = " << max_abs_diff(got[0], want));
  CHECK(max_abs_diff(got[0], want) < 1e-5);
  CHECK(max_abs_diff(got_ema[0], want_ema) < 1e-5);
  // Ranks stay identical (weights and EMA), and log the same global loss.
  CHECK(max_abs_diff(got[0], got[1]) == 0);
  CHECK(max_abs_diff(got_ema[0], got_ema[1]) == 0);
  CHECK(loss[0] == loss[1]);
  CHECK(std::abs(loss[0] - ref.last_metrics().loss) < 1e-5);
}

TEST_CASE("data parallel: a rank with less input stops everyone at the same step, no hang") {
  test::TempDir dir("dpuneven");
  int port = test::free_port();
  std::vector<int64_t> steps(2);
  std::vector<std::string> logs(2);
  const auto base = options(dir.path());
  run_ranks(2, 120, [&](int rank) {
    auto o = base;
    o.batch_size = 8;
    o.dist = dist(rank, 2, port);
    o.checkpoint_every = 2;
    LocalContext ctx;
    Trainer t(o, ctx);
    // Rank 0 has 10 batches, rank 1 only 6 and a half: its input ends first.
    auto items = make_items(rank == 0 ? 80 : 52, rank == 0 ? "a.tar" : "b.tar", 11 + rank);
    for (size_t i = 0; i < items.size() && !t.done(); ++i) feed(t, items, i, i + 1);
    t.finish();  // end of this rank's input (rank 0: already stopped)
    steps[size_t(rank)] = t.step();
    CHECK(t.done());
    for (auto& l : ctx.logs()) logs[size_t(rank)] += l + "\n";
  });
  INFO(logs[0] << logs[1]);
  CHECK(steps[0] == 6);
  CHECK(steps[1] == 6);
  CHECK_THAT(logs[0], Catch::Contains("all 2 ranks stop at step 6"));
}

TEST_CASE("data parallel: resume with the same world size reaches the same weights, and another world size resumes") {
  test::TempDir a("dpresA"), b("dpresB");
  std::vector<std::vector<Item>> data = {make_items(64, "a.tar", 21), make_items(64, "b.tar", 22)};
  // Every run has the same 8-step schedule; `feed` samples per shard are
  // offered (already consumed ones are skipped after a resume).
  auto run = [&](const std::string& dir, size_t feed_n, bool resume, int world, int64_t want_step) {
    int port = test::free_port();
    std::vector<std::pair<std::string, Tensor>> w;
    const auto base = options(dir);
    run_ranks(world, 120, [&](int rank) {
      auto o = base;
      o.batch_size = world == 2 ? 8 : 16;
      o.steps = 8;
      o.resume = resume;
      o.checkpoint_every = 3;
      if (world > 1) o.dist = dist(rank, world, port);
      LocalContext ctx;
      Trainer t(o, ctx);
      if (world == 2) {
        feed(t, data[size_t(rank)], 0, feed_n);
      } else {
        for (size_t i = 0; i < feed_n; i += 8) {  // both shards, interleaved
          feed(t, data[0], i, i + 8);
          feed(t, data[1], i, i + 8);
        }
      }
      t.finish();
      CHECK(t.step() == want_step);
      if (rank == 0) w = t.weights();
    });
    return w;
  };
  auto straight = run(a.path(), 48, false, 2, 6);
  run(b.path(), 24, false, 2, 3);  // stops at step 3 (checkpoint at 3)
  auto resumed = run(b.path(), 48, true, 2, 6);
  CHECK(max_abs_diff(straight, resumed) == 0);
  // One rank picks up the two-rank checkpoint at step 6 and trains the rest.
  auto one = run(b.path(), 64, true, 1, 8);
  CHECK(max_abs_diff(one, resumed) > 0);
}

TEST_CASE("data parallel: the checkpoint's data position is the exact union of every rank's consumed samples") {
  test::TempDir a("dpunion");
  // One shard, split by parity: rank 0 trains the even indices, rank 1 the
  // odd ones, and each rank receives its samples out of order. A per-url
  // maximum would claim indices neither rank trained on; the union of the
  // two exact sets is every index 0..47 and nothing else.
  auto items = make_items(64, "one.tar", 31);
  int port = test::free_port();
  const auto base = options(a.path());
  run_ranks(2, 120, [&](int rank) {
    auto o = base;
    o.batch_size = 8;
    o.steps = 3;
    o.id_log = true;
    o.dist = dist(rank, 2, port);
    LocalContext ctx;
    Trainer t(o, ctx);
    std::vector<size_t> mine;
    for (size_t i = size_t(rank); i < 48; i += 2) mine.push_back(i);
    std::mt19937 rng(uint32_t(7 + rank));
    std::shuffle(mine.begin(), mine.end(), rng);
    for (size_t i : mine) t.add(items[i].image, items[i].labels, items[i].origin, "s" + std::to_string(i));
    REQUIRE(t.step() == 3);
    t.finish();
  });
  auto ck = list_checkpoints(a.path() + "/checkpoints");
  REQUIRE(ck.size() == 1);
  auto f = read_checkpoint_file(ck[0]);
  INFO(f.status().message());
  REQUIRE(f.ok());
  auto pos = DataPosition::parse(f->metadata.at("catlip.data_position"));
  REQUIRE(pos.streams().size() == 1);
  auto& s = pos.streams().begin()->second;
  CHECK(s.hwm() == 48);
  CHECK(s.exceptions().empty());
  // One id log per rank: rank 0's even indices, rank 1's odd ones, 8 per step each.
  for (int r = 0; r < 2; ++r) {
    std::istringstream in(test::read_file(a.path() + "/" + id_log_name(r)));
    std::set<int64_t> seen;
    int lines = 0;
    for (std::string l; std::getline(in, l);) {
      if (l.empty() || l[0] == '#') continue;
      ++lines;
      std::vector<std::string> f;
      std::istringstream ls(l);
      for (std::string x; std::getline(ls, x, '\t');) f.push_back(x);
      REQUIRE(f.size() == 6);
      CHECK(std::stoll(f[3]) % 2 == r);
      seen.insert(std::stoll(f[3]));
    }
    CHECK(lines == 24);
    CHECK(seen.size() == 24);
  }

  // Resumed on both ranks, each skips exactly what either rank trained.
  int port2 = test::free_port();
  run_ranks(2, 120, [&](int rank) {
    auto o = base;
    o.batch_size = 8;
    o.steps = 4;
    o.resume = true;
    o.dist = dist(rank, 2, port2);
    LocalContext ctx;
    Trainer t(o, ctx);
    CHECK(t.step() == 3);
    for (size_t i = size_t(rank); i < 64; i += 2) t.add(items[i].image, items[i].labels, items[i].origin, "s");
    CHECK(ctx.counter("train.resume_skipped_consumed") == 24);
    CHECK(t.step() == 4);
    t.finish();
  });
}
