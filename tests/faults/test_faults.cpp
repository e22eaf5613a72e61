// Chaos against real runs: kill -9 and SIGSTOP of decode and labels
// replicas while 8,000 samples flow; the run still ends 0 with every sample
// at collect exactly once, and the restarts show in summary.json.
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "cluster_util.h"

using namespace catlip::test;
using catlip::test::cluster::Proc;
using catlip::test::cluster::wait_until;

namespace {

constexpr int kItems = 8000;

// source -> decode x3 -> labels x2 -> collect, with testing stages: the
// transforms are restartable, collect keeps state (drops duplicates).
std::string graph(const std::string& extra_decode = "", const std::string& graph_keys = "") {
  return "[graph]\nprefetch = 8\nmax_restarts = 10\n" + graph_keys + R"(
[stages.source]
type = "testing.counter"
count = 8000
payload_bytes = 512
[stages.decode]
type = "testing.map"
op = "identity"
inputs = ["source"]
replicas = 3
sleep_ms = 1.0
)" + extra_decode + R"(
[stages.labels]
type = "testing.map"
op = "identity"
inputs = ["decode"]
replicas = 2
sleep_ms = 0.4
[stages.collect]
type = "testing.collect"
inputs = ["labels"]
)";
}

std::vector<int> workers(const std::string& run_dir, const std::string& stage) {
  return worker_pids(run_dir, stage + "/");
}

size_t collected_lines(const std::string& run_dir) {
  std::istringstream in(read_file(run_dir + "/collected.tsv.0"));
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n++;
  return n;
}

// Every key exactly once.
void check_exactly_once(const std::string& run_dir) {
  std::istringstream in(read_file(run_dir + "/collected.tsv.0"));
  std::multiset<std::string> keys;
  for (std::string line; std::getline(in, line);) keys.insert(line.substr(0, line.find('\t')));
  std::set<std::string> distinct(keys.begin(), keys.end());
  CHECK(keys.size() == size_t(kItems));
  CHECK(distinct.size() == size_t(kItems));
}

int restarts_in_summary(const std::string& run_dir, const std::string& stage) {
  std::string s = read_file(run_dir + "/summary.json");
  auto at = s.rfind("\"" + stage + "\":{");  // the final view is last
  if (at == std::string::npos) return -1;
  auto r = s.find("\"restarts\":", at);
  return r == std::string::npos ? -1 : std::atoi(s.c_str() + r + 11);
}

}  // namespace

TEST_CASE("chaos: kill -9 of decode and labels replicas 6 times, every sample reaches collect exactly once") {
  TempDir dir("chaos");
  write_file(dir.file("g.toml"), graph());
  std::string run = dir.file("run");
  Proc p(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + run + " --progress plain", dir.file("log"));
  REQUIRE(wait_until([&] { return collected_lines(run) > 200; }, 60));
  std::mt19937 rng(12345);
  int kills = 0;
  for (int round = 0; round < 6 && p.running(); ++round) {
    auto pids = workers(run, round % 2 ? "labels" : "decode");
    if (pids.empty()) continue;
    int victim = pids[rng() % pids.size()];
    if (::kill(victim, SIGKILL) == 0) kills++;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the pace of the chaos, not a synchronisation
  }
  int code = p.wait(180);
  INFO(p.log());
  REQUIRE(code == 0);
  CHECK(kills >= 4);
  check_exactly_once(run);
  int restarts = restarts_in_summary(run, "decode") + restarts_in_summary(run, "labels");
  CHECK(restarts == kills);
  CHECK_THAT(p.log(), Catch::Contains("restarting stage '"));
  CHECK(pids_with(run).empty());
}

TEST_CASE("chaos: a SIGSTOPped decode replica is found by liveness, restarted, and nothing is lost") {
  TempDir dir("chaos-stop");
  write_file(dir.file("g.toml"), graph("", "liveness_timeout_s = 2\nreport_interval_s = 0.1\n"));
  std::string run = dir.file("run");
  Proc p(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + run + " --progress plain", dir.file("log"));
  REQUIRE(wait_until([&] { return collected_lines(run) > 200; }, 60));
  auto pids = workers(run, "decode");
  REQUIRE(!pids.empty());
  REQUIRE(::kill(pids[0], SIGSTOP) == 0);
  int code = p.wait(180);
  ::kill(pids[0], SIGCONT);  // in case it is still there
  INFO(p.log());
  REQUIRE(code == 0);
  check_exactly_once(run);
  CHECK(restarts_in_summary(run, "decode") == 1);
  CHECK_THAT(p.log(), Catch::Contains("hung or stopped") && Catch::Contains("killing it"));
  CHECK(pids_with(run).empty());
}

TEST_CASE("chaos: when max_restarts runs out the run fails naming the stage") {
  TempDir dir("chaos-out");
  // Every incarnation of decode replica crashes at its 50th item.
  write_file(dir.file("g.toml"), graph("crash_at = 50\nmax_restarts = 2\n"));
  std::string run = dir.file("run");
  Proc p(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + run + " --progress plain", dir.file("log"));
  int code = p.wait(120);
  INFO(p.log());
  CHECK(code == 1);
  CHECK_THAT(p.log(), Catch::Contains("stage 'decode'") && Catch::Contains("after 2 restarts; max_restarts 2"));
  CHECK(pids_with(run).empty());
}

TEST_CASE("chaos: a stage that keeps state is never restarted") {
  TempDir dir("chaos-stateful");
  write_file(dir.file("g.toml"), graph());
  std::string run = dir.file("run");
  Proc p(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + run + " --progress plain", dir.file("log"));
  REQUIRE(wait_until([&] { return collected_lines(run) > 100; }, 60));
  auto pids = workers(run, "collect");
  REQUIRE(pids.size() == 1);
  ::kill(pids[0], SIGKILL);
  int code = p.wait(120);
  INFO(p.log());
  CHECK(code == 1);
  CHECK_THAT(p.log(), Catch::Contains("stage 'collect'"));
  CHECK(p.log().find("restarting stage 'collect'") == std::string::npos);
}

TEST_CASE("chaos: a configuration error of a restartable stage fails once, without restarts") {
  TempDir dir("chaos-config");
  write_file(dir.file("g.toml"), graph("fail_configure = true\n"));
  std::string run = dir.file("run");
  Proc p(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + run + " --progress plain", dir.file("log"));
  int code = p.wait(120);
  std::string log = p.log();
  INFO(log);
  CHECK(code == 1);
  CHECK_THAT(log, Catch::Contains("stage 'decode'") && Catch::Contains("a configuration error: not restarted"));
  CHECK_THAT(log, Catch::Contains("configure: failing configure() on purpose"));
  CHECK(log.find("restarting stage 'decode'") == std::string::npos);
  CHECK(pids_with(run).empty());
}
