// catlip run / validate / graph: load a graph, check it against the stage
// schemas, then run it, or print it as Graphviz DOT.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "catlip/cluster.h"
#include "catlip/graph.h"
#include "catlip/launch_env.h"
#include "catlip/plan.h"
#include "catlip/plugin_loader.h"
#include "catlip/security.h"
#include "catlip/supervisor.h"
#include "catlip/validate.h"
#include "cli.h"
#include "embedded_default.h"

using namespace catlip;
using namespace catlip::cli;

namespace {

const char* kGraphHelp =
    "  GRAPH              a graph TOML file\n"
    "  --set S.P=VALUE    override parameter P of stage S (or graph.KEY); VALUE is TOML\n"
    "                     (42, 1.5, true, [\"a\"], \"text\"); anything else is a string. Repeatable.\n"
    "                     A bad value is reported as '--set S.P=VALUE: error: ...'.\n"
    "  ${VAR} and ${VAR:-default} in string values are replaced from the environment.\n"
    "  --no-check-files   do not check that the files parameters name (vocabularies, tokenizers,\n"
    "                     checkpoints, shard patterns, programs) exist and can be read\n"
    "  --check-urls       also send a HEAD request to http(s) shard URLs (up to 16 per pattern:\n"
    "                     first, last and evenly spaced), 10 s at most each\n";

// `catlip run --nodes N --listen 127.0.0.1:P` with CURVE on and no secret
// set anywhere: every node is on this host, so a secret made for this run
// only is as good as a shared one. It goes into this process's environment
// (the coordinator reads it there) and the export line for the agents is
// printed. Never for an address other hosts could reach: a host name that
// only resolves to loopback here (Debian maps its own name to 127.0.1.1)
// makes the coordinator listen on every interface, so only a loopback
// literal or "localhost" counts.
void one_run_secret_for_loopback(const GraphSpec& g, const std::string& listen) {
  if (g.nodes <= 1 || g.security != "curve" || !cluster_secret(g.secret_file).empty()) return;
  auto hp = parse_host_port(listen, 0);
  if (!hp.ok()) return;  // the supervisor reports the bad address with its own message
  const std::string& host = hp.value().first;
  bool loopback = host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1" || host == "[::1]";
  if (!loopback) return;  // node 0 then refuses, naming the missing secret
  std::string secret = random_secret_hex();
  ::setenv("CATLIP_CLUSTER_SECRET", secret.c_str(), 1);
  std::cerr << "catlip run: no cluster secret set; made one for this run (the coordinator listens on "
            << host << " only). Start the other " << g.nodes - 1 << " node(s) of this host with:\n"
            << "  export CATLIP_CLUSTER_SECRET=" << secret << "\n";
}

// --nodes N (0 when absent); -1 after printing a usage error.
int nodes_option(const Args& a, const char* cmd) {
  if (!a.has("nodes")) return 0;
  long long n = a.get_int("nodes", -1);
  if (n < 1 || n > 100000) {
    std::cerr << "catlip " << cmd << ": --nodes expects a node count >= 1, got '" << a.get("nodes") << "'\n";
    return -1;
  }
  return static_cast<int>(n);
}

// Loads and validates; prints every problem. Returns 0 or an exit code.
int load_and_validate(const Args& a, bool allow_default, GraphSpec& g, std::map<std::string, Params>& params,
                      int nodes = 0, bool check_files = true) {
  std::vector<Diagnostic> diags;
  LoadOptions lo;
  lo.sets = a.all("set");
  lo.nodes = nodes;
  bool ok;
  if (a.positional().empty()) {
    if (!allow_default) {
      std::cerr << "catlip: missing GRAPH argument\n";
      return kUsage;
    }
    ok = load_graph_string(kEmbeddedDefaultGraph, "<embedded configs/default.toml>", lo, g, diags).ok();
  } else {
    ok = load_graph(a.positional()[0], lo, g, diags).ok();
  }
  PluginLoader loader;
  // Files are checked where they are read: with several nodes, this node
  // (node 0) checks its own stages' files and every agent its own.
  ValidateOptions vo;
  vo.check_files = check_files && !a.has("no-check-files");
  vo.check_urls = check_files && a.has("check-urls");
  vo.files_of_node = g.nodes > 1 ? 0 : -1;
  if (ok || !g.stages.empty()) ok = validate_graph(g, loader, diags, &params, vo).ok() && ok;
  for (auto& d : diags) std::cerr << d.str() << "\n";
  if (!diags.empty()) {
    std::cerr << diags.size() << " error" << (diags.size() == 1 ? "" : "s") << " in " << g.file
              << "; nothing was started\n";
    return kInvalid;
  }
  return kOk;
}

const Syntax kRun{"catlip run",
                  "usage: catlip run [GRAPH] [--set S.P=V]... [--run-dir DIR] [--progress auto|live|plain]\n"
                  "                  [--in-process] [--quiet] [--nodes N --listen HOST:PORT] [--check-urls]\n",
                  {"set", "run-dir", "progress", "in-process", "quiet", "nodes", "listen", "no-check-files", "check-urls"}, 0, 1};

int cmd_run(int argc, char** argv) {
  Args a(argc, argv, {"in-process", "quiet", "help", "no-check-files", "check-urls"});
  if (a.has("help")) {
    std::cout << kRun.usage << "\n"
                 "Validates GRAPH, then runs every stage replica as its own process (catlip-worker),\n"
                 "connected by ZeroMQ queues, until all sources are exhausted and every stage has\n"
                 "flushed. Ctrl-C / SIGTERM stops all replicas within a few seconds.\n\n"
              << kGraphHelp
              << "  --run-dir DIR      where logs, metrics.jsonl, metrics.prom and outputs go\n"
                 "                     (default [graph] run_dir, else runs/<name>-<time>)\n"
                 "  --progress MODE    live redraw on a terminal (auto), or plain periodic lines\n"
                 "  --in-process       run replicas as threads over inproc:// (debugging)\n"
                 "  --quiet            no progress output\n"
                 "                     (GRAPH omitted: the embedded default graph)\n"
                 "  --nodes N          run on N hosts (default [graph] nodes, else 1): this host is node 0,\n"
                 "                     the coordinator; it waits for N-1 `catlip node` agents to join\n"
                 "  --listen HOST:PORT where those nodes join (HOST: this host's address as they reach it)\n\n"
                 "Exit codes: 0 done, 1 a stage or node failed, 3 invalid graph, 130 interrupted.\n";
    return kOk;
  }
  if (int rc = check_syntax(a, kRun)) return rc;
  int nodes = nodes_option(a, "run");
  if (nodes < 0) return kUsage;
  GraphSpec g;
  std::map<std::string, Params> params;
  if (int rc = load_and_validate(a, true, g, params, nodes)) return rc;
  if (g.nodes > 1 && a.get("listen").empty()) {
    std::cerr << "catlip run: a graph on " << g.nodes << " nodes needs --listen HOST:PORT, the address the other "
              << "nodes join at (or run `catlip node` on every host)\n";
    return kUsage;
  }
  if (g.nodes > 1 && a.has("in-process")) {
    std::cerr << "catlip run: --in-process runs on one host only\n";
    return kUsage;
  }
  RunOptions opt;
  opt.run_dir = a.get("run-dir");
  opt.in_process = a.has("in-process");
  opt.quiet = a.has("quiet");
  std::string prog = a.get("progress", "auto");
  opt.progress = prog == "live" ? 1 : prog == "plain" ? 0 : -1;
  opt.coordinator = a.get("listen");
  try {
    one_run_secret_for_loopback(g, opt.coordinator);
    return run_graph(g, params, opt);
  } catch (const std::exception& e) {
    std::cerr << "catlip run: " << e.what() << "\n";
    return kFailed;
  }
}

const Syntax kResume{"catlip resume",
                     "usage: catlip resume RUN_DIR [--set S.P=V]... [--progress auto|live|plain] [--quiet]\n"
                     "                     [--nodes N --listen HOST:PORT]\n",
                     {"set", "progress", "quiet", "nodes", "listen", "no-check-files", "check-urls"}, 1, 1};

// catlip resume RUN_DIR: `catlip run RUN_DIR/graph.toml --run-dir RUN_DIR`
// with `resume = true` for every stage whose schema has that parameter (the
// trainers), so a run stopped by a crash, a lost node or a time limit
// continues from its newest valid checkpoint and exact data position with one
// command. graph.toml is the resolved graph the run wrote when it started
// (overrides and ${ENV} applied), so nothing else is needed; `--set` still
// overrides (after the resume settings).
int cmd_resume(int argc, char** argv) {
  Args a(argc, argv, {"quiet", "help", "no-check-files", "check-urls"});
  if (a.has("help")) {
    std::cout << kResume.usage << "\n"
                 "Continues the run in RUN_DIR: runs RUN_DIR/graph.toml (the resolved graph the run wrote\n"
                 "when it started) in RUN_DIR again, with resume = true for every stage that has that\n"
                 "parameter (train.*: the newest valid checkpoint, its step, optimizer, EMA, schedule and\n"
                 "data position; the sources replay and the trainer skips exactly what it consumed).\n"
                 "Other options as `catlip run`; --set overrides after the resume settings, e.g.\n"
                 "--set train.replicas=1 --set train.accumulate_steps=2 to go on with the same global batch\n"
                 "on fewer ranks (with order = \"deterministic\" the same samples in every step). With several\n"
                 "nodes, start the agents as for the original run (`catlip node` on every other host).\n\n"
                 "Exit codes: 0 done, 1 a stage or node failed, 2 usage (no run directory), 3 invalid graph,\n"
                 "130 interrupted.\n";
    return kOk;
  }
  if (int rc = check_syntax(a, kResume)) return rc;
  const std::string run_dir = a.positional()[0], graph = run_dir + "/graph.toml";
  if (::access(graph.c_str(), R_OK) != 0) {
    std::cerr << "catlip resume: " << graph << " cannot be read (" << std::strerror(errno)
              << "): RUN_DIR must be the run directory of a catlip run, which writes graph.toml when it starts\n";
    return kUsage;
  }
  // The stages that can resume: their type's schema declares `resume`.
  GraphSpec g;
  std::vector<Diagnostic> diags;
  if (!load_graph(graph, LoadOptions{}, g, diags).ok()) {
    for (auto& d : diags) std::cerr << d.str() << "\n";
    std::cerr << "catlip resume: " << graph << " does not load; nothing was started\n";
    return kInvalid;
  }
  std::vector<std::string> args = {"run", graph, "--run-dir", run_dir};
  PluginLoader loader;
  for (const StageSpec& st : g.stages) {
    const StageType* t = nullptr;
    try {
      t = loader.find_type(st.type);
    } catch (const std::exception&) {
      continue;  // `catlip run` reports the plugin with its own message
    }
    if (!t) continue;
    for (const ParamSpec& p : t->schema.params)
      if (p.name == "resume") {
        args.insert(args.end(), {"--set", st.name + ".resume=true"});
        std::cerr << "catlip resume: " << st.name << " (" << st.type << ") resumes from its newest checkpoint\n";
      }
  }
  if (args.size() == 4) {
    std::cerr << "catlip resume: no stage of " << graph
              << " has a `resume` parameter: nothing to continue (run it again with `catlip run`)\n";
    return kUsage;
  }
  for (auto& v : a.all("set")) args.insert(args.end(), {"--set", v});
  for (const char* opt : {"progress", "nodes", "listen"})
    if (a.has(opt)) args.insert(args.end(), {std::string("--") + opt, a.get(opt)});
  for (const char* flag : {"quiet", "no-check-files", "check-urls"})
    if (a.has(flag)) args.push_back(std::string("--") + flag);
  std::vector<char*> argv2;
  for (auto& s2 : args) argv2.push_back(s2.data());
  argv2.push_back(nullptr);
  return cmd_run(int(args.size()), argv2.data());
}

const Syntax kNode{"catlip node",
                   "usage: catlip node GRAPH [--set S.P=V]... [--rank K] [--nodes N] [--coordinator HOST[:PORT]]\n"
                   "                   [--run-dir DIR] [--progress auto|live|plain] [--quiet] [--join-timeout S]\n"
                   "                   [--secret-file FILE]\n",
                   {"set", "run-dir", "progress", "quiet", "rank", "nodes", "coordinator", "join-timeout",
                    "secret-file", "no-check-files", "check-urls"},
                   0, 1};

int cmd_node(int argc, char** argv) {
  Args a(argc, argv, {"quiet", "help", "no-check-files", "check-urls"});
  if (a.has("help")) {
    std::cout << kNode.usage << "\n"
                 "The per-host agent of a multi-host run: start one per host with the cluster's launcher\n"
                 "(srun, mpirun, torchrun, a Kubernetes Indexed Job). Node 0 is the coordinator: it reads\n"
                 "GRAPH, waits for the other nodes to join, sends them the resolved graph, shows progress\n"
                 "and writes the run directory for all nodes. The others run their replicas and forward\n"
                 "reports and logs to it; GRAPH is read on node 0 only.\n\n"
                 "Rank, node count and coordinator come from the flags, else from the environment:\n"
                 "  CATLIP_NODE_RANK, CATLIP_NNODES, CATLIP_COORDINATOR=HOST:PORT;\n"
                 "  torchrun/Kubernetes: NODE_RANK|GROUP_RANK|PET_NODE_RANK|JOB_COMPLETION_INDEX,\n"
                 "    NNODES|PET_NNODES|GROUP_WORLD_SIZE, MASTER_ADDR, MASTER_PORT;\n"
                 "  Open MPI (one process per node): OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE; the\n"
                 "    coordinator is 127.0.0.1 when all ranks share one host, else pass -x MASTER_ADDR;\n"
                 "  Slurm: SLURM_NODEID, SLURM_NNODES, first host of SLURM_STEP_NODELIST (else\n"
                 "    SLURM_JOB_NODELIST), port 20000 + SLURM_JOB_ID % 20000.\n"
                 "The first source that gives a field wins, in this order; the port defaults to 29400.\n\n"
              << kGraphHelp
              << "  (node 0 applies GRAPH, --set and ${VAR}; the other nodes get the resolved graph)\n"
                 "  --rank K           this node's rank (0: the coordinator)\n"
                 "  --nodes N          number of nodes\n"
                 "  --coordinator H:P  where node 0 listens and the others join\n"
                 "  --progress MODE    node 0: live redraw on a terminal (auto), or plain periodic lines\n"
                 "  --quiet            node 0: no progress output\n"
                 "  --join-timeout S   seconds for every node to join (default [graph] join_timeout_s, 60)\n"
                 "  --run-dir DIR      run directory (default: the coordinator's; on a shared filesystem\n"
                 "                     every node writes into the same one)\n"
                 "  --secret-file F    the cluster secret (mode 0600), else CATLIP_CLUSTER_SECRET or\n"
                 "                     CATLIP_CLUSTER_SECRET_FILE (node 0 also reads [graph] secret_file)\n\n"
                 "Security: with [graph] security = \"curve\" (the default) the join is authenticated and\n"
                 "encrypted with keys derived from the cluster secret, which every node must hold\n"
                 "(`catlip secret` makes one); every tcp link between stages is CURVE-encrypted with\n"
                 "per-run keys sent over that join. See docs/security.md.\n\n"
                 "Exit codes: 0 done, 1 a stage or node failed (named), 2 usage, 3 invalid graph,\n"
                 "130 interrupted.\n";
    return kOk;
  }
  if (int rc = check_syntax(a, kNode)) return rc;
  NodeFlags flags;
  flags.rank = a.has("rank") ? static_cast<int>(a.get_int("rank", -2)) : -1;
  flags.nodes = a.has("nodes") ? static_cast<int>(a.get_int("nodes", -2)) : -1;
  flags.coordinator = a.get("coordinator");
  if (flags.rank < -1 || flags.nodes == -2 || flags.nodes == 0) {
    std::cerr << "catlip node: --rank and --nodes expect integers (rank >= 0, nodes >= 1)\n";
    return kUsage;
  }
  auto detected = detect_node_identity(flags);
  if (!detected.ok()) {
    std::cerr << "catlip node: " << detected.status().message() << "\n";
    return kUsage;
  }
  NodeIdentity id = std::move(detected).value();
  double join_timeout = a.get_double("join-timeout", 0);
  if (a.has("join-timeout") && !(join_timeout >= 0.5 && join_timeout <= 86400)) {
    std::cerr << "catlip node: --join-timeout expects seconds in [0.5, 86400]\n";
    return kUsage;
  }
  if (id.rank > 0) {
    if (!a.all("set").empty() || !a.positional().empty())
      std::cerr << "catlip node " << id.rank << ": GRAPH and --set are read on node 0 only; this node runs the "
                << "coordinator's resolved graph\n";
    NodeOptions no;
    no.id = id;
    no.run_dir = a.get("run-dir");
    no.join_timeout_s = join_timeout > 0 ? join_timeout : 60;
    no.secret_file = a.get("secret-file");
    try {
      return run_node_agent(no);
    } catch (const std::exception& e) {
      std::cerr << "catlip node " << id.rank << ": " << e.what() << "\n";
      return kFailed;
    }
  }
  if (a.positional().empty()) {
    std::cerr << "catlip node: missing GRAPH argument (node 0 reads it)\n";
    return kUsage;
  }
  GraphSpec g;
  std::map<std::string, Params> params;
  if (int rc = load_and_validate(a, false, g, params, id.nodes)) return rc;
  if (join_timeout > 0) g.join_timeout_s = join_timeout;
  if (a.has("secret-file")) g.secret_file = a.get("secret-file");
  if (!a.has("quiet")) std::cerr << "catlip node: " << id.describe() << "\n";
  RunOptions opt;
  opt.run_dir = a.get("run-dir");
  opt.quiet = a.has("quiet");
  std::string prog = a.get("progress", "auto");
  opt.progress = prog == "live" ? 1 : prog == "plain" ? 0 : -1;
  opt.coordinator = id.coordinator_host + ":" + std::to_string(id.coordinator_port);
  try {
    return run_graph(g, params, opt);
  } catch (const std::exception& e) {
    std::cerr << "catlip node 0: " << e.what() << "\n";
    return kFailed;
  }
}

const Syntax kValidate{"catlip validate", "usage: catlip validate GRAPH [--set S.P=V]... [--nodes N] [--no-check-files] [--check-urls]\n",
                       {"set", "nodes", "no-check-files", "check-urls"}, 1, 1};

int cmd_validate(int argc, char** argv) {
  Args a(argc, argv, {"help", "no-check-files", "check-urls"});
  if (a.has("help")) {
    std::cout << kValidate.usage << "\n"
                 "Checks GRAPH without starting anything: TOML syntax, stage types (loading their\n"
                 "plugins), parameters (unknown, mistyped, out of range, missing), inputs, cycles,\n"
                 "outputs nobody consumes, replicas, placement (nodes = [..] against the node count\n"
                 "from --nodes N or [graph] nodes), and that the files parameters name exist (shard\n"
                 "patterns match, vocabularies, tokenizers, checkpoints, programs; as `catlip run`\n"
                 "does). Every problem is printed as file:line:column.\n\n"
              << kGraphHelp << "  --nodes N          node count to check placement against\n"
              << "\nExit codes: 0 valid, 3 invalid, 2 usage.\n";
    return kOk;
  }
  if (int rc = check_syntax(a, kValidate)) return rc;
  int nodes = nodes_option(a, "validate");
  if (nodes < 0) return kUsage;
  GraphSpec g;
  std::map<std::string, Params> params;
  if (int rc = load_and_validate(a, false, g, params, nodes)) return rc;
  int replicas = 0;
  for (auto& s : g.stages) replicas += s.replicas;
  std::cout << g.file << ": valid graph '" << g.name << "': " << g.stages.size() << " stages, " << replicas
            << " processes";
  if (g.nodes > 1) {
    std::cout << " on " << g.nodes << " nodes (";
    for (int k = 0; k < g.nodes; ++k) std::cout << (k ? ", " : "") << "node " << k << ": " << replicas_on_node(g, k).size();
    std::cout << ")";
  }
  std::cout << "\n";
  return kOk;
}

const Syntax kGraph{"catlip graph", "usage: catlip graph [GRAPH] [--set S.P=V]... [--nodes N]\n", {"set", "nodes"}, 0, 1};

int cmd_graph(int argc, char** argv) {
  Args a(argc, argv, {"help"});
  if (a.has("help")) {
    std::cout << kGraph.usage << "\n"
                 "Prints the graph as Graphviz DOT (stages, replicas, placement, queues), e.g.\n"
                 "  catlip graph configs/default.toml | dot -Tsvg > graph.svg\n";
    return kOk;
  }
  if (int rc = check_syntax(a, kGraph)) return rc;
  int nodes = nodes_option(a, "graph");
  if (nodes < 0) return kUsage;
  GraphSpec g;
  std::map<std::string, Params> params;
  if (int rc = load_and_validate(a, true, g, params, nodes, false)) return rc;
  std::cout << graph_to_dot(g);
  return kOk;
}

}  // namespace

CATLIP_COMMAND("run", "Run a graph (or the embedded default) as processes", cmd_run);
CATLIP_COMMAND("node", "Run this host's part of a multi-host graph (under Slurm, mpirun, torchrun, Kubernetes)",
               cmd_node);
CATLIP_COMMAND("resume", "Continue a stopped run from its run directory (newest checkpoint, exact data position)",
               cmd_resume);
CATLIP_COMMAND("validate", "Check a graph against the stage schemas; start nothing", cmd_validate);
CATLIP_COMMAND("graph", "Print a graph as Graphviz DOT", cmd_graph);
