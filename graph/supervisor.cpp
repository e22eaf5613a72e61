#include "catlip/supervisor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include <zmq.hpp>

#include "catlip/local.h"
#include "catlip/plugin_loader.h"
#include "catlip/report.h"
#include "catlip/run_metrics.h"

namespace fs = std::filesystem;

namespace catlip {

// ------------------------------------------------------------ planning

static int replica_index(const GraphSpec& g, const std::string& stage, int replica) {
  int k = 0;
  for (auto& s : g.stages) {
    if (s.name == stage) return k + replica;
    k += s.replicas;
  }
  return k;
}

Endpoint producer_endpoint(const GraphSpec& g, const std::string& stage, int replica,
                           const std::string& sock_dir, bool in_process) {
  std::string leaf = stage + "." + std::to_string(replica);
  if (in_process) return {"inproc://" + leaf, "inproc://" + leaf};
  if (g.transport == "tcp") {
    int port = g.base_port + replica_index(g, stage, replica);
    std::string bind_host = (g.host == "127.0.0.1" || g.host == "localhost") ? "127.0.0.1" : "*";
    return {"tcp://" + bind_host + ":" + std::to_string(port), "tcp://" + g.host + ":" + std::to_string(port)};
  }
  return {"ipc://" + sock_dir + "/" + leaf, "ipc://" + sock_dir + "/" + leaf};
}

std::string control_endpoint(const std::string& sock_dir, bool in_process) {
  return in_process ? "inproc://catlip-control" : "ipc://" + sock_dir + "/control";
}

ReplicaPlan make_plan(const GraphSpec& g, const std::string& stage, int replica,
                      const std::string& sock_dir, const std::string& run_dir, bool in_process) {
  const StageSpec* s = g.find(stage);
  ReplicaPlan p;
  p.graph_name = g.name;
  p.stage_name = stage;
  p.stage_type = s->type;
  p.replica = replica;
  p.replicas = s->replicas;
  p.run_dir = run_dir;
  p.prefetch = s->prefetch ? s->prefetch : g.prefetch;
  p.max_message_bytes = static_cast<size_t>(g.max_message_mb) << 20;
  p.report_endpoint = control_endpoint(sock_dir, in_process);
  p.report_interval_s = g.report_interval_s;
  for (auto& in : s->inputs) {
    const StageSpec* u = g.find(in);
    for (int r = 0; r < u->replicas; ++r) p.inputs.push_back(producer_endpoint(g, in, r, sock_dir, in_process).connect);
  }
  for (auto* c : g.consumers_of(stage)) p.consumers.push_back(ConsumerGroup{c->name, c->replicas});
  if (!p.consumers.empty()) p.output_endpoint = producer_endpoint(g, stage, replica, sock_dir, in_process).bind;
  return p;
}

// ------------------------------------------------------------ supervisor

namespace {

using Clock = std::chrono::steady_clock;
std::atomic<int> g_signal{0};

void on_signal(int sig) { g_signal.store(sig); }

std::string exe_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  buf[n] = 0;
  return fs::path(buf).parent_path().string();
}

std::string timestamp() {
  char b[32];
  std::time_t t = std::time(nullptr);
  std::strftime(b, sizeof b, "%Y%m%d-%H%M%S", std::localtime(&t));
  return b;
}

// Ports for tcp transport when none were configured: ask the kernel.
int free_port_block(int n) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int base = 20000 + (std::rand() % 30000);
    bool ok = true;
    for (int i = 0; i < n && ok; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(base + i));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(fd);
    }
    if (ok) return base;
  }
  return 0;
}

struct Replica {
  std::string stage;
  int replica = 0;
  std::string tag;  // "stage/replica"
  pid_t pid = -1;
  int out_fd = -1;       // child's stdout+stderr
  std::string partial;   // incomplete last line
  std::vector<std::string> tail;  // last lines, for failure messages
  bool exited = false;
  int status = 0;
  // in-process mode
  std::thread thread;
  std::unique_ptr<Stage> stage_obj;
  ReplicaResult result;
  std::atomic<bool> finished{false};
};

class Supervisor {
 public:
  Supervisor(const GraphSpec& g, const std::map<std::string, Params>& params, const RunOptions& opt)
      : g_(g), params_(params), opt_(opt), metrics_(g_) {}

  int run();

 private:
  void setup_dirs();
  void spawn(Replica& r);
  void spawn_thread(Replica& r, PluginLoader& loader);
  void pump_output(Replica& r, bool final);
  void emit_line(const std::string& line);
  void draw_progress(bool force);
  void clear_progress();
  void stop_all(const std::string& why);
  bool all_exited() const;
  std::string failure_text(Replica& r);
  void write_files(bool final);

