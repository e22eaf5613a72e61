// The reporting half of a run (the supervisor keeps the policy: liveness,
// outcomes, restarts, when to stop): the live or plain progress display,
// log lines above it, metrics.jsonl, metrics.prom and the Prometheus
// endpoint, and summary.json. Everything it shows comes from the replica
// reports in its RunMetrics and the node views the supervisor refreshes.
#pragma once

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "catlip/graph.h"
#include "catlip/run_metrics.h"
#include "catlip/supervisor.h"

namespace catlip {

// Writes `text` to `path` (0644, close-on-exec, so forked workers never
// inherit it); best effort, as the run's own files are reports, not results.
void write_run_file(const std::string& path, const std::string& text);

// One restart of the whole run from its checkpoint after a rank of a stage
// with ranks failed (supervisor.cpp); summary.json's "run_restarts".
struct RunRestart {
  std::string stage;
  int replica = 0, node = 0;
  std::string cause;          // the failure that started it
  double at_s = 0;            // seconds into the run
  int64_t step_reached = -1;  // the stage's last reported train.step before the failure (-1 unknown)
  int64_t resumed_step = -1;  // the step its ranks resumed at (train.resumed_step; -1 not yet)
};

class RunReporter {
 public:
  using Clock = std::chrono::steady_clock;

  // `g` must outlive the reporter. Node 0 is this host (name, pid).
  RunReporter(const GraphSpec& g, const RunOptions& opt);
  ~RunReporter();
  RunReporter(const RunReporter&) = delete;
  RunReporter& operator=(const RunReporter&) = delete;

  // Opens run_dir/metrics.jsonl, decides live vs plain output and, with
  // [graph] metrics_port, serves Prometheus text until close().
  void open(const std::string& run_dir);
  void close();

  RunMetrics& metrics() { return metrics_; }
  const RunMetrics& metrics() const { return metrics_; }
  // One view per node; the supervisor updates node 0's counters and status,
  // refresh_nodes() the others' from the coordinator.
  std::vector<NodeView>& nodes() { return nodes_; }
  double elapsed_s() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  // A line above the live display (which is redrawn later).
  void line(const std::string& text);
  // Removes the live display before free text is printed.
  void clear();
  // The progress display: at most every 0.5 s live, every plain_interval_s
  // plain; `force` draws now. `remote`: the other nodes' views, or null.
  void progress(bool force, const std::vector<NodeView>* remote);
  // Forgets the lines drawn, so the last display stays on screen.
  void keep_display() { drawn_lines_ = 0; }
  // metrics.jsonl (once a second) and the Prometheus text; `final` also
  // writes metrics.prom.
  void files(bool final);
  // summary.json: exit code, failures, nodes, this host's CPU seconds
  // ("cpu_s": workers, supervisor, total), final figures.
  void summary(int exit_code, const std::string& failure, const std::vector<NodeView>* remote);
  // The run restarts so far, in order (the supervisor appends and completes them).
  std::vector<RunRestart>& run_restarts() { return run_restarts_; }

 private:
  void refresh_nodes(const std::vector<NodeView>* remote);
  nlohmann::ordered_json cpu_json() const;

  const GraphSpec& g_;
  RunOptions opt_;
  RunMetrics metrics_;
  std::vector<NodeView> nodes_;
  std::string run_dir_;
  bool tty_ = false;
  int drawn_lines_ = 0;
  Clock::time_point start_ = Clock::now(), last_draw_{}, last_plain_{}, last_file_{};
  std::mutex prom_mu_;
  std::string prom_text_;
  FILE* metrics_file_ = nullptr;
  double cpu_self0_ = 0, cpu_children0_ = 0;  // CPU seconds at open()
  MetricsServer server_;
  std::vector<RunRestart> run_restarts_;
};

}  // namespace catlip
