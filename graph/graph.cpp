// The implementation of catlip/graph.h: the TOML graph: parsing, overrides and the in-memory model.
#include "catlip/graph.h"
#include "catlip/graph_keys.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include <cmath>

#include <toml++/toml.h>

namespace catlip {

std::string SourceLoc::str() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string Diagnostic::str() const {
  std::string s = loc.str() + ": error: ";
  if (!stage.empty()) s += "stage '" + stage + "': ";
  return s + message;
}

const StageSpec* GraphSpec::find(const std::string& n) const {
  for (auto& s : stages)
    if (s.name == n) return &s;
  return nullptr;
}

std::vector<const StageSpec*> GraphSpec::consumers_of(const std::string& n) const {
  std::vector<const StageSpec*> out;
  for (auto& s : stages)
    for (auto& i : s.inputs)
      if (i == n) {
        out.push_back(&s);
        break;
      }
  return out;
}

namespace {

SourceLoc loc_of(const toml::node& n, const std::string& file) {
  SourceLoc l;
  l.file = file;
  auto& src = n.source();
  l.line = static_cast<int>(src.begin.line);
  l.column = static_cast<int>(src.begin.column);
  return l;
}

// Expands ${VAR} and ${VAR:-default}; returns false naming the unset var.
bool interpolate(std::string& s, std::string& err) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '$' && i + 1 < s.size() && s[i + 1] == '{') {
      size_t end = s.find('}', i + 2);
      if (end == std::string::npos) {
        err = "unterminated ${ in \"" + s + "\"";
        return false;
      }
      std::string expr = s.substr(i + 2, end - i - 2);
      std::string var = expr, def;
      bool has_def = false;
      if (auto p = expr.find(":-"); p != std::string::npos) {
        var = expr.substr(0, p);
        def = expr.substr(p + 2);
        has_def = true;
      }
      const char* v = std::getenv(var.c_str());
      if (v && *v) out += v;
      else if (has_def) out += def;
      else {
        err = "environment variable '" + var + "' is not set (use ${" + var + ":-default} for a default)";
        return false;
      }
      i = end + 1;
    } else {
      out += s[i++];
    }
  }
  s = std::move(out);
  return true;
}

// Converts a TOML value to a parameter value; "" on success else a message.
std::string to_param(const toml::node& n, ParamValue& out) {
  if (auto v = n.as_boolean()) { out = v->get(); return ""; }
  if (auto v = n.as_integer()) { out = static_cast<int64_t>(v->get()); return ""; }
  if (auto v = n.as_floating_point()) { out = v->get(); return ""; }
  if (auto v = n.as_string()) { out = v->get(); return ""; }
  if (auto a = n.as_array()) {
    if (a->empty()) { out = std::vector<std::string>{}; return ""; }
    bool all_str = true, all_int = true, all_num = true;
    for (auto& e : *a) {
      all_str &= e.is_string();
      all_int &= e.is_integer();
      all_num &= e.is_integer() || e.is_floating_point();
    }
    if (all_str) {
      std::vector<std::string> v;
      for (auto& e : *a) v.push_back(e.as_string()->get());
      out = v;
    } else if (all_int) {
      std::vector<int64_t> v;
      for (auto& e : *a) v.push_back(e.as_integer()->get());
      out = v;
    } else if (all_num) {
      std::vector<double> v;
      for (auto& e : *a) v.push_back(e.is_integer() ? double(e.as_integer()->get()) : e.as_floating_point()->get());
      out = v;
    } else {
      return "arrays must hold only strings or only numbers";
    }
    return "";
  }
  if (n.is_table()) return "tables are not allowed as parameter values";
  return "unsupported value type (dates and times are not parameters)";
}

// Checks a TOML value against a declared key and stores it; "" or why not.
template <class H>
std::string set_key(const GraphKey<H>& k, H& holder, const toml::node& n) {
  ParamValue v;
  if (std::string e = to_param(n, v); !e.empty()) return e;
  if (!k.checks_type)
    if (std::string e = k.spec.check(v); !e.empty()) return e;
  try {
    return k.set(holder, v);
  } catch (const std::exception& e) {
    return e.what();
  }
}

template <class H>
const GraphKey<H>* find_key(const std::vector<GraphKey<H>>& keys, const std::string& name) {
  for (auto& k : keys)
    if (k.spec.name == name) return &k;
  return nullptr;
}

void interpolate_tree(toml::node& n, const std::string& file, std::vector<Diagnostic>& diags,
                      const std::string& stage) {
  if (auto s = n.as_string()) {
    std::string v = s->get(), err;
    if (!interpolate(v, err)) diags.push_back({loc_of(n, file), stage, err});
    else *s = v;
  } else if (auto a = n.as_array()) {
    for (auto& e : *a) interpolate_tree(e, file, diags, stage);
  } else if (auto t = n.as_table()) {
    for (auto&& [k, v] : *t) {
      std::string st = stage;
      if (stage.empty() && t == nullptr) st = std::string(k.str());
      interpolate_tree(v, file, diags, st);
    }
  }
}

