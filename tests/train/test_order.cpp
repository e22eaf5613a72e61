// order = "deterministic": the same samples in every global step at any
// world size. SampleOrder (the trainer's reorder buffer) alone, then whole
// runs through `catlip run` and `catlip resume`: synthetic shards ->
// shards.source (numbering) -> image.decode x 3 (reordering) -> text.labels
// -> train.catlip. Two ranks and one rank with accumulate_steps = 2 train
// the same ids in every step with losses within 1e-5 (fp32, one thread),
// and a run stopped at step 4 and resumed on one rank continues the same
// sequence.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <cmath>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "catlip/sample.h"
#include "catlip/train/sample_order.h"
#include "test_util.h"

using namespace catlip;
using namespace catlip::test;
using catlip::train::SampleOrder;

namespace {

Sample numbered(int64_t seq) {
  Sample s;
  s.key = "k" + std::to_string(seq);
  s.set_ints(kSeqField, {seq});
  return s;
}

}  // namespace

TEST_CASE("sample order: a rank takes its numbers in order, whatever order they arrive in") {
  SampleOrder o(1, 3, 0, 8);  // rank 1 of 3: 1, 4, 7, 10, ...
  CHECK(o.next() == 1);
  CHECK(o.put(7, numbered(7)) == SampleOrder::Put::Held);
  CHECK(o.put(4, numbered(4)) == SampleOrder::Put::Held);
  CHECK_FALSE(o.pop());  // 1 is missing
  CHECK(o.put(1, numbered(1)) == SampleOrder::Put::Held);
  std::vector<int64_t> got;
  while (auto s = o.pop()) got.push_back(sample_seq(*s));
  CHECK(got == std::vector<int64_t>{1, 4, 7});
  CHECK(o.next() == 10);
  // A copy, or a number trained before: consumed, not held.
  CHECK(o.put(4, numbered(4)) == SampleOrder::Put::Consumed);
  CHECK(o.held() == 0);
  // Another rank's number is a routing error, named.
  CHECK_THROWS_WITH(o.put(11, numbered(11)), Catch::Contains("belongs to rank 2"));
}

TEST_CASE("sample order: a resumed rank starts at its first number at or after the position") {
  CHECK(SampleOrder(0, 2, 64, 8).next() == 64);
  CHECK(SampleOrder(1, 2, 64, 8).next() == 65);
  CHECK(SampleOrder(0, 1, 64, 8).next() == 64);
  CHECK(SampleOrder(2, 4, 65, 8).next() == 66);
  CHECK(SampleOrder(0, 4, 65, 8).next() == 68);
}

TEST_CASE("sample order: more than the window held while one is missing fails naming it") {
  SampleOrder o(0, 2, 0, 3);
  for (int64_t s : {2, 4, 6}) CHECK(o.put(s, numbered(s)) == SampleOrder::Put::Held);
  CHECK_THROWS_WITH(o.put(8, numbered(8)), Catch::Contains("waiting for sample 0"));
}

