// The exact data position (hwm + exceptions per stream): structure, JSON,
// the version-1 format, and the trainer using it: reordered delivery,
// resume, duplicates and the id log, in process.
#include <torch/torch.h>
// LibTorch pulls in glog, whose CHECK would silently replace Catch's.
#undef CHECK
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "catlip/local.h"
#include "catlip/train/data_position.h"
#include "catlip/train/trainer.h"
#include "test_util.h"

using namespace catlip;
using namespace catlip::train;

namespace {

Origin org(const std::string& url, int64_t index, int64_t epoch = 0, int64_t shard = 0) {
  return Origin{url, shard, index, epoch};
}

constexpr int kClasses = 6;

struct Item {
  Tensor image;
  IntList labels;
  Origin origin;
};

std::vector<Item> items_of(const std::string& url, int n, int64_t shard, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Item> out;
  for (int i = 0; i < n; ++i) {
    Item it;
    it.image.dtype = DType::U8;
    it.image.shape = {16, 16, 3};
    it.image.data.resize(16 * 16 * 3);
    for (auto& c : it.image.data) c = char(rng() & 0xFF);
    it.labels = {int64_t(rng() % kClasses)};
    it.origin = Origin{url, shard, i, 0};
    out.push_back(std::move(it));
  }
  return out;
}

TrainOptions small_options(const std::string& dir) {
  TrainOptions o;
  std::string vocab = "index\twnid\tlemma\tcount\tgloss\n";
  for (int i = 0; i < kClasses; ++i)
    vocab += std::to_string(i) + "\tn0" + std::to_string(2000 + i) + "\tthing" + std::to_string(i) + "\t1\tg\n";
  test::write_file(dir + "/vocab.tsv", vocab);
  o.vocab_path = dir + "/vocab.tsv";
  o.model.dim = 32;
  o.model.depth = 1;
  o.model.heads = 2;
  o.model.image_size = 16;
  o.model.patch_size = 8;
  o.batch_size = 4;
  o.warmup_steps = 0;
  o.device = "cpu";
  o.threads = 1;
  o.log_every = 0;
  o.checkpoint_every = 2;
  o.keep_checkpoints = 0;
  o.write_metrics = false;
  o.export_weights = false;
  o.id_log = true;
  o.run_dir = dir;
  return o;
}

struct LogEntry {
  int64_t step;
  std::string id;  // "url:epoch:index"
};

std::vector<LogEntry> read_id_log(const std::string& path) {
  std::vector<LogEntry> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string step, epoch, shard, index, url, key;
    std::getline(ls, step, '\t');
    std::getline(ls, epoch, '\t');
    std::getline(ls, shard, '\t');
    std::getline(ls, index, '\t');
    std::getline(ls, url, '\t');
    std::getline(ls, key, '\t');
    out.push_back({std::stoll(step), url + ":" + epoch + ":" + index});
  }
  return out;
}

}  // namespace

TEST_CASE("data position: hwm advances over exceptions, contains, duplicates") {
  ConsumedSet s;
  CHECK(s.hwm() == 0);
  CHECK_FALSE(s.contains(0));
  CHECK(s.insert(2));
  CHECK(s.insert(4));
  CHECK(s.hwm() == 0);
  CHECK(s.exceptions() == std::set<int64_t>{2, 4});
  CHECK(s.contains(2));
  CHECK_FALSE(s.contains(3));
  CHECK_FALSE(s.insert(2));  // a duplicate
  CHECK(s.insert(0));
  CHECK(s.hwm() == 1);
  CHECK(s.insert(1));  // fills the gap: hwm runs over 2
  CHECK(s.hwm() == 3);
  CHECK(s.exceptions() == std::set<int64_t>{4});
  CHECK(s.insert(3));
  CHECK(s.hwm() == 5);
  CHECK(s.exceptions().empty());
  CHECK_FALSE(s.insert(1));
  CHECK(s.contains(4));
  CHECK_FALSE(s.contains(5));

  // Any delivery order of 0..999 ends as hwm 1000 with no exceptions, and
  // the exceptions never exceed the reorder window (here: shuffled in
  // blocks of 16, so at most 15 are ahead of a gap).
  std::mt19937 rng(3);
  std::vector<int64_t> order(1000);
  for (int64_t i = 0; i < 1000; ++i) order[size_t(i)] = i;
  for (size_t b = 0; b < order.size(); b += 16)
    std::shuffle(order.begin() + long(b), order.begin() + long(std::min(order.size(), b + 16)), rng);
  ConsumedSet t;
  size_t most = 0;
  for (auto i : order) {
    CHECK(t.insert(i));
    most = std::max(most, t.exceptions().size());
  }
  CHECK(t.hwm() == 1000);
  CHECK(t.exceptions().empty());
  CHECK(most <= 15);
}

