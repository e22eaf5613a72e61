// Helpers of the multi-host tests (cluster_util.h): network-namespace hosts, node commands,
// processes with logs, waiting on conditions, leftovers checks.
#include "cluster_util.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <regex>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "test_util.h"

extern char** environ;

namespace catlip::test::cluster {

namespace fs = std::filesystem;

std::string script(const std::string& name) { return std::string(CATLIP_CLUSTER_SCRIPTS) + "/" + name; }

std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

namespace {

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

bool have_command(const std::string& name) { return run_cmd("command -v " + name + " >/dev/null").exit_code == 0; }

std::string base36(unsigned long v) {
  const char* digits = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string s;
  do {
    s.push_back(digits[v % 36]);
    v /= 36;
  } while (v);
  return std::string(s.rbegin(), s.rend());
}

// Namespaces of NetnsHosts whose test process is gone (killed by a CTest
// timeout, say, so no destructor ran): "cl" + tag + "-k", tag = "c" + pid in
// base 36 + one counter character. Removes them with everything inside.
void reap_stale_netns() {
  auto r = run_cmd("ip netns list 2>/dev/null");
  std::set<std::string> tags;
  for (auto& l : lines_of(r.out)) {
    std::string name = l.substr(0, l.find(' '));
    auto dash = name.rfind('-');
    if (name.rfind("clc", 0) != 0 || dash == std::string::npos || dash < 5) continue;
    std::string tag = name.substr(2, dash - 2);
    std::string pid36 = tag.substr(1, tag.size() - 2);
    unsigned long pid = 0;
    bool ok = !pid36.empty();
    for (char c : pid36) {
      if (c >= '0' && c <= '9') pid = pid * 36 + (c - '0');
      else if (c >= 'a' && c <= 'z') pid = pid * 36 + (c - 'a' + 10);
      else ok = false;
    }
    if (ok && pid > 0 && static_cast<pid_t>(pid) != ::getpid() && !fs::exists("/proc/" + std::to_string(pid)))
      tags.insert(tag);
  }
  for (auto& t : tags) run_cmd(script("netns.sh") + " down " + t);
}

}  // namespace

void require_root() {
  if (::geteuid() != 0) skip_test("needs root (network namespaces, Slurm daemons)");
}

bool netns_available() {
  if (std::getenv("CATLIP_TEST_NO_NETNS")) return false;
  return ::geteuid() == 0 && run_cmd(script("netns.sh") + " check").exit_code == 0;
}

void require_netns() {
  if (std::getenv("CATLIP_TEST_NO_NETNS")) skip_test("CATLIP_TEST_NO_NETNS is set");
  require_root();
  auto r = run_cmd(script("netns.sh") + " check");
  if (r.exit_code == 77) skip_test("network namespaces unavailable: " + trim(r.out));
  if (r.exit_code != 0) throw std::runtime_error("netns.sh check failed (" + std::to_string(r.exit_code) + "): " + r.out);
}

void require_slurm() {
  require_root();
  auto r = run_cmd(script("slurm.sh") + " check");
  if (r.exit_code == 77) skip_test("no usable Slurm: " + trim(r.out));
  if (r.exit_code != 0) throw std::runtime_error("slurm.sh check failed (" + std::to_string(r.exit_code) + "): " + r.out);
}

void require_mpirun() {
  if (!have_command("mpirun")) skip_test("no mpirun (apt-get install openmpi-bin)");
}

void clean_launcher_env() {
  static const char* exact[] = {"NODE_RANK",  "GROUP_RANK",  "PET_NODE_RANK", "NNODES",
                                "PET_NNODES", "MASTER_ADDR", "MASTER_PORT",   "JOB_COMPLETION_INDEX",
                                "CATLIP_PLUGIN_PATH"};
  static const char* prefixes[] = {"CATLIP_NODE_RANK", "CATLIP_NNODES", "CATLIP_COORDINATOR",
                                   "SLURM_",           "OMPI_",         "PMIX_"};
  std::vector<std::string> drop;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    std::string name = kv.substr(0, kv.find('='));
    bool hit = false;
    for (auto* x : exact) hit = hit || name == x;
    for (auto* p : prefixes) hit = hit || name.rfind(p, 0) == 0;
    if (hit) drop.push_back(name);
  }
  for (auto& n : drop) ::unsetenv(n.c_str());
  // Every node of a test run holds the same cluster secret (the join is
  // authenticated with it; srun and sbatch pass the environment on, mpirun
  // is given -x CATLIP_CLUSTER_SECRET).
  ::unsetenv("CATLIP_CLUSTER_SECRET_FILE");
  ::setenv("CATLIP_CLUSTER_SECRET", "catlip-cluster-tests-shared-secret", 1);
}

