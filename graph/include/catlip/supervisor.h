// catlip/supervisor.h - `catlip run`: turning a validated graph into running
// processes, watching them, and stopping them.
//
// One process per stage replica (catlip-worker, named "catlip:<stage>/<n>"
// in ps), stdout/stderr prefixed with [stage/n], reports aggregated into
// live progress, a Prometheus endpoint and a metrics file. If one replica
// fails, or on SIGINT/SIGTERM, every replica gets SIGTERM, then SIGKILL
// after a grace period; children also die with the supervisor
// (PR_SET_PDEATHSIG), so no process is left behind.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "catlip/graph.h"
#include "catlip/runtime.h"

namespace catlip {

struct RunOptions {
  std::string run_dir;     // overrides [graph] run_dir; default runs/<name>-<time>
  std::string worker_bin;  // default: catlip-worker beside this executable
  int progress = -1;       // -1: live display on a terminal, plain lines otherwise; 0: plain; 1: live
  double plain_interval_s = 5;  // plain progress line period
  double stop_grace_s = 3;      // SIGTERM -> SIGKILL delay
  bool in_process = false;      // replicas as threads over inproc:// (debugging)
  bool quiet = false;           // no progress output at all
};

// Where producer replica `replica` of `stage` binds, and where consumers
// connect to it.
struct Endpoint {
  std::string bind, connect;
};
Endpoint producer_endpoint(const GraphSpec& g, const std::string& stage, int replica,
                           const std::string& sock_dir, bool in_process);
std::string control_endpoint(const std::string& sock_dir, bool in_process);

// The plan for one replica, computed identically by the supervisor and by
// the worker from the resolved graph.
ReplicaPlan make_plan(const GraphSpec& g, const std::string& stage, int replica,
                      const std::string& sock_dir, const std::string& run_dir, bool in_process);

// Runs the graph to completion. `params` are the validated parameters per
// stage (from validate_graph). Returns a cli ExitCode value: 0 success,
// 1 a stage failed, 130 interrupted.
int run_graph(const GraphSpec& g, const std::map<std::string, Params>& params, const RunOptions& opt);

}  // namespace catlip
