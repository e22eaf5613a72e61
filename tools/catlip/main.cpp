// catlip: command-line entry point. Subcommands register themselves (see
// tools/cli.h); commands that need LibTorch live in catlip-torch and are
// forwarded to it so this binary never loads LibTorch.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "cli.h"

using namespace catlip::cli;

static void usage() {
  std::cout << "catlip - CatLIP-style image-model pre-training as a streaming dataflow job\n\n"
               "Usage: catlip <command> [options]   (catlip <command> --help for details)\n\n"
               "Commands:\n";
  auto cmds = commands();
  std::sort(cmds.begin(), cmds.end(), [](auto& a, auto& b) { return a.name < b.name; });
  for (auto& c : cmds) {
    std::string n = c.name;
    n.resize(std::max<size_t>(n.size() + 2, 18), ' ');
    std::cout << "  " << n << c.summary << "\n";
  }
  std::string torch = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "catlip-torch";
  if (::access(torch.c_str(), X_OK) == 0)
    std::cout << "  (training and evaluation commands: catlip-torch --help; `catlip <command>` forwards to it)\n";
  std::cout << "\nExit codes: 0 ok, 1 failed, 2 usage error, 3 invalid graph/config, "
               "4 plugin error, 130 interrupted.\n";
}

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    usage();
    return argc < 2 ? kUsage : kOk;
  }
  if (int rc = dispatch(argc, argv); rc >= 0) return rc;
  // Commands that need LibTorch live in catlip-torch, next to this binary.
  std::string self = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "catlip-torch";
  if (::access(self.c_str(), X_OK) == 0) {
    argv[0] = self.data();
    ::execv(self.c_str(), argv);
  }
  std::cerr << "catlip: unknown command '" << argv[1] << "' (see catlip --help)\n";
  return kUsage;
}
