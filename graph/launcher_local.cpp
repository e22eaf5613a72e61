// Local launchers: catlip-worker processes, or threads for --in-process.
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string_view>
#include <thread>

#include "catlip/launcher.h"
#include "catlip/local.h"
#include "catlip/plugin_loader.h"
#include "catlip/replica_spec.h"
#include "catlip/runtime.h"

namespace fs = std::filesystem;

namespace catlip {

std::string executable_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  buf[n] = 0;
  return fs::path(buf).parent_path().string();
}

namespace {
std::atomic<int> g_signal{0};
void on_signal(int sig) { g_signal.store(sig); }
}  // namespace

// The supervisor that made a socket directory writes its pid there; one
// killed with SIGKILL leaves the directory behind. Each new one removes the
// directories of supervisors that are gone (never one without the pid file:
// it may be in the middle of being made).
static void remove_stale_socket_dirs(const std::string& parent) {
  std::error_code ec;
  for (auto& e : fs::directory_iterator(parent, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("catlip-", 0) != 0 || !e.is_directory(ec) || e.is_symlink(ec)) continue;
    struct stat st {};
    if (::lstat(e.path().c_str(), &st) != 0 || st.st_uid != ::geteuid()) continue;
    FILE* f = std::fopen((e.path() / "supervisor.pid").c_str(), "re");
    if (!f) continue;
    long pid = 0;
    bool read = std::fscanf(f, "%ld", &pid) == 1;
    std::fclose(f);
    if (!read || pid <= 0 || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM) continue;  // still alive
    fs::remove_all(e.path(), ec);
  }
}

SocketDir::SocketDir() {
  remove_stale_socket_dirs("/tmp");
  char tmpl[] = "/tmp/catlip-XXXXXX";
  // mkdtemp makes it 0700: only this user can reach the sockets.
  if (!::mkdtemp(tmpl)) throw std::runtime_error(std::string("cannot create a socket directory in /tmp: ") + ::strerror(errno));
  path_ = tmpl;
  ::chmod(path_.c_str(), 0700);
  std::string pid = std::to_string(::getpid()) + "\n";
  int fd = ::open((path_ + "/supervisor.pid").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ssize_t w = ::write(fd, pid.data(), pid.size());
    (void)w;
    ::close(fd);
  }
}

SocketDir::~SocketDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

SignalGuard::SignalGuard() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
  for (int i = 0; i < 3; ++i) ::sigaction(sigs[i], &sa, &old_[i]);
  ::signal(SIGPIPE, SIG_IGN);
  g_signal = 0;
}

SignalGuard::~SignalGuard() {
  const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
  for (int i = 0; i < 3; ++i) ::sigaction(sigs[i], &old_[i], nullptr);
}

const std::atomic<int>& SignalGuard::received() { return g_signal; }

std::string failure_text(const std::string& stage, int replica, int node, int nodes, const std::string& error,
                         const std::string& why) {
  std::string s = "stage '" + stage + "' (replica " + std::to_string(replica) +
                  (nodes > 1 ? ", node " + std::to_string(node) : "") + ") failed";
  // A worker's own stderr line reads "error: ..." (see worker_main.cpp):
  // after "failed: " that prefix says nothing twice.
  std::string_view e = error;
  while (e.rfind("error: ", 0) == 0) e.remove_prefix(7);
  if (!e.empty()) s += ": " + std::string(e);
  if (!why.empty()) s += " [" + why + "]";
  return s;
}

