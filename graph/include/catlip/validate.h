// catlip/validate.h - checking a graph against the stages' schemas before
// anything runs: every problem is reported at once, each with its location.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "catlip/graph.h"
#include "catlip/plugin_loader.h"

namespace catlip {

// Checks stage types (loading only the plugins the graph names), parameters
// (unknown, mistyped, out of range, missing), inputs (unknown, missing, a
// source with inputs), cycles, unconsumed transform outputs and replicas.
// On success fills `resolved` (stage name -> parameters with defaults).
bool validate_graph(const GraphSpec& g, PluginLoader& loader, std::vector<Diagnostic>& diags,
                    std::map<std::string, Params>* resolved = nullptr);

// Restarts allowed per stage whose schema says its replicas may be restarted
// (StageSchema::restartable): the stage's max_restarts, else the graph's.
// Stages absent from the map are never restarted.
std::map<std::string, int> restart_budgets(const GraphSpec& g, PluginLoader& loader);

}  // namespace catlip
