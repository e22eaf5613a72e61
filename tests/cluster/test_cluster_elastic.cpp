// Elastic multi-host training (issue 23): a lost node or a failed trainer
// rank restarts the run from its checkpoint instead of failing it. Real
// `catlip node` agents on emulated hosts (network namespaces), a real
// data-parallel trainer (one rank per host, c10d Gloo over the bridge), and
// the trainer's id logs to check that every sample is trained once per epoch.
//
// Each test checks its prerequisites first and exits 77 (skipped) when one is
// missing; it never passes without running.
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>

#include "cluster_util.h"
#include "test_util.h"

using namespace catlip::test;
using namespace catlip::test::cluster;
namespace fs = std::filesystem;

namespace {

constexpr int kPort = 29431;

// 4 shards x 96 synthetic samples and a two-class vocabulary; returns the
// ids (shard file, index, key) of one epoch.
std::multiset<std::string> make_data(const TempDir& d) {
  auto synth = run_cmd(catlip_bin() + " shards synth " + d.file("data/train") +
                       " --samples 384 --samples-per-shard 96 --size 32 2>&1");
  INFO(synth.out);
  REQUIRE(synth.exit_code == 0);
  write_file(d.file("vocab.tsv"),
             "#index\twnid\tlemma\tcount\tgloss\n0\tn02778669\tball\t6\tg\n1\tn03147509\tcup\t3\tg\n");
  auto want = shard_sample_ids(d.file("data/train-{000000..000003}.tar"));
  REQUIRE(want.size() == 384);
  return want;
}

// shards on node 0 -> labels, decode and one train.catlip rank on every
// node (batch 8 a rank), `steps` steps, a checkpoint every 5, id logs.
// `graph_keys` go in [graph], `train_keys` on the trainer.
std::string elastic_graph(const TempDir& d, int steps, const std::string& graph_keys,
                          const std::string& train_keys = "") {
  return R"([graph]
name = "elastic"
)" + graph_keys + R"(
[stages.read]
type = "shards.source"
urls = [")" + d.file("data/train-{000000..000003}.tar") + R"("]
epochs = 3
shuffle_buffer = 32
seed = 7
[stages.labels]
type = "text.labels"
inputs = ["read"]
replicas_per_node = 1
vocab = ")" + d.file("vocab.tsv") + R"("
[stages.decode]
type = "image.decode"
inputs = ["labels"]
replicas_per_node = 1
mode = "eval"
size = 32
[stages.train]
type = "train.catlip"
inputs = ["decode"]
replicas_per_node = 1
)" + train_keys + tiny_catlip_train_keys(d.file("vocab.tsv"), steps, 5);
}

// The ranks' id logs in the run directory (shared by the namespace hosts):
// per step the number of samples; per epoch the ids.
struct IdLogs {
  std::map<long, int> per_step;
  std::map<std::string, std::multiset<std::string>> by_epoch;
};
IdLogs read_id_logs(const std::string& run, int ranks) {
  IdLogs out;
  for (int r = 0; r < ranks; ++r) {
    std::string path = run + (r == 0 ? "/train_ids.tsv" : "/train_ids.rank-" + std::to_string(r) + ".tsv");
    INFO(path);
    REQUIRE(fs::exists(path));
    for (auto& f : id_log_rows(path)) {
      REQUIRE(f.size() == 6);  // step epoch shard index url key
      ++out.per_step[std::stol(f[0])];
      out.by_epoch[f[1]].insert(fs::path(f[4]).filename().string() + "\t" + f[3] + "\t" + f[5]);
    }
  }
  return out;
}

// Every step 1..steps holds `per_step` samples; each epoch whose samples
// were all trained holds every id once; a later, partial epoch none twice.
void check_exactly_once(const IdLogs& ids, const std::multiset<std::string>& want, int steps, int per_step) {
  CHECK(ids.per_step.size() == size_t(steps));
  CHECK(ids.per_step.begin()->first == 1);
  CHECK(ids.per_step.rbegin()->first == steps);
  for (auto& [s, n] : ids.per_step) {
    INFO("step " << s);
    CHECK(n == per_step);
  }
  const size_t trained = size_t(steps) * size_t(per_step);
  size_t whole = trained / want.size();
  for (size_t e = 0; e < 3; ++e) {
    auto it = ids.by_epoch.find(std::to_string(e));
    std::multiset<std::string> got = it == ids.by_epoch.end() ? std::multiset<std::string>{} : it->second;
    INFO("epoch " << e);
    if (e < whole) {
      CHECK(got == want);
    } else {
      std::set<std::string> distinct(got.begin(), got.end());
      CHECK(distinct.size() == got.size());
    }
  }
}

