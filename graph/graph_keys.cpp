// The [graph] keys and a stage table's reserved keys, declared once (see
// catlip/graph_keys.h), and the key reference printed from them.
#include "catlip/graph_keys.h"

#include <arpa/inet.h>

#include <sstream>

namespace catlip {

namespace {

// Builds one GraphKey: Key(name, &Holder::field) deduces the type from the
// field; the methods add range, choices, docs and unset rules.
template <class H>
struct Key {
  GraphKey<H> k;
  Key& range(double lo, double hi) { k.spec.range(lo, hi); return *this; }
  Key& at_least(double lo) { k.spec.at_least(lo); return *this; }
  Key& one_of(std::vector<std::string> c) { k.spec.one_of(std::move(c)); return *this; }
  Key& doc(std::string d) { k.spec.doc = std::move(d); return *this; }
  Key& dflt(std::string d) { k.default_doc = std::move(d); return *this; }
  Key& at(SourceLoc StageSpec::*l) { k.loc = l; return *this; }
  Key& overrides_graph() { k.overrides_graph = true; return *this; }
  // Not written back while pred holds (the default applies).
  Key& unset_if(std::function<bool(const H&)> pred) {
    auto get = k.get;
    k.get = [get, pred](const H& h) -> std::optional<ParamValue> {
      if (pred(h)) return std::nullopt;
      return get(h);
    };
    return *this;
  }
  // A check beyond type, range and choices.
  Key& check(std::function<std::string(const ParamValue&)> c) {
    auto set = k.set;
    k.set = [set, c](H& h, const ParamValue& v) {
      std::string e = c(v);
      return e.empty() ? set(h, v) : e;
    };
    return *this;
  }
  operator GraphKey<H>() const { return k; }  // NOLINT: the builder converts to what it builds
};

template <class H, class M>
Key<H> field(const char* name, M H::*f) {
  Key<H> b;
  b.k.spec.name = name;
  b.k.spec.type = param_type_of<M>();
  b.k.set = [f](H& h, const ParamValue& v) {
    h.*f = from_param_value<M>(v);
    return std::string();
  };
  b.k.get = [f](const H& h) -> std::optional<ParamValue> { return to_param_value<M>(h.*f); };
  return b;
}

std::string ip_literal(const ParamValue& v) {
  unsigned char buf[16];
  const std::string& a = std::get<std::string>(v);
  if (::inet_pton(AF_INET, a.c_str(), buf) == 1 || ::inet_pton(AF_INET6, a.c_str(), buf) == 1) return "";
  return "expected an IP address such as \"127.0.0.1\" or \"0.0.0.0\"";
}

// replicas and replicas_per_node: one count, written as either key.
Key<StageSpec> replica_key(const char* name, bool per_node) {
  Key<StageSpec> b;
  b.k.spec = Param(name, ParamType::Int).range(1, 1024);
  b.k.set = [per_node](StageSpec& s, const ParamValue& v) {
    s.per_node = static_cast<int>(std::get<int64_t>(v));
    s.per_node_key = per_node;
    return std::string();
  };
  b.k.get = [per_node](const StageSpec& s) -> std::optional<ParamValue> {
    if (s.per_node_key != per_node) return std::nullopt;
    return int64_t{s.per_node};
  };
  return b.at(&StageSpec::replicas_loc);
}

// nodes = [0, 2] or "all".
Key<StageSpec> nodes_key() {
  Key<StageSpec> b;
  b.k.spec = Param("nodes", ParamType::IntList).range(0, 100000);
  b.k.checks_type = true;
  b.k.set = [spec = b.k.spec](StageSpec& s, const ParamValue& v) -> std::string {
    const std::string bad = "expected a list of node ranks such as [0, 2], or \"all\"";
    if (auto str = std::get_if<std::string>(&v)) {
      if (*str != "all") return bad;
      s.nodes_all = true;
      return "";
    }
    auto ranks = std::get_if<std::vector<int64_t>>(&v);
    if (!ranks || ranks->empty()) return bad;
    if (auto e = spec.check(v); !e.empty()) return "node ranks: " + e;
    s.nodes_spec.assign(ranks->begin(), ranks->end());
    return "";
  };
  b.k.get = [](const StageSpec& s) -> std::optional<ParamValue> {
    if (s.nodes_all) return std::string("all");
    if (s.nodes_spec.empty()) return std::nullopt;
    return std::vector<int64_t>(s.nodes_spec.begin(), s.nodes_spec.end());
  };
  return b.at(&StageSpec::nodes_loc);
}

}  // namespace

const std::vector<GraphKey<GraphSpec>>& graph_keys() {
  using G = GraphSpec;
  static const std::vector<GraphKey<GraphSpec>> keys = {
      field("name", &G::name).dflt("the file name").doc("the graph's name (run directory, metrics labels)"),
      field("run_dir", &G::run_dir).dflt("runs/<name>-<time>").doc("where logs, metrics and stage outputs go")
          .unset_if([](const G& g) { return g.run_dir.empty(); }),
      field("transport", &G::transport).one_of({"ipc", "tcp"})
          .doc("\"ipc\" within a node, or \"tcp\" for every link"),
      field("host", &G::host).doc("tcp: the address producers are reached at (one node)"),
      field("base_port", &G::base_port).range(0, 65000)
          .doc("tcp: first port; 0 = ports chosen by the kernel and published"),
      field("prefetch", &G::prefetch).range(1, 1 << 20)
          .doc("items in flight per link (credits), the queue bound"),
      field("max_message_mb", &G::max_message_mb).range(1, 4096).doc("a larger message is refused"),
      field("shm", &G::shm)
          .doc("node-local (ipc) links carry large fields in shared memory, as descriptors (false: over the socket)"),
      field("shm_mb", &G::shm_mb).range(1, 1 << 20)
          .doc("each producer's shared-memory pool; when it is full the producer waits for acknowledgements"),
      field("shm_threshold_kb", &G::shm_threshold_kb).range(16, 1 << 20)
          .doc("fields of at least this size go through shared memory on node-local links"),
      field("shm_prefetch", &G::shm_prefetch).range(1, 1 << 20)
          .doc("items in flight per node-local link that carries shared-memory descriptors, for stages "
               "without a prefetch of their own (at least `prefetch`): their bytes wait in the "
               "producer's pool (shm_mb), so a deeper window costs no memory and saves wake-ups; a graph with "
               "order = \"deterministic\" keeps `prefetch` (its keyed routing is sized for it)"),
      field("metrics_port", &G::metrics_port).range(0, 65535).dflt("0 (off)").doc("Prometheus text endpoint port"),
      field("metrics_bind", &G::metrics_bind).check(ip_literal)
          .doc("the address the metrics endpoint listens on (an IP literal; \"0.0.0.0\" only when asked for)"),
      field("report_interval_s", &G::report_interval_s).range(0.01, 3600)
          .doc("how often each replica reports, its heartbeat (from a thread of its own, from before "
               "configure() to exit)"),
      field("liveness_timeout_s", &G::liveness_timeout_s).range(0.1, 86400)
          .dflt("30 (at least 10 x report_interval_s)")
          .doc("a running replica silent this long is hung: restarted if its stage is restartable, else the run "
               "fails; must be greater than report_interval_s"),
      field("max_error_fraction", &G::max_error_fraction).range(0, 1)
          .doc("error.* counters over items above this fail the stage"),
      field("max_restarts", &G::max_restarts).range(0, 1000)
          .doc("restarts of a failed or hung replica of a restartable stage; then the run fails naming it. On a "
               "stage with ranks (train.*; only when set on the stage, default none there): restarts of the "
               "whole run from its newest checkpoint after a rank fails or hangs"),
      field("nodes", &G::nodes).range(1, 100000).doc("hosts the graph runs on (catlip node, catlip run --nodes)"),
      field("join_timeout_s", &G::join_timeout_s).range(0.5, 86400).doc("coordinator: time for every node to join"),
      field("on_node_loss", &G::on_node_loss).one_of({"fail", "wait", "shrink"})
          .doc("a lost node: \"fail\" the run; \"wait\": stop the other nodes, wait rejoin_timeout_s for an "
               "agent with its rank to join again, and restart the run from its checkpoint; \"shrink\": restart "
               "it from its checkpoint on the nodes left (at most max_restarts times)"),
      field("rejoin_timeout_s", &G::rejoin_timeout_s).range(1, 86400 * 7)
          .doc("on_node_loss = \"wait\": how long a lost node has to join again"),
      field("node_timeout_s", &G::node_timeout_s).range(0.5, 86400)
          .doc("a node (or the coordinator) silent this long is lost"),
      field("security", &G::security).one_of({"curve", "none"})
          .doc("tcp links and the multi-node join: \"curve\" (authenticated, encrypted) or \"none\""),
      field("secret_file", &G::secret_file).dflt("(none)")
          .doc("0600 file with the cluster secret (else CATLIP_CLUSTER_SECRET, CATLIP_CLUSTER_SECRET_FILE)")
          .unset_if([](const G& g) { return g.secret_file.empty(); }),
  };
  return keys;
}

const std::vector<GraphKey<StageSpec>>& stage_keys() {
  using S = StageSpec;
  static const std::vector<GraphKey<StageSpec>> keys = {
      field("type", &S::type).dflt("(required)").at(&S::type_loc)
          .doc("\"<plugin>.<stage type>\" (catlip inspect lists them)"),
      field("inputs", &S::inputs).dflt("[]").at(&S::inputs_loc).doc("the stages this one consumes")
          .unset_if([](const S& s) { return s.inputs.empty(); }),
      replica_key("replicas", false).dflt("1").doc("processes running the stage (on node 0, or over `nodes`)"),
      replica_key("replicas_per_node", true).dflt("(unset)")
          .doc("processes per node, on every node unless `nodes` says; not with replicas"),
      nodes_key().dflt("[0] (every node with replicas_per_node)").doc("node ranks the stage runs on, or \"all\""),
      field("prefetch", &S::prefetch).range(1, 1 << 20).overrides_graph()
          .unset_if([](const S& s) { return s.prefetch == 0; }),
      field("liveness_timeout_s", &S::liveness_timeout_s).range(0.1, 86400).overrides_graph()
          .unset_if([](const S& s) { return s.liveness_timeout_s <= 0; }),
      field("min_samples", &S::min_samples).at_least(0).dflt("1 with inputs, 0 for sources")
          .doc("items the stage must receive (a source: emit); fewer fails the run unless a stage ended it")
          .unset_if([](const S& s) { return s.min_samples < 0; }),
      field("max_error_fraction", &S::max_error_fraction).range(0, 1).overrides_graph()
          .unset_if([](const S& s) { return s.max_error_fraction < 0; }),
      field("max_restarts", &S::max_restarts).range(0, 1000).overrides_graph()
          .unset_if([](const S& s) { return s.max_restarts < 0; }),
      field("restart_window_s", &S::restart_window_s).range(0, 1e9).dflt("0 (the whole run)")
          .doc("a stage with ranks: max_restarts counts only the run restarts of the last restart_window_s "
               "seconds")
          .unset_if([](const S& s) { return s.restart_window_s <= 0; }),
  };
  return keys;
}

namespace {

struct Row {
  std::string key, where, dflt, doc;
};

std::string num(double x) {
  if (x == static_cast<double>(static_cast<int64_t>(x))) return std::to_string(static_cast<int64_t>(x));
  std::ostringstream o;
  o << x;
  return o.str();
}

template <class H>
Row row_of(const GraphKey<H>& k, const std::string& where) {
  Row r{k.spec.name, where, k.default_doc, k.spec.doc};
  if (r.dflt.empty()) {
    auto v = k.get(H{});
    r.dflt = v ? param_value_to_string(*v) : "(unset)";
  }
  if (k.spec.min && k.spec.max) r.doc += " (" + num(*k.spec.min) + ".." + num(*k.spec.max) + ")";
  else if (k.spec.min) r.doc += " (at least " + num(*k.spec.min) + ")";
  return r;
}

// [graph] keys first (marked "stage" too where a stage may override them),
// then the stage-only keys.
std::vector<Row> rows() {
  std::vector<Row> out;
  for (auto& k : graph_keys()) {
    bool stage_too = false;
    for (auto& s : stage_keys()) stage_too |= s.overrides_graph && s.spec.name == k.spec.name;
    out.push_back(row_of(k, stage_too ? "[graph], stage" : "[graph]"));
  }
  for (auto& k : stage_keys())
    if (!k.overrides_graph) out.push_back(row_of(k, "stage"));
  return out;
}

}  // namespace

std::string graph_keys_markdown() {
  std::string o = "| key | in | default | meaning |\n|---|---|---|---|\n";
  for (auto& r : rows()) {
    std::string where = r.where.rfind("[graph]", 0) == 0 ? "`[graph]`" + r.where.substr(7) : r.where;
    o += "| `" + r.key + "` | " + where + " | " + r.dflt + " | " + r.doc + " |\n";
  }
  return o;
}

std::string graph_keys_text() {
  std::string o;
  for (auto& r : rows()) o += "  " + r.key + " (" + r.where + "; default " + r.dflt + ")\n        " + r.doc + "\n";
  return o;
}

}  // namespace catlip
