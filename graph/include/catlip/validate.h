// catlip/validate.h - checking a graph against the stages' schemas before
// anything runs: every problem is reported at once, each with its location.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "catlip/graph.h"
#include "catlip/plugin_loader.h"

namespace catlip {

struct ValidateOptions {
  // The files parameters name exist and can be read (ParamSpec::must_exist,
  // Stage::check_files()): vocabularies, tokenizers, checkpoints, shard
  // patterns, programs. Off for a graph meant for another machine.
  bool check_files = true;
  // Also ask each stage about its remote inputs (Stage::check_urls: a HEAD
  // request per http(s) shard URL, sampled), at most url_timeout_s each.
  bool check_urls = false;
  double url_timeout_s = 10;
  // Check only the files of stages with a replica on this node rank (each
  // node checks its own); -1: every stage.
  int files_of_node = -1;
};

// Checks stage types (loading only the plugins the graph names), parameters
// (unknown, mistyped, out of range, missing), placement, the files
// parameters name (opt), inputs (unknown, missing, a source with inputs),
// cycles, unconsumed transform outputs and replicas, each appended to
// `diags`; the Status is Invalid when any were found (diagnostics_status).
// Fills `resolved` (stage name -> parameters with defaults).
Status validate_graph(const GraphSpec& g, PluginLoader& loader, std::vector<Diagnostic>& diags,
                      std::map<std::string, Params>* resolved = nullptr, const ValidateOptions& opt = {});

// Restarts allowed per stage whose schema says its replicas may be restarted
// (StageSchema::restartable): the stage's max_restarts, else the graph's.
// Stages absent from the map are never restarted.
std::map<std::string, int> restart_budgets(const GraphSpec& g, PluginLoader& loader);

}  // namespace catlip