namespace {

using Clock = std::chrono::steady_clock;

// The spec of one replica of this node: its plan (with the CURVE keys of its
// stage) and its stage's resolved parameters. Stages that keep state (not
// restartable: absent from run.restarts) drop re-delivered items.
ReplicaSpec replica_spec(const LocalRun& run, const ReplicaSlot& slot) {
  ReplicaSpec s;
  s.plan = make_plan(run.graph, run.tcp, slot.stage, slot.replica, run.sock_dir, run.run_dir, false);
  if (!run.keys.empty()) apply_run_keys(s.plan, run.graph, run.keys);
  s.plan.dedupe = !run.restarts.count(slot.stage) && !s.plan.inputs.empty();
  auto it = run.params.find(slot.stage);
  if (it == run.params.end()) throw std::runtime_error("no resolved parameters for stage '" + slot.stage + "'");
  s.params = it->second;
  return s;
}

// Reports pushed by the replicas to this node's PULL socket.
class ReportInbox {
 public:
  ReportInbox(zmq::context_t& zctx, const std::string& endpoint) : sock_(zctx, zmq::socket_type::pull) {
    sock_.set(zmq::sockopt::linger, 0);
    sock_.bind(endpoint);
  }
  zmq::pollitem_t item() { return {sock_.handle(), 0, ZMQ_POLLIN, 0}; }
  template <class F>
  void drain(F f) {
    for (;;) {
      zmq::message_t m;
      if (!sock_.recv(m, zmq::recv_flags::dontwait)) return;
      ReplicaReport r;
      if (decode_report(m.data(), m.size(), r)) f(r);
    }
  }

 private:
  zmq::socket_t sock_;
};

class ProcessLauncher : public Launcher {
 public:
  ProcessLauncher(zmq::context_t& zctx, const LocalRun& run)
      : run_(run), inbox_(zctx, control_endpoint(run.sock_dir, false)) {
    for (auto& s : replicas_on_node(run.graph, run.node)) {
      Proc p;
      p.slot = s;
      procs_.push_back(std::move(p));
    }
  }
  ~ProcessLauncher() override {
    for (auto& p : procs_) {
      if (p.pid > 0 && !p.exited) {
        ::kill(p.pid, SIGKILL);
        ::waitpid(p.pid, nullptr, 0);
      }
      if (p.out_fd >= 0) ::close(p.out_fd);
    }
  }