  GraphSpec g_;
  const std::map<std::string, Params>& params_;
  RunOptions opt_;
  RunMetrics metrics_;
  std::string run_dir_, sock_dir_;
  std::vector<std::unique_ptr<Replica>> reps_;
  std::unique_ptr<zmq::context_t> zctx_;
  std::unique_ptr<zmq::socket_t> control_;
  bool tty_ = false;
  int drawn_lines_ = 0;
  Clock::time_point start_ = Clock::now(), last_draw_{}, last_plain_{}, last_file_{};
  std::atomic<bool> stop_threads_{false};
  std::mutex prom_mu_;
  std::string prom_text_;
  std::ofstream metrics_file_;
  std::string finished_by_;  // set when a stage called finish_run()
};

void Supervisor::setup_dirs() {
  run_dir_ = !opt_.run_dir.empty() ? opt_.run_dir
             : !g_.run_dir.empty() ? g_.run_dir
                                   : "runs/" + g_.name + "-" + timestamp();
  fs::create_directories(run_dir_);
  run_dir_ = fs::absolute(run_dir_).lexically_normal().string();
  if (!opt_.in_process) {
    // ipc:// paths are limited to ~107 bytes, so sockets live in a short
    // private directory rather than in the run directory.
    char tmpl[] = "/tmp/catlip-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("cannot create a socket directory in /tmp");
    sock_dir_ = tmpl;
  }
  if (g_.transport == "tcp" && g_.base_port == 0 && !opt_.in_process) {
    int n = 0;
    for (auto& s : g_.stages) n += s.replicas;
    g_.base_port = free_port_block(n);
    if (!g_.base_port) throw std::runtime_error("no free block of tcp ports found");
  }
  g_.run_dir = run_dir_;
  std::ofstream(run_dir_ + "/graph.toml") << graph_to_toml(g_);
}

void Supervisor::spawn(Replica& r) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  std::string worker = opt_.worker_bin.empty() ? exe_dir() + "/catlip-worker" : opt_.worker_bin;
  std::string argv0 = "catlip:" + r.tag;
  std::string graph_file = run_dir_ + "/graph.toml";
  std::string rep = std::to_string(r.replica);
  std::vector<std::string> args = {argv0, "--graph", graph_file, "--stage", r.stage, "--replica", rep,
                                   "--sock-dir", sock_dir_, "--run-dir", run_dir_,
                                   "--parent", std::to_string(::getpid())};
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // Child: die with the supervisor, even if it is SIGKILLed.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    // Own process group: a terminal's Ctrl-C reaches only the supervisor,
    // which stops the replicas in order.
    ::setpgid(0, 0);
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::execv(worker.c_str(), cargs.data());
    std::string msg = "error: cannot execute " + worker + ": " + std::strerror(errno) + "\n";
    ssize_t w = ::write(2, msg.data(), msg.size());
    (void)w;
    ::_exit(127);
  }
  ::close(fds[1]);
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  r.pid = pid;
  r.out_fd = fds[0];
}

void Supervisor::spawn_thread(Replica& r, PluginLoader& loader) {
  const StageSpec* s = g_.find(r.stage);
  const StageType* t = loader.find_type(s->type);
  r.stage_obj = t->create();
  ReplicaPlan plan = make_plan(g_, r.stage, r.replica, sock_dir_, run_dir_, true);
  const Params& p = params_.at(r.stage);
  Replica* rp = &r;
  r.thread = std::thread([this, rp, plan, p] {
    rp->result = run_replica(plan, *rp->stage_obj, p, *zctx_, stop_threads_);
    rp->finished = true;
  });
}

void Supervisor::emit_line(const std::string& line) {
  clear_progress();
  std::cerr << line << "\n";
}

void Supervisor::pump_output(Replica& r, bool final) {
  if (r.out_fd < 0) return;
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
  }
  size_t pos;
  while ((pos = r.partial.find('\n')) != std::string::npos) {
    std::string line = r.partial.substr(0, pos);
    r.partial.erase(0, pos + 1);
    emit_line("[" + r.tag + "] " + line);
    r.tail.push_back(line);
    if (r.tail.size() > 20) r.tail.erase(r.tail.begin());
  }
  if (final && !r.partial.empty()) {
    emit_line("[" + r.tag + "] " + r.partial);
    r.tail.push_back(r.partial);
    r.partial.clear();
  }
}

void Supervisor::clear_progress() {
  if (!tty_ || drawn_lines_ == 0) return;
  std::cerr << "\033[" << drawn_lines_ << "A\033[J";
  drawn_lines_ = 0;
}

