// Exactly-once training across a crash, through `catlip run`: synthetic
// shards -> image.decode x 3 replicas (reordering) -> text.labels ->
// train.catlip with an id log. The whole run is SIGKILLed at a random step
// after its first checkpoint and continued with `catlip resume RUN`; the id logs of
// the two runs together list every sample of the epoch exactly once. And one
// trainer rank of two SIGKILLed mid-run: the supervisor restarts the run from
// its checkpoint (max_restarts on the stage), which ends at its step count
// with every sample trained once per epoch.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iterator>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "test_util.h"

using namespace catlip::test;
namespace fs = std::filesystem;

namespace {

struct RunGuard {
  pid_t pid;
  ~RunGuard() {
    int st;
    if (pid > 0 && ::waitpid(pid, &st, WNOHANG) == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
    }
  }
};

std::string basename_of(const std::string& p) { return fs::path(p).filename().string(); }

// "N missing (first: ...), M extra or repeated (first: ...)" of got vs want.
std::string id_difference(const std::multiset<std::string>& want, const std::multiset<std::string>& got) {
  std::vector<std::string> missing, extra;
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(), std::back_inserter(missing));
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(), std::back_inserter(extra));
  return std::to_string(missing.size()) + " missing (first: " + (missing.empty() ? "" : missing[0]) + "), " +
         std::to_string(extra.size()) + " extra or repeated (first: " + (extra.empty() ? "" : extra[0]) + ")";
}

}  // namespace