// The `catlip node` agents of nodes 0..2 on `hosts` (node 0 the
// coordinator), `flags` on each, logs in node<k>.log.
std::vector<std::unique_ptr<Proc>> start_nodes(const NetnsHosts& hosts, const TempDir& d, const std::string& run,
                                               const std::string& flags) {
  std::vector<std::unique_ptr<Proc>> nodes;
  for (int k = 0; k < 3; ++k)
    nodes.push_back(std::make_unique<Proc>(node_cmd(hosts, k, 3, kPort, d.file("g.toml"), run, flags),
                                           d.file("node" + std::to_string(k) + ".log")));
  return nodes;
}

// Waits (up to 180 s) until the run holds a checkpoint and `steps` logged
// steps; false if node 0 ended first or it did not happen in time.
bool wait_for_checkpoint(Proc& node0, const std::string& run, int steps) {
  bool reached = wait_until(
      [&] {
        return !node0.running() ||
               (has_checkpoint(run + "/checkpoints") && count_lines(run + "/train_metrics.jsonl") >= steps);
      },
      180);
  return reached && node0.running();
}

}  // namespace

TEST_CASE("elastic: on_node_loss = wait, node 2's agent killed and started again, the run ends with every sample once") {
  require_netns();
  clean_launcher_env();
  TempDir dir("cl-wait");
  auto want = make_data(dir);
  // 3 ranks x 8 = 24 a step, 16 steps an epoch; 40 steps.
  constexpr int kSteps = 40;
  write_file(dir.file("g.toml"), elastic_graph(dir, kSteps, "on_node_loss = \"wait\"\nrejoin_timeout_s = 60\n"));
  const std::string run = dir.file("run");
  NetnsHosts hosts(3);
  std::vector<std::unique_ptr<Proc>> nodes;
  auto start_node = [&](int k, const std::string& log) {
    return std::make_unique<Proc>(node_cmd(hosts, k, 3, kPort, dir.file("g.toml"), run, "--join-timeout 60"),
                                  dir.file(log));
  };
  for (int k = 0; k < 3; ++k) nodes.push_back(start_node(k, "node" + std::to_string(k) + ".log"));
  // After the first checkpoint, node 2's agent (and with it its replicas) dies.
  bool reached = wait_for_checkpoint(*nodes[0], run, 8);
  INFO(logs_of(nodes));
  REQUIRE(reached);
  nodes[2]->kill(SIGKILL);
  REQUIRE(wait_until(
      [&] { return !nodes[0]->running() || nodes[0]->log().find("once node 2 has joined again") != std::string::npos; },
      30));
  if (!nodes[0]->running()) FAIL("node 0 ended (" << nodes[0]->wait(1) << "):\n" << logs_of(nodes));
  // The coordinator waits; a new agent with rank 2 joins, the run restarts.
  auto again = start_node(2, "node2-again.log");
  int c0 = nodes[0]->wait(240), c1 = nodes[1]->wait(30), c2 = again->wait(30);
  INFO(nodes[0]->log() << "\n----- node 1:\n" << nodes[1]->log() << "\n----- node 2 again:\n" << again->log());
  REQUIRE(c0 == 0);
  CHECK(c1 == 0);
  CHECK(c2 == 0);
  CHECK(has_line(nodes[0]->log(), "node 2 \\([^)]*\\) lost"));
  CHECK(has_line(nodes[0]->log(), "restarting the run from the newest checkpoint \\[1/3\\], once node 2 has joined again"));
  CHECK(has_line(nodes[0]->log(), "stage 'train' resumed at step [0-9]+"));
  CHECK(has_line(nodes[1]->log(), "run restarting"));
  check_exactly_once(read_id_logs(run, 3), want, kSteps, 3 * 8);
  check_nothing_left(dir, &hosts);
}

