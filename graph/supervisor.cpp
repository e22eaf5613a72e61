// The run's policy: start the launchers, turn their events into decisions
// (liveness, restarts, failures, end-of-run outcomes), decide when the run is
// over and stop everything. What is shown and written is run_reporter.h's.
#include "catlip/supervisor.h"

#include <fcntl.h>
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
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "catlip/cluster.h"
#include "catlip/launch_env.h"
#include "catlip/json.h"
#include "catlip/launcher.h"
#include "catlip/plugin_loader.h"
#include "catlip/run_metrics.h"
#include "catlip/validate.h"
#include "run_reporter.h"
#include "run_restarts.h"

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

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string fmt1(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", x);
  return b;
}

class Supervisor : public LaunchEvents {
 public:
  Supervisor(const GraphSpec& g, const std::map<std::string, Params>& params, const RunOptions& opt)
      : g_(g), params_(params), opt_(opt), report_(g_, opt_), run_restarts_(g_, params_) {}
  int run();

  // LaunchEvents
  void on_line(int node, const std::string& tag, const std::string& line) override {
    report_.line("[" + (g_.nodes > 1 ? "n" + std::to_string(node) + " " : std::string()) + tag + "] " + line);
  }
  void on_report(int node, const ReplicaReport& r) override {
    if (!r.finish_run.empty() && finished_by_.empty())
      finished_by_ = "stage '" + r.stage + "' (replica " + std::to_string(r.replica) + ") ended the run: " + r.finish_run;
    report_.metrics().update(r);
    heard_[{r.stage, r.replica}] = Clock::now();
    note_resumed(r);
    (void)node;
  }
  void on_exit(const ReplicaExit& e) override {
    if (e.node == 0) report_.nodes()[0].exited++;
    exited_.insert({e.stage, e.replica});
    if (!e.ok && !e.stopped) {
      std::string why = failure_of(e);
      if (restarting_) return;  // stopped for a restart of the run
      if (!restart_cause_.empty() && e.stage == restart_of_.stage) return;  // its other ranks fail with it
      std::string note;
      if (!stopping_ && failure_.empty() && restart_cause_.empty()) {
        if (run_restarts_.allows(e.stage, e.config_error, &note)) {
          restart_of_ = e;
          restart_cause_ = why;
          restart_for_node_ = false;
          return;
        }
        // on_node_loss = "wait" across nodes: a rank's failure is most often
        // a lost node's first sign (its peers' collectives break before the
        // coordinator misses the node); the restart waits for lost nodes.
        if (g_.nodes > 1 && g_.on_node_loss != "fail" && note.empty() && run_restarts_.has_ranks(e.stage) &&
            !e.config_error && node_loss_restarts_ < g_.max_restarts) {
          restart_of_ = e;
          restart_cause_ = why;
          restart_for_node_ = true;
          return;
        }
      }
      why += note;
      if (e.node == 0) report_.nodes()[0].failed++;
      if (!stopping_) report_.metrics().mark_failed(e.stage, e.replica, why);
      if (failure_.empty()) failure_ = why;
    }
  }
  void on_restart(const ReplicaExit& e, int attempt, int max) override {
    std::string why = failure_of(e);
    hung_.erase({e.stage, e.replica});
    report_.metrics().mark_restarted(e.stage, e.replica, why);
    heard_[{e.stage, e.replica}] = Clock::now();  // liveness counts from the restart
    report_.line("catlip: restarting stage '" + e.stage + "' replica " + std::to_string(e.replica) +
              (g_.nodes > 1 ? " (node " + std::to_string(e.node) + ")" : std::string()) + " [" +
              std::to_string(attempt) + "/" + std::to_string(max) + "] after: " + why);
  }
  void on_node_lost(int node, const std::string& why) override {
    if (restarting_ || !restart_cause_.empty()) {
      report_.line("catlip: " + why);  // found while the run restarts: it must join again
      return;
    }
    // on_node_loss = "wait" or "shrink": the run restarts, once the node
    // joins again or on the nodes left.
    if (g_.on_node_loss != "fail" && !stopping_ && failure_.empty() && restart_cause_.empty()) {
      if (node_loss_restarts_ < g_.max_restarts) {
        restart_of_ = ReplicaExit{};
        restart_of_.node = node;
        restart_cause_ = why;
        restart_for_node_ = true;
        return;
      }
      if (failure_.empty())
        failure_ = why + " (after " + std::to_string(node_loss_restarts_) + " restart(s) for lost nodes; [graph] "
                   "max_restarts " + std::to_string(g_.max_restarts) + ")";
      return;
    }
    if (failure_.empty()) failure_ = why;
  }

