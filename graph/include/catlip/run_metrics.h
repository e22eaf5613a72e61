// catlip/run_metrics.h - aggregating replica reports into per-stage figures
// for the progress display, the Prometheus endpoint and the metrics file.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "catlip/graph.h"
#include "catlip/report.h"

namespace catlip {

struct StageView {
  std::string name, type;
  int replicas = 1, done = 0, failed = 0, running = 0;
  int64_t items_in = 0, items_out = 0, bytes_out = 0, queue = 0, errors = 0;
  int64_t total = -1;  // sum of replica totals when all are known
  double in_rate = 0, out_rate = 0, mb_rate = 0;  // per second, recent window
  double busy_pct = 0, wait_in_pct = 0, wait_out_pct = 0;  // of wall time, averaged over replicas
  std::vector<std::string> failures;  // one text per failed replica (killed, hung, failed)
  int restarts = 0;                   // replicas restarted after a failure (max_restarts)
  std::vector<std::string> restart_reasons;  // why, one per restart (the first 20)
  std::map<std::string, int64_t> counters;  // summed over replicas
  std::map<std::string, double> gauges;     // replica 0's (or the latest)
};

// One node of a multi-host run, as the coordinator sees it.
struct NodeView {
  int rank = 0;
  std::string host, address;  // host name and the address its producers listen on
  int pid = 0;
  std::string status = "waiting";  // waiting, joined, running, ok, failed, stopped, lost, missing
  int replicas = 0, exited = 0, failed = 0;
  int64_t items_in = 0, items_out = 0, bytes_out = 0;  // summed over its replicas
  double last_seen_s = 0;  // seconds since the run started
};
// One line per node for the progress display.
std::string render_nodes(const std::vector<NodeView>& nodes, double elapsed_s, bool tty);
// The nodes as a JSON array, for summary.json.
nlohmann::ordered_json nodes_json(const std::vector<NodeView>& nodes);

class RunMetrics {
 public:
  explicit RunMetrics(const GraphSpec& g);
  void update(const ReplicaReport& r);
  // A replica failed without saying so in a report (killed by a signal,
  // exited non-zero, hung): it counts as failed, with this text.
  void mark_failed(const std::string& stage, int replica, const std::string& why);
  // A replica was restarted after `why`: what its previous incarnation
  // counted is kept (its successor's reports start from zero).
  void mark_restarted(const std::string& stage, int replica, const std::string& why);
  // Keeps what a replica counted, its successor starting from zero, without
  // counting a restart of its own (every replica at a restart of the run).
  void carry_over(const std::string& stage, int replica);
  // The graph's replica counts changed (a run that shrank to fewer nodes).
  void reshape();
  // Recomputes rates; `now_s` is seconds since the run started. With
  // `whole_run`, rates are averages over the whole run (for the summary).
  void tick(double now_s, bool whole_run = false);
  std::vector<StageView> view() const { return views_; }
  const ReplicaReport* report(const std::string& stage, int replica) const;
  std::string prometheus() const;
  // One metrics.jsonl record: {"t": now_s, "stages": {name: {...}}}.
  nlohmann::ordered_json json_record(double now_s) const;

 private:
  struct Prev {
    double t = 0;
    int64_t in = 0, out = 0, bytes = 0;
    double busy = 0, wait_in = 0, wait_out = 0;
  };
  const GraphSpec& g_;
  std::map<std::pair<std::string, int>, ReplicaReport> latest_;
  std::map<std::pair<std::string, int>, std::string> failed_;  // mark_failed
  struct Carried {
    int64_t items_in = 0, items_out = 0, bytes_out = 0;
    std::map<std::string, int64_t> counters;
    std::vector<std::string> reasons;
    int restarts = 0;
  };
  std::map<std::string, Carried> carried_;  // per stage: previous incarnations of restarted replicas
  std::map<std::string, Prev> prev_;
  std::vector<StageView> views_;
};

// "12.3k", "1.2M".
std::string human_count(double v);
// Progress text: one line per stage plus an overall line. `tty` selects the
// compact live form (the caller redraws it in place).
std::string render_progress(const std::vector<StageView>& v, double elapsed_s, bool tty);

// A minimal HTTP server (Boost.Asio) answering every request with the text
// the provider returns, for Prometheus scraping at /metrics. Its sockets are
// close-on-exec: worker processes do not inherit them.
class MetricsServer {
 public:
  MetricsServer();
  ~MetricsServer();
  // Listens at address:port ("127.0.0.1" by default in graphs: [graph]
  // metrics_bind). Throws std::runtime_error if it cannot be bound.
  void start(const std::string& address, int port, std::function<std::string()> provider);
  void stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace catlip
