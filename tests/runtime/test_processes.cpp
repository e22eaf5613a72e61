// Process-level behaviour of `catlip run`: real workers, real sockets.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "test_util.h"

using namespace catlip::test;

namespace {

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l))
    if (!l.empty()) out.push_back(l);
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else cur += c;
  }
  out.push_back(cur);
  return out;
}

// Kills a started run (and so its workers) if a test ends early, e.g. on a
// failed REQUIRE, so no test leaves processes behind.
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

int wait_exit(pid_t pid, double timeout_s, double* took = nullptr) {
  auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    int st;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      if (took) *took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    if (std::chrono::steady_clock::now() - t0 > std::chrono::duration<double>(timeout_s)) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

long rss_kb(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string l;
  while (std::getline(f, l))
    if (l.rfind("VmRSS:", 0) == 0) return std::atol(l.c_str() + 6);
  return 0;
}


}  // namespace

TEST_CASE("processes: a 5-stage graph with replicas delivers every item exactly once") {
  TempDir dir("run");
  write_file(dir.file("g.toml"), R"([graph]
name = "exactly-once"
[stages.numbers]
type = "testing.counter"
count = 3000
payload_bytes = 20000
replicas = 2
[stages.square]
type = "testing.map"
inputs = ["numbers"]
op = "square"
replicas = 3
[stages.shift]
type = "testing.map"
inputs = ["square"]
op = "add"
add = 7
replicas = 2
[stages.negate]
type = "testing.map"
inputs = ["shift"]
op = "negate"
[stages.collect]
type = "testing.collect"
inputs = ["negate"]
replicas = 2
)");
  auto r = run_cmd(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run") + " --progress plain");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  std::map<long long, std::string> seen;
  std::set<std::string> square_pids, shift_pids;
  int dup = 0;
  for (int rep = 0; rep < 2; ++rep) {
    for (auto& l : lines_of(read_file(dir.file("run/collected.tsv." + std::to_string(rep))))) {
      auto cols = split(l, '\t');
      REQUIRE(cols.size() == 3);
      auto n = split(cols[1], ',');
      REQUIRE(n.size() == 4);
      long long i = std::stoll(n[0]);
      // Each stage's function was applied, in order.
      CHECK(std::stoll(n[1]) == i * i);
      CHECK(std::stoll(n[2]) == i * i + 7);
      CHECK(std::stoll(n[3]) == -(i * i + 7));
      if (seen.count(i)) dup++;
      seen[i] = cols[2];
      auto via = split(cols[2], ';');
      square_pids.insert(via[0].substr(via[0].find('@') + 1));
      shift_pids.insert(via[1].substr(via[1].find('@') + 1));
    }
  }
  CHECK(dup == 0);
  CHECK(seen.size() == 3000);
  CHECK(seen.begin()->first == 0);
  CHECK(seen.rbegin()->first == 2999);
  // Replicas are separate processes, distinct from each other and from us.
  CHECK(square_pids.size() == 3);
  CHECK(shift_pids.size() == 2);
  CHECK_FALSE(square_pids.count(std::to_string(::getpid())));
  for (auto& p : square_pids) CHECK_FALSE(shift_pids.count(p));
  CHECK(read_file(dir.file("run/metrics.prom")).find("catlip_items_out_total{graph=\"exactly-once\",stage=\"square\",replica=\"2\"}") != std::string::npos);
  CHECK(pids_with(dir.file("run")).empty());
}

TEST_CASE("processes: a crashing stage fails the run with its name and leaves nothing behind") {
  TempDir dir("crash");
  write_file(dir.file("g.toml"), R"([stages.numbers]
type = "testing.counter"
count = 100000
[stages.boom]
type = "testing.map"
inputs = ["numbers"]
crash_at = 500
[stages.other]
type = "testing.map"
inputs = ["numbers"]
replicas = 2
[stages.sink]
type = "testing.null"
inputs = ["boom", "other"]
)");
  auto r = run_cmd(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run"));
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Catch::Contains("run failed: stage 'boom' (replica 0) failed") && Catch::Contains("Aborted"));
  CHECK(pids_with(dir.file("run")).empty());

  // A stage that throws: its message reaches the user.
  auto r2 = run_cmd(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run2") +
                    " --set boom.crash_at=-1 --set boom.fail_at=42");
  CHECK(r2.exit_code == 1);
  CHECK_THAT(r2.out, Catch::Contains("stage 'boom' (replica 0) failed: failing on purpose at item 42"));
  CHECK(pids_with(dir.file("run2")).empty());
}

TEST_CASE("processes: SIGINT stops a running graph within 5 s, no orphans") {
  TempDir dir("sigint");
  write_file(dir.file("g.toml"), R"([stages.numbers]
type = "testing.counter"
count = 100000000
rate = 2000
[stages.work]
type = "testing.map"
inputs = ["numbers"]
replicas = 2
sleep_ms = 1
[stages.sink]
type = "testing.null"
inputs = ["work"]
)");
  pid_t pid = start_run(dir.file("g.toml") + " --run-dir " + dir.file("run"), dir.file("log"));
  RunGuard guard{pid};
  // Wait until all four replicas run.
  for (int i = 0; i < 200 && worker_pids(dir.file("run")).size() < 4; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(worker_pids(dir.file("run")).size() == 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ::kill(pid, SIGINT);
  double took = 0;
  int code = wait_exit(pid, 10, &took);
  INFO(read_file(dir.file("log")));
  CHECK(code == 130);
  CHECK(took < 5.0);
  CHECK(worker_pids(dir.file("run")).empty());
}

TEST_CASE("processes: killing the supervisor outright takes its workers with it") {
  TempDir dir("sigkill");
  write_file(dir.file("g.toml"), R"([stages.numbers]
type = "testing.counter"
count = 100000000
rate = 1000
[stages.sink]
type = "testing.null"
inputs = ["numbers"]
)");
  pid_t pid = start_run(dir.file("g.toml") + " --run-dir " + dir.file("run"), dir.file("log"));
  RunGuard guard{pid};
  for (int i = 0; i < 200 && worker_pids(dir.file("run")).size() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(worker_pids(dir.file("run")).size() == 2);
  ::kill(pid, SIGKILL);
  wait_exit(pid, 5);
  for (int i = 0; i < 100 && !worker_pids(dir.file("run")).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(worker_pids(dir.file("run")).empty());
}

TEST_CASE("processes: an invalid graph prints file:line:column errors and starts nothing") {
  TempDir dir("invalid");
  write_file(dir.file("bad.toml"), R"([graph]
name = "bad"
[stages.numbers]
type = "testing.counter"
count = -5
[stages.work]
type = "testing.map"
inputs = ["numbrs"]
replicas = 0
[stages.sink]
type = "testing.null"
inputs = ["work"]
)");
  auto r = run_cmd(catlip_bin() + " run " + dir.file("bad.toml") + " --run-dir " + dir.file("run"));
  INFO(r.out);
  CHECK(r.exit_code == 3);
  CHECK_THAT(r.out, Catch::Contains("bad.toml:5:9: error: stage 'numbers': parameter 'count': value -5 is below the minimum 0"));
  CHECK_THAT(r.out, Catch::Contains("bad.toml:8:10: error: stage 'work': unknown input 'numbrs'"));
  CHECK_THAT(r.out, Catch::Contains("bad.toml:9:12: error: stage 'work': replicas: value 0 is below the minimum 1"));
  CHECK_THAT(r.out, Catch::Contains("nothing was started"));
  CHECK(read_file(dir.file("run/graph.toml")).empty());
  auto v = run_cmd(catlip_bin() + " validate " + dir.file("bad.toml"));
  CHECK(v.exit_code == 3);
  auto ok = run_cmd(catlip_bin() + " validate " + dir.file("bad.toml") +
                    " --set numbers.count=5 --set 'work.inputs=[\"numbers\"]' --set work.replicas=2");
  INFO(ok.out);
  CHECK(ok.exit_code == 0);
}

TEST_CASE("processes: a consumer 10x slower than its producer keeps the producer's memory bounded") {
  TempDir dir("slow");
  // 300 items of 1 MB: 300 MB produced; the sink takes 20 ms per item while
  // the source could emit them in well under 2 ms each.
  write_file(dir.file("g.toml"), R"([stages.big]
type = "testing.counter"
count = 300
payload_bytes = 1000000
[stages.slow]
type = "testing.collect"
inputs = ["big"]
sleep_ms = 20
)");
  pid_t pid = start_run(dir.file("g.toml") + " --run-dir " + dir.file("run"), dir.file("log"));
  RunGuard guard{pid};
  long peak = 0;
  int samples = 0;
  for (int i = 0; i < 600; ++i) {
    auto pids = pids_with("catlip:big/0");
    for (int p : pids) {
      long kb = rss_kb(p);
      if (kb > 0) samples++;
      peak = std::max(peak, kb);
    }
    int st;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      pid = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (pid > 0) wait_exit(pid, 30);
  INFO(read_file(dir.file("log")));
  CHECK(samples > 50);
  // prefetch (8) x 1 MB in flight, plus the process itself: far below 300 MB.
  CHECK(peak > 0);
  CHECK(peak < 80 * 1024);
  CHECK(lines_of(read_file(dir.file("run/collected.tsv.0"))).size() == 300);
}

TEST_CASE("processes: the Prometheus endpoint serves metrics while the run lasts") {
  TempDir dir("prom");
  int port = 20000 + (::getpid() % 20000);
  write_file(dir.file("g.toml"), "[graph]\nmetrics_port = " + std::to_string(port) + R"(
[stages.numbers]
type = "testing.counter"
count = 100000000
rate = 500
[stages.sink]
type = "testing.null"
inputs = ["numbers"]
)");
  pid_t pid = start_run(dir.file("g.toml") + " --run-dir " + dir.file("run"), dir.file("log"));
  RunGuard guard{pid};
  std::string body;
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto r = run_cmd("curl -s http://127.0.0.1:" + std::to_string(port) + "/metrics");
    if (r.out.find("catlip_items_in_total{graph=\"g\",stage=\"sink\",replica=\"0\"}") != std::string::npos &&
        r.out.find("catlip_replica_up{graph=\"g\",stage=\"numbers\",replica=\"0\"} 1") != std::string::npos) {
      body = r.out;
      break;
    }
  }
  ::kill(pid, SIGTERM);
  CHECK(wait_exit(pid, 10) == 130);
  INFO(read_file(dir.file("log")));
  CHECK_THAT(body, Catch::Contains("# TYPE catlip_items_out_total counter"));
  CHECK_THAT(body, Catch::Contains("catlip_replica_up{graph=\"g\",stage=\"numbers\",replica=\"0\"} 1"));
  CHECK(read_file(dir.file("run/metrics.jsonl")).find("\"numbers\"") != std::string::npos);
}

TEST_CASE("processes: over tcp every item arrives, including the tail of the stream") {
  // Regression: ZeroMQ dropped messages still queued when a producer's ROUTER
  // closed over tcp; producers now wait for consumers to acknowledge the end.
  TempDir dir("tcp");
  write_file(dir.file("g.toml"), R"([graph]
transport = "tcp"
prefetch = 32
[stages.numbers]
type = "testing.counter"
count = 4000
payload_bytes = 150000
[stages.collect]
type = "testing.collect"
inputs = ["numbers"]
replicas = 2
)");
  for (int round = 0; round < 3; ++round) {
    std::string run = dir.file("run" + std::to_string(round));
    auto r = run_cmd("timeout 60 " + catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + run + " --quiet");
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
    size_t n = lines_of(read_file(run + "/collected.tsv.0")).size() + lines_of(read_file(run + "/collected.tsv.1")).size();
    CHECK(n == 4000);
  }
}

TEST_CASE("processes: a stage can end the run successfully while its sources are endless") {
  TempDir dir("finish");
  write_file(dir.file("g.toml"), R"([stages.endless]
type = "testing.counter"
count = 1000000000000
[stages.work]
type = "testing.map"
inputs = ["endless"]
replicas = 2
[stages.collect]
type = "testing.collect"
inputs = ["work"]
finish_after = 2000
)");
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_cmd("timeout 60 " + catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run"));
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("stage 'collect' (replica 0) ended the run: collected 2000 items"));
  CHECK(took < 30);
  CHECK(lines_of(read_file(dir.file("run/collected.tsv.0"))).size() == 2000);
  CHECK(pids_with(dir.file("run")).empty());
}

TEST_CASE("testing.jsonl writes the chosen fields of each sample as JSON lines") {
  TempDir dir("jsonl");
  write_file(dir.file("g.toml"), R"([stages.numbers]
type = "testing.counter"
count = 20
[stages.sink]
type = "testing.jsonl"
inputs = ["numbers"]
fields = ["n", "missing"]
max_items = 5
)");
  auto r = run_cmd(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run") + " --quiet 2>&1");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  std::string text = read_file(dir.file("run/samples.jsonl"));
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  REQUIRE(lines.size() == 5);
  CHECK_THAT(lines[0], Catch::Contains("\"key\":\"item") && Catch::Contains("\"n\":[") &&
                           Catch::Contains("\"missing\":null") && Catch::Contains("\"origin\":{\"url\":\"counter\""));
}
