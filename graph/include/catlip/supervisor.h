// catlip/supervisor.h - `catlip run` and the coordinator of `catlip node`:
// turning a validated graph into running replicas, watching them, stopping
// them.
//
// The replicas of node 0 run as catlip-worker processes on this host (named
// "catlip:<stage>/<n>" in ps, output prefixed with [stage/n]); with nodes > 1
// the others run under the `catlip node` agents that join this coordinator
// (cluster.h). Reports from every node feed one live progress display, one
// Prometheus endpoint, one metrics.jsonl and one summary.json. If one replica
// or node fails, or on SIGINT/SIGTERM, every replica on every node gets
// SIGTERM, then SIGKILL after a grace period; workers also die with their
// parent (PR_SET_PDEATHSIG), so no process outlives the run.
#pragma once

#include <map>
#include <string>

#include "catlip/graph.h"
#include "catlip/params.h"

namespace catlip {

struct RunOptions {
  std::string run_dir;     // overrides [graph] run_dir; default runs/<name>-<time>
  std::string worker_bin;  // default: catlip-worker beside this executable
  int progress = -1;       // -1: live display on a terminal, plain lines otherwise; 0: plain; 1: live
  double plain_interval_s = 5;  // plain progress line period
  double stop_grace_s = 3;      // SIGTERM -> SIGKILL delay
  bool in_process = false;      // replicas as threads over inproc:// (debugging)
  bool quiet = false;           // no progress output at all
  // With g.nodes > 1: where nodes 1..N-1 join ("HOST:PORT"); HOST is also
  // the address node 0's producers are reached at.
  std::string coordinator;
};

// Runs the graph to completion. `params` are the validated parameters per
// stage (from validate_graph). Returns a cli ExitCode value: 0 success,
// 1 a stage or node failed, 130 interrupted.
int run_graph(const GraphSpec& g, const std::map<std::string, Params>& params, const RunOptions& opt);

}  // namespace catlip