TEST_CASE("data position: union of two ranks' sets is exact") {
  DataPosition a, b;
  for (int64_t i = 0; i < 20; i += 2) a.insert(org("u.tar", i));  // even
  for (int64_t i = 1; i < 15; i += 2) b.insert(org("u.tar", i));  // odd up to 13
  b.insert(org("v.tar", 3, 1, 7));
  CHECK(a.find(org("u.tar", 0))->hwm() == 1);
  CHECK(b.find(org("u.tar", 0))->hwm() == 0);
  DataPosition u = a;
  u.merge(b);
  auto* s = u.find(org("u.tar", 0));
  REQUIRE(s);
  CHECK(s->hwm() == 15);  // 0..14 from both
  CHECK(s->exceptions() == std::set<int64_t>{16, 18});
  for (int64_t i = 0; i < 20; ++i) CHECK(u.contains(org("u.tar", i)) == (i < 15 || i % 2 == 0));
  CHECK(u.contains(org("v.tar", 3, 1, 7)));
  CHECK_FALSE(u.contains(org("v.tar", 3, 0, 7)));  // another epoch
  CHECK_FALSE(u.contains(org("v.tar", 3, 1, 6)));  // another shard
  // Commutative and idempotent.
  DataPosition w = b;
  w.merge(a);
  CHECK(w == u);
  w.merge(u);
  CHECK(w == u);
  // A set with a larger hwm absorbs the other's exceptions below it.
  ConsumedSet x, y;
  x.assign(3, {5, 9});
  y.assign(7, {8});
  x.merge(y);
  CHECK(x.hwm() == 7);  // {0,1,2,5,9} u {0..6,8} = {0..6,8,9}
  CHECK(x.exceptions() == std::set<int64_t>{8, 9});
}

