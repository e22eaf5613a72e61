// Honest outcomes of `catlip run` against hostile peers and broken inputs:
// hung replicas, killed replicas, empty or error-ridden stages, leaked
// descriptors, stale socket directories. Real CLI, real worker processes.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "test_util.h"

using namespace catlip::test;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// Ends a run (and so its workers) and continues a stopped worker if the test
// leaves early, so nothing stays behind.
struct RunGuard {
  pid_t pid = -1;
  pid_t stopped = -1;
  ~RunGuard() {
    if (stopped > 0) {
      ::kill(stopped, SIGCONT);
      ::kill(stopped, SIGKILL);
    }
    int st;
    if (pid > 0 && ::waitpid(pid, &st, WNOHANG) == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
    }
  }
};

// Exit code of `pid` within timeout_s (-1 on timeout, after killing it).
int wait_exit(RunGuard& g, double timeout_s, double* took = nullptr) {
  auto t0 = Clock::now();
  for (;;) {
    int st;
    if (::waitpid(g.pid, &st, WNOHANG) == g.pid) {
      g.pid = -1;
      if (took) *took = std::chrono::duration<double>(Clock::now() - t0).count();
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    if (Clock::now() - t0 > std::chrono::duration<double>(timeout_s)) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Polls `cond` every 20 ms for up to timeout_s.
template <class F>
bool wait_for(F cond, double timeout_s) {
  auto end = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (Clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

// Worker processes of the run in `run_dir`, optionally only those of one
// replica tag ("decode/1").
std::vector<int> workers(const std::string& run_dir, const std::string& tag = "") {
  return worker_pids(run_dir, tag);
}

const char* kEndless = R"(
[stages.numbers]
type = "testing.counter"
count = 100000000
rate = 300
[stages.decode]
type = "testing.map"
inputs = ["numbers"]
replicas = 2
max_restarts = 0   # a failure here fails the run (tests/faults covers restarts)
[stages.sink]
type = "testing.null"
inputs = ["decode"]
)";

// Whether the run's metrics.jsonl shows items received by `stage` (so every
// replica of it has reported at least once when it has one replica, or some
// have).
bool stage_received(const std::string& run_dir, const std::string& stage) {
  std::regex re("\"" + stage + "\":\\{\"replicas\":\\d+,\"done\":\\d+,\"failed\":\\d+,\"items_in\":[1-9]");
  return std::regex_search(read_file(run_dir + "/metrics.jsonl"), re);
}

// The JSON object of one stage in summary.json's final figures.
std::string stage_json(const std::string& summary, const std::string& stage) {
  auto final_at = summary.find("\"final\":");
  auto p = summary.find("\"" + stage + "\":{", final_at == std::string::npos ? 0 : final_at);
  if (p == std::string::npos) return "";
  return summary.substr(p, summary.find("\"counters\"", p) - p);
}

}  // namespace

TEST_CASE("outcomes: a SIGSTOPped replica is reported as hung and the run fails, leaving nothing behind") {
  TempDir dir("hung");
  std::string run = dir.file("run");
  write_file(dir.file("g.toml"), std::string("[graph]\nliveness_timeout_s = 2\nreport_interval_s = 0.2\n") + kEndless);
  RunGuard guard;
  guard.pid = start_run(dir.file("g.toml") + " --run-dir " + run + " --progress plain", dir.file("log"));
  REQUIRE(wait_for([&] { return workers(run).size() == 4; }, 20));
  // Let every replica report at least once (the check also covers replicas
  // that never reported), then freeze one.
  REQUIRE(wait_for([&] { return !read_file(run + "/metrics.jsonl").empty(); }, 20));
  auto target = workers(run, "decode/1");
  REQUIRE(target.size() == 1);
  guard.stopped = target[0];
  REQUIRE(::kill(target[0], SIGSTOP) == 0);
  double took = 0;
  int code = wait_exit(guard, 15, &took);
  std::string log = read_file(dir.file("log"));
  INFO(log);
  WARN("SIGSTOP to exit: " << took << " s (liveness_timeout_s 2)");
  CHECK(code == 1);
  CHECK(took < 2 + 4.0);
  // Its pid, or "pid unknown ... since it started" when it was frozen
  // before its first report arrived (a loaded machine).
  CHECK_THAT(log, (Catch::Contains("run failed: stage 'decode' replica 1 (node 0, pid " + std::to_string(target[0]) +
                                   ") sent nothing for 2.") ||
                   Catch::Contains("run failed: stage 'decode' replica 1 (node 0, pid unknown) sent nothing for 2.")));
  CHECK_THAT(log, Catch::Contains("hung or stopped"));
  CHECK(wait_for([&] { return workers(run).empty(); }, 5));
  std::string summary = read_file(run + "/summary.json");
  CHECK_THAT(summary, Catch::Contains("\"failure\":\"stage 'decode' replica 1 (node 0, pid"));
  CHECK_THAT(stage_json(summary, "decode"), Catch::Contains("\"failed\":1"));
  if (workers(run).empty()) guard.stopped = -1;
}

TEST_CASE("outcomes: a worker killed with SIGKILL is a failed replica in summary.json, with the signal") {
  TempDir dir("kill9");
  std::string run = dir.file("run");
  write_file(dir.file("g.toml"), kEndless);
  RunGuard guard;
  guard.pid = start_run(dir.file("g.toml") + " --run-dir " + run + " --progress plain", dir.file("log"));
  REQUIRE(wait_for([&] { return workers(run).size() == 4; }, 20));
  auto target = workers(run, "decode/1");
  REQUIRE(target.size() == 1);
  ::kill(target[0], SIGKILL);
  int code = wait_exit(guard, 15);
  std::string log = read_file(dir.file("log"));
  INFO(log);
  CHECK(code == 1);
  CHECK_THAT(log, Catch::Contains("run failed: stage 'decode' (replica 1) failed") && Catch::Contains("killed by signal 9"));
  std::string summary = read_file(run + "/summary.json");
  INFO(summary);
  CHECK_THAT(summary, Catch::Contains("\"failure\":\"stage 'decode' (replica 1) failed") &&
                          Catch::Contains("killed by signal 9 (Killed)"));
  CHECK_THAT(stage_json(summary, "decode"), Catch::Contains("\"failed\":1"));
  CHECK_THAT(stage_json(summary, "sink"), Catch::Contains("\"failed\":0"));
  CHECK(workers(run).empty());
}

TEST_CASE("outcomes: a run in which no item reached a stage fails, unless min_samples = 0") {
  TempDir dir("empty");
  write_file(dir.file("g.toml"), R"([stages.numbers]
type = "testing.counter"
count = 0
[stages.sink]
type = "testing.collect"
inputs = ["numbers"]
)");
  auto r = run_cmd(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run"));
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Catch::Contains("run failed: stage 'sink' received 0 items, fewer than min_samples 1: no data reached it"));
  CHECK_THAT(read_file(dir.file("run/summary.json")), Catch::Contains("\"exit_code\":1,") &&
                                                          Catch::Contains("\"failure\":\"stage 'sink' received 0 items"));

  auto ok = run_cmd(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run2") + " --set sink.min_samples=0");
  INFO(ok.out);
  CHECK(ok.exit_code == 0);

  // An explicit minimum above what arrived fails too.
  auto few = run_cmd(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run3") +
                     " --set numbers.count=5 --set sink.min_samples=10");
  CHECK(few.exit_code == 1);
  CHECK_THAT(few.out, Catch::Contains("stage 'sink' received 5 items, fewer than min_samples 10"));
}

TEST_CASE("outcomes: a stage whose error counters exceed max_error_fraction fails the run, naming it") {
  TempDir dir("errors");
  write_file(dir.file("g.toml"), R"([graph]
max_error_fraction = 0.2
[stages.numbers]
type = "testing.counter"
count = 400
[stages.flaky]
type = "testing.map"
inputs = ["numbers"]
error_every = 4
[stages.sink]
type = "testing.null"
inputs = ["flaky"]
)");
  auto r = run_cmd(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run"));
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Catch::Contains("run failed: stage 'flaky': 100 errors for 400 items (25.0%: error.injected 100), "
                                    "above max_error_fraction 0.2"));
  // The stage's own limit overrides the graph's.
  auto ok = run_cmd(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run2") +
                    " --set flaky.max_error_fraction=0.3");
  INFO(ok.out);
  CHECK(ok.exit_code == 0);
}

TEST_CASE("outcomes: the metrics endpoint listens on 127.0.0.1 and no worker inherits it or the run's files") {
  TempDir dir("fds");
  std::string run = dir.file("run");
  int port = free_port();
  write_file(dir.file("g.toml"), "[graph]\nmetrics_port = " + std::to_string(port) + "\n" + kEndless);
  RunGuard guard;
  guard.pid = start_run(dir.file("g.toml") + " --run-dir " + run, dir.file("log"));
  REQUIRE(wait_for([&] { return workers(run).size() == 4; }, 20));
  // The listening socket: local address and inode from /proc/net/tcp{,6}.
  char hexport[8];
  std::snprintf(hexport, sizeof hexport, "%04X", port);
  std::string listen_addr, inode;
  REQUIRE(wait_for([&] {
    for (const char* f : {"/proc/net/tcp", "/proc/net/tcp6"}) {
      std::istringstream in(read_file(f));
      std::string line;
      while (std::getline(in, line)) {
        std::istringstream l(line);
        std::string sl, local, remote, st, q, tr, retr, uid, timeout, ino;
        l >> sl >> local >> remote >> st >> q >> tr >> retr >> uid >> timeout >> ino;
        if (st == "0A" && local.size() > 5 && local.substr(local.size() - 4) == hexport) {
          listen_addr = local.substr(0, local.size() - 5);
          inode = ino;
          return true;
        }
      }
    }
    return false;
  }, 10));
  CHECK(listen_addr == "0100007F");  // 127.0.0.1
  for (int w : workers(run)) {
    std::error_code ec;
    for (auto& e : fs::directory_iterator("/proc/" + std::to_string(w) + "/fd", ec)) {
      std::string target = fs::read_symlink(e.path(), ec).string();
      INFO("worker " << w << " fd " << e.path().filename().string() << " -> " << target);
      CHECK(target != "socket:[" + inode + "]");
      CHECK(target.find("metrics.jsonl") == std::string::npos);
      CHECK(target.find("summary.json") == std::string::npos);
    }
  }
  // The ipc socket directory is private and names its supervisor.
  bool found = false;
  for (auto& e : fs::directory_iterator("/tmp")) {
    if (e.path().filename().string().rfind("catlip-", 0) != 0) continue;
    if (read_file((e.path() / "supervisor.pid").string()) != std::to_string(guard.pid) + "\n") continue;
    found = true;
    struct stat st {};
    REQUIRE(::stat(e.path().c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
  }
  CHECK(found);
  ::kill(guard.pid, SIGTERM);
  CHECK(wait_exit(guard, 15) == 130);

  // metrics_bind = "0.0.0.0" is an explicit choice, and accepted.
  auto v = run_cmd(catlip_bin() + " validate " + dir.file("g.toml") + " --set 'graph.metrics_bind=\"0.0.0.0\"'");
  INFO(v.out);
  CHECK(v.exit_code == 0);
  auto bad = run_cmd(catlip_bin() + " validate " + dir.file("g.toml") + " --set 'graph.metrics_bind=\"localhost:80\"'");
  CHECK(bad.exit_code == 3);
  CHECK_THAT(bad.out, Catch::Contains("metrics_bind: expected an IP address"));
}

TEST_CASE("outcomes: socket directories of supervisors that are gone are removed at start, live ones stay") {
  TempDir dir("stale");
  // A pid that is certainly dead: a child that exited and was reaped.
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  char stale_t[] = "/tmp/catlip-XXXXXX", live_t[] = "/tmp/catlip-XXXXXX", old_t[] = "/tmp/catlip-XXXXXX";
  REQUIRE(::mkdtemp(stale_t));
  REQUIRE(::mkdtemp(live_t));
  REQUIRE(::mkdtemp(old_t));
  std::string stale = stale_t, live = live_t, old = old_t;
  write_file(stale + "/supervisor.pid", std::to_string(dead) + "\n");
  write_file(stale + "/some.sock", "");
  write_file(live + "/supervisor.pid", std::to_string(::getpid()) + "\n");  // this test process: alive
  // old: no pid file (an older catlip, or one being made): left alone.
  write_file(dir.file("g.toml"), R"([stages.numbers]
type = "testing.counter"
count = 10
[stages.sink]
type = "testing.null"
inputs = ["numbers"]
)");
  auto r = run_cmd(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run"));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK_FALSE(fs::exists(stale));
  CHECK(fs::exists(live));
  CHECK(fs::exists(old));
  std::error_code ec;
  fs::remove_all(stale, ec);
  fs::remove_all(live, ec);
  fs::remove_all(old, ec);
}

TEST_CASE("outcomes: a replica slow to start (configure) is alive: it reports while it starts") {
  // The reporter runs from before configure(): a stage loading a model for
  // longer than liveness_timeout_s is not hung.
  TempDir dir("startup");
  write_file(dir.file("g.toml"), R"([graph]
liveness_timeout_s = 1.5
report_interval_s = 0.1
[stages.numbers]
type = "testing.counter"
count = 400
rate = 400
[stages.slow]
type = "testing.map"
inputs = ["numbers"]
startup_ms = 3000
[stages.sink]
type = "testing.null"
inputs = ["slow"]
)");
  auto r = run_cmd(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run"));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, !Catch::Contains("hung or stopped"));
}

TEST_CASE("outcomes: a SIGSTOPped replica on another node is reported as hung by the coordinator") {
  TempDir dir("hung2");
  std::string run0 = dir.file("run0"), run1 = dir.file("run1");
  write_file(dir.file("g.toml"), R"([graph]
liveness_timeout_s = 2
report_interval_s = 0.2
[stages.numbers]
type = "testing.counter"
count = 100000000
rate = 200
[stages.decode]
type = "testing.map"
inputs = ["numbers"]
nodes = [1]
max_restarts = 0
[stages.sink]
type = "testing.null"
inputs = ["decode"]
)");
  ::setenv("CATLIP_CLUSTER_SECRET", "liveness-test-secret-0123456789abcdef", 1);
  std::string coord = "127.0.0.1:" + std::to_string(free_port());
  auto node = [&](int rank, const std::string& run, const std::string& log) {
    pid_t pid = ::fork();
    if (pid == 0) {
      std::string cmd = "exec " + catlip_bin() + " node " + dir.file("g.toml") + " --rank " + std::to_string(rank) +
                        " --nodes 2 --coordinator " + coord + " --run-dir " + run + " --progress plain > " + log + " 2>&1";
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), (char*)nullptr);
      ::_exit(127);
    }
    return pid;
  };
  RunGuard g0, g1;
  g0.pid = node(0, run0, dir.file("n0.log"));
  g1.pid = node(1, run1, dir.file("n1.log"));
  // Node 1's workers belong to node 1's run directory.
  REQUIRE(wait_for([&] { return workers(run1, "decode/0").size() == 1; }, 30));
  REQUIRE(wait_for([&] { return stage_received(run0, "decode"); }, 20));
  int target = workers(run1, "decode/0")[0];
  g1.stopped = target;
  REQUIRE(::kill(target, SIGSTOP) == 0);
  double took = 0;
  int code0 = wait_exit(g0, 20, &took);
  int code1 = wait_exit(g1, 20);
  std::string log0 = read_file(dir.file("n0.log"));
  INFO(log0);
  INFO(read_file(dir.file("n1.log")));
  WARN("remote SIGSTOP to coordinator exit: " << took << " s (liveness_timeout_s 2)");
  CHECK(code0 == 1);
  CHECK(code1 == 1);
  CHECK(took < 2 + 6.0);
  CHECK_THAT(log0, Catch::Contains("run failed: stage 'decode' replica 0 (node 1, pid " + std::to_string(target) +
                                   ") sent nothing for 2."));
  CHECK(wait_for([&] { return workers(run1).empty() && workers(run0).empty(); }, 5));
  if (workers(run1).empty()) g1.stopped = -1;
}