namespace {

// step -> the ids ("shard index key") trained in it, over every rank's id log.
using StepIds = std::map<int, std::multiset<std::string>>;

void read_ids(const std::string& path, StepIds& out) {
  for (auto& f : id_log_rows(path)) {
    REQUIRE(f.size() == 6);
    out[std::stoi(f[0])].insert(f[2] + " " + f[3] + " " + f[5]);
  }
}

StepIds ids_of(const std::string& run, int ranks) {
  StepIds out;
  read_ids(run + "/train_ids.tsv", out);
  for (int r = 1; r < ranks; ++r) read_ids(run + "/train_ids.rank-" + std::to_string(r) + ".tsv", out);
  return out;
}

// step -> loss, from train_metrics.jsonl (the last line of a step wins: a
// resumed run appends).
std::map<int, double> losses_of(const std::string& run) {
  std::map<int, double> out;
  std::ifstream in(run + "/train_metrics.jsonl");
  std::regex re("\"step\":([0-9]+).*\"loss\":([-+0-9.eE]+)");
  std::string line;
  std::smatch m;
  while (std::getline(in, line))
    if (std::regex_search(line, m, re)) out[std::stoi(m[1])] = std::stod(m[2]);
  return out;
}

struct OrderData {
  TempDir dir{"order"};
  std::string graph;
};

// 4 shards x 96 samples, and a graph whose trainer takes 8 steps of 16.
void make_data(OrderData& d) {
  const std::string cat = catlip_bin();
  auto synth = run_cmd(cat + " shards synth " + d.dir.file("data/train") +
                       " --samples 384 --samples-per-shard 96 --size 32 2>&1");
  INFO(synth.out);
  REQUIRE(synth.exit_code == 0);
  write_file(d.dir.file("vocab.tsv"),
             "#index\twnid\tlemma\tcount\tgloss\n0\tn02778669\tball\t6\tg\n1\tn03147509\tcup\t3\tg\n");
  // 12 of the 39 synthetic categories: about half the captions name none.
  std::string v12 = "#index\twnid\tlemma\tcount\tgloss\n";
  int i = 0;
  for (const char* e : {"n02778669\tball", "n03147509\tcup", "n02876657\tbottle", "n02883344\tbox", "n13104059\ttree",
                        "n03544360\thouse", "n02958343\tcar", "n09358358\tmoon", "n09450163\tsun", "n11669921\tflower",
                        "n02512053\tfish", "n01503061\tbird"})
    v12 += std::to_string(i++) + "\t" + e + "\t5\tg\n";
  write_file(d.dir.file("vocab12.tsv"), v12);
  d.graph = d.dir.file("g.toml");
  write_file(d.graph, R"([graph]
name = "order"
[stages.read]
type = "shards.source"
urls = [")" + d.dir.file("data/train-{000000..000003}.tar") + R"("]
epochs = 1
shuffle_buffer = 32
seed = 5
order = "deterministic"
[stages.decode]
type = "image.decode"
inputs = ["read"]
replicas = 3
mode = "eval"
size = 32
[stages.labels]
type = "text.labels"
inputs = ["decode"]
vocab = ")" + d.dir.file("vocab.tsv") + R"("
[stages.train]
type = "train.catlip"
inputs = ["labels"]
order = "deterministic"
lr = 0.001
min_lr = 0.001
precision = "fp32"
)" + tiny_catlip_train_keys(d.dir.file("vocab.tsv"), 8, 0));
}

CmdResult catlip_run(const OrderData& d, const std::string& run, const std::string& sets) {
  return run_cmd("timeout 240 " + catlip_bin() + " run " + d.graph + " --run-dir " + run + " --progress plain " +
                 sets + " 2>&1");
}

void check_same(const StepIds& a, const StepIds& b, int steps) {
  REQUIRE(a.size() == size_t(steps));
  REQUIRE(b.size() == size_t(steps));
  for (int s = 1; s <= steps; ++s) {
    INFO("step " << s);
    CHECK(a.at(s).size() == 16);
    CHECK(a.at(s) == b.at(s));
  }
}

void check_losses(const std::map<int, double>& a, const std::map<int, double>& b, int steps) {
  REQUIRE(a.size() == size_t(steps));
  REQUIRE(b.size() == size_t(steps));
  for (int s = 1; s <= steps; ++s) {
    INFO("step " << s << ": " << a.at(s) << " vs " << b.at(s));
    CHECK(std::isfinite(a.at(s)));
    CHECK(std::abs(a.at(s) - b.at(s)) <= 1e-5);
  }
}

}  // namespace

