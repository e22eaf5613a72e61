// catlip bench exec: the cost of writing a stage in another language. Runs
// testing.counter -> PASS -> testing.null with PASS a C++ pass-through
// (testing.map, op = "identity"), a Python pass-through program under
// exec.process (tools/python/catlip_stage.py) and, where it was built, the
// C++ test program of tests/exec under exec.process (the protocol without
// Python); prints items/s of each and the ratio to the C++ stage.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "catlip/graph.h"
#include "catlip/plugin_loader.h"
#include "catlip/supervisor.h"
#include "catlip/validate.h"
#include "cli.h"

using namespace catlip;
using namespace catlip::cli;
namespace fs = std::filesystem;

namespace {

struct Rate {
  double items_per_s = 0, mb_per_s = 0, wall_s = 0;
};

std::string toml_string(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if (c == '\n') o += "\\n";
    else o += c;
  }
  return o + "\"";
}

// `pass` is the TOML body of the pass-through stage (type and parameters).
Rate run_once(const std::string& pass, int n, size_t bytes, const std::string& run_dir) {
  std::ostringstream toml;
  toml << "[graph]\nname = \"bench-exec\"\n"
       << "[stages.source]\ntype = \"testing.counter\"\ncount = " << n << "\npayload_bytes = " << bytes << "\n"
       << "[stages.pass]\ninputs = [\"source\"]\n" << pass
       << "[stages.sink]\ntype = \"testing.null\"\ninputs = [\"pass\"]\n";
  GraphSpec g;
  std::vector<Diagnostic> d;
  LoadOptions lo;
  PluginLoader loader;
  std::map<std::string, Params> params;
  if (!load_graph_string(toml.str(), "<bench>", lo, g, d).ok() || !validate_graph(g, loader, d, &params).ok()) {
    for (auto& x : d) std::cerr << x.str() << "\n";
    return {};
  }
  RunOptions opt;
  opt.run_dir = run_dir;
  opt.quiet = true;
  auto t0 = std::chrono::steady_clock::now();
  if (run_graph(g, params, opt) != 0) return {};
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double first = summary_figure(run_dir, "sink", "first_item_s"), last = summary_figure(run_dir, "sink", "last_item_s");
  if (last <= first) return {};
  double dt = last - first;
  return {(n - 1) / dt, (n - 1) * double(bytes) / dt / 1e6, wall};
}

int cmd_bench_exec(int argc, char** argv) {
  Args a(argc, argv, {"help"});
  if (a.has("help")) {
    std::cout << "usage: catlip bench exec [--count N] [--bytes B] [--repeat R] [--window W] [--python PATH]\n\n"
                 "Moves N samples (default 100000) with a B-byte payload (default 1024) through\n"
                 "testing.counter -> PASS -> testing.null, where PASS is a C++ pass-through stage\n"
                 "(testing.map, op = \"identity\"), a Python pass-through program run by exec.process\n"
                 "(`for s in catlip_stage.samples(): catlip_stage.emit(s)`, with PATH, default\n"
                 "/usr/bin/python3, which needs python3-msgpack) and, when tests/exec was built, its C++\n"
                 "echo program under exec.process (the protocol without Python). Prints items/s and\n"
                 "MB/s (timed at the sink, from first to last item), the run's wall time and the ratio\n"
                 "to the C++ stage. Each figure is the best of R runs (default 1). The sink's clock\n"
                 "has 0.1 s resolution: keep runs to several seconds.\n";
    return kOk;
  }
  if (int rc = check_syntax(a, Syntax{"catlip bench exec", "usage: catlip bench exec [--count N] [--bytes B] [--repeat R] [--window W] [--python PATH]", {"count", "bytes", "repeat", "window", "python"}, 0, 0})) return rc;
  int n = int(a.get_int("count", 100000));
  size_t bytes = size_t(a.get_int("bytes", 1024));
  int repeat = int(a.get_int("repeat", 1));
  int window = int(a.get_int("window", 4));
  std::string python = a.get("python", "/usr/bin/python3");
  if (n < 2 || repeat < 1 || window < 1) {
    std::cerr << "catlip bench exec: --count must be >= 2, --repeat and --window >= 1\n";
    return kUsage;
  }
  std::string exe_dir = fs::read_symlink("/proc/self/exe").parent_path().string();
  std::string echo = exe_dir + "/exec_test_program";
  std::string win = "window = " + std::to_string(window) + "\n";
  std::vector<std::pair<std::string, std::string>> rows = {
      {"C++ stage (testing.map)", "type = \"testing.map\"\nop = \"identity\"\n"},
      {"Python (exec.process)",
       "type = \"exec.process\"\n" + win + "command = [" + toml_string(python) + ", \"-c\", " +
           toml_string("import catlip_stage as cs\nfor s in cs.samples():\n    cs.emit(s)\n") + "]\n"},
  };
  if (fs::exists(echo))
    rows.push_back({"C++ program (exec.process)",
                    "type = \"exec.process\"\n" + win + "command = [" + toml_string(echo) + ", \"echo\"]\n"});
  auto tmp = fs::temp_directory_path() / ("catlip-bench-exec-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  std::printf("catlip bench exec: %d samples with %zu-byte payloads, counter -> PASS -> null, best of %d\n", n, bytes,
              repeat);
  std::printf("%-28s %12s %10s %10s %8s\n", "PASS", "items/s", "MB/s", "wall s", "ratio");
  int rc = kOk;
  double base = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto& [label, body] = rows[i];
    Rate best;
    for (int r = 0; r < repeat; ++r) {
      Rate x = run_once(body, n, bytes, (tmp / (std::to_string(i) + "-" + std::to_string(r))).string());
      if (x.items_per_s > best.items_per_s) best = x;
    }
    if (best.items_per_s == 0) {
      std::printf("%-28s failed\n", label.c_str());
      rc = kFailed;
      continue;
    }
    if (base == 0) base = best.items_per_s;
    std::printf("%-28s %12.0f %10.1f %10.2f %8.2f\n", label.c_str(), best.items_per_s, best.mb_per_s, best.wall_s,
                base > 0 ? best.items_per_s / base : 0);
  }
  std::printf("(ratio: items/s relative to the C++ stage; exec.process window = %d; the Python program is\n"
              " tools/python/catlip_stage.py's samples()/emit() loop)\n", window);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  return rc;
}

}  // namespace

CATLIP_COMMAND("bench exec", "Throughput of a Python stage (exec.process) vs a C++ stage", cmd_bench_exec);