  void start() override {
    // Each worker is handed its replica's plan and parameters (with its
    // stage's CURVE secret) in a 0600 file in the 0700 socket directory,
    // removed with it: the graph is planned once, here.
    for (auto& p : procs_) {
      auto path = write_replica_spec(run_.sock_dir, replica_spec(run_, p.slot));
      if (!path.ok()) throw std::runtime_error(path.status().message());
      p.spec_file = *path;
    }
    for (auto& p : procs_) spawn(p);
  }
  void add_poll_items(std::vector<zmq::pollitem_t>& items) override {
    items.push_back(inbox_.item());
    for (auto& p : procs_)
      if (p.out_fd >= 0) items.push_back({nullptr, p.out_fd, ZMQ_POLLIN, 0});
  }
  void handle(LaunchEvents& ev) override {
    read_reports(ev);
    for (auto& p : procs_) pump(p, false, ev);
    for (auto& p : procs_)
      if (p.pid > 0 && !p.exited && ::waitpid(p.pid, &p.status, WNOHANG) == p.pid) finish(p, ev);
    // Restarts whose backoff has passed.
    for (auto& p : procs_)
      if (p.restart_pending && !stopping_ && Clock::now() >= p.restart_at) {
        p.restart_pending = false;
        p.exited = false;
        p.error.clear();
        p.tail.clear();
        spawn(p);
      }
  }
  bool kill_replica(const std::string& stage, int replica) override {
    for (auto& p : procs_)
      if (p.slot.stage == stage && p.slot.replica == replica) {
        if (p.pid > 0 && !p.exited) ::kill(p.pid, SIGKILL);  // also ends a stopped (SIGSTOP) one
        return true;
      }
    return false;
  }
  int stop(double grace_s, LaunchEvents& ev) override {
    // No more restarts; one waiting for its backoff ends here, stopped.
    stopping_ = true;
    for (auto& p : procs_)
      if (p.restart_pending) {
        p.restart_pending = false;
        p.exited = true;
        ReplicaExit e;
        e.stage = p.slot.stage;
        e.replica = p.slot.replica;
        e.node = p.slot.node;
        e.stopped = true;
        ev.on_exit(e);
      }
    for (auto& p : procs_)
      if (p.pid > 0 && !p.exited) {
        ::kill(p.pid, SIGTERM);
        ::kill(p.pid, SIGCONT);  // a stopped (SIGSTOP) replica gets the SIGTERM only once continued
      }
    auto deadline = Clock::now() + std::chrono::duration<double>(grace_s);
    while (!all_exited() && Clock::now() < deadline) {
      std::vector<zmq::pollitem_t> items;
      add_poll_items(items);
      try {
        zmq::poll(items.data(), items.size(), std::chrono::milliseconds(20));
      } catch (const zmq::error_t&) {
        // EINTR (a signal): the loop checks its stop flag next
      }
      handle(ev);
    }
    int killed = 0;
    for (auto& p : procs_)
      if (p.pid > 0 && !p.exited) {
        ::kill(p.pid, SIGKILL);
        ::waitpid(p.pid, &p.status, 0);
        killed++;
        finish(p, ev);
      }
    read_reports(ev);
    return killed;
  }
  bool all_exited() const override {
    for (auto& p : procs_)
      if ((p.pid > 0 && !p.exited) || p.restart_pending) return false;
    return true;
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Proc {
    ReplicaSlot slot;
    std::string spec_file;  // its ReplicaSpec, written by start()
    pid_t pid = -1;
    int out_fd = -1;
    std::string partial;
    std::vector<std::string> tail;
    bool exited = false;
    int status = 0;
    std::string error;  // from its latest report
    int restarts = 0;   // times this replica was restarted
    bool restart_pending = false;
    Clock::time_point restart_at{};
  };

  void read_reports(LaunchEvents& ev) {
    inbox_.drain([&](const ReplicaReport& r) {
      for (auto& p : procs_)
        if (p.slot.stage == r.stage && p.slot.replica == r.replica) {
          // A late report of a replica's previous incarnation: its counts
          // were carried over at the restart.
          if (p.pid <= 0 || r.pid != p.pid) return;
          if (!r.error.empty()) p.error = r.error;
        }
      ev.on_report(run_.node, r);
    });
  }

  void spawn(Proc& r) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    std::string worker = run_.worker_bin.empty() ? executable_dir() + "/catlip-worker" : run_.worker_bin;
    int listen_fd = -1, group_fd = -1;
    for (auto& [tag, fd] : run_.listen_fds)
      if (tag == r.slot.tag()) listen_fd = fd;
    for (auto& [tag, fd] : run_.group_fds)
      if (tag == r.slot.tag()) group_fd = fd;
    // --run-dir only names the run in ps (the worker checks it against the spec).
    std::vector<std::string> args = {"catlip:" + r.slot.tag(), "--spec", r.spec_file, "--run-dir", run_.run_dir,
                                     "--parent", std::to_string(::getpid())};
    if (listen_fd >= 0) args.insert(args.end(), {"--listen-fd", "3"});
    if (group_fd >= 0) args.insert(args.end(), {"--group-fd", "4"});
    std::vector<char*> cargs;
    for (auto& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      // Child: die with this process, even if it is SIGKILLed.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      // Own process group: a terminal's Ctrl-C reaches only the supervisor,
      // which stops the replicas in order.
      ::setpgid(0, 0);
      ::dup2(fds[1], 1);
      ::dup2(fds[1], 2);
      // The listening socket this replica's ROUTER takes over, as fd 3, and
      // the reserved group port, as fd 4 (copied high first so neither
      // clobbers the other; dup2 clears close-on-exec on the copy).
      int lf = listen_fd >= 0 ? ::fcntl(listen_fd, F_DUPFD_CLOEXEC, 100) : -1;
      int gf = group_fd >= 0 ? ::fcntl(group_fd, F_DUPFD_CLOEXEC, 100) : -1;
      if ((lf >= 0 && ::dup2(lf, 3) < 0) || (gf >= 0 && ::dup2(gf, 4) < 0)) ::_exit(126);
      ::signal(SIGINT, SIG_DFL);
      ::signal(SIGTERM, SIG_DFL);
      ::signal(SIGPIPE, SIG_DFL);
      ::execv(worker.c_str(), cargs.data());
      std::string msg = "error: cannot execute " + worker + ": " + ::strerror(errno) + "\n";
      ssize_t w = ::write(2, msg.data(), msg.size());
      (void)w;
      ::_exit(127);
    }
    ::close(fds[1]);
    ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
    r.pid = pid;
    r.out_fd = fds[0];
  }

