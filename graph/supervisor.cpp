// The coordinator's event loop: start the launchers, turn their events into
// progress and files, decide when the run is over, stop everything.
#include "catlip/supervisor.h"

#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>

#include "catlip/cluster.h"
#include "catlip/launch_env.h"
#include "catlip/launcher.h"
#include "catlip/plugin_loader.h"
#include "catlip/run_metrics.h"

namespace fs = std::filesystem;

namespace catlip {

namespace {

using Clock = std::chrono::steady_clock;

std::string timestamp() {
  char b[32];
  std::time_t t = std::time(nullptr);
  std::strftime(b, sizeof b, "%Y%m%d-%H%M%S", std::localtime(&t));
  return b;
}

std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (c == '\n') o += "\\n";
    else if (static_cast<unsigned char>(c) >= 0x20) o += c;
  }
  return o + "\"";
}

class Supervisor : public LaunchEvents {
 public:
  Supervisor(const GraphSpec& g, const std::map<std::string, Params>& params, const RunOptions& opt)
      : g_(g), params_(params), opt_(opt), metrics_(g_) {}
  int run();

  // LaunchEvents
  void on_line(int node, const std::string& tag, const std::string& line) override {
    emit_line("[" + (g_.nodes > 1 ? "n" + std::to_string(node) + " " : std::string()) + tag + "] " + line);
  }
  void on_report(int node, const ReplicaReport& r) override {
    if (!r.finish_run.empty() && finished_by_.empty())
      finished_by_ = "stage '" + r.stage + "' (replica " + std::to_string(r.replica) + ") ended the run: " + r.finish_run;
    metrics_.update(r);
    (void)node;
  }
  void on_exit(const ReplicaExit& e) override {
    if (e.node == 0) nodes_[0].exited++;
    if (!e.ok && !e.stopped) {
      if (e.node == 0) nodes_[0].failed++;
      if (failure_.empty()) failure_ = e.failure;
    }
  }
  void on_node_lost(int node, const std::string& why) override {
    (void)node;
    if (failure_.empty()) failure_ = why;
  }

 private:
  std::string setup_run_dir();
  void init_nodes();
  std::string start_replicas(const std::atomic<int>& signal);
  EndpointTable listen_node0(const std::string& address, LocalRun& run);
  int event_loop(const std::atomic<int>& signal);
  void emit_line(const std::string& line);
  void draw_progress(bool force);
  void clear_progress();
  void write_files(bool final);
  void refresh_nodes();
  bool all_exited() const;
  int stop_all(const std::string& why);
  void write_summary(int exit_code, double elapsed);

  GraphSpec g_;
  const std::map<std::string, Params>& params_;
  RunOptions opt_;
  RunMetrics metrics_;
  std::string run_dir_;
  std::vector<NodeView> nodes_;
  zmq::context_t zctx_{1};  // before the launchers: their sockets close first
  std::unique_ptr<SocketDir> sock_dir_;
  NodeListeners listeners_;  // node 0's, until its replicas have them
  std::unique_ptr<Launcher> local_;
  std::unique_ptr<RemoteNodes> remote_;
  bool tty_ = false;
  int drawn_lines_ = 0;
  Clock::time_point start_ = Clock::now(), last_draw_{}, last_plain_{}, last_file_{};
  std::mutex prom_mu_;
  std::string prom_text_;
  std::ofstream metrics_file_;
  std::string failure_;      // first failure: ends the run
  std::string finished_by_;  // set when a stage called finish_run()
};

std::string Supervisor::setup_run_dir() {
  std::string d = !opt_.run_dir.empty() ? opt_.run_dir : !g_.run_dir.empty() ? g_.run_dir : "runs/" + g_.name + "-" + timestamp();
  fs::create_directories(d);
  return fs::absolute(d).lexically_normal().string();
}

void Supervisor::emit_line(const std::string& line) {
  clear_progress();
  std::cerr << line << "\n";
}

void Supervisor::clear_progress() {
  if (!tty_ || drawn_lines_ == 0) return;
  std::cerr << "\033[" << drawn_lines_ << "A\033[J";
  drawn_lines_ = 0;
}

void Supervisor::refresh_nodes() {
  if (remote_) {
    auto& rn = remote_->nodes();
    for (size_t k = 1; k < rn.size(); ++k) nodes_[k] = rn[k];
  }
  for (auto& n : nodes_) n.items_in = n.items_out = n.bytes_out = 0;
  for (auto& s : all_replicas(g_))
    if (auto* r = metrics_.report(s.stage, s.replica)) {
      auto& n = nodes_[size_t(s.node)];
      n.items_in += r->items_in;
      n.items_out += r->items_out;
      n.bytes_out += r->bytes_out;
    }
}

