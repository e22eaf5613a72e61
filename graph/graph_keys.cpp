#include "catlip/graph_keys.h"

namespace catlip {

const std::vector<GraphKeyDoc>& graph_key_docs() {
  static const std::vector<GraphKeyDoc> docs = {
      {"name", "[graph]", "the file name", "the graph's name (run directory, metrics labels)"},
      {"run_dir", "[graph]", "runs/<name>-<time>", "where logs, metrics and stage outputs go"},
      {"transport", "[graph]", "\"ipc\"", "\"ipc\" within a node, or \"tcp\" for every link"},
      {"host", "[graph]", "\"127.0.0.1\"", "tcp: the address producers are reached at (one node)"},
      {"base_port", "[graph]", "0", "tcp: first port; 0 = ports chosen by the kernel and published (0..65000)"},
      {"prefetch", "[graph], stage", "8", "items in flight per link (credits), the queue bound (1..1048576)"},
      {"max_message_mb", "[graph]", "256", "a larger message is refused (1..4096)"},
      {"metrics_port", "[graph]", "0 (off)", "Prometheus text endpoint port (0..65535)"},
      {"metrics_bind", "[graph]", "\"127.0.0.1\"", "the address the metrics endpoint listens on (an IP literal)"},
      {"report_interval_s", "[graph]", "0.5", "how often each replica reports, its heartbeat (0.01..3600)"},
      {"liveness_timeout_s", "[graph], stage", "30 (>= 10 x report_interval_s)",
       "a running replica silent this long is hung: restarted if its stage is restartable, else the run fails"},
      {"min_samples", "stage", "1 with inputs, 0 for sources",
       "items a stage must receive (a source: emit); fewer fails the run unless a stage ended it"},
      {"max_error_fraction", "[graph], stage", "0.5", "error.* counters over items above this fail the stage (0..1)"},
      {"max_restarts", "[graph], stage", "3",
       "restarts of a failed or hung replica of a restartable stage (0..1000); then the run fails naming it"},
      {"nodes", "[graph]", "1", "hosts the graph runs on (catlip node, catlip run --nodes)"},
      {"join_timeout_s", "[graph]", "60", "coordinator: time for every node to join"},
      {"node_timeout_s", "[graph]", "10", "a node (or the coordinator) silent this long is lost"},
      {"security", "[graph]", "\"curve\"",
       "tcp links and the multi-node join: \"curve\" (authenticated, encrypted) or \"none\""},
      {"secret_file", "[graph]", "(none)",
       "0600 file with the cluster secret (else CATLIP_CLUSTER_SECRET, CATLIP_CLUSTER_SECRET_FILE)"},
      {"type", "stage", "(required)", "\"<plugin>.<stage type>\" (catlip inspect lists them)"},
      {"inputs", "stage", "[]", "the stages this one consumes"},
      {"replicas", "stage", "1", "processes running the stage (on node 0, or over `nodes`)"},
      {"replicas_per_node", "stage", "(unset)", "processes per node, on every node unless `nodes` says"},
      {"nodes", "stage", "[0] (all with replicas_per_node)", "node ranks the stage runs on, or \"all\""},
  };
  return docs;
}

}  // namespace catlip
