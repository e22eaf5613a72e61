// The implementation of catlip/validate.h: checking a graph against the stages' schemas before
#include "catlip/validate.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <cstring>
#include <cerrno>
#include <functional>
#include <set>

#include "catlip/params.h"
#include "catlip/plan.h"

namespace catlip {

std::map<std::string, int> restart_budgets(const GraphSpec& g, PluginLoader& loader) {
  std::map<std::string, int> out;
  for (auto& s : g.stages) {
    const StageType* t = nullptr;
    try {
      t = loader.find_type(s.type);
    } catch (const PluginError&) {
      // an unloadable plugin is reported by validate_graph, which callers run first
    }
    if (t && t->schema.restartable) out[s.name] = s.max_restarts >= 0 ? s.max_restarts : g.max_restarts;
  }
  return out;
}

namespace {

// "" if `path` exists as `want` says and can be read, else why not.
std::string path_problem(const std::string& path, ParamSpec::Exists want) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return "'" + path + "' does not exist (" + std::strerror(ENOENT) + ")";
  bool dir = fs::is_directory(st);
  if (want == ParamSpec::Exists::File && dir) return "'" + path + "' is a directory, not a file";
  if (want == ParamSpec::Exists::Dir && !dir) return "'" + path + "' is not a directory";
  if (::access(path.c_str(), R_OK) != 0) return "'" + path + "' cannot be read (" + std::strerror(errno) + ")";
  return "";
}

// The files the stage's parameters name exist: ParamSpec::must_exist, then
// the stage's own check_files() on a probe with the parameters bound.
void check_stage_files(const StageSpec& s, const StageSchema& sc, const Params& p, const Stage& probe,
                       std::vector<Diagnostic>& diags) {
  auto loc_of = [&](const std::string& param) {
    auto it = s.param_locs.find(param);
    return it == s.param_locs.end() ? s.loc : it->second;
  };
  for (auto& spec : sc.params) {
    if (spec.must_exist == ParamSpec::Exists::No || !p.has(spec.name)) continue;
    const ParamValue& v = p.values().at(spec.name);
    std::vector<std::string> paths;
    if (auto str = std::get_if<std::string>(&v)) paths.push_back(*str);
    else if (auto list = std::get_if<std::vector<std::string>>(&v)) paths = *list;
    for (auto& path : paths)
      if (!path.empty())
        if (auto e = path_problem(path, spec.must_exist); !e.empty())
          diags.push_back({loc_of(spec.name), s.name, "parameter '" + spec.name + "': " + e});
  }
  for (auto& [param, problem] : probe.check_files())
    diags.push_back({loc_of(param), s.name, "parameter '" + param + "': " + problem});
}

}  // namespace

