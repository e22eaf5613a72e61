// The supervisor's class (supervisor.h's run_graph), shared by its two
// files: supervisor.cpp (starting, the event loop, stopping, the run's end)
// and supervisor_policy.cpp (liveness, outcomes, restarts of the run).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "catlip/cluster.h"
#include "catlip/launcher.h"
#include "catlip/plan.h"
#include "catlip/supervisor.h"
#include "run_reporter.h"
#include "run_restarts.h"

namespace catlip::detail {

using Clock = std::chrono::steady_clock;

inline std::string timestamp() {
  char b[32];
  std::time_t t = std::time(nullptr);
  std::strftime(b, sizeof b, "%Y%m%d-%H%M%S", std::localtime(&t));
  return b;
}

inline double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

inline std::string fmt1(double x) {
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

}  // namespace catlip::detail