// Where each overridden key came from: "stage.key" (or "graph.key") -> the
// --set argument, so a problem with its value names the argument, not the
// graph file (whose line and column it does not have).
using SetOrigins = std::map<std::string, SourceLoc>;

// Applies one --set override onto the parsed table.
void apply_set(toml::table& root, const std::string& set, std::vector<Diagnostic>& diags, SetOrigins& origins) {
  SourceLoc cl = SourceLoc::argument("--set " + set);
  auto eq = set.find('=');
  if (eq == std::string::npos) {
    diags.push_back({cl, "", "expected --set stage.param=value"});
    return;
  }
  std::string path = set.substr(0, eq), value = set.substr(eq + 1);
  auto dot = path.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == path.size()) {
    diags.push_back({cl, "", "expected --set stage.param=value (or graph.key=value)"});
    return;
  }
  std::string where = path.substr(0, dot), key = path.substr(dot + 1);
  // The value is TOML (42, 1.5, true, ["a","b"], "text"); anything that does
  // not parse as TOML is taken as a bare string.
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    parsed = toml::table{{"v", value}};
  }
  toml::table* target = nullptr;
  if (where == "graph") {
    if (!root["graph"].is_table()) root.insert_or_assign("graph", toml::table{});
    target = root["graph"].as_table();
  } else {
    auto stages = root["stages"].as_table();
    if (!stages || !(*stages)[where].is_table()) {
      diags.push_back({cl, where, "no such stage to --set"});
      return;
    }
    target = (*stages)[where].as_table();
  }
  target->insert_or_assign(key, *parsed["v"].node());
  origins[where + "." + key] = cl;
}

}  // namespace

Status diagnostics_status(const std::vector<Diagnostic>& diags, size_t before) {
  if (diags.size() <= before) return Status::Ok();
  size_t more = diags.size() - before - 1;
  return Status::Invalid(diags[before].str() +
                         (more ? " (and " + std::to_string(more) + " more problem" + (more == 1 ? ")" : "s)") : ""));
}

