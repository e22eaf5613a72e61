// Data-parallel training across hosts learns as well as one rank: the
// quickstart model trained by 2 nodes x 1 trainer rank (namespace hosts,
// `catlip node`) on the same global images (1500 steps of 2 x 16) as the
// quickstart's one rank (1500 steps of 32), evaluated on the same held-out set.
//
// Slow (two quickstart trainings on this CPU, about 15 minutes): its own
// executable, label cluster_train, with a long timeout.
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

TEST_CASE("two nodes x one rank reach the one-rank quickstart's held-out mAP") {
  require_netns();
  clean_launcher_env();
  TempDir dir("cl-qs");
  const std::string cfg = source_dir() + "/configs";
  // 1. The quickstart as shipped: data, vocabulary, one rank, evaluation.
  auto one = run_cmd("cd " + source_dir() + " && " + catlip_bin() + " quickstart --out " + dir.file("one") +
                     " --no-transfer 2>&1");
  INFO(one.out.substr(one.out.size() > 3000 ? one.out.size() - 3000 : 0));
  REQUIRE(one.exit_code == 0);
  double map_one = gt_map(dir.file("one/eval/eval.json"));

  // 2. The same training graph on two hosts, one rank each, every stage per
  // node: each node reads half the shards.
  const std::string data = dir.file("one/data");
  NetnsHosts hosts(2);
  std::string env = "DATA=" + data + " VOCAB=" + data + "/vocab.tsv MODEL_VOCAB=" + data + "/vocab_model.tsv";
  std::string sets = " --set 'read.urls=" + toml_list(shards(data, "train-")) + "' --set read.epochs=1";
  for (auto st : {"read", "decode", "labels", "train"}) sets += std::string(" --set ") + st + ".replicas_per_node=1";
  sets += " --set train.batch_size=16 --set train.steps=1500 --set train.schedule_steps=1500 --set train.threads=1";
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
  double map_two = gt_map(dir.file("two/eval/eval.json"));

  // 3. Same band: far above the label-frequency prior (0.04), and within the
  // run-to-run spread of the one-rank recipe (seeds 0 and 1: 0.86 and 0.95;
  // this test measured 0.933 for one rank).
  INFO("held-out mAP: one rank " << map_one << ", two nodes x one rank " << map_two);
  CHECK(map_one > 0.75);
  CHECK(map_two > 0.75);
  CHECK(std::abs(map_two - map_one) < 0.12);
}