TEST_CASE("deterministic order: 2 ranks, 1 rank with accumulate_steps 2, and a run resumed on 1 rank train the same "
          "samples per step with the same losses") {
  OrderData d;
  make_data(d);
  // Two ranks, one micro-step each.
  auto a = catlip_run(d, d.dir.file("two"), "--set train.replicas=2");
  INFO(a.out);
  REQUIRE(a.exit_code == 0);
  CHECK_THAT(a.out, Catch::Contains("global batch 16 = 8 x 2 ranks"));
  // One rank, two micro-steps.
  auto b = catlip_run(d, d.dir.file("one"), "--set train.accumulate_steps=2");
  INFO(b.out);
  REQUIRE(b.exit_code == 0);
  CHECK_THAT(b.out, Catch::Contains("global batch 16 = 8 x 1 rank x 2 accumulation"));
  auto two = ids_of(d.dir.file("two"), 2), one = ids_of(d.dir.file("one"), 1);
  check_same(two, one, 8);
  check_losses(losses_of(d.dir.file("two")), losses_of(d.dir.file("one")), 8);
  // The steps are the sequence's consecutive slices, not just equal sets:
  // no sample twice across steps.
  std::set<std::string> all;
  for (auto& [s, ids] : one) all.insert(ids.begin(), ids.end());
  CHECK(all.size() == 8 * 16);

  // text.labels drops the captions that name none of 12 categories: each
  // dropped sample keeps its slot (a marker reaches the trainer), so both
  // world sizes train the same ids per step, and each step's ids are the
  // undropped ones of the same step above: nothing shifted.
  const std::string drop = " --set labels.drop_unlabeled=true --set labels.vocab=" + d.dir.file("vocab12.tsv") +
                           " --set train.vocab=" + d.dir.file("vocab12.tsv");
  auto e = catlip_run(d, d.dir.file("two-drop"), "--set train.replicas=2" + drop);
  INFO(e.out);
  REQUIRE(e.exit_code == 0);
  auto f = catlip_run(d, d.dir.file("one-drop"), "--set train.accumulate_steps=2" + drop);
  INFO(f.out);
  REQUIRE(f.exit_code == 0);
  auto two_drop = ids_of(d.dir.file("two-drop"), 2), one_drop = ids_of(d.dir.file("one-drop"), 1);
  REQUIRE(two_drop.size() == 8);
  size_t kept = 0;
  for (int s = 1; s <= 8; ++s) {
    INFO("step " << s);
    CHECK(two_drop[s] == one_drop[s]);
    CHECK(std::includes(two[s].begin(), two[s].end(), two_drop[s].begin(), two_drop[s].end()));
    kept += two_drop[s].size();
  }
  CHECK(kept > 16);
  CHECK(kept < 8 * 16);  // some were dropped
  CHECK_THAT(read_file(d.dir.file("two-drop/summary.json")), Catch::Contains("\"order.dropped\""));

  // Two ranks stopped at step 4, resumed on one rank with accumulation 2.
  const std::string run = d.dir.file("resumed");
  auto c = catlip_run(d, run, "--set train.replicas=2 --set train.steps=4");
  INFO(c.out);
  REQUIRE(c.exit_code == 0);
  auto r = run_cmd("timeout 240 " + catlip_bin() + " resume " + run +
                   " --set train.replicas=1 --set train.accumulate_steps=2 --set train.steps=8 --progress plain 2>&1");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("at step 4"));
  check_same(ids_of(run, 2), two, 8);
  check_losses(losses_of(run), losses_of(d.dir.file("two")), 8);
}

TEST_CASE("deterministic order: a numbering source with several replicas, or a trainer fed unnumbered samples, "
          "is refused with the stage and parameter named") {
  OrderData d;
  make_data(d);
  auto r = run_cmd(catlip_bin() + " validate " + d.graph + " --set read.replicas=2 2>&1");
  INFO(r.out);
  CHECK(r.exit_code == 3);
  CHECK_THAT(r.out, Catch::Contains("read") && Catch::Contains("order = \"deterministic\"") &&
                        Catch::Contains("1 replica"));
  // Ranks on two nodes that read labels node-locally could not get every number routed to them.
  auto n = run_cmd(catlip_bin() + " validate " + d.graph +
                   " --nodes 2 --set train.replicas_per_node=1 --set labels.replicas_per_node=1 2>&1");
  INFO(n.out);
  CHECK(n.exit_code == 3);
  CHECK_THAT(n.out, Catch::Contains("stage 'train'") && Catch::Contains("input 'labels' runs on the same nodes"));
  // The source does not number: the trainer fails at its first sample, saying which parameter to set.
  auto u = catlip_run(d, d.dir.file("unnumbered"), "--set read.order=arrival");
  INFO(u.out);
  CHECK(u.exit_code == 1);
  CHECK_THAT(u.out, Catch::Contains("has no number (field order.seq): set order = \"deterministic\" on the "
                                    "shards.source"));
}