Status validate_graph(const GraphSpec& g, PluginLoader& loader, std::vector<Diagnostic>& diags,
                      std::map<std::string, Params>* resolved, const ValidateOptions& opt) {
  size_t before = diags.size();
  std::map<std::string, const StageType*> types;

  for (auto& s : g.stages) {
    if (s.type.empty()) continue;  // reported by the loader
    const StageType* t = nullptr;
    try {
      t = loader.find_type(s.type);
      if (!t) {
        std::string have;
        const LoadedPlugin& p = loader.load(PluginLoader::plugin_of(s.type));
        for (auto* x : p.types) have += (have.empty() ? "" : ", ") + x->schema.type;
        diags.push_back({s.type_loc, s.name, "unknown stage type '" + s.type + "' (plugin '" + p.name +
                                                 "' has: " + (have.empty() ? "none" : have) + ")"});
      }
    } catch (const PluginError& e) {
      diags.push_back({s.type_loc, s.name, "unknown stage type '" + s.type + "': " + e.what()});
    }
    if (!t) continue;
    types[s.name] = t;
    const StageSchema& sc = t->schema;

    // Parameters: each checked against its declared spec.
    const size_t before_stage = diags.size();
    Params p;
    for (auto& [k, v] : s.params) {
      const SourceLoc& l = s.param_locs.at(k);
      const ParamSpec* spec = sc.find(k);
      if (!spec) {
        std::string known;
        for (auto& x : sc.params) known += (known.empty() ? "" : ", ") + x.name;
        diags.push_back({l, s.name, "unknown parameter '" + k + "' for " + sc.type +
                                        (known.empty() ? " (it takes none)" : " (known: " + known + ")")});
        continue;
      }
      if (auto e = spec->check(v); !e.empty()) {
        diags.push_back({l, s.name, "parameter '" + k + "': " + e});
        continue;
      }
      p.set(k, v);
    }
    for (auto& spec : sc.params) {
      if (s.params.count(spec.name)) continue;
      if (spec.default_value) p.set(spec.name, *spec.default_value);
      else if (spec.required)
        diags.push_back({s.loc, s.name, "missing required parameter '" + spec.name + "' (" + spec.doc + ")"});
    }
    if (resolved) (*resolved)[s.name] = p;
    if (diags.size() == before_stage) {  // parameters fine: ask the stage about its placement
      int per_node = 0;
      for (int n : s.node_list())
        per_node = std::max(per_node, static_cast<int>(std::count(s.replica_node.begin(), s.replica_node.end(), n)));
      try {
        std::unique_ptr<Stage> probe = t->create();
        bind_params(sc, p, *probe);
        if (auto e = probe->check_placement(s.replicas, per_node); !e.empty())
          diags.push_back({s.replicas_loc, s.name, e});
        bool here = opt.files_of_node < 0 || std::find(s.replica_node.begin(), s.replica_node.end(),
                                                       opt.files_of_node) != s.replica_node.end();
        if (opt.check_files && here) check_stage_files(s, sc, p, *probe, diags);
        if (opt.check_urls && here)
          for (auto& [param, problem] : probe->check_urls(opt.url_timeout_s)) {
            auto it = s.param_locs.find(param);
            diags.push_back({it == s.param_locs.end() ? s.loc : it->second, s.name,
                             "parameter '" + param + "': " + problem});
          }
      } catch (const std::exception& e) {
        diags.push_back({s.loc, s.name, e.what()});
      }
    }

    // Inputs by kind.
    if (sc.kind == StageKind::Source && !s.inputs.empty())
      diags.push_back({s.inputs_loc, s.name, sc.type + " is a source and takes no inputs"});
    if (sc.kind != StageKind::Source && s.inputs.empty())
      diags.push_back({s.loc, s.name, sc.type + " needs inputs = [\"<stage>\", ...]"});
  }

  // Input references.
  for (auto& s : g.stages) {
    std::set<std::string> seen;
    for (auto& in : s.inputs) {
      if (!seen.insert(in).second) diags.push_back({s.inputs_loc, s.name, "input '" + in + "' is listed twice"});
      if (in == s.name) diags.push_back({s.inputs_loc, s.name, "a stage cannot be its own input"});
      else if (!g.find(in)) {
        std::string names;
        for (auto& x : g.stages) names += (names.empty() ? "" : ", ") + x.name;
        diags.push_back({s.inputs_loc, s.name, "unknown input '" + in + "' (stages: " + names + ")"});
      }
    }
  }

  // Cycles: depth-first search reporting each cycle's path once.
  std::map<std::string, int> state;  // 0 new, 1 on stack, 2 done
  std::vector<std::string> stack;
  std::set<std::string> reported;
  std::function<void(const StageSpec&)> dfs = [&](const StageSpec& s) {
    state[s.name] = 1;
    stack.push_back(s.name);
    for (auto& in : s.inputs) {
      const StageSpec* u = g.find(in);
      if (!u || u == &s) continue;
      if (state[u->name] == 1) {
        std::string path;
        auto it = std::find(stack.begin(), stack.end(), u->name);
        for (; it != stack.end(); ++it) path += *it + " <- ";
        path += u->name;
        if (reported.insert(u->name).second)
          diags.push_back({s.inputs_loc, s.name, "cycle in the graph: " + path});
      } else if (state[u->name] == 0) {
        dfs(*u);
      }
    }
    stack.pop_back();
    state[s.name] = 2;
  };
  for (auto& s : g.stages)
    if (state[s.name] == 0) dfs(s);

  // Deterministic order (plan.cpp keys the links into such a stage): every
  // replica must read every upstream replica, which a node-local edge over
  // several nodes does not give.
  for (auto& s : g.stages) {
    auto o = s.params.find("order");
    auto* v = o == s.params.end() ? nullptr : std::get_if<std::string>(&o->second);
    if (!v || *v != "deterministic") continue;
    for (auto& in : s.inputs)
      if (const StageSpec* u = g.find(in); u && s.node_list().size() > 1 && node_local_edge(*u, s))
        diags.push_back({s.param_locs.count("order") ? s.param_locs.at("order") : s.loc, s.name,
                         "order = \"deterministic\" sends sample g to replica g % " + std::to_string(s.replicas) +
                             ", but input '" + in + "' runs on the same nodes and is read node-locally; place '" +
                             in + "' on other nodes (e.g. node 0 only) so that every replica reads all of it"});
  }

  // Outputs nobody consumes: an error for transforms (the work would be lost).
  for (auto& s : g.stages) {
    auto it = types.find(s.name);
    if (it == types.end()) continue;
    if (it->second->schema.kind != StageKind::Sink && g.consumers_of(s.name).empty())
      diags.push_back({s.loc, s.name,
                       std::string("the output of this ") + stage_kind_name(it->second->schema.kind) +
                           " is not consumed by any stage (add \"" + s.name +
                           "\" to another stage's inputs, or end the graph with a sink)"});
  }
  return diagnostics_status(diags, before);
}

}  // namespace catlip
