#include <sstream>

#include "catlip/graph.h"

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
    o << "\"" << (s.replicas > 1 ? ", peripheries=2" : "") << "];\n";
  }
  for (auto& s : g.stages) {
    int prefetch = s.prefetch ? s.prefetch : g.prefetch;
    for (auto& in : s.inputs) {
      const StageSpec* u = g.find(in);
      int up = u ? u->replicas : 1;
      // Queue bound: each consumer replica holds at most `prefetch` items per
      // upstream replica.
      o << "  \"" << esc(in) << "\" -> \"" << esc(s.name) << "\" [label=\"" << g.transport << " queue\\n"
        << up << "x" << s.replicas << " links, <= " << prefetch * up * s.replicas << " in flight\"];\n";
    }
  }
  o << "}\n";
  return o.str();
}

}  // namespace catlip