 private:
  std::string setup_run_dir();
  Status start_replicas(const std::atomic<int>& signal);
  EndpointTable listen_node0(const std::string& address, LocalRun& run);
  int event_loop(const std::atomic<int>& signal);
  bool all_exited() const;
  int stop_all(const std::string& why);
  void check_liveness();
  Status check_outcomes() const;
  Status restart_run(const std::atomic<int>& signal);
  void note_resumed(const ReplicaReport& r);
  Status shrink_run(const std::set<int>& lost, std::vector<int>& new_rank);
  static constexpr int kRestartRun = -1;  // event_loop: restart the run from its checkpoint

  GraphSpec g_;
  std::map<std::string, Params> params_;  // resume = true for every stage that has it after a run restart
  RunOptions opt_;
  RunReporter report_;  // progress, metrics files, summary (run_reporter.h)
  RunRestarts run_restarts_;  // restarting the run after a rank failure (run_restarts.h)
  std::string restart_cause_;  // set: the event loop ends and the run restarts
  ReplicaExit restart_of_;     // the rank whose failure restarts it (stage empty: node restart_of_.node was lost)
  RunKeys keys_;  // the run's CURVE keys (make_run_keys), made at the first start
  bool keys_made_ = false;
  bool restart_for_node_ = false;  // counted in node_loss_restarts_, not the stage's max_restarts
  int node_loss_restarts_ = 0;  // restarts after a lost node (on_node_loss = "wait"), at most [graph] max_restarts
  bool restarting_ = false;    // stopping every replica for a restart
  std::string run_dir_;
  zmq::context_t zctx_{1};  // before the launchers: their sockets close first
  std::unique_ptr<SocketDir> sock_dir_;
  NodeListeners listeners_;  // node 0's, until its replicas have them
  std::unique_ptr<Launcher> local_;
  std::unique_ptr<RemoteNodes> remote_;
  std::string failure_;      // first failure: ends the run
  std::string finished_by_;  // set when a stage called finish_run()
  // Liveness: when each replica's latest report arrived, which have exited.
  Clock::time_point replicas_started_ = Clock::now();
  std::map<std::pair<std::string, int>, Clock::time_point> heard_;
  std::set<std::pair<std::string, int>> exited_;
  // Restarts allowed per restartable stage; replicas killed because they
  // hung (their failure is that, not "killed by signal 9").
  std::map<std::string, int> restart_budget_;
  std::map<std::pair<std::string, int>, std::string> hung_;
  std::string failure_of(const ReplicaExit& e) const {
    auto h = hung_.find({e.stage, e.replica});
    return h == hung_.end() ? e.failure : h->second;
  }
  bool stopping_ = false;  // exits from here on are part of stopping
  // The other nodes' views (the coordinator's), or null on one host.
  const std::vector<NodeView>* remote_nodes() const { return remote_ ? &remote_->nodes() : nullptr; }
};

std::string Supervisor::setup_run_dir() {
  std::string d = !opt_.run_dir.empty() ? opt_.run_dir : !g_.run_dir.empty() ? g_.run_dir : "runs/" + g_.name + "-" + timestamp();
  fs::create_directories(d);
  return fs::absolute(d).lexically_normal().string();
}

bool Supervisor::all_exited() const {
  return (!local_ || local_->all_exited()) && (!remote_ || remote_->all_exited());
}

int Supervisor::stop_all(const std::string& why) {
  stopping_ = true;
  int killed = 0;
  if (remote_) {
    // Every node stops at once: remote replicas do not see node 0's vanish first.
    remote_->set_outcome(failure_.empty() && why == "finishing", failure_.empty() ? why : failure_);
    remote_->request_stop(opt_.stop_grace_s);
  }
  if (local_) killed += local_->stop(opt_.stop_grace_s, *this);
  if (remote_) killed += remote_->stop(opt_.stop_grace_s, *this);
  if (killed) report_.line("catlip: " + why + ": killed " + std::to_string(killed) + " replica(s) that did not stop in time");
  return killed;
}

