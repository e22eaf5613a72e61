// catlip secret: a fresh cluster secret for multi-node runs.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "catlip/security.h"
#include "cli.h"

using namespace catlip;
using namespace catlip::cli;

namespace {

int cmd_secret(int argc, char** argv) {
  Args a(argc, argv, {"help"});
  if (a.has("help")) {
    std::cout << "usage: catlip secret [FILE]\n\n"
                 "Prints a fresh random cluster secret (64 hex digits), or writes it to FILE with mode\n"
                 "0600 (FILE must not exist). Every node of a multi-node run needs the same secret:\n"
                 "  export CATLIP_CLUSTER_SECRET=$(catlip secret)      (srun/sbatch pass it on;\n"
                 "                                                      mpirun needs -x CATLIP_CLUSTER_SECRET)\n"
                 "  or CATLIP_CLUSTER_SECRET_FILE=FILE, [graph] secret_file = FILE, catlip node --secret-file FILE.\n"
                 "The coordinator and the nodes derive their CURVE keys for the join from it; the join then\n"
                 "carries the run's per-stage keys. See docs/security.md.\n\n"
                 "Exit codes: 0 done, 1 cannot write FILE, 2 usage.\n";
    return kOk;
  }
  if (int rc = check_syntax(a, Syntax{"catlip secret", "usage: catlip secret [FILE]", {}, 0, 1})) return rc;
  if (!a.error().empty()) { std::cerr << "catlip secret: " << a.error() << "\n"; return kUsage; }
  if (auto u = a.unknown({}); !u.empty()) {
    std::cerr << "catlip secret: unknown option " << u[0] << " (see catlip secret --help)\n";
    return kUsage;
  }
  if (a.positional().size() > 1) {
    std::cerr << "catlip secret: expected at most one FILE, got " << a.positional().size() << " arguments\n";
    return kUsage;
  }
  std::string s = random_secret_hex();
  if (a.positional().empty()) {
    std::cout << s << "\n";
    return kOk;
  }
  const std::string& path = a.positional()[0];
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    std::cerr << "catlip secret: cannot create " << path << ": " << std::strerror(errno) << "\n";
    return kFailed;
  }
  s += "\n";
  bool ok = ::write(fd, s.data(), s.size()) == ssize_t(s.size());
  ok = ::close(fd) == 0 && ok;
  if (!ok) {
    std::cerr << "catlip secret: cannot write " << path << "\n";
    return kFailed;
  }
  return kOk;
}

}  // namespace

CATLIP_COMMAND("secret", "Make a cluster secret for multi-node runs (authenticates the join)", cmd_secret);
