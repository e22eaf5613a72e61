// The run's policy: start the launchers, turn their events into decisions
// (liveness, restarts, failures, end-of-run outcomes), decide when the run is
// over and stop everything. What is shown and written is run_reporter.h's.
#include "catlip/supervisor.h"
#include "supervisor_impl.h"

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
namespace detail {

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

}  // namespace detail

int run_graph(const GraphSpec& g, const std::map<std::string, Params>& params, const RunOptions& opt) {
  detail::Supervisor s(g, params, opt);
  return s.run();
}

}  // namespace catlip