// Node 0's listeners (producer ports read over tcp, group rendezvous ports)
// at `address`, or at the local address towards it when it is not one of
// this host's (e.g. a Kubernetes service address).
EndpointTable Supervisor::listen_node0(const std::string& address, LocalRun& run) {
  report_.nodes()[0].address = address;
  EndpointTable tcp;
  try {
    tcp = listen_for_node(g_, 0, address, g_.base_port, listeners_);
  } catch (const std::exception&) {
    auto found = local_address_towards(address);
    if (!found.ok() || *found == address) throw;
    const std::string local = *found;
    listeners_ = NodeListeners{};
    report_.nodes()[0].address = local;
    tcp = listen_for_node(g_, 0, local, g_.base_port, listeners_);
  }
  run.listen_fds = listeners_.listen_fds;
  run.group_fds = listeners_.group_fds;
  return tcp;
}

// Node 0's tcp listeners, the other nodes' rendezvous, then every launcher.
// Returns OK or why the run could not start.
Status Supervisor::start_replicas(const std::atomic<int>& signal) {
  EndpointTable tcp;
  LocalRun run;
  run.graph = g_;
  run.run_dir = run_dir_;
  run.node_dir = g_.nodes > 1 ? run_dir_ + "/node-0" : run_dir_;
  run.worker_bin = opt_.worker_bin;
  try {
    if (!opt_.in_process) {
      sock_dir_ = std::make_unique<SocketDir>();
      run.sock_dir = sock_dir_->path();
      // Per-stage CURVE keys when tcp links exist; the same for every
      // generation of the run (the other nodes get them once, at join).
      if (!keys_made_) keys_ = make_run_keys(g_), keys_made_ = true;
      run.keys = keys_;
      PluginLoader loader;
      restart_budget_ = run.restarts = restart_budgets(g_, loader);
    }
    if (g_.nodes == 1 && (!tcp_producers(g_, 0).empty() || !group_stages(g_).empty())) {
      auto ip = resolve_host(g_.host);
      if (!ip.ok()) return ip.status().context("cannot resolve [graph] host '" + g_.host + "'");
      tcp = listen_node0(*ip, run);
      if (opt_.in_process) listeners_ = NodeListeners{};  // threads bind the group ports themselves
    }
    if (g_.nodes > 1) {
      auto hp = parse_host_port(opt_.coordinator, 29400);
      if (!hp.ok()) return hp.status().context("--listen");
      auto [chost, cport] = *hp;
      auto resolved = resolve_host(chost);
      if (!resolved.ok()) return resolved.status().context("cannot resolve the coordinator address '" + chost + "'");
      const std::string cip = *resolved;
      // A host name that means loopback only here (Debian maps its own name
      // to 127.0.1.1) would shut the other hosts out: listen on every address.
      bool name_on_loopback = cip.rfind("127.", 0) == 0 && chost != cip;
      if (!remote_) {
        remote_ = std::make_unique<RemoteNodes>(zctx_, g_, name_on_loopback ? "*" : cip, cport, run.keys);
        if (!opt_.quiet)
          std::cerr << "catlip: coordinator at " << (name_on_loopback ? "*" : cip) << ":" << cport
                    << ", waiting up to " << g_.join_timeout_s << " s for " << g_.nodes - 1 << " node(s) to join\n";
      }
      // Node 0's producers listen at the address the other nodes reached it at.
      auto node0 = [&](const std::string& reached_at) { return listen_node0(reached_at.empty() ? cip : reached_at, run); };
      Status joined = remote_->rendezvous(graph_to_toml(g_), run_dir_, plugin_set(g_), node0, tcp, signal);
      if (!joined.ok()) return joined;
      if (!opt_.quiet) {
        std::cerr << "catlip: all " << g_.nodes << " nodes joined:";
        for (auto& n : remote_->nodes()) std::cerr << " " << n.rank << "=" << (n.rank ? n.host : report_.nodes()[0].host);
        std::cerr << "\n";
      }
    }
    run.tcp = tcp;
    if (opt_.in_process) {
      local_ = make_thread_launcher(zctx_, g_, params_, run_dir_, tcp);
    } else {
      run.params = params_;
      fs::create_directories(run.node_dir);
      write_run_file(run.node_dir + "/graph.toml", graph_to_toml(g_));
      write_run_file(run.node_dir + "/endpoints.txt", endpoints_to_text(tcp));
      local_ = make_process_launcher(zctx_, run);
    }
    if (remote_) remote_->start();
    replicas_started_ = Clock::now();
    local_->start();
    release_group_ports(listeners_);  // producer ports stay held: a restarted replica reuses its own
  } catch (const std::exception& e) {
    return Status::Unavailable(std::string("cannot start replicas: ") + e.what());
  }
  return Status::Ok();
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
    report_.metrics().tick(report_.elapsed_s());
    report_.files(false);
    check_liveness();
    if (!finished_by_.empty()) {
      // Replicas that fail while the run winds down (e.g. sending to the
      // consumer that just left) do not fail it.
      failure_.clear();
      report_.clear();
      std::cerr << "catlip: " << finished_by_ << "; stopping the other replicas\n";
      stop_all("finishing");
      failure_.clear();
      return 0;
    }
    if (!failure_.empty()) return 1;
    if (!restart_cause_.empty()) return kRestartRun;
    if (int sig = signal.load()) {
      report_.clear();
      std::cerr << "catlip: received " << ::strsignal(sig) << ", stopping all replicas\n";
      failure_ = std::string("interrupted by ") + ::strsignal(sig);
      stop_all("interrupted");
      return 130;
    }
    if (all_exited()) {
      if (remote_) stop_all("finishing");  // collect every node's goodbye
      return 0;
    }
    report_.progress(false, remote_nodes());
  }
}

