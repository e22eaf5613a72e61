// catlip/graph_keys.h - the keys of a graph file that are not stage
// parameters, each declared once: the [graph] table's keys (held by
// GraphSpec) and a stage table's reserved keys (held by StageSpec).
//
// A declaration gives the key's ParamSpec (type, range, choices, doc), how
// its default reads, and the field that holds it. load_graph() checks and
// stores values with it, graph_to_toml() writes them back with it, and
// `catlip inspect graph` and docs/graph-reference.md print it
// (graph_keys_markdown(); a test keeps the doc's table equal to it).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "catlip/graph.h"
#include "catlip/params.h"

namespace catlip {

template <class Holder>
struct GraphKey {
  ParamSpec spec;           // name, type, range, choices, doc (default_value unused)
  std::string default_doc;  // how the default reads; "" = the holder's initializer
  bool checks_type = false;  // set() checks the value itself (e.g. nodes: ranks or "all")
  // Stores a value that passed spec.check(); returns "" or why it is refused.
  std::function<std::string(Holder&, const ParamValue&)> set;
  // The value graph_to_toml() writes; nullopt when unset (the default applies).
  std::function<std::optional<ParamValue>(const Holder&)> get;
  // Where the key was written, for diagnostics about it (stage keys only).
  SourceLoc StageSpec::*loc = nullptr;
  // A stage key that overrides the [graph] key of the same name.
  bool overrides_graph = false;
};

const std::vector<GraphKey<GraphSpec>>& graph_keys();
const std::vector<GraphKey<StageSpec>>& stage_keys();

// The reference of every key: a Markdown table (docs/graph-reference.md)
// and the text `catlip inspect graph` prints.
std::string graph_keys_markdown();
std::string graph_keys_text();

}  // namespace catlip
