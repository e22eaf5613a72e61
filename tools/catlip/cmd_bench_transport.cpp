// catlip bench transport: throughput of ~150 KB samples between two stage
// processes (testing.counter -> testing.null, through the real supervisor,
// workers, codec and credit-based transport) beside a raw ZeroMQ PUSH/PULL
// pair of processes moving the same bytes, over ipc and tcp.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <zmq.hpp>

#include "catlip/graph.h"
#include "catlip/plugin_loader.h"
#include "catlip/supervisor.h"
#include "catlip/validate.h"
#include "cli.h"

using namespace catlip;
using namespace catlip::cli;

namespace {

static int g_prefetch = 8;

double mono() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Result {
  double msgs_per_s = 0, gb_per_s = 0;
};

// Raw baseline: a child process PULLs n messages; the parent PUSHes them,
// building each from a buffer as a producer would. Timed in the receiver
// from the first to the last message, like the stage path.
Result raw_zmq(const std::string& bind, const std::string& connect, int n, size_t bytes) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    zmq::context_t ctx(1);
    zmq::socket_t pull(ctx, zmq::socket_type::pull);
    pull.set(zmq::sockopt::rcvhwm, 16);
    pull.connect(connect);
    double first = 0, last = 0;
    for (int i = 0; i < n; ++i) {
      zmq::message_t m;
      (void)pull.recv(m);
      last = mono();
      if (i == 0) first = last;
    }
    double r[2] = {first, last};
    ssize_t w = ::write(fds[1], r, sizeof r);
    (void)w;
    ::_exit(0);
  }
  ::close(fds[1]);
  {
    zmq::context_t ctx(1);
    zmq::socket_t push(ctx, zmq::socket_type::push);
    push.set(zmq::sockopt::sndhwm, 16);
    push.bind(bind);
    std::string payload(bytes, 'x');
    for (int i = 0; i < n; ++i) {
      std::memcpy(payload.data(), &i, sizeof i);
      zmq::message_t m(payload.data(), payload.size());
      push.send(m, zmq::send_flags::none);
    }
    double r[2];
    ssize_t got = ::read(fds[0], r, sizeof r);
    int st;
    ::waitpid(pid, &st, 0);
    ::close(fds[0]);
    if (got != sizeof r || r[1] <= r[0]) return {};
    double dt = r[1] - r[0];
    return {(n - 1) / dt, (n - 1) * double(bytes) / dt / 1e9};
  }
}

double gauge_from_summary(const std::string& text, const std::string& name) {
  auto p = text.find("\"" + name + "\":");
  if (p == std::string::npos) return 0;
  return std::atof(text.c_str() + p + name.size() + 3);
}

Result stage_path(const std::string& transport, int n, size_t bytes, const std::string& run_dir) {
  std::ostringstream toml;
  toml << "[graph]\nname = \"bench-transport\"\ntransport = \"" << transport << "\"\n"
       << "prefetch = " << g_prefetch << "\n[stages.source]\ntype = \"testing.counter\"\ncount = " << n << "\npayload_bytes = " << bytes << "\n"
       << "[stages.sink]\ntype = \"testing.null\"\ninputs = [\"source\"]\n";
  GraphSpec g;
  std::vector<Diagnostic> d;
  LoadOptions lo;
  PluginLoader loader;
  std::map<std::string, Params> params;
  if (!load_graph_string(toml.str(), "<bench>", lo, g, d) || !validate_graph(g, loader, d, &params)) {
    for (auto& x : d) std::cerr << x.str() << "\n";
    return {};
  }
  RunOptions opt;
  opt.run_dir = run_dir;
  opt.quiet = true;
  if (run_graph(g, params, opt) != 0) return {};
  std::ifstream f(run_dir + "/summary.json");
  std::stringstream ss;
  ss << f.rdbuf();
  double first = gauge_from_summary(ss.str(), "first_item_s"), last = gauge_from_summary(ss.str(), "last_item_s");
  if (last <= first) return {};
  double dt = last - first;
  return {(n - 1) / dt, (n - 1) * double(bytes) / dt / 1e9};
}

int cmd_bench_transport(int argc, char** argv) {
  Args a(argc, argv, {"help"});
  if (a.has("help")) {
    std::cout << "usage: catlip bench transport [--count N] [--bytes B] [--repeat R]\n\n"
                 "Moves N samples of B bytes (default 20000 x 150 KB) between two stage processes\n"
                 "(testing.counter -> testing.null) over ipc and tcp, and the same bytes between two\n"
                 "processes over raw ZeroMQ PUSH/PULL; prints messages/s, GB/s and the ratio. Each\n"
                 "figure is the best of R runs (default 3).\n";
    return kOk;
  }
  int n = int(a.get_int("count", 20000));
  size_t bytes = size_t(a.get_int("bytes", 150 * 1024));
  int repeat = int(a.get_int("repeat", 3));
  g_prefetch = int(a.get_int("prefetch", 8));
  auto tmp = std::filesystem::temp_directory_path() / ("catlip-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(tmp);
  std::printf("catlip bench transport: %d samples of %zu bytes, best of %d runs\n", n, bytes, repeat);
  std::printf("%-6s %16s %10s %16s %10s %8s\n", "", "stages msg/s", "GB/s", "raw zmq msg/s", "GB/s", "ratio");
  int rc = kOk;
  for (std::string tr : {"ipc", "tcp"}) {
    Result best_stage, best_raw;
    for (int r = 0; r < repeat; ++r) {
      Result s = stage_path(tr, n, bytes, (tmp / (tr + std::to_string(r))).string());
      if (s.msgs_per_s > best_stage.msgs_per_s) best_stage = s;
      std::string ep = tr == "ipc" ? "ipc://" + (tmp / "raw.sock").string() : "tcp://127.0.0.1:" + std::to_string(39000 + r);
      Result w = raw_zmq(ep, ep, n, bytes);
      if (w.msgs_per_s > best_raw.msgs_per_s) best_raw = w;
    }
    if (best_stage.msgs_per_s == 0 || best_raw.msgs_per_s == 0) rc = kFailed;
    double ratio = best_raw.msgs_per_s > 0 ? best_stage.msgs_per_s / best_raw.msgs_per_s : 0;
    std::printf("%-6s %16.0f %10.2f %16.0f %10.2f %8.2f\n", tr.c_str(), best_stage.msgs_per_s, best_stage.gb_per_s,
                best_raw.msgs_per_s, best_raw.gb_per_s, ratio);
  }
  std::printf("(target: ratio >= 0.80; stage path = codec + credit-based load balancing + process per stage)\n");
  std::error_code ec;
  std::filesystem::remove_all(tmp, ec);
  return rc;
}

}  // namespace

CATLIP_COMMAND("bench transport", "Stage-to-stage throughput vs raw ZeroMQ PUSH/PULL", cmd_bench_transport);