int Supervisor::run() {
  run_dir_ = setup_run_dir();
  g_.run_dir = run_dir_;
  write_run_file(run_dir_ + "/graph.toml", graph_to_toml(g_));
  SignalGuard signals;
  report_.open(run_dir_);
  if (!opt_.quiet)
    std::cerr << "catlip: running graph '" << g_.name << "' (" << g_.stages.size() << " stages"
              << (g_.nodes > 1 ? ", " + std::to_string(g_.nodes) + " nodes" : "") << ") in " << run_dir_ << "\n";

  Status started = start_replicas(signals.received());
  failure_ = started.message();
  int exit_code = 1;
  if (failure_.empty()) {
    exit_code = event_loop(signals.received());
    while (exit_code == kRestartRun) {
      Status restarted = restart_run(signals.received());
      if (!restarted.ok()) {
        failure_ = restarted.message();
        exit_code = 1;
        break;
      }
      exit_code = event_loop(signals.received());
    }
  } else if (signals.received()) {
    exit_code = 130;  // interrupted while nodes were joining
    stop_all("interrupted");
  }
  if (exit_code == 1) {
    report_.clear();
    std::cerr << "catlip: run failed: " << failure_ << "\n";
    stop_all("stopping after failure");
  }
  if (local_) local_->handle(*this);  // final reports
  if (exit_code == 0 && local_) {
    // A worker exits after flushing its final report, but the report may
    // still be on its way into our socket: wait (briefly) until every local
    // replica's last report says how it ended, so the outcome checks count
    // what it did.
    auto until = Clock::now() + std::chrono::seconds(2);
    auto all_final = [&] {
      for (auto& slot : all_replicas(g_)) {
        if (slot.node != 0) continue;
        const ReplicaReport* r = report_.metrics().report(slot.stage, slot.replica);
        if (!r || (r->state != ReplicaState::Done && r->state != ReplicaState::Failed &&
                   r->state != ReplicaState::Stopped))
          return false;
      }
      return true;
    };
    while (!all_final() && Clock::now() < until) {
      std::vector<zmq::pollitem_t> items;
      local_->add_poll_items(items);
      try {
        zmq::poll(items.data(), items.size(), std::chrono::milliseconds(20));
      } catch (const zmq::error_t&) {
        // EINTR (a signal): the loop checks its stop flag next
      }
      local_->handle(*this);
    }
  }
  report_.metrics().tick(report_.elapsed_s(), true);
  if (exit_code == 0) {
    // Every replica ended well; did the stages do what the graph asks?
    Status outcomes = check_outcomes();
    if (!outcomes.ok()) {
      failure_ = outcomes.message();
      exit_code = 1;
      report_.clear();
      std::cerr << "catlip: run failed: " << failure_ << "\n";
    }
  }
  report_.files(true);
  auto& node0 = report_.nodes()[0];
  if (node0.status == "running") node0.status = exit_code == 0 ? "ok" : node0.failed ? "failed" : "stopped";
  report_.progress(true, remote_nodes());
  report_.keep_display();
  double el = report_.elapsed_s();
  report_.summary(exit_code, failure_, remote_nodes());
  report_.close();
  if (!opt_.quiet && exit_code == 0)
    std::cerr << "catlip: graph '" << g_.name << "' finished in " << std::round(el * 100) / 100 << " s; run directory "
              << run_dir_ << "\n";
  return exit_code;
}

