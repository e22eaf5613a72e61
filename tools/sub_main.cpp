// The entry point of catlip's sibling binaries (catlip-torch: commands that
// need LibTorch; catlip-bench: the benchmarks). Users run them through the
// `catlip` front end, which lists their commands (`--commands`) and forwards
// to them; CATLIP_SUB_BINARY names this one in its messages.
#include <cstring>
#include <iostream>

#include "cli.h"

using namespace catlip::cli;

int main(int argc, char** argv) {
  if (argc >= 2 && !std::strcmp(argv[1], "--commands")) {  // for the front end: "name<TAB>summary" lines
    for (auto& c : commands()) std::cout << c.name << "\t" << c.summary << "\n";
    return kOk;
  }
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::cout << "usage: catlip <command> [options] (" CATLIP_SUB_BINARY " holds these commands):\n\n";
    for (auto& c : commands()) std::cout << "  " << c.name << "  " << c.summary << "\n";
    return argc < 2 ? kUsage : kOk;
  }
  if (int rc = dispatch(argc, argv); rc >= 0) return rc;
  std::cerr << "catlip: unknown command '" << argv[1] << "' (see catlip --help)\n";
  return kUsage;
}
