// catlip/graph_keys.h - the graph-level keys ([graph]) and the reserved
// stage keys, with their defaults and meaning, for `catlip inspect graph`.
// graph.cpp parses them; this is their one table of documentation.
#pragma once

#include <string>
#include <vector>

namespace catlip {

struct GraphKeyDoc {
  std::string key;
  std::string where;  // "[graph]", "stage", or "[graph], stage"
  std::string default_value;
  std::string doc;
};

const std::vector<GraphKeyDoc>& graph_key_docs();
// The keys the [graph] table accepts (what graph.cpp parses).
std::vector<std::string> graph_table_keys();

}  // namespace catlip