// A replica still running that has sent no report for its stage's
// liveness_timeout_s (reports come from a thread of their own every
// report_interval_s, from before configure() to exit) is hung or stopped:
// the run fails naming it. Replicas that reported a final state are exiting.
void Supervisor::check_liveness() {
  if (!failure_.empty() || !finished_by_.empty()) return;
  auto now = Clock::now();
  for (auto& slot : all_replicas(g_)) {
    auto key = std::make_pair(slot.stage, slot.replica);
    if (exited_.count(key)) continue;
    const ReplicaReport* r = report_.metrics().report(slot.stage, slot.replica);
    if (r && (r->state == ReplicaState::Done || r->state == ReplicaState::Failed || r->state == ReplicaState::Stopped))
      continue;
    auto it = heard_.find(key);
    double silent = secs(now - (it == heard_.end() ? replicas_started_ : it->second));
    const StageSpec* spec = g_.find(slot.stage);
    double limit = spec && spec->liveness_timeout_s > 0 ? spec->liveness_timeout_s : g_.liveness_timeout_s;
    if (silent <= limit) continue;
    std::string why = "stage '" + slot.stage + "' replica " + std::to_string(slot.replica) + " (node " +
                      std::to_string(slot.node) + ", pid " + (r ? std::to_string(r->pid) : std::string("unknown")) +
                      ") sent nothing for " + fmt1(silent) + " s" + (r ? "" : " since it started") +
                      ": hung or stopped (liveness_timeout_s " + fmt1(limit) + ")";
    // A restartable stage: kill it, and its exit is restarted (or, with no
    // restarts left, fails the run with this reason).
    if (restart_budget_.count(slot.stage) && !hung_.count(key)) {
      bool killed = slot.node == 0 ? local_ && local_->kill_replica(slot.stage, slot.replica)
                                   : remote_ && remote_->kill_replica(slot.stage, slot.replica);
      if (killed) {
        hung_[key] = why;
        heard_[key] = now;
        report_.line("catlip: " + why + "; killing it");
        continue;
      }
    }
    if (hung_.count(key)) continue;  // killed, its exit is on the way
    // A hung rank of a stage with ranks and run restarts left: the run
    // restarts (every replica is stopped, this one killed).
    if (restart_cause_.empty() && run_restarts_.allows(slot.stage, false)) {
      restart_of_ = ReplicaExit{slot.stage, slot.replica, slot.node};
      restart_cause_ = why;
      restart_for_node_ = false;
      return;
    }
    report_.metrics().mark_failed(slot.stage, slot.replica, why);
    if (slot.node == 0) report_.nodes()[0].failed++;
    failure_ = why;
    return;
  }
}

