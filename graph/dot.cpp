// graph_to_dot (catlip/graph.h): a graph as Graphviz DOT, with replicas, placement and queues.
#include <sstream>

#include "catlip/graph.h"
#include "catlip/plan.h"

namespace catlip {

static std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}

std::string graph_to_dot(const GraphSpec& g) {
  std::ostringstream o;
  o << "digraph \"" << esc(g.name) << "\" {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n";
  for (auto& s : g.stages) {
    o << "  \"" << esc(s.name) << "\" [label=\"" << esc(s.name) << "\\n" << esc(s.type);
    if (s.replicas > 1) o << "\\nx" << s.replicas << " replicas";
    if (g.nodes > 1) {
      auto nodes = s.node_list();
      o << "\\n" << s.per_node << " per node on node" << (nodes.size() > 1 ? "s " : " ");
      for (size_t i = 0; i < nodes.size(); ++i) o << (i ? "," : "") << nodes[i];
    }
    o << "\"" << (s.replicas > 1 ? ", peripheries=2" : "") << "];\n";
  }
  for (auto& s : g.stages) {
    int prefetch = s.prefetch ? s.prefetch : g.prefetch;
    for (auto& in : s.inputs) {
      const StageSpec* u = g.find(in);
      if (!u) continue;
      // Queue bound: each consumer replica holds at most `prefetch` items per
      // upstream replica it reads from.
      size_t links = 0;
      for (int r = 0; r < s.replicas; ++r) links += upstream_replicas(*u, s, r).size();
      std::string how = g.nodes == 1 ? g.transport : node_local_edge(*u, s) ? "node-local" : "all-to-all (tcp across nodes)";
      o << "  \"" << esc(in) << "\" -> \"" << esc(s.name) << "\" [label=\"" << how << " queue\\n" << links
        << (links == 1 ? " link, <= " : " links, <= ") << prefetch * links << " in flight\"];\n";
    }
  }
  o << "}\n";
  return o.str();
}

}  // namespace catlip
