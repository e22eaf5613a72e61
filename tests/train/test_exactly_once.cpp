// Exactly-once training across a crash, through `catlip run`: synthetic
// shards -> image.decode x 3 replicas (reordering) -> text.labels ->
// train.catlip with an id log. The whole run is SIGKILLed at a random step
// after its first checkpoint and continued with `catlip resume RUN`; the id logs of
// the two runs together list every sample of the epoch exactly once.
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

int count_lines(const std::string& path) {
  std::ifstream in(path);
  std::string l;
  int n = 0;
  while (std::getline(in, l)) ++n;
  return n;
}

bool has_checkpoint(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return false;
  for (auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".catlip") return true;
  return false;
}

std::string basename_of(const std::string& p) { return fs::path(p).filename().string(); }

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
  auto ls = run_cmd(cat + " shards ls " + d.file("data/train-{000000..000003}.tar") + " 2>/dev/null");
  REQUIRE(ls.exit_code == 0);
  std::multiset<std::string> want;
  {
    std::istringstream in(ls.out);
    std::string line, shard;
    int index = 0;
    while (std::getline(in, line)) {
      if (line.rfind("# ", 0) == 0) {
        shard = basename_of(line.substr(2));
        index = 0;
      } else if (!line.empty()) {
        want.insert(shard + "\t" + std::to_string(index++) + "\t" + line.substr(0, line.find(' ')));
      }
    }
  }
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
vocab = ")" + d.file("vocab.tsv") + R"("
model = "tiny"
dim = 64
depth = 2
heads = 2
image_size = 32
patch_size = 8
batch_size = 8
steps = 0
warmup_steps = 0
device = "cpu"
threads = 1
checkpoint_every = 10
keep_checkpoints = 2
log_every = 0
export = false
id_log = true
)");
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
  std::ifstream in(run + "/train_ids.tsv");
  REQUIRE(in);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f;
    std::istringstream ls2(line);
    for (std::string x; std::getline(ls2, x, '\t');) f.push_back(x);
    REQUIRE(f.size() == 6);  // step epoch shard index url key
    CHECK(f[1] == "0");
    ++per_step[std::stol(f[0])];
    got.insert(basename_of(f[4]) + "\t" + f[3] + "\t" + f[5]);
  }
  std::vector<std::string> missing, extra;
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(), std::back_inserter(missing));
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(), std::back_inserter(extra));
  INFO(missing.size() << " missing (first: " << (missing.empty() ? "" : missing[0]) << "), " << extra.size()
                      << " extra or repeated (first: " << (extra.empty() ? "" : extra[0]) << ")");
  CHECK(got == want);
  CHECK(per_step.size() == size_t(kSteps));
  CHECK(per_step.begin()->first == 1);
  CHECK(per_step.rbegin()->first == kSteps);
  for (auto& [s, n] : per_step) CHECK(n == kBatch);
}