void Supervisor::draw_progress(bool force) {
  if (opt_.quiet) return;
  auto now = Clock::now();
  double el = std::chrono::duration<double>(now - start_).count();
  if (tty_) {
    if (!force && now - last_draw_ < std::chrono::milliseconds(500)) return;
    last_draw_ = now;
    clear_progress();
    std::string text = render_progress(metrics_.view(), el, true);
    std::cerr << text << std::flush;
    drawn_lines_ = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  } else {
    if (!force && now - last_plain_ < std::chrono::duration<double>(opt_.plain_interval_s)) return;
    last_plain_ = now;
    std::cerr << render_progress(metrics_.view(), el, false) << std::flush;
  }
}

void Supervisor::write_files(bool final) {
  auto now = Clock::now();
  if (!final && now - last_file_ < std::chrono::seconds(1)) return;
  last_file_ = now;
  double el = std::chrono::duration<double>(now - start_).count();
  metrics_file_ << metrics_.json_line(el) << "\n" << std::flush;
  std::string prom = metrics_.prometheus();
  {
    std::lock_guard<std::mutex> l(prom_mu_);
    prom_text_ = prom;
  }
  if (final) std::ofstream(run_dir_ + "/metrics.prom") << prom;
}

void Supervisor::stop_all(const std::string& why) {
  stop_threads_ = true;
  for (auto& r : reps_)
    if (r->pid > 0 && !r->exited) ::kill(r->pid, SIGTERM);
  auto deadline = Clock::now() + std::chrono::duration<double>(opt_.stop_grace_s);
  while (!all_exited() && Clock::now() < deadline) {
    for (auto& r : reps_) {
      pump_output(*r, false);
      if (r->pid > 0 && !r->exited && ::waitpid(r->pid, &r->status, WNOHANG) == r->pid) r->exited = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int killed = 0;
  for (auto& r : reps_)
    if (r->pid > 0 && !r->exited) {
      ::kill(r->pid, SIGKILL);
      ::waitpid(r->pid, &r->status, 0);
      r->exited = true;
      killed++;
    }
  for (auto& r : reps_) {
    pump_output(*r, true);
    if (r->thread.joinable()) r->thread.join();
  }
  if (killed) emit_line("catlip: " + why + ": killed " + std::to_string(killed) + " replica(s) that did not stop in time");
}

bool Supervisor::all_exited() const {
  for (auto& r : reps_) {
    if (r->pid > 0 && !r->exited) return false;
    if (r->pid <= 0 && r->thread.joinable() && !r->finished) return false;
  }
  return true;
}

std::string Supervisor::failure_text(Replica& r) {
  std::string why;
  if (r.pid > 0) {
    if (WIFSIGNALED(r.status)) why = std::string("killed by signal ") + ::strsignal(WTERMSIG(r.status));
    else why = "exited with status " + std::to_string(WEXITSTATUS(r.status));
  }
  std::string err;
  if (auto* rep = metrics_.report(r.stage, r.replica); rep && !rep->error.empty()) err = rep->error;
  if (!r.result.error.empty()) err = r.result.error;
  if (err.empty())
    for (auto it = r.tail.rbegin(); it != r.tail.rend(); ++it)
      if (it->find("error") != std::string::npos) {
        err = *it;
        break;
      }
  std::string s = "stage '" + r.stage + "' (replica " + std::to_string(r.replica) + ") failed";
  if (!err.empty()) s += ": " + err;
  if (!why.empty()) s += " [" + why + "]";
  return s;
}

int Supervisor::run() {
  setup_dirs();
  tty_ = opt_.progress == 1 || (opt_.progress == -1 && ::isatty(2));
  if (opt_.quiet) tty_ = false;
  metrics_file_.open(run_dir_ + "/metrics.jsonl");
  zctx_ = std::make_unique<zmq::context_t>(1);
  control_ = std::make_unique<zmq::socket_t>(*zctx_, zmq::socket_type::pull);
  control_->set(zmq::sockopt::linger, 0);
  control_->bind(control_endpoint(sock_dir_, opt_.in_process));

  MetricsServer server;
  if (g_.metrics_port > 0) {
    server.start(g_.metrics_port, [this] {
      std::lock_guard<std::mutex> l(prom_mu_);
      return prom_text_;
    });
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {}, old_term {}, old_hup {};
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  ::sigaction(SIGHUP, &sa, &old_hup);
  ::signal(SIGPIPE, SIG_IGN);
  g_signal = 0;

  if (!opt_.quiet)
    std::cerr << "catlip: running graph '" << g_.name << "' (" << g_.stages.size() << " stages) in " << run_dir_
              << "\n";
  PluginLoader loader;
  for (auto& s : g_.stages)
    for (int i = 0; i < s.replicas; ++i) {
      auto r = std::make_unique<Replica>();
      r->stage = s.name;
      r->replica = i;
      r->tag = s.name + "/" + std::to_string(i);
      reps_.push_back(std::move(r));
    }
  std::string failure;
  try {
    for (auto& r : reps_) {
      if (opt_.in_process) spawn_thread(*r, loader);
      else spawn(*r);
    }
  } catch (const std::exception& e) {
    failure = std::string("cannot start replicas: ") + e.what();
  }

  int exit_code = 0;
  while (failure.empty()) {
    // Wait for a report or child output.
    std::vector<zmq::pollitem_t> items;
    items.push_back({control_->handle(), 0, ZMQ_POLLIN, 0});
    for (auto& r : reps_)
      if (r->out_fd >= 0) items.push_back({nullptr, r->out_fd, ZMQ_POLLIN, 0});
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
    } catch (const zmq::error_t&) {
      // EINTR from a signal: handled below.
    }
    for (;;) {
      zmq::message_t m;
      if (!control_->recv(m, zmq::recv_flags::dontwait)) break;
      ReplicaReport rep;
      if (decode_report(m.data(), m.size(), rep)) {
        if (!rep.finish_run.empty() && finished_by_.empty())
          finished_by_ = "stage '" + rep.stage + "' (replica " + std::to_string(rep.replica) + ") ended the run: " + rep.finish_run;
        metrics_.update(rep);
      }
    }
    for (auto& r : reps_) pump_output(*r, false);
    for (auto& r : reps_) {
      if (r->pid > 0 && !r->exited && ::waitpid(r->pid, &r->status, WNOHANG) == r->pid) {
        r->exited = true;
        pump_output(*r, true);
        bool ok = WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
        if (!ok && failure.empty()) failure = failure_text(*r);
      }
      if (r->pid <= 0 && r->finished && r->thread.joinable()) {
        r->thread.join();
        if (!r->result.ok && !r->result.stopped && failure.empty()) failure = failure_text(*r);
      }
    }
    metrics_.tick(std::chrono::duration<double>(Clock::now() - start_).count());
    write_files(false);
    // A stage ended the run: replicas that fail while it winds down (e.g.
    // sending to the consumer that just left) do not fail the run.
    if (!finished_by_.empty()) failure.clear();
    if (!failure.empty()) break;
    if (!finished_by_.empty()) {
      clear_progress();
      std::cerr << "catlip: " << finished_by_ << "; stopping the other replicas\n";
      stop_all("finishing");
      break;
    }
    if (int sig = g_signal.load()) {
      clear_progress();
      std::cerr << "catlip: received " << ::strsignal(sig) << ", stopping all replicas\n";
      stop_all("interrupted");
      exit_code = 130;
      break;
    }
    if (all_exited()) break;
    draw_progress(false);
  }
  if (!failure.empty()) {
    clear_progress();
    std::cerr << "catlip: run failed: " << failure << "\n";
    stop_all("stopping after failure");
    exit_code = 1;
  }
  // Final reports may still be queued.
  for (;;) {
    zmq::message_t m;
    if (!control_->recv(m, zmq::recv_flags::dontwait)) break;
    ReplicaReport rep;
    if (decode_report(m.data(), m.size(), rep)) metrics_.update(rep);
  }
  metrics_.tick(std::chrono::duration<double>(Clock::now() - start_).count(), true);
  write_files(true);
  draw_progress(true);
  drawn_lines_ = 0;
  double el = std::chrono::duration<double>(Clock::now() - start_).count();
  {
    std::ofstream sum(run_dir_ + "/summary.json");
    sum << "{\"graph\":\"" << g_.name << "\",\"exit_code\":" << exit_code << ",\"elapsed_s\":" << el
        << ",\"failure\":\"" << (failure.empty() ? "" : "see log") << "\",\"final\":" << metrics_.json_line(el) << "}\n";
  }
  server.stop();
  for (auto& r : reps_)
    if (r->out_fd >= 0) ::close(r->out_fd);
  control_.reset();
  zctx_.reset();
  if (!sock_dir_.empty()) {
    std::error_code ec;
    fs::remove_all(sock_dir_, ec);
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  ::sigaction(SIGHUP, &old_hup, nullptr);
  if (!opt_.quiet) {
    if (exit_code == 0) std::cerr << "catlip: graph '" << g_.name << "' finished in " << el << " s; run directory " << run_dir_ << "\n";
  }
  return exit_code;
}

}  // namespace

int run_graph(const GraphSpec& g, const std::map<std::string, Params>& params, const RunOptions& opt) {
  Supervisor s(g, params, opt);
  return s.run();
}

}  // namespace catlip