void Supervisor::draw_progress(bool force) {
  if (opt_.quiet) return;
  auto now = Clock::now();
  double el = std::chrono::duration<double>(now - start_).count();
  auto text = [&](bool live) {
    std::string t = render_progress(metrics_.view(), el, live);
    if (g_.nodes > 1) {
      refresh_nodes();
      t += render_nodes(nodes_, el, live);
    }
    return t;
  };
  if (tty_) {
    if (!force && now - last_draw_ < std::chrono::milliseconds(500)) return;
    last_draw_ = now;
    clear_progress();
    std::string t = text(true);
    std::cerr << t << std::flush;
    drawn_lines_ = static_cast<int>(std::count(t.begin(), t.end(), '\n'));
  } else {
    if (!force && now - last_plain_ < std::chrono::duration<double>(opt_.plain_interval_s)) return;
    last_plain_ = now;
    std::cerr << text(false) << std::flush;
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

bool Supervisor::all_exited() const {
  return (!local_ || local_->all_exited()) && (!remote_ || remote_->all_exited());
}

int Supervisor::stop_all(const std::string& why) {
  int killed = 0;
  if (remote_) {
    // Every node stops at once: remote replicas do not see node 0's vanish first.
    remote_->set_outcome(failure_.empty() && why == "finishing", failure_.empty() ? why : failure_);
    remote_->request_stop(opt_.stop_grace_s);
  }
  if (local_) killed += local_->stop(opt_.stop_grace_s, *this);
  if (remote_) killed += remote_->stop(opt_.stop_grace_s, *this);
  if (killed) emit_line("catlip: " + why + ": killed " + std::to_string(killed) + " replica(s) that did not stop in time");
  return killed;
}

void Supervisor::write_summary(int exit_code, double el) {
  refresh_nodes();
  std::ofstream sum(run_dir_ + "/summary.json");
  sum << "{\"graph\":" << json_str(g_.name) << ",\"exit_code\":" << exit_code << ",\"elapsed_s\":" << el
      << ",\"failure\":" << json_str(failure_) << ",\"nodes\":" << nodes_json(nodes_)
      << ",\"final\":" << metrics_.json_line(el) << "}\n";
}

// Node 0's listeners (producer ports read over tcp, group rendezvous ports)
// at `address`, or at the local address towards it when it is not one of
// this host's (e.g. a Kubernetes service address).
EndpointTable Supervisor::listen_node0(const std::string& address, LocalRun& run) {
  nodes_[0].address = address;
  EndpointTable tcp;
  try {
    tcp = listen_for_node(g_, 0, address, g_.base_port, listeners_);
  } catch (const std::exception&) {
    std::string err, local = local_address_towards(address, &err);
    if (local.empty() || local == address) throw;
    listeners_ = NodeListeners{};
    nodes_[0].address = local;
    tcp = listen_for_node(g_, 0, local, g_.base_port, listeners_);
  }
  run.listen_fds = listeners_.listen_fds;
  run.group_fds = listeners_.group_fds;
  return tcp;
}

// Node 0's tcp listeners, the other nodes' rendezvous, then every launcher.
// Returns "" or why the run could not start.
std::string Supervisor::start_replicas(const std::atomic<int>& signal) {
  EndpointTable tcp;
  LocalRun run{g_, 0, run_dir_, g_.nodes > 1 ? run_dir_ + "/node-0" : run_dir_, "", {}, {}, {}, opt_.worker_bin};
  try {
    if (!opt_.in_process) {
      sock_dir_ = std::make_unique<SocketDir>();
      run.sock_dir = sock_dir_->path();
    }
    if (g_.nodes == 1 && (!tcp_producers(g_, 0).empty() || !group_stages(g_).empty())) {
      std::string err, ip = resolve_host(g_.host, &err);
      if (ip.empty()) return "cannot resolve [graph] host '" + g_.host + "': " + err;
      tcp = listen_node0(ip, run);
      if (opt_.in_process) listeners_ = NodeListeners{};  // threads bind the group ports themselves
    }
    if (g_.nodes > 1) {
      auto [chost, cport] = parse_host_port(opt_.coordinator, 29400);
      std::string err, cip = resolve_host(chost, &err);
      if (cip.empty()) return "cannot resolve the coordinator address '" + chost + "': " + err;
      // A host name that means loopback only here (Debian maps its own name
      // to 127.0.1.1) would shut the other hosts out: listen on every address.
      bool name_on_loopback = cip.rfind("127.", 0) == 0 && chost != cip;
      remote_ = std::make_unique<RemoteNodes>(zctx_, g_, name_on_loopback ? "*" : cip, cport);
      if (!opt_.quiet)
        std::cerr << "catlip: coordinator at " << (name_on_loopback ? "*" : cip) << ":" << cport << ", waiting up to "
                  << g_.join_timeout_s << " s for " << g_.nodes - 1 << " node(s) to join\n";
      // Node 0's producers listen at the address the other nodes reached it at.
      auto node0 = [&](const std::string& reached_at) { return listen_node0(reached_at.empty() ? cip : reached_at, run); };
      std::string why = remote_->rendezvous(graph_to_toml(g_), run_dir_, plugin_set(g_), node0, tcp, signal);
      if (!why.empty()) return why;
      if (!opt_.quiet) {
        std::cerr << "catlip: all " << g_.nodes << " nodes joined:";
        for (auto& n : remote_->nodes()) std::cerr << " " << n.rank << "=" << (n.rank ? n.host : nodes_[0].host);
        std::cerr << "\n";
      }
    }
    run.tcp = tcp;
    if (opt_.in_process) {
      local_ = make_thread_launcher(zctx_, g_, params_, run_dir_, tcp);
    } else {
      fs::create_directories(run.node_dir);
      std::ofstream(run.node_dir + "/graph.toml") << graph_to_toml(g_);
      std::ofstream(run.node_dir + "/endpoints.txt") << endpoints_to_text(tcp);
      local_ = make_process_launcher(zctx_, run);
    }
    if (remote_) remote_->start();
    local_->start();
    listeners_ = NodeListeners{};  // the replicas hold the listening sockets now
  } catch (const std::exception& e) {
    return std::string("cannot start replicas: ") + e.what();
  }
  return "";
}

// Until every replica has exited, one fails, a stage ends the run, or a
// signal: poll the launchers, feed their events into progress and files.
int Supervisor::event_loop(const std::atomic<int>& signal) {
  for (;;) {
    std::vector<zmq::pollitem_t> items;
    if (local_) local_->add_poll_items(items);
    if (remote_) remote_->add_poll_items(items);
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
    } catch (const zmq::error_t&) {
      // EINTR from a signal: handled below.
    }
    if (local_) local_->handle(*this);
    if (remote_) remote_->handle(*this);
    metrics_.tick(std::chrono::duration<double>(Clock::now() - start_).count());
    write_files(false);
    if (!finished_by_.empty()) {
      // Replicas that fail while the run winds down (e.g. sending to the
      // consumer that just left) do not fail it.
      failure_.clear();
      clear_progress();
      std::cerr << "catlip: " << finished_by_ << "; stopping the other replicas\n";
      stop_all("finishing");
      failure_.clear();
      return 0;
    }
    if (!failure_.empty()) return 1;
    if (int sig = signal.load()) {
      clear_progress();
      std::cerr << "catlip: received " << ::strsignal(sig) << ", stopping all replicas\n";
      failure_ = std::string("interrupted by ") + ::strsignal(sig);
      stop_all("interrupted");
      return 130;
    }
    if (all_exited()) {
      if (remote_) stop_all("finishing");  // collect every node's goodbye
      return 0;
    }
    draw_progress(false);
  }
}

int Supervisor::run() {
  run_dir_ = setup_run_dir();
  g_.run_dir = run_dir_;
  std::ofstream(run_dir_ + "/graph.toml") << graph_to_toml(g_);
  tty_ = !opt_.quiet && (opt_.progress == 1 || (opt_.progress == -1 && ::isatty(2)));
  metrics_file_.open(run_dir_ + "/metrics.jsonl");
  SignalGuard signals;
  MetricsServer server;
  if (g_.metrics_port > 0)
    server.start(g_.metrics_port, [this] {
      std::lock_guard<std::mutex> l(prom_mu_);
      return prom_text_;
    });
  init_nodes();
  if (!opt_.quiet)
    std::cerr << "catlip: running graph '" << g_.name << "' (" << g_.stages.size() << " stages"
              << (g_.nodes > 1 ? ", " + std::to_string(g_.nodes) + " nodes" : "") << ") in " << run_dir_ << "\n";

  failure_ = start_replicas(signals.received());
  int exit_code = 1;
  if (failure_.empty()) exit_code = event_loop(signals.received());
  else if (signals.received()) {
    exit_code = 130;  // interrupted while nodes were joining
    stop_all("interrupted");
  }
  if (exit_code == 1) {
    clear_progress();
    std::cerr << "catlip: run failed: " << failure_ << "\n";
    stop_all("stopping after failure");
  }
  if (local_) local_->handle(*this);  // final reports
  metrics_.tick(std::chrono::duration<double>(Clock::now() - start_).count(), true);
  write_files(true);
  if (nodes_[0].status == "running") nodes_[0].status = exit_code == 0 ? "ok" : nodes_[0].failed ? "failed" : "stopped";
  draw_progress(true);
  drawn_lines_ = 0;
  double el = std::chrono::duration<double>(Clock::now() - start_).count();
  write_summary(exit_code, el);
  server.stop();
  if (!opt_.quiet && exit_code == 0)
    std::cerr << "catlip: graph '" << g_.name << "' finished in " << std::round(el * 100) / 100 << " s; run directory "
              << run_dir_ << "\n";
  return exit_code;
}

void Supervisor::init_nodes() {
  nodes_.resize(size_t(g_.nodes));
  for (int k = 0; k < g_.nodes; ++k) {
    nodes_[size_t(k)].rank = k;
    nodes_[size_t(k)].replicas = static_cast<int>(replicas_on_node(g_, k).size());
  }
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  nodes_[0].host = host;
  nodes_[0].pid = static_cast<int>(::getpid());
  nodes_[0].status = "running";
}

}  // namespace

int run_graph(const GraphSpec& g, const std::map<std::string, Params>& params, const RunOptions& opt) {
  Supervisor s(g, params, opt);
  return s.run();
}

}  // namespace catlip
