// Fuzzes the TOML graph loader (graph/graph.cpp: load_graph_string,
// placement) and validation (graph/validate.cpp) against sanitized builds of
// the shards, image, text and testing plugins (LibTorch-free; train.* and
// eval.* types are reported as unknown), plus graph_to_toml / graph_to_dot.
//
// Input: a graph file, as written (configs/*.toml are the seeds).
//
// Properties: no crash; every failure comes with a diagnostic; a graph that
// loads re-loads from graph_to_toml (what the workers read) to the same
// settings, stages and parameters (doubles exactly) and the same TOML;
// topo_order lists every stage once.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "catlip/graph.h"
#include "catlip/plugin_loader.h"
#include "catlip/validate.h"
#include "fuzz_common.h"

using namespace catlip;

static PluginLoader* loader;

// Equal, counting NaN equal to NaN (a NaN parameter must survive the trip).
static bool same_double(double a, double b) { return a == b || (a != a && b != b); }
static bool same(const ParamValue& a, const ParamValue& b) {
  if (a.index() != b.index()) return false;
  if (auto* x = std::get_if<double>(&a)) return same_double(*x, std::get<double>(b));
  if (auto* x = std::get_if<std::vector<double>>(&a)) {
    auto& y = std::get<std::vector<double>>(b);
    if (x->size() != y.size()) return false;
    for (size_t i = 0; i < x->size(); ++i)
      if (!same_double((*x)[i], y[i])) return false;
    return true;
  }
  return a == b;
}

static std::string diag_text(const std::vector<Diagnostic>& d) {
  std::string s;
  for (auto& x : d) s += x.str() + "\n";
  return s;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // ${VAR} interpolation reads the environment: make it deterministic.
  setenv("CATLIP_FUZZ_VAR", "fuzz", 1);
  loader = new PluginLoader(std::vector<std::string>{CATLIP_FUZZ_PLUGIN_DIR});
  // Load the plugins up front, so their coverage counters are known from the start.
  std::vector<std::string> errors;
  auto all = loader->load_all(&errors);
  if (all.size() < 4) {
    std::fprintf(stderr, "fuzz_graph: loaded %zu plugins from %s (want 4)\n", all.size(), CATLIP_FUZZ_PLUGIN_DIR);
    for (auto& e : errors) std::fprintf(stderr, "  %s\n", e.c_str());
    std::abort();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  LoadOptions opt;
  GraphSpec g;
  std::vector<Diagnostic> diags;
  bool ok = load_graph_string(text, "fuzz.toml", opt, g, diags).ok();
  if (!ok) {
    FUZZ_CHECK(!diags.empty(), "load failed without a diagnostic");
    return 0;
  }
  FUZZ_CHECK(diags.empty(), "load succeeded with diagnostics:\n%s", diag_text(diags).c_str());

  std::map<std::string, Params> resolved;
  std::vector<Diagnostic> vd;
  bool valid = validate_graph(g, *loader, vd, &resolved).ok();
  FUZZ_CHECK(valid == vd.empty(), "validate_graph returned %d with %zu diagnostics", valid, vd.size());

  std::vector<std::string> order = topo_order(g);
  FUZZ_CHECK(order.size() == g.stages.size(), "topo_order has %zu of %zu stages", order.size(), g.stages.size());
  FUZZ_CHECK(std::set<std::string>(order.begin(), order.end()).size() == order.size(), "topo_order repeats");
  (void)graph_to_dot(g);

  // The resolved TOML is what the workers read back.
  std::string t1 = graph_to_toml(g);
  GraphSpec g2;
  std::vector<Diagnostic> d2;
  LoadOptions raw;
  raw.interpolate_env = false;
  bool ok2 = load_graph_string(t1, "resolved.toml", raw, g2, d2).ok();
  FUZZ_CHECK(ok2, "graph_to_toml output does not load:\n%s--- TOML:\n%s", diag_text(d2).c_str(), t1.c_str());
  FUZZ_CHECK(g2.name == g.name && g2.host == g.host && g2.run_dir == g.run_dir && g2.nodes == g.nodes &&
                 g2.report_interval_s == g.report_interval_s && g2.join_timeout_s == g.join_timeout_s &&
                 g2.node_timeout_s == g.node_timeout_s && g2.stages.size() == g.stages.size(),
             "graph settings changed in graph_to_toml:\n%s", t1.c_str());
  for (size_t i = 0; i < g.stages.size(); ++i) {
    const StageSpec &a = g.stages[i], &b = g2.stages[i];
    FUZZ_CHECK(a.name == b.name && a.type == b.type && a.inputs == b.inputs && a.replicas == b.replicas &&
                   a.params.size() == b.params.size(),
               "stage %s changed in graph_to_toml:\n%s", a.name.c_str(), t1.c_str());
    for (auto& [k, v] : a.params) {
      auto it = b.params.find(k);
      FUZZ_CHECK(it != b.params.end() && same(v, it->second), "stage %s parameter %s changed in graph_to_toml:\n%s",
                 a.name.c_str(), k.c_str(), t1.c_str());
    }
  }
  std::string t2 = graph_to_toml(g2);
  FUZZ_CHECK(t1 == t2, "graph_to_toml round trip differs:\n%s--- vs:\n%s", t1.c_str(), t2.c_str());
  return 0;
}