  void pump(Proc& r, bool final, LaunchEvents& ev) {
    if (r.out_fd >= 0) {
      char buf[8192];
      for (;;) {
        ssize_t n = ::read(r.out_fd, buf, sizeof buf);
        if (n == 0) {
          // EOF: the child is gone; stop polling a descriptor that is always ready.
          ::close(r.out_fd);
          r.out_fd = -1;
          break;
        }
        if (n < 0) break;
        r.partial.append(buf, static_cast<size_t>(n));
        if (r.partial.size() > (1 << 20)) break;  // a line without end: emit what we have
      }
    }
    size_t pos;
    while ((pos = r.partial.find('\n')) != std::string::npos || r.partial.size() > (1 << 20) ||
           (final && !r.partial.empty())) {
      if (pos == std::string::npos) pos = r.partial.size();
      std::string line = r.partial.substr(0, pos);
      r.partial.erase(0, std::min(r.partial.size(), pos + 1));
      ev.on_line(run_.node, r.slot.tag(), line);
      r.tail.push_back(line);
      if (r.tail.size() > 20) r.tail.erase(r.tail.begin());
    }
  }

  void finish(Proc& r, LaunchEvents& ev) {
    r.exited = true;
    pump(r, true, ev);
    read_reports(ev);
    ReplicaExit e;
    e.stage = r.slot.stage;
    e.replica = r.slot.replica;
    e.node = r.slot.node;
    e.ok = WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0;
    e.stopped = WIFEXITED(r.status) && WEXITSTATUS(r.status) == 5;
    if (!e.ok) {
      std::string why = WIFSIGNALED(r.status) ? "killed by signal " + std::to_string(WTERMSIG(r.status)) + " (" +
                                                    ::strsignal(WTERMSIG(r.status)) + ")"
                                              : "exited with status " + std::to_string(WEXITSTATUS(r.status));
      std::string err = r.error;
      if (err.empty())
        for (auto it = r.tail.rbegin(); it != r.tail.rend(); ++it)
          if (it->find("error") != std::string::npos) {
            err = *it;
            break;
          }
      e.failure = failure_text(e.stage, e.replica, e.node, run_.graph.nodes, err, why);
      auto budget = run_.restarts.find(e.stage);
      int max = budget == run_.restarts.end() ? 0 : budget->second;
      // A configuration error (the worker's exit 3: parameters or configure())
      // would fail the same way again: it is never restarted.
      const bool config_error = WIFEXITED(r.status) && WEXITSTATUS(r.status) == kConfigErrorExit;
      e.config_error = config_error;
      if (config_error) e.failure += " (a configuration error: not restarted)";
      if (!e.stopped && !stopping_ && !config_error && r.restarts < max) {
        // Restart after a backoff (0.25 s, doubling, at most 4 s); its
        // unacknowledged items are re-sent to it or its siblings.
        r.restarts++;
        r.restart_pending = true;
        r.restart_at = Clock::now() + std::chrono::milliseconds(std::min(4000, 250 << std::min(4, r.restarts - 1)));
        r.pid = -1;
        ev.on_restart(e, r.restarts, max);
        return;
      }
      if (max > 0 && !e.stopped && !config_error)
        e.failure += " (after " + std::to_string(r.restarts) + " restart" + (r.restarts == 1 ? "" : "s") +
                     "; max_restarts " + std::to_string(max) + ")";
    }
    ev.on_exit(e);
  }

