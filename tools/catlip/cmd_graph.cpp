// catlip run / validate / graph: load a graph, check it against the stage
// schemas, then run it, or print it as Graphviz DOT.
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "catlip/graph.h"
#include "catlip/plugin_loader.h"
#include "catlip/supervisor.h"
#include "catlip/validate.h"
#include "cli.h"
#include "embedded_default.h"

using namespace catlip;
using namespace catlip::cli;

namespace {

const char* kGraphHelp =
    "  GRAPH              a graph TOML file (omit for `run` to use the embedded default graph)\n"
    "  --set S.P=VALUE    override parameter P of stage S (or graph.KEY); VALUE is TOML\n"
    "                     (42, 1.5, true, [\"a\"], \"text\"); anything else is a string. Repeatable.\n"
    "  ${VAR} and ${VAR:-default} in string values are replaced from the environment.\n";

// Loads and validates; prints every problem. Returns 0 or an exit code.
int load_and_validate(const Args& a, bool allow_default, GraphSpec& g, std::map<std::string, Params>& params) {
  std::vector<Diagnostic> diags;
  LoadOptions lo;
  lo.sets = a.all("set");
  bool ok;
  if (a.positional().empty()) {
    if (!allow_default) {
      std::cerr << "catlip: missing GRAPH argument\n";
      return kUsage;
    }
    ok = load_graph_string(kEmbeddedDefaultGraph, "<embedded configs/default.toml>", lo, g, diags);
  } else {
    ok = load_graph(a.positional()[0], lo, g, diags);
  }
  PluginLoader loader;
  if (ok || !g.stages.empty()) ok = validate_graph(g, loader, diags, &params) && ok;
  for (auto& d : diags) std::cerr << d.str() << "\n";
  if (!diags.empty()) {
    std::cerr << diags.size() << " error" << (diags.size() == 1 ? "" : "s") << " in " << g.file
              << "; nothing was started\n";
    return kInvalid;
  }
  return kOk;
}

int cmd_run(int argc, char** argv) {
  Args a(argc, argv, {"in-process", "quiet", "help"});
  if (a.has("help")) {
    std::cout << "usage: catlip run [GRAPH] [--set S.P=V]... [--run-dir DIR] [--progress auto|live|plain]\n"
                 "                  [--in-process] [--quiet]\n\n"
                 "Validates GRAPH, then runs every stage replica as its own process (catlip-worker),\n"
                 "connected by ZeroMQ queues, until all sources are exhausted and every stage has\n"
                 "flushed. Ctrl-C / SIGTERM stops all replicas within a few seconds.\n\n"
              << kGraphHelp
              << "  --run-dir DIR      where logs, metrics.jsonl, metrics.prom and outputs go\n"
                 "                     (default [graph] run_dir, else runs/<name>-<time>)\n"
                 "  --progress MODE    live redraw on a terminal (auto), or plain periodic lines\n"
                 "  --in-process       run replicas as threads over inproc:// (debugging)\n"
                 "  --quiet            no progress output\n\n"
                 "Exit codes: 0 done, 1 a stage failed, 3 invalid graph, 130 interrupted.\n";
    return kOk;
  }
  if (!a.error().empty()) { std::cerr << "catlip run: " << a.error() << "\n"; return kUsage; }
  if (auto u = a.unknown({"set", "run-dir", "progress", "in-process", "quiet"}); !u.empty()) {
    std::cerr << "catlip run: unknown option " << u[0] << " (see catlip run --help)\n";
    return kUsage;
  }
  GraphSpec g;
  std::map<std::string, Params> params;
  if (int rc = load_and_validate(a, true, g, params)) return rc;
  RunOptions opt;
  opt.run_dir = a.get("run-dir");
  opt.in_process = a.has("in-process");
  opt.quiet = a.has("quiet");
  std::string prog = a.get("progress", "auto");
  opt.progress = prog == "live" ? 1 : prog == "plain" ? 0 : -1;
  try {
    return run_graph(g, params, opt);
  } catch (const std::exception& e) {
    std::cerr << "catlip run: " << e.what() << "\n";
    return kFailed;
  }
}

int cmd_validate(int argc, char** argv) {
  Args a(argc, argv, {"help"});
  if (a.has("help")) {
    std::cout << "usage: catlip validate GRAPH [--set S.P=V]...\n\n"
                 "Checks GRAPH without starting anything: TOML syntax, stage types (loading their\n"
                 "plugins), parameters (unknown, mistyped, out of range, missing), inputs, cycles,\n"
                 "outputs nobody consumes, replicas. Every problem is printed as file:line:column.\n\n"
              << kGraphHelp << "\nExit codes: 0 valid, 3 invalid, 2 usage.\n";
    return kOk;
  }
  GraphSpec g;
  std::map<std::string, Params> params;
  if (int rc = load_and_validate(a, false, g, params)) return rc;
  int replicas = 0;
  for (auto& s : g.stages) replicas += s.replicas;
  std::cout << g.file << ": valid graph '" << g.name << "': " << g.stages.size() << " stages, " << replicas
            << " processes\n";
  return kOk;
}

int cmd_graph(int argc, char** argv) {
  Args a(argc, argv, {"help"});
  if (a.has("help")) {
    std::cout << "usage: catlip graph [GRAPH] [--set S.P=V]...\n\n"
                 "Prints the graph as Graphviz DOT (stages, replicas, queues), e.g.\n"
                 "  catlip graph configs/default.toml | dot -Tsvg > graph.svg\n";
    return kOk;
  }
  GraphSpec g;
  std::map<std::string, Params> params;
  if (int rc = load_and_validate(a, true, g, params)) return rc;
  std::cout << graph_to_dot(g);
  return kOk;
}

}  // namespace

CATLIP_COMMAND("run", "Run a graph (or the embedded default) as processes", cmd_run);
CATLIP_COMMAND("validate", "Check a graph against the stage schemas; start nothing", cmd_validate);
CATLIP_COMMAND("graph", "Print a graph as Graphviz DOT", cmd_graph);