TEST_CASE("deterministic order: decode replicas killed mid-run are restarted and every step still trains the same "
          "samples, each once") {
  OrderData d;
  make_data(d);
  // The shipped stage order: labels before decode, so the decode replicas
  // are the keyed last hop; all 384 samples, 24 steps of 16 on two ranks.
  std::string g = read_file(d.graph);
  auto cut = g.find("[stages.decode]");
  std::string head = g.substr(0, cut), rest = g.substr(cut);
  auto lab = rest.find("[stages.labels]"), tr = rest.find("[stages.train]");
  std::string decode = rest.substr(0, lab), labels = rest.substr(lab, tr - lab), train = rest.substr(tr);
  auto swap_input = [](std::string t, const std::string& from, const std::string& to) {
    const std::string key = "inputs = [\"" + from + "\"]";
    auto at = t.find(key);
    REQUIRE(at != std::string::npos);
    return t.replace(at, key.size(), "inputs = [\"" + to + "\"]");
  };
  labels = swap_input(labels, "decode", "read");
  decode = swap_input(decode, "read", "labels");
  train = swap_input(train, "labels", "decode");
  write_file(d.dir.file("g2.toml"), head + labels + decode + train + "replicas = 2\n");
  auto run_once = [&](const std::string& run) {
    return run_cmd("timeout 240 " + catlip_bin() + " run " + d.dir.file("g2.toml") + " --run-dir " + run +
                   " --progress plain --set train.steps=24 --set train.dim=64 --set train.depth=2 2>&1");
  };
  auto ref = run_once(d.dir.file("ref"));
  INFO(ref.out);
  REQUIRE(ref.exit_code == 0);

  const std::string run = d.dir.file("chaos");
  int pid = start_run(d.dir.file("g2.toml") + " --run-dir " + run +
                          " --progress plain --set train.steps=24 --set train.dim=64 --set train.depth=2",
                      d.dir.file("chaos.log"));
  auto steps_logged = [&] {
    std::ifstream in(run + "/train_metrics.jsonl");
    int n = 0;
    for (std::string l; std::getline(in, l);) ++n;
    return n;
  };
  int kills = 0, st = 0;
  bool exited = false;
  for (int target : {2, 8}) {  // kill one decode replica once step 2, then step 8, is logged
    for (int i = 0; i < 20000 && steps_logged() < target; ++i) {
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (exited) break;
    auto pids = worker_pids(run, "decode/" + std::to_string(kills % 3));
    if (!pids.empty() && ::kill(pids[0], SIGKILL) == 0) ++kills;
  }
  if (!exited) ::waitpid(pid, &st, 0);
  INFO(read_file(d.dir.file("chaos.log")));
  REQUIRE(WIFEXITED(st));
  REQUIRE(WEXITSTATUS(st) == 0);
  REQUIRE(kills >= 1);  // the run outlived at least the first kill
  CHECK_THAT(read_file(d.dir.file("chaos.log")), Catch::Contains("restarting stage 'decode'"));
  auto want = ids_of(d.dir.file("ref"), 2), got = ids_of(run, 2);
  check_same(got, want, 24);
  std::set<std::string> all;
  for (auto& [s, ids] : got) all.insert(ids.begin(), ids.end());
  CHECK(all.size() == 384);  // every sample of the epoch, once
  check_losses(losses_of(run), losses_of(d.dir.file("ref")), 24);
}
