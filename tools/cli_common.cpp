#include "cli.h"

#include <cstring>

namespace catlip::cli {

std::vector<Command>& commands() {
  static std::vector<Command> c;
  return c;
}

bool wants_help(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "-h") || !std::strcmp(argv[i], "--help")) return true;
  return false;
}

}  // namespace catlip::cli