  LocalRun run_;
  ReportInbox inbox_;
  std::vector<Proc> procs_;
  bool stopping_ = false;
};

class ThreadLauncher : public Launcher {
 public:
  ThreadLauncher(zmq::context_t& zctx, const GraphSpec& g, const std::map<std::string, Params>& params,
                 const std::string& run_dir, const EndpointTable& tcp)
      : zctx_(zctx), g_(g), params_(params), run_dir_(run_dir), tcp_(tcp), inbox_(zctx, control_endpoint("", true)) {}
  ~ThreadLauncher() override {
    stop_ = true;
    for (auto& t : threads_)
      if (t->thread.joinable()) t->thread.join();
  }
  void start() override {
    for (auto& s : all_replicas(g_)) {
      auto t = std::make_unique<Thread>();
      t->slot = s;
      const StageType* type = loader_.find_type(g_.find(s.stage)->type);
      if (!type) throw std::runtime_error("unknown stage type " + g_.find(s.stage)->type);
      t->stage = type->create();
      ReplicaPlan plan = make_plan(g_, tcp_, s.stage, s.replica, "", run_dir_, true);
      Thread* tp = t.get();
      const Params& p = params_.at(s.stage);
      t->thread = std::thread([this, tp, plan, p, type] {
        tp->result = run_replica(plan, *tp->stage, type->schema, p, zctx_, stop_);
        tp->finished = true;
      });
      threads_.push_back(std::move(t));
    }
  }
  void add_poll_items(std::vector<zmq::pollitem_t>& items) override { items.push_back(inbox_.item()); }
  void handle(LaunchEvents& ev) override {
    inbox_.drain([&](const ReplicaReport& r) { ev.on_report(0, r); });
    for (auto& t : threads_)
      if (t->finished && t->thread.joinable()) {
        t->thread.join();
        ReplicaExit e;
        e.stage = t->slot.stage;
        e.replica = t->slot.replica;
        e.ok = t->result.ok;
        e.stopped = t->result.stopped;
        if (!e.ok && !e.stopped) e.failure = failure_text(e.stage, e.replica, 0, 1, t->result.error, "");
        ev.on_exit(e);
      }
  }
  int stop(double grace_s, LaunchEvents& ev) override {
    stop_ = true;
    while (!all_exited()) {
      handle(ev);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    handle(ev);
    (void)grace_s;
    return 0;
  }
  bool all_exited() const override {
    for (auto& t : threads_)
      if (!t->finished) return false;
    return true;
  }

 private:
  struct Thread {
    ReplicaSlot slot;
    std::unique_ptr<Stage> stage;
    std::thread thread;
    ReplicaResult result;
    std::atomic<bool> finished{false};
  };
  zmq::context_t& zctx_;
  GraphSpec g_;
  std::map<std::string, Params> params_;
  std::string run_dir_;
  EndpointTable tcp_;  // group rendezvous ports only
  ReportInbox inbox_;
  PluginLoader loader_;
  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<Thread>> threads_;
};

}  // namespace

std::unique_ptr<Launcher> make_process_launcher(zmq::context_t& zctx, const LocalRun& run) {
  return std::make_unique<ProcessLauncher>(zctx, run);
}

std::unique_ptr<Launcher> make_thread_launcher(zmq::context_t& zctx, const GraphSpec& g,
                                               const std::map<std::string, Params>& params,
                                               const std::string& run_dir, const EndpointTable& tcp) {
  return std::make_unique<ThreadLauncher>(zctx, g, params, run_dir, tcp);
}

}  // namespace catlip