TEST_CASE("exactly once: a training run SIGKILLed after a checkpoint and resumed trains every sample once") {
  TempDir d("exactly-once");
  const std::string cat = catlip_bin();
  // 4 shards x 240 = 960 samples = 120 batches of 8: no partial last batch,
  // so the id log must hold the whole epoch.
  constexpr int kShards = 4, kPerShard = 240, kBatch = 8, kSteps = kShards * kPerShard / kBatch;
  auto synth = run_cmd(cat + " shards synth " + d.file("data/train") + " --samples " +
                       std::to_string(kShards * kPerShard) + " --samples-per-shard " + std::to_string(kPerShard) +
                       " --size 32 2>&1");
  INFO(synth.out);
  REQUIRE(synth.exit_code == 0);
  // The expected ids: every (shard file, index, key) of the epoch.
  const std::multiset<std::string> want = shard_sample_ids(d.file("data/train-{000000..000003}.tar"));
  REQUIRE(want.size() == size_t(kShards * kPerShard));

  write_file(d.file("vocab.tsv"),
             "#index\twnid\tlemma\tcount\tgloss\n0\tn02778669\tball\t6\tg\n1\tn03147509\tcup\t3\tg\n");
  write_file(d.file("g.toml"), R"([graph]
name = "exactly-once-train"
[stages.read]
type = "shards.source"
urls = [")" + d.file("data/train-{000000..000003}.tar") + R"("]
epochs = 1
shuffle_buffer = 64
seed = 5
[stages.decode]
type = "image.decode"
inputs = ["read"]
replicas = 3
mode = "eval"
size = 32
[stages.labels]
type = "text.labels"
inputs = ["decode"]
vocab = ")" + d.file("vocab.tsv") + R"("
[stages.train]
type = "train.catlip"
inputs = ["labels"]
)" + tiny_catlip_train_keys(d.file("vocab.tsv"), 0, 10, 64, 2));
  const std::string run = d.file("run");
  // A random kill point after the first checkpoint (step 10): a step in
  // [11, 60] of 120, reached by counting train_metrics.jsonl lines.
  std::random_device rd;
  const unsigned seed = rd();
  std::mt19937 rng(seed);
  const int kill_at = 11 + int(rng() % 50);
  INFO("kill at step >= " << kill_at << " (seed " << seed << ")");
  auto t0 = std::chrono::steady_clock::now();
  {
    pid_t pid = start_run(d.file("g.toml") + " --run-dir " + run + " --progress plain", d.file("log1"));
    RunGuard guard{pid};
    bool ckpt = false, reached = false, exited = false;
    for (int i = 0; i < 60000 && !(ckpt && reached); ++i) {
      ckpt = ckpt || has_checkpoint(run + "/checkpoints");
      reached = ckpt && count_lines(run + "/train_metrics.jsonl") >= kill_at;
      int st;
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        exited = true;
        guard.pid = -1;
        break;
      }
      if (!(ckpt && reached)) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    INFO(read_file(d.file("log1")));
    REQUIRE_FALSE(exited);
    REQUIRE(ckpt);
    REQUIRE(reached);
    ::kill(pid, SIGKILL);  // the supervisor; its workers die with it (PDEATHSIG)
    int st = 0;
    ::waitpid(pid, &st, 0);
    guard.pid = -1;
    CHECK(WIFSIGNALED(st));
    for (int i = 0; i < 500 && !worker_pids(run).empty(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    REQUIRE(worker_pids(run).empty());
  }
  const double first_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int steps_logged_killed = count_lines(run + "/train_metrics.jsonl");
  CHECK_FALSE(fs::exists(run + "/export"));
  INFO("first run: " << first_s << " s, " << steps_logged_killed << " steps before the kill");

  auto t1 = std::chrono::steady_clock::now();
  // `catlip resume RUN`: the run's own graph.toml with resume = true for
  // the trainer (the same as `catlip run g.toml --run-dir RUN --set
  // train.resume=true`).
  auto r = run_cmd("timeout 120 " + cat + " resume " + run + " --progress plain 2>&1");
  const double second_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  INFO(r.out);
  INFO("second run: " << second_s << " s");
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("resumed from") != std::string::npos);
  CHECK(r.out.find("catlip resume: train (train.catlip) resumes from its newest checkpoint") != std::string::npos);

  // The id log: every sample of the epoch exactly once, steps 1..120 of 8.
  std::multiset<std::string> got;
  std::map<long, int> per_step;
  REQUIRE(fs::exists(run + "/train_ids.tsv"));
  for (auto& f : id_log_rows(run + "/train_ids.tsv")) {
    REQUIRE(f.size() == 6);  // step epoch shard index url key
    CHECK(f[1] == "0");
    ++per_step[std::stol(f[0])];
    got.insert(basename_of(f[4]) + "\t" + f[3] + "\t" + f[5]);
  }
  INFO(id_difference(want, got));
  CHECK(got == want);
  CHECK(per_step.size() == size_t(kSteps));
  CHECK(per_step.begin()->first == 1);
  CHECK(per_step.rbegin()->first == kSteps);
  for (auto& [s, n] : per_step) CHECK(n == kBatch);
}

// The data of the rank-restart tests (4 shards x 96 synthetic samples and a
// two-class vocabulary); returns the ids of one epoch.
std::multiset<std::string> rank_restart_data(const TempDir& d) {
  const std::string cat = catlip_bin();
  auto synth = run_cmd(cat + " shards synth " + d.file("data/train") + " --samples 384 --samples-per-shard 96 --size 32 2>&1");
  INFO(synth.out);
  REQUIRE(synth.exit_code == 0);
  write_file(d.file("vocab.tsv"),
             "#index\twnid\tlemma\tcount\tgloss\n0\tn02778669\tball\t6\tg\n1\tn03147509\tcup\t3\tg\n");
  auto want = shard_sample_ids(d.file("data/train-{000000..000003}.tar"));
  REQUIRE(want.size() == 384);
  return want;
}

// shards (4 x 96, 3 epochs) -> labels -> decode x 2 -> train.catlip x 2
// ranks, 60 steps, a checkpoint every 10, id logs; `train_keys` go on the
// train stage.
std::string rank_restart_graph(const TempDir& d, const std::string& train_keys) {
  return R"([graph]
name = "rank-restart"
[stages.read]
type = "shards.source"
urls = [")" + d.file("data/train-{000000..000003}.tar") + R"("]
epochs = 3
shuffle_buffer = 32
seed = 7
[stages.labels]
type = "text.labels"
inputs = ["read"]
vocab = ")" + d.file("vocab.tsv") + R"("
[stages.decode]
type = "image.decode"
inputs = ["labels"]
replicas = 2
mode = "eval"
size = 32
[stages.train]
type = "train.catlip"
inputs = ["decode"]
replicas = 2
)" + train_keys + tiny_catlip_train_keys(d.file("vocab.tsv"), 60, 10);
}

