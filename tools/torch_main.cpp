// catlip-torch: subcommands that need LibTorch (training/evaluation tools).
// `catlip` forwards such commands here, so the main binary stays lean.
#include <algorithm>
#include <cstring>
#include <iostream>
#include <string>

#include "cli.h"

using namespace catlip::cli;

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::cout << "catlip-torch <command> [options]\n\nCommands:\n";
    for (auto& c : commands()) std::cout << "  " << c.name << "  " << c.summary << "\n";
    return argc < 2 ? kUsage : kOk;
  }
  if (int rc = dispatch(argc, argv); rc >= 0) return rc;
  std::cerr << "catlip-torch: unknown command '" << argv[1] << "'\n";
  return kUsage;
}
