// Helpers for the multi-host tests: emulated hosts (network namespaces), a
// private Slurm cluster, background processes, and checks for leftovers.
// Everything is torn down by destructors, also when a REQUIRE fails.
//
// Prerequisites are checked with require_*() BEFORE anything is set up: they
// end the test with exit code 77 (CTest: skipped), which skips destructors.
#pragma once

#include "test_util.h"

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <set>
#include <memory>
#include <string>
#include <vector>

namespace catlip::test::cluster {

// Prints "SKIPPED: why" and ends the process with exit code 77 (test_util.h).
using catlip::test::skip_test;

// Skip unless running as root / namespaces work / the Slurm daemons and
// clients are installed / mpirun is installed.
void require_root();
void require_netns();
void require_slurm();
void require_mpirun();
// Whether network namespaces work here (no skip). CATLIP_TEST_NO_NETNS=1
// makes both say no (to exercise the fallbacks: Slurm on 127.0.0.1).
bool netns_available();

// Removes launcher identity variables (CATLIP_*, torchrun, Slurm, Open MPI,
// PMIx) and CATLIP_PLUGIN_PATH from this process's environment, so a test
// run inside a real Slurm job or MPI launch sees only what the test sets.
void clean_launcher_env();

// Path of a script in tests/cluster/.
std::string script(const std::string& name);

// Single-quotes a string for /bin/sh.
std::string sh_quote(const std::string& s);

// N network namespaces on a private bridge (tests/cluster/netns.sh).
class NetnsHosts {
 public:
  explicit NetnsHosts(int n);
  ~NetnsHosts();
  NetnsHosts(const NetnsHosts&) = delete;
  NetnsHosts& operator=(const NetnsHosts&) = delete;

  int size() const { return static_cast<int>(addr_.size()); }
  const std::string& tag() const { return tag_; }
  const std::string& address(int k) const { return addr_.at(k); }
  const std::string& netns(int k) const { return ns_.at(k); }
  // "ip netns exec NAME": prefix of a command line to run it on host k.
  std::string exec_prefix(int k) const { return "ip netns exec " + ns_.at(k); }
  // rx+tx bytes summed over the bridge-side veths of all hosts.
  int64_t veth_bytes() const;
  // Processes (live, not zombies) inside host k's namespace.
  std::vector<int> pids(int k) const;

 private:
  std::string tag_;
  std::vector<std::string> addr_, ns_;
};

// A 3-node Slurm cluster (tests/cluster/slurm.sh) in DIR (created; removed
// by the destructor). With hosts (3 namespaces), node nK is host K-1.
class LocalSlurm {
 public:
  explicit LocalSlurm(const std::string& dir, const NetnsHosts* hosts = nullptr);
  ~LocalSlurm();
  LocalSlurm(const LocalSlurm&) = delete;
  LocalSlurm& operator=(const LocalSlurm&) = delete;

  // "SLURM_CONF=DIR/slurm.conf"
  std::string env() const { return "SLURM_CONF=" + dir_ + "/slurm.conf"; }
  // Prefix for client commands (srun, sbatch, sinfo, scontrol): sets
  // SLURM_CONF and, with namespaces, enters host 0 where slurmctld listens.
  const std::string& client() const { return client_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_, client_;
};

// A command line run in the background (/bin/sh -c "exec CMD"), stdout and
// stderr to a log file, in its own process group; killed (the whole group)
// by the destructor if still running.
class Proc {
 public:
  Proc(const std::string& cmdline, const std::string& log);
  ~Proc();
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Waits up to timeout_s; returns the exit code (128+signal), or -1 on
  // timeout (the process is then killed). took: seconds waited.
  int wait(double timeout_s, double* took = nullptr);
  void kill(int sig);  // the process only, not its group
  std::string log() const;

 private:
  pid_t pid_ = -1;
  int code_ = -1;
  bool done_ = false;
  std::string log_;
};

using catlip::test::pids_with;  // (test_util.h)

// Polls cond every 50 ms until it holds or timeout_s passes; returns cond().
bool wait_until(const std::function<bool()>& cond, double timeout_s);

// Non-empty lines of s.
std::vector<std::string> lines_of(const std::string& s);

// No process of this test is left: none in the namespaces, none whose command
// line names the test's directory (catlip node agents, catlip-worker
// replicas, srun/mpirun), waiting up to within_s for them to go. Processes
// whose command line starts with one of `keep` do not count.
void check_nothing_left(const TempDir& dir, const NetnsHosts* hosts, double within_s = 5,
                        const std::vector<std::string>& keep = {});

// A line of `out` matching the regular expression `re`.
bool has_line(const std::string& out, const std::string& re);

// `catlip node` on host k of nnodes, identity from torchrun-style variables.
std::string node_cmd(const NetnsHosts& hosts, int k, int nnodes, int port, const std::string& graph,
                     const std::string& run_dir, const std::string& extra = "", const std::string& env = "");

// Every process's log, headed by its node.
std::string logs_of(const std::vector<std::unique_ptr<Proc>>& procs);

// Waits until every host runs its agent and at least `workers[k]` more
// processes (its replicas).
bool all_running(const NetnsHosts& hosts, const std::vector<int>& workers, double timeout_s);

}  // namespace catlip::test::cluster