// A rank failed (restart_cause_, restart_of_): every replica is stopped, what
// each counted is kept, and all start again with resume = true for every
// stage that has it. Returns OK or why the run could not start again.
Status Supervisor::restart_run(const std::atomic<int>& signal) {
  const std::string stage = restart_of_.stage;
  const bool for_node = restart_for_node_;
  const int attempt = for_node ? ++node_loss_restarts_ : run_restarts_.record(stage);
  const int max = for_node ? g_.max_restarts : run_restarts_.max(stage);
  RunRestart rr;
  rr.stage = stage;
  rr.replica = restart_of_.replica;
  rr.node = restart_of_.node;
  rr.cause = restart_cause_;
  rr.at_s = report_.elapsed_s();
  const double rejoin_s = g_.on_node_loss == "wait" ? g_.rejoin_timeout_s : g_.join_timeout_s;
  restarting_ = true;
  // The other nodes' agents stay: they stop their replicas and wait for the
  // next generation's ASSIGN.
  if (remote_) {
    remote_->set_outcome(false, restart_cause_);
    remote_->request_stop(opt_.stop_grace_s, rejoin_s + 30);
  }
  stop_all("restarting the run");
  std::string lost;  // nodes that must join again, or that the run goes on without
  std::set<int> lost_ranks;
  if (remote_)
    for (auto& n : remote_->nodes())
      if (n.status == "lost") {
        lost += (lost.empty() ? "" : ", ") + std::to_string(n.rank);
        lost_ranks.insert(n.rank);
      }
  const bool shrink = g_.on_node_loss == "shrink" && !lost_ranks.empty();
  if (local_) local_->handle(*this);  // the last reports of the stopped replicas
  // The step the ranks reached: the largest in the reports of the stages
  // with ranks, the last of which they send as they exit.
  std::string ranked = stage;
  for (auto& s : g_.stages)
    for (int r = 0; r < s.replicas; ++r)
      if (const ReplicaReport* rep = report_.metrics().report(s.name, r)) {
        auto it = rep->gauges.find(kStepGauge);
        if (it == rep->gauges.end() || (!stage.empty() && s.name != stage)) continue;
        rr.step_reached = std::max(rr.step_reached, int64_t(it->second));
        ranked = s.name;
      }
  rr.stage = ranked;
  report_.line("catlip: " + restart_cause_ + "; restarting the run from the newest checkpoint [" +
               std::to_string(attempt) + "/" + std::to_string(max) + "]" +
               (shrink ? " on the nodes left, without node " + lost
                : !lost.empty() ? ", once node " + lost + " has joined again (rejoin_timeout_s " +
                                      param_value_to_string(rejoin_s) + ")"
                                : std::string()) +
               (rr.step_reached >= 0 ? " (stage '" + ranked + "' had reached step " + std::to_string(rr.step_reached) + ")"
                                     : std::string()));
  for (auto& slot : all_replicas(g_)) {
    if (slot.stage == stage && slot.replica == rr.replica) report_.metrics().mark_restarted(stage, slot.replica, rr.cause);
    else report_.metrics().carry_over(slot.stage, slot.replica);
  }
  report_.run_restarts().push_back(rr);
  local_.reset();
  sock_dir_.reset();
  listeners_ = NodeListeners{};
  exited_.clear();
  hung_.clear();
  heard_.clear();
  report_.nodes()[0].exited = report_.nodes()[0].failed = 0;
  restart_cause_.clear();
  failure_.clear();
  stopping_ = restarting_ = false;
  params_ = RunRestarts::resume_params(std::move(params_));
  for (auto& s : g_.stages)  // the graph the other nodes get says so too
    if (params_.count(s.name) && params_.at(s.name).has("resume")) s.params["resume"] = ParamValue(true);
  std::vector<int> new_rank;
  if (shrink) {
    Status shrunk = shrink_run(lost_ranks, new_rank);
    if (!shrunk.ok()) return shrunk.context("cannot go on without node " + lost);
  }
  if (remote_) remote_->next_generation(g_, rejoin_s, new_rank);
  return start_replicas(signal);
}