// ------------------------------------------------------------------ NetnsHosts

NetnsHosts::NetnsHosts(int n) {
  reap_stale_netns();
  static int counter = 0;
  std::ostringstream tag;  // "c" + pid + counter, base 36: at most 8 characters
  tag << 'c' << base36(static_cast<unsigned long>(::getpid())) << base36(static_cast<unsigned long>(counter++ % 36));
  tag_ = tag.str();
  auto r = run_cmd(script("netns.sh") + " up " + tag_ + " " + std::to_string(n));
  if (r.exit_code != 0) throw std::runtime_error("netns.sh up " + tag_ + " failed: " + r.out);
  for (auto& l : lines_of(r.out)) {
    std::istringstream in(l);
    int k;
    std::string addr, ns, veth;
    if (in >> k >> addr >> ns >> veth && k == static_cast<int>(addr_.size())) {
      addr_.push_back(addr);
      ns_.push_back(ns);
    }
  }
  if (static_cast<int>(addr_.size()) != n) {
    run_cmd(script("netns.sh") + " down " + tag_);
    throw std::runtime_error("netns.sh up printed an unexpected host list: " + r.out);
  }
}

NetnsHosts::~NetnsHosts() {
  auto r = run_cmd(script("netns.sh") + " down " + tag_);
  if (r.exit_code != 0) std::cerr << "netns.sh down " << tag_ << " failed: " << r.out << "\n";
}

int64_t NetnsHosts::veth_bytes() const {
  auto r = run_cmd(script("netns.sh") + " bytes " + tag_ + " 2>/dev/null");
  if (r.exit_code != 0) return -1;
  return std::atoll(r.out.c_str());
}

std::vector<int> NetnsHosts::pids(int k) const {
  std::vector<int> out;
  struct stat want;
  if (::stat(("/run/netns/" + ns_.at(k)).c_str(), &want) != 0) return out;
  for (auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    struct stat st;
    if (::stat((e.path().string() + "/ns/net").c_str(), &st) != 0) continue;
    if (st.st_ino != want.st_ino || st.st_dev != want.st_dev) continue;
    // Zombies are gone for all purposes but their exit status.
    std::string stat = read_file(e.path().string() + "/stat");
    auto rp = stat.rfind(')');
    if (rp != std::string::npos && rp + 2 < stat.size() && stat[rp + 2] == 'Z') continue;
    out.push_back(std::atoi(name.c_str()));
  }
  return out;
}

// ------------------------------------------------------------------ LocalSlurm

LocalSlurm::LocalSlurm(const std::string& dir, const NetnsHosts* hosts) : dir_(dir) {
  std::string cmd = script("slurm.sh") + " up " + sh_quote(dir);
  if (hosts) {
    if (hosts->size() != 3) throw std::invalid_argument("LocalSlurm needs exactly 3 hosts");
    cmd += " --netns " + hosts->tag();
  }
  auto r = run_cmd(cmd);
  if (r.exit_code != 0) throw std::runtime_error("slurm.sh up failed: " + r.out);
  client_ = trim(read_file(dir + "/client"));
  if (client_.empty()) {
    run_cmd(script("slurm.sh") + " down " + sh_quote(dir));
    throw std::runtime_error("slurm.sh up wrote no " + dir + "/client");
  }
}

LocalSlurm::~LocalSlurm() {
  auto r = run_cmd(script("slurm.sh") + " down " + sh_quote(dir_));
  if (r.exit_code != 0) std::cerr << "slurm.sh down " << dir_ << " failed: " << r.out << "\n";
}

// ------------------------------------------------------------------------ Proc

