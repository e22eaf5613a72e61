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
// Keys of a stage other than the reserved ones (type, inputs, replicas,
// prefetch) are the stage's parameters, checked against its schema by
// validate_graph(). Every value keeps its file:line:column for diagnostics.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "catlip/params.h"

namespace catlip {

struct SourceLoc {
  std::string file;
  int line = 0, column = 0;
  std::string str() const;  // "file:line:column" (or just "file")
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
  int replicas = 1;
  int prefetch = 0;  // 0: the graph's default
  std::map<std::string, ParamValue> params;
  std::map<std::string, SourceLoc> param_locs;
  SourceLoc loc, type_loc, inputs_loc, replicas_loc;
};

struct GraphSpec {
  std::string file;  // where it was read from
  std::string name;
  int metrics_port = 0;
  std::string transport = "ipc";  // ipc | tcp
  std::string host = "127.0.0.1";  // tcp: address producers are reached at
  int base_port = 0;               // tcp: first port (0: pick free ports at run time)
  int prefetch = 8;                // credits per upstream replica
  int64_t max_message_mb = 256;
  std::string run_dir;             // default: runs/<name>-<timestamp>
  double report_interval_s = 0.5;
  std::vector<StageSpec> stages;   // in file order

  const StageSpec* find(const std::string& name) const;
  std::vector<const StageSpec*> consumers_of(const std::string& name) const;
};

struct LoadOptions {
  std::vector<std::string> sets;  // "stage.param=value" or "graph.key=value"
  bool interpolate_env = true;    // expand ${VAR} and ${VAR:-default} in strings
};

// Reads and parses a graph file. Syntax and structure problems (not a table,
// reserved keys of the wrong type, bad --set, unset ${VAR}) are appended to
// `diags`; returns false if any were found.
bool load_graph(const std::string& path, const LoadOptions& opt, GraphSpec& out,
                std::vector<Diagnostic>& diags);
bool load_graph_string(const std::string& text, const std::string& virtual_path,
                       const LoadOptions& opt, GraphSpec& out, std::vector<Diagnostic>& diags);

// Serializes a (resolved) graph back to TOML, e.g. for the run directory.
std::string graph_to_toml(const GraphSpec& g);
// Graphviz DOT: stages, replicas and the queues between them.
std::string graph_to_dot(const GraphSpec& g);
// Stage names in an order where inputs come first (graph must be acyclic).
std::vector<std::string> topo_order(const GraphSpec& g);

}  // namespace catlip