TEST_CASE("elastic: on_node_loss = shrink, node 2 killed for good, the run ends on 2 nodes with every sample once") {
  require_netns();
  clean_launcher_env();
  TempDir dir("cl-shrink");
  auto want = make_data(dir);
  // 3 ranks x 8 x accumulate 2 = 48 a step (8 steps an epoch); on 2 nodes
  // accumulate 3 keeps the 48. 20 steps: epochs 0 and 1 whole.
  constexpr int kSteps = 20;
  write_file(dir.file("g.toml"), elastic_graph(dir, kSteps, "on_node_loss = \"shrink\"\n", "accumulate_steps = 2\n"));
  const std::string run = dir.file("run");
  NetnsHosts hosts(3);
  auto nodes = start_nodes(hosts, dir, run, "--join-timeout 60");
  bool reached = wait_for_checkpoint(*nodes[0], run, 6);
  INFO(logs_of(nodes));
  REQUIRE(reached);
  nodes[2]->kill(SIGKILL);
  int c0 = nodes[0]->wait(240), c1 = nodes[1]->wait(30);
  INFO("after the kill:\n" << logs_of(nodes));
  REQUIRE(c0 == 0);
  CHECK(c1 == 0);
  const std::string log0 = nodes[0]->log();
  CHECK(has_line(log0, "node 2 \\([^)]*\\) lost"));
  CHECK(has_line(log0, "restarting the run from the newest checkpoint \\[1/3\\] on the nodes left, without node 2"));
  CHECK(has_line(log0, "the run goes on on 2 nodes; stage 'train': 2 ranks x accumulate_steps 3 keep its global batch of 48"));
  CHECK(has_line(log0, "global batch 48 = 8 x 2 ranks .* x 3 accumulation, starting at step [0-9]+"));
  // Rank 2's id log holds its steps up to the checkpoint the run resumed at.
  check_exactly_once(read_id_logs(run, 3), want, kSteps, 48);
  check_nothing_left(dir, &hosts);
}

TEST_CASE("elastic: on_node_loss = shrink, node 2 hangs as node 1's rank dies: it does not come back, and the run goes on on 2 nodes") {
  require_netns();
  clean_launcher_env();
  TempDir dir("cl-shrink-late");
  auto want = make_data(dir);
  constexpr int kSteps = 20;
  // node_timeout_s outlasts the restart's stop: node 2's silence is not
  // noticed before the restart begins, only its absence from the next
  // generation (join_timeout_s, 15 s here).
  write_file(dir.file("g.toml"), elastic_graph(dir, kSteps, "on_node_loss = \"shrink\"\nnode_timeout_s = 300\n",
                                               "accumulate_steps = 2\n"));
  const std::string run = dir.file("run");
  NetnsHosts hosts(3);
  auto nodes = start_nodes(hosts, dir, run, "--join-timeout 15");
  bool reached = wait_for_checkpoint(*nodes[0], run, 6);
  INFO(logs_of(nodes));
  REQUIRE(reached);
  const std::vector<int> rank1 = worker_pids(run, "train/1"), rank2 = worker_pids(run, "train/2");
  REQUIRE(rank1.size() == 1);
  REQUIRE(rank2.size() == 1);
  // Node 2 hangs (its agent and its rank stop answering), and node 1's rank dies.
  nodes[2]->kill(SIGSTOP);
  ::kill(rank2[0], SIGSTOP);
  ::kill(rank1[0], SIGKILL);
  int c0 = nodes[0]->wait(240), c1 = nodes[1]->wait(30);
  ::kill(rank2[0], SIGKILL);
  nodes[2]->kill(SIGKILL);
  nodes[2]->wait(30);
  INFO("after the hang:\n" << logs_of(nodes));
  REQUIRE(c0 == 0);
  CHECK(c1 == 0);
  const std::string log0 = nodes[0]->log();
  CHECK(has_line(log0, "restarting the run from the newest checkpoint \\[1/3\\]"));
  CHECK(has_line(log0, "node 2 did not come back for the restarted run .*going on without it \\[2/3\\]"));
  CHECK(has_line(log0, "the run goes on on 2 nodes; stage 'train': 2 ranks x accumulate_steps 3 keep its global batch of 48"));
  check_exactly_once(read_id_logs(run, 3), want, kSteps, 48);
  const std::string summary = read_file(run + "/summary.json");
  CHECK(summary.find("did not come back") != std::string::npos);
  check_nothing_left(dir, &hosts);
}