TEST_CASE("data position: JSON round trip, runs, and reading the version-1 format") {
  DataPosition p;
  for (int64_t i : {0, 1, 2, 5, 6, 7, 9, 100}) p.insert(org("a \"quoted\" url.tar", i, 2, 4));
  p.insert(org("b.tar", 0, 0, 1));
  std::string js = p.to_json();
  INFO(js);
  CHECK(js.find("\"format\":\"data_position/2\"") != std::string::npos);
  CHECK(js.find("[[5,7],[9,9],[100,100]]") != std::string::npos);  // runs
  auto q = DataPosition::parse(js);
  CHECK(q == p);
  CHECK(DataPosition::parse(DataPosition().to_json()).empty());
  CHECK_THROWS(DataPosition::parse("{\"format\":\"data_position/9\",\"streams\":[]}"));
  CHECK_THROWS(DataPosition::parse(R"({"format":"data_position/2","urls":[["u",0,[[0,0,3,[[5,4]]]]]]})"));
  CHECK_THROWS(DataPosition::parse(R"({"format":"data_position/2","urls":[["u",0,[[2,1,3,[]]]]]})"));
  // Errors start with "data position" and say what is wrong; a JSON error gives its byte.
  CHECK_THROWS_WITH(DataPosition::parse(R"({"format":"data_position/2","urls":[)"),
                    Catch::Contains("data position: invalid JSON at byte 37"));
  CHECK_THROWS_WITH(DataPosition::parse(R"({"format":"data_position/2","urls":[["u","0",[]]]})"),
                    Catch::Contains("data position: expected an integer, got string"));
  // Out-of-range numbers are refused, not wrapped around (fuzz_formats).
  CHECK_THROWS_WITH(DataPosition::parse(R"({"format":"data_position/2","urls":[["u",0,[[9223372036854775806,9223372036854775807,3,[]]]]]})"),
                    Catch::Contains("bad epoch entry"));
  CHECK_THROWS_WITH(DataPosition::parse(R"({"format":"data_position/2","urls":[["u",0,[[0,0,3,[[-5,2]]]]]]})"),
                    Catch::Contains("bad run"));
  CHECK_THROWS_WITH(DataPosition::parse(R"({"format":"data_position/2","urls":[["u",0,[[0,0,3,[[5,9223372036854775807]]]]]]})"),
                    Catch::Contains("bad run"));
  CHECK_THROWS_WITH(DataPosition::parse(R"({"format":"data_position/2","urls":[["u",0,[[0,0,3,[[0,18446744073709551615]]]]]]})"),
                    Catch::Contains("out of range"));
  CHECK_THROWS_WITH(DataPosition::parse(R"({"u": [0, 0, 9223372036854775807]})"), Catch::Contains("bad index"));
  CHECK(DataPosition::parse(R"({"format":"data_position/2","urls":[["u",0,[[0,0,3,[[5,6]]]]]]})")
            .find(org("u", 0))
            ->exceptions() == std::set<int64_t>{5, 6});

  // Finished passes over a shard (same hwm, no gaps) share one entry.
  DataPosition ep;
  for (int64_t e = 0; e < 5; ++e)
    for (int64_t i = 0; i < 10; ++i)
      if (e < 4 || i != 3) ep.insert(org("s.tar", i, e, 2));
  std::string ejs = ep.to_json();
  CHECK(ejs == R"({"format":"data_position/2","urls":[["s.tar",2,[[0,3,10,[]],[4,4,3,[[4,9]]]]]]})");
  CHECK(DataPosition::parse(ejs) == ep);

  // Version 1: the largest (epoch, shard, index) per url. Means: hwm =
  // index + 1 in that epoch, earlier epochs of the url complete.
  auto old = DataPosition::parse(R"({"s0.tar": [0, 3, 11], "s1.tar": [2, 4, 5]})");
  CHECK(old.contains(org("s0.tar", 11, 0, 3)));
  CHECK(old.contains(org("s0.tar", 0, 0, 3)));
  CHECK_FALSE(old.contains(org("s0.tar", 12, 0, 3)));
  CHECK(old.find(org("s0.tar", 0, 0, 3))->hwm() == 12);
  CHECK(old.find(org("s0.tar", 0, 0, 3))->exceptions().empty());
  CHECK(old.contains(org("s1.tar", 999999, 0, 4)));  // epochs 0 and 1: complete
  CHECK(old.contains(org("s1.tar", 999999, 1, 4)));
  CHECK(old.contains(org("s1.tar", 5, 2, 4)));
  CHECK_FALSE(old.contains(org("s1.tar", 6, 2, 4)));
  CHECK_FALSE(old.contains(org("s1.tar", 0, 3, 4)));
  // ... and survives a round trip through version 2.
  CHECK(DataPosition::parse(old.to_json()) == old);
  // Untracked samples (no url or no index) are never "consumed".
  DataPosition e;
  CHECK(e.insert(Origin{}));
  CHECK(e.insert(Origin{}));
  CHECK_FALSE(e.contains(Origin{}));
  CHECK(e.empty());
}

