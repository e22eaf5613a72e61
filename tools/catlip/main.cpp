// catlip: the command-line front end. Its own commands register themselves
// (tools/cli.h); those of the sibling binaries beside it (catlip-torch:
// everything that needs LibTorch, so this binary never loads it;
// catlip-bench: the benchmarks) are listed with `<sibling> --commands` and
// forwarded to, so the user sees one program: one command list, one
// did-you-mean for an unknown or partial command, one --version.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "catlip/plugin.h"
#include "catlip/plugin_loader.h"
#include "cli.h"

using namespace catlip::cli;

namespace {

const char* const kSiblings[] = {"catlip-torch", "catlip-bench"};

struct Entry {
  std::string name, summary, binary;  // binary "" = this one
};

std::string sibling_path(const std::string& name) {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / name).string();
}

// Runs `path args` and returns its stdout ("" when it cannot run).
std::string output_of(const std::string& path, const std::string& args) {
  if (::access(path.c_str(), X_OK) != 0) return "";
  std::string out;
  if (FILE* p = ::popen(("'" + path + "' " + args + " 2>/dev/null").c_str(), "r")) {
    std::array<char, 4096> buf{};
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    ::pclose(p);
  }
  return out;
}

// Every command: this binary's, then each sibling's.
std::vector<Entry> all_commands() {
  std::vector<Entry> out;
  for (auto& c : commands()) out.push_back({c.name, c.summary, ""});
  for (const char* s : kSiblings) {
    std::istringstream in(output_of(sibling_path(s), "--commands"));
    for (std::string line; std::getline(in, line);)
      if (auto tab = line.find('\t'); tab != std::string::npos)
        out.push_back({line.substr(0, tab), line.substr(tab + 1), s});
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

void usage(const std::vector<Entry>& cmds) {
  std::cout << "catlip - CatLIP-style image-model pre-training as a streaming dataflow job\n\n"
               "Usage: catlip <command> [options]   (catlip <command> --help for details)\n\n"
               "Commands:\n";
  for (auto& c : cmds) {
    std::string n = c.name;
    n.resize(std::max<size_t>(n.size() + 2, 18), ' ');
    std::cout << "  " << n << c.summary << "\n";
  }
  std::cout << "\n--version: versions of catlip, its plugin ABI, LibTorch and CUDA, and the plugins found.\n"
               "Exit codes: 0 ok, 1 failed, 2 usage error, 3 invalid graph/config, "
               "4 plugin error, 130 interrupted.\n";
}

int version() {
  std::cout << "catlip " << CATLIP_VERSION << "\nplugin ABI " << CATLIP_PLUGIN_ABI_VERSION << "\n";
  // LibTorch and CUDA, as catlip-torch (the one binary that loads them) reports them.
  std::istringstream info(output_of(sibling_path("catlip-torch"), "gpu info"));
  bool any = false;
  for (std::string line; std::getline(info, line);)
    if (line.rfind("LibTorch:", 0) == 0 || line.rfind("CUDA (built):", 0) == 0 || line.rfind("GPUs visible:", 0) == 0) {
      std::cout << line << "\n";
      any = true;
    }
  if (!any) std::cout << "LibTorch:        not built (no catlip-torch beside this binary)\n";
  catlip::PluginLoader loader;
  std::vector<std::string> errors;
  auto plugins = loader.load_all(&errors);
  std::cout << "plugins (" << plugins.size() << "):";
  for (auto* p : plugins) std::cout << " " << p->name << " " << p->version;
  std::cout << "\n";
  for (auto& e : errors) std::cout << "  plugin not loaded: " << e << "\n";
  return errors.empty() ? kOk : kPluginError;
}

// An unknown or partial command: the subcommands it starts, else the nearest.
int unknown(const std::string& given, const std::vector<Entry>& cmds) {
  std::vector<const Entry*> under;
  for (auto& c : cmds)
    if (c.name.rfind(given + " ", 0) == 0) under.push_back(&c);
  if (!under.empty()) {
    std::cerr << "catlip " << given << ": give a subcommand:\n";
    for (auto* c : under) std::cerr << "  catlip " << c->name << "  " << c->summary << "\n";
    return kUsage;
  }
  std::vector<std::string> names;
  for (auto& c : cmds) {
    names.push_back(c.name);
    names.push_back(c.name.substr(0, c.name.find(' ')));  // the first word of two-word commands
  }
  std::string near = closest(given, names);
  std::cerr << "catlip: unknown command '" << given << "'"
            << (near.empty() ? "" : " (did you mean '" + near + "'?)") << "; catlip --help lists them\n";
  return kUsage;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && !std::strcmp(argv[1], "--version")) return version();
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    usage(all_commands());
    return argc < 2 ? kUsage : kOk;
  }
  if (int rc = dispatch(argc, argv); rc >= 0) return rc;
  auto cmds = all_commands();
  for (auto& c : cmds) {
    if (c.binary.empty()) continue;
    bool two = argc >= 3 && c.name == std::string(argv[1]) + " " + argv[2];
    if (two || c.name == argv[1]) {
      std::string path = sibling_path(c.binary);
      argv[0] = path.data();
      ::execv(path.c_str(), argv);
      std::cerr << "catlip: cannot run " << path << ": " << std::strerror(errno) << "\n";
      return kFailed;
    }
  }
  return unknown(argv[1], cmds);
}