Status load_graph_string(const std::string& text, const std::string& path, const LoadOptions& opt,
                         GraphSpec& g, std::vector<Diagnostic>& diags) {
  size_t before = diags.size();
  g = GraphSpec{};
  g.file = path;
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    SourceLoc l{path, static_cast<int>(e.source().begin.line), static_cast<int>(e.source().begin.column)};
    diags.push_back({l, "", "TOML syntax error: " + std::string(e.description())});
    return diagnostics_status(diags, before);
  }
  SetOrigins set_origins;
  for (auto& s : opt.sets) apply_set(root, s, diags, set_origins);
  // The location of a key's value: its --set argument when one replaced it.
  auto loc_for = [&](const std::string& table, const std::string& key, const toml::node& n) {
    auto it = set_origins.find(table + "." + key);
    return it != set_origins.end() ? it->second : loc_of(n, path);
  };

  for (auto&& [k, v] : root) {
    std::string key(k.str());
    if (key != "graph" && key != "stages")
      diags.push_back({loc_of(v, path), "", "unknown top-level key '" + key + "' (expected [graph] and [stages.*])"});
  }

  // [graph]
  g.name = path;
  if (auto slash = g.name.rfind('/'); slash != std::string::npos) g.name = g.name.substr(slash + 1);
  if (auto dot = g.name.rfind('.'); dot != std::string::npos) g.name = g.name.substr(0, dot);
  SourceLoc liveness_loc;
  if (auto gt = root["graph"].as_table()) {
    if (opt.interpolate_env) interpolate_tree(*gt, path, diags, "");
    for (auto&& kv : *gt) {
      std::string key(kv.first.str());
      SourceLoc l = loc_for("graph", key, kv.second);
      const GraphKey<GraphSpec>* k = find_key(graph_keys(), key);
      if (!k) {
        diags.push_back({l, "", "unknown key '" + key + "' in [graph] (catlip inspect graph lists them)"});
        continue;
      }
      if (std::string e = set_key(*k, g, kv.second); !e.empty()) diags.push_back({l, "", "[graph] " + key + ": " + e});
      else if (key == "liveness_timeout_s") liveness_loc = l;
    }
  } else if (root.contains("graph")) {
    diags.push_back({loc_of(*root["graph"].node(), path), "", "[graph] must be a table"});
  }
  if (!liveness_loc.line) g.liveness_timeout_s = std::max(g.liveness_timeout_s, 10 * g.report_interval_s);
  else if (g.liveness_timeout_s <= g.report_interval_s)
    diags.push_back({liveness_loc, "",
                     "[graph] liveness_timeout_s (" + param_value_to_string(g.liveness_timeout_s) +
                         ") must be greater than report_interval_s (" + param_value_to_string(g.report_interval_s) + ")"});

  // [stages.*]
  auto st = root["stages"].as_table();
  if (!st) {
    SourceLoc l{path, 1, 1};
    if (root.contains("stages")) l = loc_of(*root["stages"].node(), path);
    diags.push_back({l, "", "the graph has no [stages.<name>] tables"});
    return diagnostics_status(diags, before);
  }
  for (auto&& [k, v] : *st) {
    std::string name(k.str());
    StageSpec s;
    s.name = name;
    s.loc = loc_of(v, path);
    auto t = v.as_table();
    if (!t) {
      diags.push_back({s.loc, name, "must be a table ([stages." + name + "])"});
      continue;
    }
    if (name.empty() || name.find_first_of("/#. \t") != std::string::npos)
      diags.push_back({s.loc, name, "stage names may not contain '/', '#', '.' or spaces"});
    if (opt.interpolate_env) interpolate_tree(*t, path, diags, name);
    const bool both_counts = t->contains("replicas") && t->contains("replicas_per_node");
    for (auto&& [pk, pv] : *t) {
      std::string key(pk.str());
      SourceLoc l = loc_for(name, key, pv);
      if (const GraphKey<StageSpec>* k = find_key(stage_keys(), key)) {
        if (k->loc) s.*(k->loc) = l;
        if (key == "replicas_per_node" && both_counts)
          diags.push_back({l, name, "give either replicas or replicas_per_node, not both"});
        else if (std::string e = set_key(*k, s, pv); !e.empty())
          diags.push_back({l, name, key + ": " + e});
        else if (key == "liveness_timeout_s" && s.liveness_timeout_s <= g.report_interval_s)
          diags.push_back({l, name, key + ": " + param_value_to_string(s.liveness_timeout_s) +
                                        " must be greater than [graph] report_interval_s (" +
                                        param_value_to_string(g.report_interval_s) + ")"});
        continue;
      }
      ParamValue val;
      std::string err = to_param(pv, val);
      if (!err.empty()) diags.push_back({l, name, "parameter '" + key + "': " + err});
      else {
        s.params[key] = val;
        s.param_locs[key] = l;
      }
    }
    if (s.type.empty() && !t->contains("type"))
      diags.push_back({s.loc, name, "missing 'type' (a stage type such as \"shards.source\"; see catlip inspect)"});
    if (s.replicas_loc.line == 0) s.replicas_loc = s.loc;
    if (s.nodes_loc.line == 0) s.nodes_loc = s.loc;
    if (s.inputs_loc.line == 0) s.inputs_loc = s.loc;
    if (s.type_loc.line == 0) s.type_loc = s.loc;
    g.stages.push_back(std::move(s));
  }
  // toml++ iterates tables in key order; keep the file's order instead.
  std::stable_sort(g.stages.begin(), g.stages.end(), [](const StageSpec& a, const StageSpec& b) {
    return a.loc.line != b.loc.line ? a.loc.line < b.loc.line : a.loc.column < b.loc.column;
  });
  if (g.stages.empty()) diags.push_back({SourceLoc{path, 1, 1}, "", "the graph has no stages"});
  if (opt.nodes > 0) g.nodes = opt.nodes;
  (void)place_stages(g, diags);  // its problems are in diags, counted below
  return diagnostics_status(diags, before);
}

std::vector<int> StageSpec::node_list() const {
  std::vector<int> out;
  for (int n : replica_node)
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  std::sort(out.begin(), out.end());
  return out;
}

Status place_stages(GraphSpec& g, std::vector<Diagnostic>& diags) {
  size_t before = diags.size();
  for (auto& s : g.stages) {
    std::vector<int> nodes;
    if (s.nodes_all || (s.per_node_key && s.nodes_spec.empty()))
      for (int n = 0; n < g.nodes; ++n) nodes.push_back(n);
    else if (s.nodes_spec.empty()) nodes = {0};
    else nodes = s.nodes_spec;
    std::set<int> seen;
    s.replica_node.clear();
    for (int n : nodes) {
      if (n >= g.nodes) {
        diags.push_back({s.nodes_loc, s.name, "nodes: node " + std::to_string(n) + " does not exist: the graph runs on " +
                                                  std::to_string(g.nodes) + " node" + (g.nodes == 1 ? "" : "s") +
                                                  " (set it with --nodes N or [graph] nodes)"});
        continue;
      }
      if (!seen.insert(n).second) {
        diags.push_back({s.nodes_loc, s.name, "nodes: node " + std::to_string(n) + " is listed twice"});
        continue;
      }
      for (int r = 0; r < s.per_node; ++r) s.replica_node.push_back(n);
    }
    // Node-major global replica order.
    std::stable_sort(s.replica_node.begin(), s.replica_node.end());
    s.replicas = std::max<int>(1, static_cast<int>(s.replica_node.size()));
    if (s.replica_node.empty()) s.replica_node.assign(1, 0);
  }
  return diagnostics_status(diags, before);
}

