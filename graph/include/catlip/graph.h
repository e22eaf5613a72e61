// catlip/graph.h - the TOML graph: parsing, overrides and the in-memory model.
//
//   [graph]
//   name = "example"
//   metrics_port = 9464          # 0 = no Prometheus endpoint
//   [stages.read]
//   type = "shards.source"       # "<plugin>.<stage>"
//   urls = ["data/train-{000000..000003}.tar"]
//   [stages.decode]
//   type = "image.decode"
//   inputs = ["read"]
//   replicas = 2
//
// Keys of a stage other than the reserved ones (stage_keys() in
// graph_keys.h, where the [graph] keys are declared too) are the stage's
// parameters, checked against its schema by validate_graph(). Every value
// keeps its file:line:column for diagnostics.
//
// Placement: a stage runs `replicas` (or `replicas_per_node`) replicas on
// each node it is placed on: `nodes = [0, 2]`, `nodes = "all"`, default
// node 0 only, or every node when `replicas_per_node` is given. Replica
// indices are global per stage and node-major (node 0's first).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "catlip/params.h"
#include "catlip/status.h"

namespace catlip {

struct SourceLoc {
  std::string file;
  int line = 0, column = 0;
  std::string str() const;  // "file:line:column" (or just "file")
  // A value that came from the command line, not the file: str() is the
  // argument itself ("--set decode.size=-3"); line is -1 so that code
  // asking "was this key given?" (line != 0) still sees it as given.
  static SourceLoc argument(const std::string& arg) { return SourceLoc{arg, -1, 0}; }
};

struct Diagnostic {
  SourceLoc loc;
  std::string stage;  // empty for graph-level problems
  std::string message;
  std::string str() const;  // "file:12:3: error: stage 'decode': unknown parameter 'sise'"
};

struct StageSpec {
  std::string name, type;
  std::vector<std::string> inputs;
  int prefetch = 0;  // 0: the graph's default
  // Outcome and liveness checks (supervisor); see GraphSpec for defaults.
  double liveness_timeout_s = 0;   // 0: the graph's
  int64_t min_samples = -1;        // items the stage must receive; -1: 1 if it has inputs, else 0
  double max_error_fraction = -1;  // error.* counters / items; -1: the graph's
  int max_restarts = -1;           // restarts of a failed replica (restartable stages); -1: the graph's.
                                   // A stage with ranks (schema group, `resume`): restarts of the whole
                                   // run from its newest checkpoint after a rank fails; -1: none
  double restart_window_s = 0;     // restarts counted over this window; 0: the whole run
  std::map<std::string, ParamValue> params;
  std::map<std::string, SourceLoc> param_locs;
  SourceLoc loc, type_loc, inputs_loc, replicas_loc, nodes_loc;

  // Placement as written.
  int per_node = 1;             // `replicas` or `replicas_per_node`
  bool per_node_key = false;    // written as replicas_per_node (default nodes: all)
  bool nodes_all = false;       // nodes = "all"
  std::vector<int> nodes_spec;  // nodes = [..]; empty: the default
  // Placement resolved against the node count (place_stages).
  int replicas = 1;                // total over all nodes
  std::vector<int> replica_node;   // node rank of each global replica
  std::vector<int> node_list() const;  // distinct node ranks, ascending
  int node_of(int replica) const { return replica_node.empty() ? 0 : replica_node[size_t(replica)]; }
};

struct GraphSpec {
  std::string file;  // where it was read from
  std::string name;
  int metrics_port = 0;
  std::string transport = "ipc";  // ipc | tcp
  std::string host = "127.0.0.1";  // tcp: address producers are reached at
  int base_port = 0;               // tcp: first port (0: pick free ports at run time)
  int prefetch = 8;                // credits per upstream replica
  int shm_prefetch = 32;           // ... on a node-local link carrying shared-memory payloads (at least prefetch)
  int64_t max_message_mb = 256;
  bool shm = true;                 // node-local links carry large payloads in shared memory
  int64_t shm_mb = 64;             // each producer's shared-memory pool
  int64_t shm_threshold_kb = 64;   // fields at least this large go through the pool
  std::string run_dir;             // default: runs/<name>-<timestamp>
  double report_interval_s = 0.5;
  int nodes = 1;                   // hosts the graph runs on (`catlip node`, `catlip run --nodes`)
  double join_timeout_s = 60;      // coordinator: time for every node to join
  double node_timeout_s = 10;      // a node (or the coordinator) silent this long is lost
  std::string on_node_loss = "fail";  // fail | wait (restart when the node joins again) | shrink (on the nodes left)
  double rejoin_timeout_s = 300;   // on_node_loss = "wait": how long a lost node has to join again
  double liveness_timeout_s = 30;  // a running replica with no report this long is hung
  double max_error_fraction = 0.5; // a stage whose error.* counters exceed this share of its items fails the run
  std::string metrics_bind = "127.0.0.1";  // address of the Prometheus endpoint
  int max_restarts = 3;            // default per stage: restarts of a failed replica of a restartable stage
  std::string security = "curve";  // tcp links: "curve" (authenticated, encrypted) or "none"
  std::string secret_file;         // cluster secret for multi-node joins (else CATLIP_CLUSTER_SECRET[_FILE])
  std::vector<StageSpec> stages;   // in file order

  const StageSpec* find(const std::string& name) const;
  std::vector<const StageSpec*> consumers_of(const std::string& name) const;
};

struct LoadOptions {
  std::vector<std::string> sets;  // "stage.param=value" or "graph.key=value"
  bool interpolate_env = true;    // expand ${VAR} and ${VAR:-default} in strings
  int nodes = 0;                  // > 0: node count overriding [graph] nodes (--nodes)
};

// Reads and parses a graph file. Syntax and structure problems (not a table,
// reserved keys of the wrong type, bad --set, unset ${VAR}) are appended to
// `diags`, each naming its line; the Status is Invalid when any were found
// (its message: the first, and how many more), NotFound when the file cannot
// be read. `out` holds what could be read either way, so a caller can go on
// to validate it and report every problem at once.
Status load_graph(const std::string& path, const LoadOptions& opt, GraphSpec& out,
                  std::vector<Diagnostic>& diags);
Status load_graph_string(const std::string& text, const std::string& virtual_path,
                         const LoadOptions& opt, GraphSpec& out, std::vector<Diagnostic>& diags);

// The Status of the diagnostics appended since `before`: OK when none,
// else Invalid with the first one's text and a count of the rest.
Status diagnostics_status(const std::vector<Diagnostic>& diags, size_t before = 0);

// Resolves every stage's placement against g.nodes (replica counts and the
// node of each replica); placement problems, such as a node rank >= the
// node count, are appended to `diags`. load_graph* call it.
Status place_stages(GraphSpec& g, std::vector<Diagnostic>& diags);

// The graph on the nodes left when the ranks in `lost` are gone (node 0
// cannot be): the others are renumbered in order, explicit `nodes` lists are
// remapped, and placement is redone, so stages over every node lose the lost
// nodes' replicas. new_rank[old rank] is the new rank, -1 for a lost one.
// Invalid, naming the stage, when a stage runs only on lost nodes.
Status shrink_graph(GraphSpec& g, const std::set<int>& lost, std::vector<int>& new_rank);

// Serializes a (resolved) graph back to TOML, e.g. for the run directory.
std::string graph_to_toml(const GraphSpec& g);
// Graphviz DOT: stages, replicas and the queues between them.
std::string graph_to_dot(const GraphSpec& g);
// Stage names in an order where inputs come first (graph must be acyclic).
std::vector<std::string> topo_order(const GraphSpec& g);

}  // namespace catlip