Proc::Proc(const std::string& cmdline, const std::string& log) : log_(log) {
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::setpgid(0, 0);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    std::string cmd = "exec " + cmdline;
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);  // also here: no race with a kill of the group
}

Proc::~Proc() {
  if (!running()) return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  int st;
  ::waitpid(pid_, &st, 0);
}

bool Proc::running() {
  if (done_ || pid_ <= 0) return false;
  int st;
  if (::waitpid(pid_, &st, WNOHANG) == pid_) {
    done_ = true;
    code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return true;
}

int Proc::wait(double timeout_s, double* took) {
  auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  while (running()) {
    if (elapsed() > timeout_s) {
      if (took) *took = elapsed();
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      int st;
      ::waitpid(pid_, &st, 0);
      done_ = true;
      code_ = -1;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (took) *took = elapsed();
  return code_;
}

void Proc::kill(int sig) {
  if (running()) ::kill(pid_, sig);
}

std::string Proc::log() const { return read_file(log_); }

// ---------------------------------------------------------------------- misc


bool wait_until(const std::function<bool()>& cond, double timeout_s) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return cond();
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l))
    if (!l.empty()) out.push_back(l);
  return out;
}

// No process of this test is left: none in the namespaces, none whose command
// line names the test's directory (catlip node agents, catlip-worker
// replicas, srun/mpirun), waiting a few seconds for them to go. Processes
// whose command line starts with one of `keep` (the Slurm daemons, which
// their own teardown ends) do not count.
void check_nothing_left(const TempDir& dir, const NetnsHosts* hosts, double within_s,
                        const std::vector<std::string>& keep) {
  auto cmdline = [](int p) {
    std::string cmd = read_file("/proc/" + std::to_string(p) + "/cmdline");
    for (auto& c : cmd)
      if (c == 0) c = ' ';
    return cmd;
  };
  auto left = [&] {
    std::vector<int> pids = pids_with(dir.path());
    if (hosts)
      for (int k = 0; k < hosts->size(); ++k)
        for (int p : hosts->pids(k)) pids.push_back(p);
    std::vector<int> out;
    for (int p : pids) {
      std::string cmd = cmdline(p);
      bool kept = false;
      for (auto& k : keep) kept = kept || cmd.rfind(k, 0) == 0;
      if (!kept) out.push_back(p);
    }
    return out;
  };
  wait_until([&] { return left().empty(); }, within_s);
  std::string desc;
  for (int p : left()) desc += std::to_string(p) + ": " + cmdline(p) + "\n";
  INFO("processes left:\n" << desc);
  CHECK(desc.empty());
}

// A line of `out` matching `re`.
bool has_line(const std::string& out, const std::string& re) {
  std::regex r(re);
  for (auto& l : lines_of(out))
    if (std::regex_search(l, r)) return true;
  return false;
}

// `catlip node` on host k of 3, identity from torchrun-style variables.
std::string node_cmd(const NetnsHosts& hosts, int k, int nnodes, int port, const std::string& graph,
                     const std::string& run_dir, const std::string& extra, const std::string& env) {
  return "env NODE_RANK=" + std::to_string(k) + " NNODES=" + std::to_string(nnodes) +
         " MASTER_ADDR=" + hosts.address(0) + " MASTER_PORT=" + std::to_string(port) + (env.empty() ? "" : " " + env) +
         " " + hosts.exec_prefix(k) + " " + catlip_bin() + " node " + graph + " --run-dir " + run_dir +
         " --progress plain" + (extra.empty() ? "" : " " + extra);
}

std::string logs_of(const std::vector<std::unique_ptr<Proc>>& procs) {
  std::string s;
  for (size_t k = 0; k < procs.size(); ++k) s += "----- node " + std::to_string(k) + ":\n" + procs[k]->log() + "\n";
  return s;
}

// Waits until every host runs its agent and at least `workers[k]` more
// processes (its replicas).
bool all_running(const NetnsHosts& hosts, const std::vector<int>& workers, double timeout_s) {
  return wait_until(
      [&] {
        for (int k = 0; k < hosts.size(); ++k)
          if (static_cast<int>(hosts.pids(k).size()) < 1 + workers[k]) return false;
        return true;
      },
      timeout_s);
}

}  // namespace catlip::test::cluster