Status shrink_graph(GraphSpec& g, const std::set<int>& lost, std::vector<int>& new_rank) {
  if (lost.count(0)) return Status::Invalid("node 0 (the coordinator) cannot be left out");
  new_rank.assign(size_t(g.nodes), -1);
  int next = 0;
  for (int k = 0; k < g.nodes; ++k)
    if (!lost.count(k)) new_rank[size_t(k)] = next++;
  for (auto& s : g.stages) {
    if (s.nodes_spec.empty()) continue;
    std::vector<int> kept;
    for (int k : s.nodes_spec)
      if (k >= 0 && k < g.nodes && new_rank[size_t(k)] >= 0) kept.push_back(new_rank[size_t(k)]);
    if (kept.empty())
      return Status::Invalid("stage '" + s.name + "' runs only on lost node(s) (nodes = [...] in the graph)");
    s.nodes_spec = kept;
  }
  g.nodes = next;
  std::vector<Diagnostic> diags;
  return place_stages(g, diags);
}

Status load_graph(const std::string& path, const LoadOptions& opt, GraphSpec& out,
                  std::vector<Diagnostic>& diags) {
  out = GraphSpec{};
  out.file = path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    diags.push_back({SourceLoc{path, 0, 0}, "", "cannot read the graph file: it is a directory"});
    return Status::NotFound(diags.back().str());
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    diags.push_back({SourceLoc{path, 0, 0}, "", std::string("cannot read the graph file: ") + std::strerror(errno)});
    return Status::NotFound(diags.back().str());
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return load_graph_string(ss.str(), path, opt, out, diags);
}

static std::string toml_quote(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      case '\r': o += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {  // TOML: control characters escaped
          char b[8];
          snprintf(b, sizeof b, "\\u%04x", c);
          o += b;
        } else o += c;
    }
  }
  return o + "\"";
}

// A key that reads back as itself: bare when TOML allows, else quoted.
static std::string toml_key(const std::string& k) {
  bool bare = !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
  return bare ? k : toml_quote(k);
}

// The shortest text that reads back as the same double (ostream's default
// 6 digits would round e.g. a learning rate); ".0" keeps it a TOML float.
static std::string toml_double(double d) {
  char b[64];
  std::string s(b, std::to_chars(b, b + sizeof b, d).ptr);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // "inf"/"nan" are TOML floats
  return s;
}

static std::string value_toml(const ParamValue& v) {
  return std::visit([](auto& x) -> std::string {
    using T = std::decay_t<decltype(x)>;
    if constexpr (std::is_same_v<T, std::string>) return toml_quote(x);
    else if constexpr (std::is_same_v<T, double>) return toml_double(x);
    else if constexpr (std::is_same_v<T, std::vector<std::string>> || std::is_same_v<T, std::vector<double>>) {
      std::string o = "[";
      for (size_t i = 0; i < x.size(); ++i) {
        if constexpr (std::is_same_v<T, std::vector<double>>) o += (i ? ", " : "") + toml_double(x[i]);
        else o += (i ? ", " : "") + toml_quote(x[i]);
      }
      return o + "]";
    } else return param_value_to_string(x);
  }, v);
}

std::string graph_to_toml(const GraphSpec& g) {
  std::ostringstream o;
  o << "# Resolved graph (overrides and ${ENV} applied), read by the workers.\n[graph]\n";
  for (auto& k : graph_keys())
    if (auto v = k.get(g)) o << k.spec.name << " = " << value_toml(*v) << "\n";
  for (auto& s : g.stages) {
    o << "\n[stages." << toml_key(s.name) << "]\n";
    for (auto& k : stage_keys())
      if (auto v = k.get(s)) o << k.spec.name << " = " << value_toml(*v) << "\n";
    for (auto& [k, v] : s.params) o << toml_key(k) << " = " << value_toml(v) << "\n";
  }
  return o.str();
}

std::vector<std::string> topo_order(const GraphSpec& g) {
  std::vector<std::string> out;
  std::set<std::string> done, active;
  std::function<void(const StageSpec&)> visit = [&](const StageSpec& s) {
    if (done.count(s.name) || active.count(s.name)) return;
    active.insert(s.name);
    for (auto& in : s.inputs)
      if (auto* u = g.find(in)) visit(*u);
    active.erase(s.name);
    done.insert(s.name);
    out.push_back(s.name);
  };
  for (auto& s : g.stages) visit(s);
  return out;
}

}  // namespace catlip
