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
  if (argc >= 3) {
    std::string two = std::string(argv[1]) + " " + argv[2];
    for (auto& c : commands())
      if (c.name == two) {
        std::string name = two;
        argv[2] = name.data();
        return c.fn(argc - 2, argv + 2);
      }
  }
  for (auto& c : commands())
    if (c.name == argv[1]) return c.fn(argc - 1, argv + 1);
  std::cerr << "catlip-torch: unknown command '" << argv[1] << "'\n";
  return kUsage;
}
