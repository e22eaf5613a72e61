// Helpers shared by the tests (test_util.h): temporary directories, files, commands,
// the catlip binaries, the venv python, skipping.
#include "test_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <filesystem>

namespace catlip::test {

TempDir::TempDir(const std::string& tag) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/catlip-" + tag + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back(0);
  if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (std::getenv("CATLIP_KEEP_TEST_DIRS")) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

CmdResult run_cmd(const std::string& cmdline) {
  CmdResult r;
  std::string full = cmdline + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  if (WIFEXITED(st)) r.exit_code = WEXITSTATUS(st);
  else if (WIFSIGNALED(st)) r.exit_code = 128 + WTERMSIG(st);
  return r;
}

int start_run(const std::string& args, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::string cmd = catlip_bin() + " run " + args + " > " + log + " 2>&1";
    ::execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), (char*)nullptr);
    ::_exit(127);
  }
  return pid;
}

std::string catlip_bin() { return std::string(CATLIP_BIN_DIR) + "/catlip"; }
std::string source_dir() { return CATLIP_SOURCE_DIR; }

std::vector<std::string> table_row(const std::string& out, const std::string& first) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::vector<std::string> v;
    for (std::string x; f >> x;) v.push_back(x);
    if (!v.empty() && v[0] == first) return v;
  }
  return {};
}

std::string torch_cli_or_skip() {
  auto dir = std::filesystem::path(catlip_bin()).parent_path();
  if (!std::filesystem::exists(dir / "catlip-torch")) skip_test("catlip-torch not built (CATLIP_WITH_TORCH off)");
  if (!std::filesystem::exists(dir / "catlip-bench")) skip_test("catlip-bench not built");
  return (dir / "catlip-torch").string();
}

std::string venv_python() {
  std::string v = std::string(CATLIP_SOURCE_DIR) + "/.venv/bin/python";
  return std::filesystem::exists(v) ? v : "/usr/bin/python3";
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary);
  f << content;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<int> pids_with(const std::string& needle) {
  std::vector<int> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string cmd = read_file(std::string("/proc/") + e->d_name + "/cmdline");
    for (auto& c : cmd)
      if (c == 0) c = ' ';
    int pid = std::atoi(e->d_name);
    if (pid != ::getpid() && cmd.find(needle) != std::string::npos) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

int count_processes(const std::string& needle) { return static_cast<int>(pids_with(needle).size()); }

std::vector<int> worker_pids(const std::string& run_dir, const std::string& tag) {
  std::vector<int> out;
  for (int p : pids_with(" --run-dir " + run_dir + " --parent ")) {
    std::string cmd = read_file("/proc/" + std::to_string(p) + "/cmdline");
    if (cmd.rfind("catlip:" + tag, 0) == 0) out.push_back(p);
  }
  return out;
}

std::multiset<std::string> shard_sample_ids(const std::string& pattern) {
  auto ls = run_cmd(catlip_bin() + " shards ls '" + pattern + "' 2>/dev/null");
  std::multiset<std::string> ids;
  if (ls.exit_code != 0) throw std::runtime_error("catlip shards ls " + pattern + " failed");
  std::istringstream in(ls.out);
  std::string line, shard;
  int index = 0;
  while (std::getline(in, line)) {
    if (line.rfind("# ", 0) == 0) {
      shard = std::filesystem::path(line.substr(2)).filename().string();
      index = 0;
    } else if (!line.empty()) {
      ids.insert(shard + "\t" + std::to_string(index++) + "\t" + line.substr(0, line.find(' ')));
    }
  }
  return ids;
}

int count_lines(const std::string& path) {
  std::ifstream in(path);
  std::string l;
  int n = 0;
  while (std::getline(in, l)) ++n;
  return n;
}

bool has_checkpoint(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return false;
  for (auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().extension() == ".catlip") return true;
  return false;
}

std::string tiny_catlip_train_keys(const std::string& vocab, int steps, int checkpoint_every, int dim, int depth) {
  return "vocab = \"" + vocab + "\"\nmodel = \"tiny\"\ndim = " + std::to_string(dim) + "\ndepth = " +
         std::to_string(depth) + "\nheads = 2\nimage_size = 32\npatch_size = 8\nbatch_size = 8\nsteps = " +
         std::to_string(steps) + "\nwarmup_steps = 0\ndevice = \"cpu\"\nthreads = 1\ncheckpoint_every = " +
         std::to_string(checkpoint_every) + "\nkeep_checkpoints = 2\nlog_every = 0\nexport = false\nid_log = true\n";
}

std::vector<std::vector<std::string>> id_log_rows(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f;
    std::istringstream ls(line);
    for (std::string x; std::getline(ls, x, '\t');) f.push_back(x);
    rows.push_back(f);
  }
  return rows;
}

void skip_test(const std::string& why) {
  std::fflush(stderr);
  std::printf("SKIPPED: %s\n", why.c_str());
  std::fflush(stdout);
  std::_Exit(77);
}

int free_port() {
  // A port below the kernel's ephemeral range (32768-60999 here), so neither
  // a port the kernel hands to bind(0) nor an outgoing connection's source
  // port (ZeroMQ's connects) can take it between this check and its use;
  // random per call, so tests running side by side do not pick the same.
  static std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(::getpid()));
  for (int attempt = 0; attempt < 200; ++attempt) {
    int port = 20000 + static_cast<int>(rng() % 12000);
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (ok) return port;
  }
  throw std::runtime_error("free_port: no free port in 20000-31999 on 127.0.0.1");
}

}  // namespace catlip::test
