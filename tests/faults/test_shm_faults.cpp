// Faults with shared-memory payloads (catlip/shm.h): kill -9 of replicas
// that map and forward pools, and of the supervisor; every sample still
// reaches collect exactly once with its bytes intact, and no pool (memfd)
// outlives the processes of the run.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "cluster_util.h"

using namespace catlip::test;
using catlip::test::cluster::Proc;
using catlip::test::cluster::wait_until;

namespace {

constexpr int kItems = 3000;

// source -> decode x2 -> labels x2 -> collect; 100 KB payloads go through
// shared memory (threshold 64 KB): decode maps source's pool and forwards
// the descriptor, as does labels.
std::string shm_graph(const std::string& name, const std::string& source_extra = "") {
  return "[graph]\nname = \"" + name + "\"\nprefetch = 8\nmax_restarts = 10\n" + R"(
[stages.source]
type = "testing.counter"
count = 3000
payload_bytes = 100000
)" + source_extra + R"(
[stages.decode]
type = "testing.map"
op = "identity"
inputs = ["source"]
replicas = 2
sleep_ms = 1.0
[stages.labels]
type = "testing.map"
op = "identity"
inputs = ["decode"]
replicas = 2
sleep_ms = 0.4
[stages.collect]
type = "testing.collect"
inputs = ["labels"]
payload = true
)";
}

// memfds of catlip pools whose name contains `tag`, held by any process.
int pool_fds(const std::string& tag) {
  int n = 0;
  for (auto& proc : std::filesystem::directory_iterator("/proc")) {
    std::string pid = proc.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(proc.path() / "fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      char link[512];
      ssize_t k = ::readlink(it->path().c_str(), link, sizeof link - 1);
      if (k <= 0) continue;
      std::string l(link, size_t(k));
      if (l.find("/memfd:catlip-shm-") == 0 && l.find(tag) != std::string::npos) n++;
    }
  }
  return n;
}

// Entries of /dev/shm naming the tag (the pools are memfds: never any).
int dev_shm_entries(const std::string& tag) {
  int n = 0;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator("/dev/shm", ec))
    if (e.path().filename().string().find(tag) != std::string::npos) n++;
  return n;
}

size_t collected_lines(const std::string& run_dir) {
  std::istringstream in(read_file(run_dir + "/collected.tsv.0"));
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n++;
  return n;
}

// Every key exactly once, each payload intact: its first 8 bytes are the
// item's number, the rest hashes like every other item's.
void check_exactly_once_intact(const std::string& run_dir) {
  std::istringstream in(read_file(run_dir + "/collected.tsv.0"));
  std::multiset<std::string> keys;
  std::set<std::string> hashes;
  int bad = 0;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> col;
    std::istringstream ls(line);
    for (std::string c; std::getline(ls, c, '\t');) col.push_back(c);
    if (col.size() < 4) {
      bad++;
      continue;
    }
    keys.insert(col[0]);
    std::string n = col[1].substr(0, col[1].find(','));
    std::string head = col[3].substr(0, col[3].find(':'));
    std::string rest = col[3].substr(col[3].find(':') + 1);
    if (head != n || rest.substr(rest.find(':') + 1) != "100000") bad++;
    hashes.insert(rest);
  }
  std::set<std::string> distinct(keys.begin(), keys.end());
  CHECK(bad == 0);
  CHECK(hashes.size() == 1);
  CHECK(keys.size() == size_t(kItems));
  CHECK(distinct.size() == size_t(kItems));
}

int64_t counter_in_summary(const std::string& run_dir, const std::string& name) {
  std::string s = read_file(run_dir + "/summary.json");
  auto at = s.rfind("\"" + name + "\":");
  return at == std::string::npos ? -1 : std::atoll(s.c_str() + at + name.size() + 3);
}

std::string tag_for(const std::string& what) { return "shm" + what + std::to_string(::getpid()); }

}  // namespace

TEST_CASE("chaos shm: kill -9 of replicas that map and forward pools, every sample exactly once and intact") {
  TempDir dir("chaos-shm");
  std::string tag = tag_for("chaos");
  write_file(dir.file("g.toml"), shm_graph(tag));
  std::string run = dir.file("run");
  Proc p(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + run + " --progress plain", dir.file("log"));
  REQUIRE(wait_until([&] { return collected_lines(run) > 200; }, 60));
  CHECK(pool_fds(tag) > 0);  // the pools are in use
  std::mt19937 rng(4321);
  int kills = 0;
  for (int round = 0; round < 4 && p.running(); ++round) {
    auto pids = worker_pids(run, round % 2 ? "labels/" : "decode/");
    if (pids.empty()) continue;
    if (::kill(pids[rng() % pids.size()], SIGKILL) == 0) kills++;
    std::this_thread::sleep_for(std::chrono::milliseconds(400));  // the pace of the chaos, not a synchronisation
  }
  int code = p.wait(180);
  INFO(p.log());
  REQUIRE(code == 0);
  CHECK(kills >= 2);
  check_exactly_once_intact(run);
  CHECK(counter_in_summary(run, "transport.shm_fields_in") > 0);
  CHECK(counter_in_summary(run, "transport.shm_descriptors_out") > 0);
  CHECK(pids_with(run).empty());
  CHECK(pool_fds(tag) == 0);
  CHECK(dev_shm_entries(tag) == 0);
}

TEST_CASE("shm: kill -9 of the supervisor leaves no pool behind") {
  TempDir dir("shm-supervisor");
  std::string tag = tag_for("sup");
  write_file(dir.file("g.toml"), "[graph]\nname = \"" + tag + R"("
[stages.numbers]
type = "testing.counter"
count = 100000000
rate = 500
payload_bytes = 100000
[stages.map]
type = "testing.map"
op = "identity"
inputs = ["numbers"]
[stages.sink]
type = "testing.null"
inputs = ["map"]
)");
  Proc p(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run"), dir.file("log"));
  // Both producers' pools exist, and the sink maps them.
  REQUIRE(wait_until([&] { return pool_fds(tag) >= 4; }, 60));
  p.kill(SIGKILL);
  p.wait(5);
  CHECK(wait_until([&] { return worker_pids(dir.file("run")).empty(); }, 10));
  CHECK(wait_until([&] { return pool_fds(tag) == 0; }, 5));
  CHECK(dev_shm_entries(tag) == 0);
}

TEST_CASE("shm: kill -9 of a producer replica: its successor makes a new pool, the old one goes with the run") {
  TempDir dir("shm-producer");
  std::string tag = tag_for("prod");
  write_file(dir.file("g.toml"), shm_graph(tag));
  std::string run = dir.file("run");
  Proc p(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + run + " --progress plain", dir.file("log"));
  REQUIRE(wait_until([&] { return collected_lines(run) > 300; }, 60));
  auto pids = worker_pids(run, "decode/0");
  REQUIRE(pids.size() == 1);
  ::kill(pids[0], SIGKILL);
  int code = p.wait(180);
  INFO(p.log());
  REQUIRE(code == 0);
  check_exactly_once_intact(run);
  CHECK(pool_fds(tag) == 0);
}
