// Data-parallel training across hosts learns as well as one rank: the
// quickstart model trained by 2 nodes x 1 trainer rank (namespace hosts,
// `catlip node`) on the same global images (steps of 2 x 16) as the
// quickstart's one rank (steps of 32), evaluated on the same held-out set.
//
// Two forms: a small one for every test run (label cluster; 150 steps, the
// loss curves and held-out mAP compared), and the full quickstart (1500
// steps each, about 15 minutes here; label soak, run by
// `tools/test.sh --full`).
#include <catch2/catch.hpp>

#include <filesystem>
#include <regex>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "cluster_util.h"
#include "test_util.h"

using namespace catlip::test;
using namespace catlip::test::cluster;
namespace json = catlip::json;
namespace fs = std::filesystem;

namespace {

// eval.json's ground_truth.mAP.
double gt_map(const std::string& eval_json) {
  std::string text = read_file(eval_json);
  INFO(eval_json << ": " << text.substr(0, 400));
  json::Value v = json::parse(text, eval_json);
  return json::number(json::at(json::at(v, "ground_truth"), "mAP"));
}

std::string toml_list(const std::vector<std::string>& files) {
  std::string s = "[";
  for (size_t i = 0; i < files.size(); ++i) s += (i ? ",\"" : "\"") + files[i] + "\"";
  return s + "]";
}

std::vector<std::string> shards(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) == 0 && e.path().extension() == ".tar") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

namespace {

struct Pair {
  double map_one = 0, map_two = 0, prior = 0;
  std::vector<double> loss_one, loss_two;  // per optimizer step
};

// train_metrics.jsonl's losses, one per step.
std::vector<double> losses(const std::string& file) {
  std::vector<double> out;
  for (auto& line : lines_of(read_file(file)))
    if (!line.empty()) out.push_back(json::number(json::at(json::parse(line, file), "loss")));
  return out;
}

double mean(const std::vector<double>& v, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += v[i];
  return s / double(to - from);
}

// The quickstart on `samples` training images (one rank, batch 32), then the
// same training graph on two namespace hosts x one rank (batch 2 x 16, each
// node reading half the shards), both evaluated on the same held-out set.
Pair train_pair(TempDir& dir, int samples, int val_samples) {
  Pair r;
  const std::string cfg = source_dir() + "/configs";
  const int steps = samples / 32;
  auto one = run_cmd("cd " + source_dir() + " && " + catlip_bin() + " quickstart --out " + dir.file("one") +
                     " --train-samples " + std::to_string(samples) + " --val-samples " + std::to_string(val_samples) +
                     " --no-transfer 2>&1");
  INFO(one.out.substr(one.out.size() > 3000 ? one.out.size() - 3000 : 0));
  REQUIRE(one.exit_code == 0);
  r.map_one = gt_map(dir.file("one/eval/eval.json"));
  r.prior = json::number(json::at(json::at(json::parse(read_file(dir.file("one/eval/eval.json")), "eval.json"),
                                           "ground_truth"), "prior_mAP"));
  r.loss_one = losses(dir.file("one/train/train_metrics.jsonl"));

  const std::string data = dir.file("one/data");
  NetnsHosts hosts(2);
  std::string env = "DATA=" + data + " VOCAB=" + data + "/vocab.tsv MODEL_VOCAB=" + data + "/vocab_model.tsv";
  std::string sets = " --set 'read.urls=" + toml_list(shards(data, "train-")) + "' --set read.epochs=1";
  for (auto st : {"read", "decode", "labels", "train"}) sets += std::string(" --set ") + st + ".replicas_per_node=1";
  sets += " --set train.batch_size=16 --set train.steps=" + std::to_string(steps) +
          " --set train.schedule_steps=" + std::to_string(steps) + " --set train.threads=1";
  auto node = [&](int k, const std::string& args) {
    return "env " + env + " NODE_RANK=" + std::to_string(k) + " NNODES=2 MASTER_ADDR=" + hosts.address(0) +
           " MASTER_PORT=29433 " + hosts.exec_prefix(k) + " " + catlip_bin() + " node " + args;
  };
  Proc n1(node(1, ""), dir.file("node1.log"));
  Proc n0(node(0, cfg + "/quickstart_train.toml" + sets + " --run-dir " + dir.file("two/train") + " --progress plain"),
          dir.file("node0.log"));
  int c0 = n0.wait(2400), c1 = n1.wait(60);
  std::string log0 = n0.log();
  INFO(log0.substr(log0.size() > 4000 ? log0.size() - 4000 : 0) << "\n---- node 1:\n" << n1.log());
  REQUIRE(c0 == 0);
  CHECK(c1 == 0);
  CHECK_THAT(log0, Catch::Contains("global batch 32 = 16 x 2 ranks"));
  auto ev = run_cmd("env " + env + " CHECKPOINT=" + dir.file("two/train") + " " + catlip_bin() + " run " + cfg +
                    "/quickstart_eval.toml --set 'read.urls=" + toml_list(shards(data, "val-")) + "' --run-dir " +
                    dir.file("two/eval") + " --quiet 2>&1");
  INFO(ev.out);
  REQUIRE(ev.exit_code == 0);
  r.map_two = gt_map(dir.file("two/eval/eval.json"));
  r.loss_two = losses(dir.file("two/train/train_metrics.jsonl"));
  return r;
}

}  // namespace

TEST_CASE("two nodes x one rank train like one rank (150 steps)") {
  require_netns();
  clean_launcher_env();
  TempDir dir("cl-qs-small");
  Pair r = train_pair(dir, 4800, 300);
  REQUIRE(r.loss_one.size() == 150);
  REQUIRE(r.loss_two.size() == 150);
  // Both fall the same way: the mean loss of the last 30 steps is far below
  // the first 10 steps' and within 10% of each other (the one-rank run fell
  // from 57 to about 11 here).
  double first1 = mean(r.loss_one, 0, 10), last1 = mean(r.loss_one, 120, 150);
  double first2 = mean(r.loss_two, 0, 10), last2 = mean(r.loss_two, 120, 150);
  INFO("loss one rank " << first1 << " -> " << last1 << ", two nodes " << first2 << " -> " << last2
                        << "; held-out mAP " << r.map_one << " / " << r.map_two << ", prior " << r.prior);
  CHECK(last1 < 0.4 * first1);
  CHECK(last2 < 0.4 * first2);
  CHECK(std::abs(last2 - last1) < 0.1 * last1);
  // And both are above the label-frequency prior on held-out images already.
  CHECK(r.map_one > r.prior);
  CHECK(r.map_two > r.prior);
}

TEST_CASE("two nodes x one rank reach the one-rank quickstart's held-out mAP (full: 1500 steps)") {
  require_netns();
  clean_launcher_env();
  TempDir dir("cl-qs");
  Pair r = train_pair(dir, 48000, 1000);
  // Same band: far above the label-frequency prior (0.04), and within the
  // run-to-run spread of the one-rank recipe (seeds 0 and 1: 0.86 and 0.95;
  // this test measured 0.933 for one rank).
  INFO("held-out mAP: one rank " << r.map_one << ", two nodes x one rank " << r.map_two);
  CHECK(r.map_one > 0.75);
  CHECK(r.map_two > 0.75);
  CHECK(std::abs(r.map_two - r.map_one) < 0.12);
}
