// catlip/launcher.h - starting, watching and stopping a set of replicas.
//
// One interface, three implementations: ProcessLauncher (catlip-worker
// processes on this host), ThreadLauncher (replicas as threads over inproc://,
// for debugging), and RemoteNodes (cluster.h: the replicas of other hosts,
// run by their `catlip node` agents). The supervisor's event loop polls every
// launcher it has and reacts to the events they deliver.
#pragma once

#include <signal.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "catlip/plan.h"
#include "catlip/report.h"

namespace catlip {

struct ReplicaExit {
  std::string stage;
  int replica = 0, node = 0;
  bool ok = false;       // finished (or ended the run) without error
  bool stopped = false;  // stopped on request
  bool config_error = false;  // failed in its parameters or configure(): would fail the same way again
  std::string failure;   // "stage 'x' (replica 3, node 1) failed: ..." when !ok && !stopped
};

// ReplicaExit::failure for a replica: "stage 'x' (replica 3, node 1) failed:
// ERROR [WHY]" (the node only when nodes > 1). A leading "error: " of ERROR
// (a worker's stderr line) is dropped: "failed: error: ..." says it twice.
std::string failure_text(const std::string& stage, int replica, int node, int nodes, const std::string& error,
                         const std::string& why);

// What launchers report; implemented by the supervisor (and by the node
// agent, which forwards everything to the coordinator).
class LaunchEvents {
 public:
  virtual ~LaunchEvents() = default;
  virtual void on_line(int node, const std::string& tag, const std::string& line) = 0;
  virtual void on_report(int node, const ReplicaReport& r) = 0;
  virtual void on_exit(const ReplicaExit& e) = 0;
  // A whole node failed or left (RemoteNodes only).
  virtual void on_node_lost(int node, const std::string& why) { (void)node; (void)why; }
  // Optional: a failed replica of a restartable stage is being restarted
  // (attempt of max); `why` is its failure. on_exit comes only for its
  // final exit.
  virtual void on_restart(const ReplicaExit& failed, int attempt, int max) {
    (void)failed;
    (void)attempt;
    (void)max;
  }
};

class Launcher {
 public:
  virtual ~Launcher() = default;
  // Required: starts the replicas. Throws std::runtime_error if one cannot start.
  virtual void start() = 0;
  // Optional: what the event loop should wait on (default: nothing, polled
  // every loop turn).
  virtual void add_poll_items(std::vector<zmq::pollitem_t>& items) { (void)items; }
  // Required: delivers what is ready without blocking.
  virtual void handle(LaunchEvents& ev) = 0;
  // Required: stops every replica still running (SIGTERM, then SIGKILL after
  // grace_s), delivering their last output; returns how many were killed.
  virtual int stop(double grace_s, LaunchEvents& ev) = 0;
  // Required: true once no replica of this launcher runs.
  virtual bool all_exited() const = 0;
  // Optional: kills one replica (SIGKILL), e.g. one found hung; its exit is
  // then handled like any failure (restarted if allowed). Returns false if
  // this launcher does not run it (default: none).
  virtual bool kill_replica(const std::string& stage, int replica) {
    (void)stage;
    (void)replica;
    return false;
  }
};

// Where a node's worker processes find their files.
struct LocalRun {
  GraphSpec graph;             // resolved (placement done, run_dir set)
  int node = 0;
  std::string run_dir;         // the run directory (shared by every node when on a shared filesystem)
  std::string node_dir;        // where graph.toml and endpoints.txt for this node's workers are
  std::string sock_dir;        // private ipc directory of this node
  EndpointTable tcp;           // every tcp producer endpoint of the run
  std::vector<std::pair<std::string, int>> listen_fds;  // tag -> listening fd (owned by the caller)
  std::vector<std::pair<std::string, int>> group_fds;   // tag -> reserved group port (owned by the caller)
  std::string worker_bin;      // default: catlip-worker beside this executable
  RunKeys keys;                // CURVE keys of this node's stages (empty: plain tcp)
  std::map<std::string, int> restarts;  // stage -> restarts allowed per replica (restart_budgets)
  std::map<std::string, Params> params;  // stage -> resolved parameters (validate_graph)
};

// catlip-worker processes for the replicas of one node. Each runs in its own
// process group, dies with this process (PR_SET_PDEATHSIG), has stdout and
// stderr read line by line, and pushes reports to a local ipc socket.
std::unique_ptr<Launcher> make_process_launcher(zmq::context_t& zctx, const LocalRun& run);

// Replicas as threads sharing `zctx` (inproc:// endpoints).
std::unique_ptr<Launcher> make_thread_launcher(zmq::context_t& zctx, const GraphSpec& g,
                                               const std::map<std::string, Params>& params,
                                               const std::string& run_dir, const EndpointTable& tcp = {});

// The directory of the running executable (workers are found beside it).
std::string executable_dir();

// A private 0700 directory for ipc:// sockets (paths are limited to ~107
// bytes, so it lives in /tmp, not in the run directory), removed with
// everything in it when this object goes away. It holds supervisor.pid;
// making one first removes the catlip-* directories whose supervisor is
// gone (killed with SIGKILL, say).
class SocketDir {
 public:
  SocketDir();  // throws std::runtime_error
  ~SocketDir();
  SocketDir(const SocketDir&) = delete;
  SocketDir& operator=(const SocketDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Catches SIGINT, SIGTERM and SIGHUP while it lives (ignoring SIGPIPE) and
// restores the previous handlers when it goes away. received() is the last
// signal caught, 0 if none.
class SignalGuard {
 public:
  SignalGuard();
  ~SignalGuard();
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;
  static const std::atomic<int>& received();

 private:
  struct sigaction old_[3];
};

}  // namespace catlip
