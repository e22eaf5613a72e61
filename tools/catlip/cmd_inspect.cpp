// catlip inspect: plugins, stage types and their parameters, from the
// schemas the stages declare.
#include <iostream>
#include <sstream>

#include "catlip/plugin_loader.h"
#include "catlip/graph_keys.h"
#include "cli.h"

using namespace catlip;
using namespace catlip::cli;

namespace {

std::string wrap(const std::string& text, size_t indent, size_t width = 96) {
  std::istringstream in(text);
  std::string word, line, out;
  while (in >> word) {
    if (!line.empty() && line.size() + 1 + word.size() + indent > width) {
      out += line + "\n" + std::string(indent, ' ');
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  return out + line;
}

void print_type(const StageSchema& s, const LoadedPlugin& p) {
  std::cout << s.type << "  (" << stage_kind_name(s.kind) << ", plugin " << p.name << " " << p.version << ")\n";
  std::cout << "  " << wrap(s.doc, 2) << "\n";
  auto join = [](const std::vector<std::string>& v) {
    std::string r;
    for (auto& x : v) r += (r.empty() ? "" : ", ") + x;
    return r;
  };
  if (!s.reads.empty()) std::cout << "  reads fields:  " << join(s.reads) << "\n";
  if (!s.writes.empty()) std::cout << "  writes fields: " << join(s.writes) << "\n";
  std::cout << "  restartable:   "
            << (s.restartable ? "yes (a failed or hung replica is restarted, up to max_restarts)"
                              : "no (it keeps state: a failed replica fails the run)")
            << (s.group ? "\n  group:         yes (its replicas are one collective group, e.g. data-parallel ranks)" : "")
            << "\n";
  if (s.params.empty()) {
    std::cout << "  parameters: none\n";
    return;
  }
  std::cout << "  parameters:\n";
  for (auto& q : s.params) {
    std::cout << "    " << q.name << " (" << param_type_name(q.type);
    if (q.required) std::cout << ", required";
    else if (q.default_value) std::cout << ", default " << param_value_to_string(*q.default_value);
    if (q.min || q.max) {
      // Bounds are doubles; an int parameter's print as integers (1..1048576, not 1.0..1.04858e+06).
      const bool ints = q.type == ParamType::Int || q.type == ParamType::IntList;
      auto bound = [&](double v) {
        return ints ? std::to_string(static_cast<long long>(v)) : param_value_to_string(ParamValue(v));
      };
      std::cout << ", range " << (q.min ? bound(*q.min) : std::string("-inf")) << ".."
                << (q.max ? bound(*q.max) : std::string("inf"));
    }
    if (!q.choices.empty()) std::cout << ", one of: " << join(q.choices);
    if (q.must_exist != ParamSpec::Exists::No)
      std::cout << (q.must_exist == ParamSpec::Exists::File  ? ", an existing file"
                    : q.must_exist == ParamSpec::Exists::Dir ? ", an existing directory"
                                                             : ", an existing file or directory");
    std::cout << ")\n        " << wrap(q.doc.empty() ? "(undocumented)" : q.doc, 8) << "\n";
  }
}

int cmd_inspect(int argc, char** argv) {
  Args a(argc, argv, {"help", "all", "markdown"});
  if (a.has("help")) {
    std::cout << "usage: catlip inspect [TYPE|PLUGIN] [--all]\n\n"
                 "Without arguments: every plugin found (CATLIP_PLUGIN_PATH, then the built-in\n"
                 "directory) with its stage types. With a stage type (e.g. shards.source) or a\n"
                 "plugin name: the full documentation of its parameters. --all: every stage type\n"
                 "in full. `catlip inspect graph`: the [graph] keys and the reserved stage keys\n"
                 "(--markdown: as the table in docs/graph-reference.md).\n\n"
                 "Exit codes: 0 ok, 1 no such type, 4 a plugin failed to load.\n";
    return kOk;
  }
  if (int rc = check_syntax(a, Syntax{"catlip inspect", "usage: catlip inspect [TYPE|PLUGIN] [--all]", {"all", "markdown"}, 0, 1})) return rc;
  if (a.positional().size() == 1 && a.positional()[0] == "graph") {
    if (a.has("markdown")) {
      std::cout << graph_keys_markdown();
      return kOk;
    }
    std::cout << "Graph keys ([graph] table) and reserved stage keys (every other stage key is a\n"
                 "parameter of the stage type):\n\n"
              << graph_keys_text();
    return kOk;
  }
  PluginLoader loader;
  std::vector<std::string> errors;
  auto plugins = loader.load_all(&errors);
  int rc = kOk;
  if (a.positional().empty()) {
    std::cout << "Plugin directories:";
    for (auto& d : loader.search_dirs()) std::cout << " " << d;
    std::cout << "\n\n";
    for (auto* p : plugins) {
      std::cout << p->name << " " << p->version << "  " << p->description << "\n  " << p->path << "\n";
      for (auto* t : p->types) {
        const std::string& doc = t->schema.doc;
        auto dot = doc.find(". ");
        std::string first = dot == std::string::npos ? doc : doc.substr(0, dot + 1);
        std::string name = t->schema.type;
        name.resize(std::max<size_t>(name.size() + 2, 24), ' ');
        std::cout << "    " << name << wrap(first, 28) << "\n";
      }
      if (a.has("all")) {
        std::cout << "\n";
        for (auto* t : p->types) {
          print_type(t->schema, *p);
          std::cout << "\n";
        }
      }
      std::cout << "\n";
    }
  } else {
    std::string what = a.positional()[0];
    bool found = false;
    for (auto* p : plugins) {
      for (auto* t : p->types)
        if (t->schema.type == what || p->name == what) {
          print_type(t->schema, *p);
          std::cout << "\n";
          found = true;
        }
    }
    if (!found) {
      std::cerr << "catlip inspect: no stage type or plugin named '" << what << "'"
                << (errors.empty() ? "" : " (a plugin failed to load, see below)") << "\n";
      rc = errors.empty() ? kFailed : kPluginError;
    }
  }
  for (auto& e : errors) std::cerr << "catlip inspect: " << e << "\n";
  if (!errors.empty() && rc == kOk) rc = kPluginError;
  return rc;
}

}  // namespace

CATLIP_COMMAND("inspect", "Document plugins, stage types and parameters", cmd_inspect);