TEST_CASE("exactly once: a trainer rank SIGKILLed mid-run restarts the run from its checkpoint, which ends at its step count") {
  TempDir d("rank-restart");
  // 4 shards x 96 = 384 samples, 3 epochs; 2 ranks x batch 8 = 16 a step:
  // 24 steps an epoch, 60 steps = epochs 0 and 1 whole and half of epoch 2.
  constexpr int kBatch = 8, kRanks = 2, kSteps = 60;
  const std::multiset<std::string> want = rank_restart_data(d);
  write_file(d.file("g.toml"), rank_restart_graph(d, "max_restarts = 2\n"));
  const std::string run = d.file("run");
  std::random_device rd;
  const unsigned seed = rd();
  std::mt19937 rng(seed);
  const int kill_at = 12 + int(rng() % 28);  // a step in [12, 39], after the checkpoint of step 10
  INFO("kill rank 1 at step >= " << kill_at << " (seed " << seed << ")");
  pid_t pid = start_run(d.file("g.toml") + " --run-dir " + run + " --progress plain", d.file("log"));
  RunGuard guard{pid};
  bool killed = false;
  int st = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(200);
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      guard.pid = -1;
      break;
    }
    if (!killed && has_checkpoint(run + "/checkpoints") && count_lines(run + "/train_metrics.jsonl") >= kill_at) {
      auto rank1 = worker_pids(run, "train/1");
      REQUIRE(rank1.size() == 1);
      ::kill(rank1[0], SIGKILL);
      killed = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(killed ? 20 : 2));
  }
  const std::string log = read_file(d.file("log"));
  INFO(log);
  REQUIRE(guard.pid == -1);  // ended within the deadline
  REQUIRE(killed);
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
  // The restart names the rank, its cause and the steps lost.
  CHECK_THAT(log, Catch::Contains("stage 'train' (replica 1) failed") && Catch::Contains("killed by signal 9") &&
                      Catch::Contains("restarting the run from the newest checkpoint [1/2]"));
  std::smatch m;
  REQUIRE(std::regex_search(log, m, std::regex(R"(stage 'train' resumed at step ([0-9]+): ([0-9]+) step\(s\) of compute lost \(it had reached step ([0-9]+)\))")));
  const long resumed = std::stol(m[1]), lost = std::stol(m[2]), reached = std::stol(m[3]);
  CHECK(resumed >= 10);
  CHECK(resumed % 10 == 0);
  CHECK(reached >= kill_at);
  CHECK(lost == reached - resumed);
  auto summary = read_file(run + "/summary.json");
  CHECK_THAT(summary, Catch::Contains("\"run_restarts\"") && Catch::Contains("\"steps_lost\":" + std::to_string(lost)));
  CHECK(worker_pids(run).empty());
  // The final step count is the configured one, and the two ranks' id logs
  // (trimmed to the resumed step, then continued) hold each step's 16
  // samples: epochs 0 and 1 every sample once, epoch 2 none twice.
  std::map<long, int> per_step;
  std::map<std::string, std::multiset<std::string>> by_epoch;
  for (int r = 0; r < kRanks; ++r) {
    const std::string path = run + (r == 0 ? "/train_ids.tsv" : "/train_ids.rank-" + std::to_string(r) + ".tsv");
    REQUIRE(fs::exists(path));
    for (auto& f : id_log_rows(path)) {
      REQUIRE(f.size() == 6);
      ++per_step[std::stol(f[0])];
      by_epoch[f[1]].insert(basename_of(f[4]) + "\t" + f[3] + "\t" + f[5]);
    }
  }
  CHECK(per_step.size() == size_t(kSteps));
  CHECK(per_step.begin()->first == 1);
  CHECK(per_step.rbegin()->first == kSteps);
  for (auto& [s, n] : per_step) CHECK(n == kBatch * kRanks);
  for (const char* e : {"0", "1"}) {
    INFO("epoch " << e << ": " << id_difference(want, by_epoch[e]));
    CHECK(by_epoch[e] == want);
  }
  std::set<std::string> distinct(by_epoch["2"].begin(), by_epoch["2"].end());
  CHECK(distinct.size() == by_epoch["2"].size());
  CHECK(by_epoch["2"].size() == size_t(kSteps * kBatch * kRanks) - 2 * want.size());
}

TEST_CASE("exactly once: a hung trainer rank restarts the run, and with max_restarts spent a failed rank fails it") {
  TempDir d("rank-hang");
  rank_restart_data(d);
  write_file(d.file("g.toml"), rank_restart_graph(d, "max_restarts = 1\nliveness_timeout_s = 3\n"));
  const std::string run = d.file("run");
  pid_t pid = start_run(d.file("g.toml") + " --run-dir " + run + " --progress plain", d.file("log"));
  RunGuard guard{pid};
  int stopped = -1, killed = -1, st = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(200);
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      guard.pid = -1;
      break;
    }
    if (stopped < 0 && has_checkpoint(run + "/checkpoints") && count_lines(run + "/train_metrics.jsonl") >= 12) {
      auto rank1 = worker_pids(run, "train/1");
      REQUIRE(rank1.size() == 1);
      stopped = rank1[0];
      ::kill(stopped, SIGSTOP);  // hung: found by liveness after 3 s
    } else if (stopped > 0 && killed < 0) {
      // The restarted run's rank 0 (a new process): its failure has no restart left.
      auto rank1 = worker_pids(run, "train/1");
      auto rank0 = worker_pids(run, "train/0");
      if (rank1.size() == 1 && rank1[0] != stopped && rank0.size() == 1) {
        killed = rank0[0];
        ::kill(killed, SIGKILL);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(stopped > 0 ? 5 : 2));
  }
  const std::string log = read_file(d.file("log"));
  INFO(log);
  REQUIRE(guard.pid == -1);
  REQUIRE(killed > 0);
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 1);
  CHECK_THAT(log, Catch::Contains("stage 'train' replica 1") && Catch::Contains("hung or stopped (liveness_timeout_s 3.0)") &&
                      Catch::Contains("restarting the run from the newest checkpoint [1/1]"));
  CHECK_THAT(log, Catch::Contains("run failed: stage 'train' (replica 0) failed [killed by signal 9 (Killed)] (after 1 run "
                                  "restart; max_restarts 1)"));
  CHECK(worker_pids(run).empty());
}