// on_node_loss = "shrink": the graph re-planned on the nodes left (stages
// over every node lose the lost nodes' replicas; the source's shard split
// follows its replica count), and each stage with ranks keeps its global
// batch by raising accumulate_steps when the new world size divides it.
Status Supervisor::shrink_run(const std::set<int>& lost, std::vector<int>& new_rank) {
  std::map<std::string, int> before;
  for (auto& s : g_.stages) before[s.name] = s.replicas;
  Status shrunk = shrink_graph(g_, lost, new_rank);
  if (!shrunk.ok()) return shrunk;
  report_.metrics().reshape();
  report_.nodes().resize(size_t(g_.nodes));
  std::string notes;
  for (auto& s : g_.stages) {
    const int w = before[s.name], w2 = s.replicas;
    if (!run_restarts_.has_ranks(s.name) || w == w2 || !params_.count(s.name)) continue;
    Params& p = params_.at(s.name);
    if (!p.has("accumulate_steps") || !p.has("batch_size")) continue;
    const int64_t acc = p.get_int("accumulate_steps"), b = p.get_int("batch_size");
    if ((w * acc) % w2 == 0) {
      const int64_t acc2 = w * acc / w2;
      p.set("accumulate_steps", ParamValue(acc2));
      s.params["accumulate_steps"] = ParamValue(acc2);
      notes += "; stage '" + s.name + "': " + std::to_string(w2) + " ranks x accumulate_steps " + std::to_string(acc2) +
               " keep its global batch of " + std::to_string(b * w * acc);
    } else {
      notes += "; stage '" + s.name + "': its global batch goes from " + std::to_string(b * w * acc) + " to " +
               std::to_string(b * w2 * acc) + " (" + std::to_string(w2) + " ranks do not divide " +
               std::to_string(w * acc) + " micro-batches; scale lr by the same factor for the linear rule)";
    }
  }
  report_.line("catlip: the run goes on on " + std::to_string(g_.nodes) + " node" + (g_.nodes == 1 ? "" : "s") + notes);
  return Status::Ok();
}

// The first report after a run restart that says where the stage's ranks
// resumed: the steps of compute the restart cost.
void Supervisor::note_resumed(const ReplicaReport& r) {
  if (report_.run_restarts().empty()) return;
  RunRestart& last = report_.run_restarts().back();
  if (last.resumed_step >= 0 || r.stage != last.stage) return;
  auto it = r.gauges.find(kResumedStepGauge);
  if (it == r.gauges.end()) return;
  last.resumed_step = int64_t(it->second);
  std::string lost = last.step_reached >= 0
                         ? ": " + std::to_string(std::max<int64_t>(0, last.step_reached - last.resumed_step)) +
                               " step(s) of compute lost (it had reached step " + std::to_string(last.step_reached) + ")"
                         : std::string();
  report_.line("catlip: stage '" + r.stage + "' resumed at step " + std::to_string(last.resumed_step) + lost);
}

// End-of-run checks of a run whose replicas all succeeded: each stage's
// min_samples and max_error_fraction. Returns OK or the first violation.
Status Supervisor::check_outcomes() const {
  for (auto& v : report_.metrics().view()) {
    const StageSpec* s = g_.find(v.name);
    if (!s) continue;
    bool source = s->inputs.empty();
    int64_t items = source ? v.items_out : v.items_in;
    // A stage that ended the run (finish_run: a step budget reached) may
    // leave others with nothing: only then is an empty stage fine.
    int64_t min = s->min_samples >= 0 ? s->min_samples : source ? 0 : 1;
    if (finished_by_.empty() && items < min)
      return Status::Invalid("stage '" + v.name + "' " + (source ? "emitted " : "received ") + std::to_string(items) + " item" +
             (items == 1 ? "" : "s") + ", fewer than min_samples " + std::to_string(min) +
             (items == 0 ? ": no data reached it" : "") + " (set min_samples = 0 on the stage if that is expected)");
    int64_t errors = 0;
    std::string named;
    for (auto& [k, c] : v.counters)
      if (k.rfind("error.", 0) == 0 && c > 0) {
        errors += c;
        named += (named.empty() ? "" : ", ") + k + " " + std::to_string(c);
      }
    int64_t denom = source ? v.items_out + errors : v.items_in;
    double limit = s->max_error_fraction >= 0 ? s->max_error_fraction : g_.max_error_fraction;
    if (errors > 0 && denom > 0 && double(errors) / double(denom) > limit)
      return Status::Invalid("stage '" + v.name + "': " + std::to_string(errors) + " errors for " + std::to_string(denom) + " items (" +
             fmt1(100.0 * double(errors) / double(denom)) + "%: " + named + "), above max_error_fraction " +
             param_value_to_string(limit));
  }
  return Status::Ok();
}

}  // namespace

int run_graph(const GraphSpec& g, const std::map<std::string, Params>& params, const RunOptions& opt) {
  Supervisor s(g, params, opt);
  return s.run();
}

}  // namespace catlip
