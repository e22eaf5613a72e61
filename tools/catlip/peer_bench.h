// tools/catlip/peer_bench.h - the peer loaders of `catlip bench decode` and
// `catlip bench pipeline` (tools/python/bench_peers.py): running, timing, rows.
//
// Each peer (WebDataset + DataLoader, SPDL, DALI CPU) runs as a child process
// of the bench, in the project venv, pinned to the same CPUs as catlip's side,
// and is timed as a whole process tree (wait4's rusage: it and every
// descendant it reaped). Its last stdout line is a JSON object (samples,
// labels, loop_cpu_s, versions ...) or {"skipped": REASON} when its package
// is missing. Every peer gets a row: figures, SKIPPED with the reason, or
// FAILED; none is left out.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "catlip/json.h"

namespace catlip::cli::peers {

struct Child {
  int rc = -1;
  double wall = 0, cpu = 0;  // seconds; cpu = user + system of the tree
};

// Runs args[0] with args, stdout+stderr to `log`, stdin from /dev/null,
// pinned to `cpus` when not empty.
Child run_child(const std::vector<std::string>& args, const std::string& log, const std::vector<int>& cpus = {});
// The same in two halves: start it (-1 if fork failed), then reap it (wall
// time from `started`, CPU time of its tree).
pid_t spawn_child(const std::vector<std::string>& args, const std::string& log, const std::vector<int>& cpus = {});
Child wait_child(pid_t pid, std::chrono::steady_clock::time_point started);

// The first `n` CPUs this process may run on (sched_getaffinity), fewer if it
// has fewer; empty when n <= 0 (no pinning).
std::vector<int> pick_cpus(int n);
std::string cpus_text(const std::vector<int>& cpus);  // "0,1" or "all"

std::string slurp(const std::string& path);
std::string tail(const std::string& s, size_t n = 1500);

// tools/python/NAME beside the build or the sources, or `given` when set; ""
// when not found.
std::string find_python_script(const std::string& given, const std::string& exe_dir, const char* name);

// A peer: its loader key for bench_peers.py, its description and the issue's
// per-CPU-second target (catlip/peer at least this).
struct PeerSpec {
  std::string loader, what;
  double target;
};
const std::vector<PeerSpec>& peer_specs();

struct PeerResult {
  PeerSpec spec;
  enum State { kRan, kSkipped, kFailed } state = kSkipped;
  std::string note;      // why SKIPPED or FAILED
  std::string versions;  // from the peer
  Child child;           // the whole process tree, start-up included
  double samples = 0, labels = 0, loop_s = 0, loop_cpu = 0, setup_cpu = 0;
};

// Runs every peer: PYTHON SCRIPT --loader L ARGS... SHARDS..., logs in
// DIR/peer-L.log. A missing interpreter or script makes every row SKIPPED
// with the reason; a run without the expected `samples` is FAILED.
std::vector<PeerResult> run_peers(const std::string& python, const std::string& script,
                                  const std::vector<std::string>& args, const std::vector<std::string>& shards,
                                  const std::string& dir, const std::vector<int>& cpus, long long expected_samples);

// One row of the peer table: loader key, figures, catlip/peer against the
// target ("met" / "MISSED"), version. `rate` is the peer's figure per
// CPU-second, `wall_rate` per second. Returns true when the target was met.
struct Row {
  std::string name;
  double count = 0, wall = 0, wall_rate = 0, cpu = 0, rate = 0;
  std::string version;
};
void print_header(const char* unit);
void print_row(const Row& r, double catlip_rate, double target);
void print_unrun(const PeerResult& p);

}  // namespace catlip::cli::peers
