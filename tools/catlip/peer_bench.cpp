// The peer loaders of `catlip bench decode` and `catlip bench pipeline`:
// running tools/python/bench_peers.py per peer, timing its process tree, rows.
#include "peer_bench.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace catlip::cli::peers {

namespace fs = std::filesystem;

pid_t spawn_child(const std::vector<std::string>& args, const std::string& log, const std::vector<int>& cpus) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) ::dup2(fd, 1), ::dup2(fd, 2);
    if (devnull >= 0) ::dup2(devnull, 0);
    if (!cpus.empty()) {
      cpu_set_t set;
      CPU_ZERO(&set);
      for (int c : cpus) CPU_SET(c, &set);
      ::sched_setaffinity(0, sizeof set, &set);  // inherited by every descendant
    }
    ::execv(argv[0], argv.data());
    std::perror(argv[0]);
    _exit(127);
  }
  return pid;
}

Child wait_child(pid_t pid, std::chrono::steady_clock::time_point started) {
  Child r;
  if (pid < 0) return r;
  int st = 0;
  struct rusage ru {};
  while (::wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {
  }
  r.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  r.cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

Child run_child(const std::vector<std::string>& args, const std::string& log, const std::vector<int>& cpus) {
  auto t0 = std::chrono::steady_clock::now();
  return wait_child(spawn_child(args, log, cpus), t0);
}

std::vector<int> pick_cpus(int n) {
  std::vector<int> out;
  if (n <= 0) return out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE && int(out.size()) < n; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

std::string cpus_text(const std::vector<int>& cpus) {
  if (cpus.empty()) return "all";
  std::string s;
  for (int c : cpus) s += (s.empty() ? "" : ",") + std::to_string(c);
  return s;
}

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string tail(const std::string& s, size_t n) { return s.size() > n ? "..." + s.substr(s.size() - n) : s; }

std::string find_python_script(const std::string& given, const std::string& exe_dir, const char* name) {
  if (!given.empty()) return given;
  for (fs::path d : {fs::path(exe_dir) / "../../tools/python", fs::path(exe_dir) / "../tools/python",
                     fs::current_path() / "tools/python"}) {
    std::error_code ec;
    if (fs::is_regular_file(d / name, ec)) return fs::weakly_canonical(d / name, ec).string();
  }
  return "";
}

const std::vector<PeerSpec>& peer_specs() {
  static const std::vector<PeerSpec> specs = {
      {"webdataset", "WebDataset + torch DataLoader workers, PIL, torchvision v2 (OpenCLIP's path)", 3.0},
      {"spdl", "SPDL: spdl.pipeline threads, spdl.io (FFmpeg) decode + crop/scale/hflip filter", 1.5},
      {"dali", "DALI on CPU: readers.webdataset, decoders.image_random_crop, resize, flip", 1.0},
  };
  return specs;
}

namespace {

double number_or(const json::Value& v, const char* key, double def) {
  const json::Value* x = json::find(v, key);
  return x && x->is_number() ? json::number(*x) : def;
}

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

// The peer's JSON result: its last line that starts with '{'.
bool parse_result(const std::string& out, json::Value& v, std::string& error) {
  auto j = out.rfind("\n{");
  size_t start = j == std::string::npos ? (out.rfind('{', 0) == 0 ? 0 : std::string::npos) : j + 1;
  if (start == std::string::npos) {
    error = "no JSON result line";
    return false;
  }
  try {
    v = json::parse(out.substr(start, out.find('\n', start) - start), "peer result");
    return v.is_object();
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
}

}  // namespace

std::vector<PeerResult> run_peers(const std::string& python, const std::string& script,
                                  const std::vector<std::string>& args, const std::vector<std::string>& shards,
                                  const std::string& dir, const std::vector<int>& cpus, long long expected) {
  std::vector<PeerResult> out;
  std::string unusable;
  if (script.empty()) unusable = "tools/python/bench_peers.py not found";
  else if (run_child({python, "-c", "import json, argparse"}, dir + "/peer-probe.log").rc != 0)
    unusable = "no usable Python at " + python + " (" + one_line(tail(slurp(dir + "/peer-probe.log"), 160)) + ")";
  for (const PeerSpec& spec : peer_specs()) {
    PeerResult p;
    p.spec = spec;
    if (!unusable.empty()) {
      p.note = unusable;
      out.push_back(p);
      continue;
    }
    std::vector<std::string> argv = {python, script, "--loader", spec.loader};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), shards.begin(), shards.end());
    const std::string log = dir + "/peer-" + spec.loader + ".log";
    p.child = run_child(argv, log, cpus);
    const std::string text = slurp(log);
    json::Value v;
    std::string error;
    if (p.child.rc != 0 || !parse_result(text, v, error)) {
      p.state = PeerResult::kFailed;
      p.note = "exit " + std::to_string(p.child.rc) + (error.empty() ? "" : ", " + error) + ": " +
               one_line(tail(text, 600)) + " [log " + log + "]";
    } else if (const json::Value* s = json::find(v, "skipped"); s && s->is_string()) {
      p.note = json::string(*s);
    } else {
      p.state = PeerResult::kRan;
      if (const json::Value* ver = json::find(v, "versions"); ver && ver->is_string()) p.versions = json::string(*ver);
      p.samples = number_or(v, "samples", -1);
      p.labels = number_or(v, "labels", 0);
      p.loop_s = number_or(v, "loop_s", 0);
      p.loop_cpu = number_or(v, "loop_cpu_s", 0);
      p.setup_cpu = number_or(v, "setup_cpu_s", 0);
      if (expected > 0 && p.samples != double(expected)) {
        p.state = PeerResult::kFailed;
        p.note = std::to_string((long long)p.samples) + " of " + std::to_string(expected) +
                 " samples arrived [log " + log + "]";
      }
    }
    out.push_back(p);
  }
  return out;
}

static const int kNameWidth = 11;

void print_header(const char* unit) {
  std::string per_cpu = std::string(unit) + "/CPU-s";
  std::printf("%-*s %8s %8s %10s %8s %13s %11s  %-15s %s\n", kNameWidth, "loader", unit, "wall s",
              (std::string(unit) + "/s").c_str(), "CPU s", per_cpu.c_str(), "catlip/peer", "target", "version");
}

void print_row(const Row& r, double catlip_rate, double target) {
  char ratio[32] = "-", goal[48] = "-";
  if (target > 0 && r.rate > 0 && catlip_rate > 0) {
    double x = catlip_rate / r.rate;
    std::snprintf(ratio, sizeof ratio, "%.2fx", x);
    std::snprintf(goal, sizeof goal, ">= %.1fx %s", target, x >= target ? "met" : "MISSED");
  }
  std::printf("%-*s %8.0f %8.2f %10.1f %8.2f %13.1f %11s  %-15s %s\n", kNameWidth, r.name.c_str(), r.count, r.wall,
              r.wall_rate, r.cpu, r.rate, ratio, goal, r.version.c_str());
}

void print_unrun(const PeerResult& p) {
  std::printf("%-*s %s: %s\n", kNameWidth, p.spec.loader.c_str(),
              p.state == PeerResult::kFailed ? "FAILED" : "SKIPPED", p.note.c_str());
}

}  // namespace catlip::cli::peers