TEST_CASE("trainer: reordered delivery, stop and resume train every sample exactly once (id log)") {
  test::TempDir d("exact-pos");
  // Two shards of 30, delivered in an order shuffled within windows of 12
  // (like decode replicas), interleaved.
  auto a = items_of("a.tar", 30, 0, 1), b = items_of("b.tar", 30, 1, 2);
  std::vector<const Item*> all;
  for (size_t i = 0; i < 30; ++i) {
    all.push_back(&a[i]);
    all.push_back(&b[i]);
  }
  auto shuffled = [&](uint32_t seed) {
    auto v = all;
    std::mt19937 rng(seed);
    for (size_t s = 0; s < v.size(); s += 12)
      std::shuffle(v.begin() + long(s), v.begin() + long(std::min(v.size(), s + 12)), rng);
    return v;
  };
  auto o = small_options(d.path());
  {
    // "Killed" after 7 steps: the checkpoint is at step 6 (24 samples), and
    // step 7's 4 samples are lost with the run.
    LocalContext ctx;
    Trainer t(o, ctx);
    auto first = shuffled(1);
    for (size_t i = 0; i < 29; ++i) t.add(first[i]->image, first[i]->labels, first[i]->origin, "k");
    REQUIRE(t.step() == 7);
    CHECK(t.data_position().total_exceptions() > 0);  // reordered: gaps at the stop point
  }
  CHECK(read_id_log(d.path() + "/train_ids.tsv").size() == 28);
  {
    auto r = o;
    r.resume = true;
    LocalContext ctx;
    Trainer t(r, ctx);
    CHECK(t.step() == 6);
    auto logs = ctx.logs();
    CHECK(std::any_of(logs.begin(), logs.end(), [](const std::string& l) {
      return l.find("dropped 4 entries of steps after 6") != std::string::npos;
    }));
    // The source restarts from the beginning, in another order, and one
    // sample arrives twice (re-delivery after an upstream crash).
    auto second = shuffled(2);
    for (auto* it : second) t.add(it->image, it->labels, it->origin, "k");
    t.add(second[40]->image, second[40]->labels, second[40]->origin, "k");
    CHECK(ctx.counter("train.resume_skipped_consumed") == 24);
    CHECK(ctx.counter("train.duplicate_skipped") == 1);
    CHECK(t.step() == 15);  // 60 / 4
    t.finish();
    CHECK(ctx.counter("train.dropped_partial_batch_samples") == 0);
    auto* sa = t.data_position().find(a[0].origin);
    auto* sb = t.data_position().find(b[0].origin);
    REQUIRE(sa);
    REQUIRE(sb);
    CHECK(sa->hwm() == 30);
    CHECK(sb->hwm() == 30);
    CHECK(t.data_position().total_exceptions() == 0);
  }
  auto log = read_id_log(d.path() + "/train_ids.tsv");
  std::multiset<std::string> got;
  std::map<int64_t, int> per_step;
  for (auto& e : log) got.insert(e.id), ++per_step[e.step];
  std::multiset<std::string> want;
  for (auto* it : all) want.insert(it->origin.url + ":0:" + std::to_string(it->origin.index));
  CHECK(got == want);
  CHECK(per_step.size() == 15);
  for (auto& [s, n] : per_step) CHECK(n == 4);
}

TEST_CASE("trainer: a duplicate within the open batch is skipped, the partial last batch is never logged") {
  test::TempDir d("dup-partial");
  auto a = items_of("a.tar", 10, 0, 5);
  auto o = small_options(d.path());
  o.accumulate_steps = 2;  // pending spans micro-batches
  LocalContext ctx;
  Trainer t(o, ctx);
  for (int i = 0; i < 10; ++i) {
    t.add(a[size_t(i)].image, a[size_t(i)].labels, a[size_t(i)].origin, "k");
    if (i == 5) t.add(a[1].image, a[1].labels, a[1].origin, "k");  // first micro-batch, step not taken yet
  }
  CHECK(ctx.counter("train.duplicate_skipped") == 1);
  CHECK(t.step() == 1);  // 8 samples: one optimizer step of 2 x 4
  t.finish();
  CHECK(ctx.counter("train.dropped_partial_batch_samples") == 2);
  auto log = read_id_log(d.path() + "/train_ids.tsv");
  REQUIRE(log.size() == 8);
  std::set<std::string> ids;
  for (auto& e : log) ids.insert(e.id);
  CHECK(ids.size() == 8);
  CHECK_FALSE(ids.count("a.tar:0:8"));
  CHECK_FALSE(t.data_position().contains(a[8].origin));
  CHECK(t.data_position().find(a[0].origin)->hwm() == 8);
}
