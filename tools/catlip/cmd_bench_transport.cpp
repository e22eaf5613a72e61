// catlip bench transport: throughput of ~150 KB samples between two stage
// processes (testing.counter -> testing.null, through the real supervisor,
// workers, codec and credit-based transport) beside a raw ZeroMQ PUSH/PULL
// pair of processes moving the same bytes, over ipc (the payload through
// the socket, and through shared memory: the shm row) and tcp, and over tcp
// between two network namespaces joined by a veth pair (two "hosts": a
// two-node graph, source on node 0 and sink on node 1).
#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <zmq.hpp>

#include "catlip/graph.h"
#include "catlip/plugin_loader.h"
#include "catlip/security.h"
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

// Moves the calling (single-threaded, freshly forked) process into a named
// network namespace; false if it cannot.
bool enter_netns(const std::string& ns) {
  if (ns.empty()) return true;
  int fd = ::open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::setns(fd, CLONE_NEWNET) == 0;
  ::close(fd);
  return ok;
}

// Two network namespaces joined by a veth pair: two hosts with their own
// addresses on a private /30, created with iproute2 and removed on
// destruction (with anything still running inside).
struct VethHosts {
  std::string a, b, addr_a, addr_b, error;
  VethHosts() {
    std::string tag = std::to_string(::getpid() % 100000);
    a = "clbench" + tag + "a";
    b = "clbench" + tag + "b";
    std::string net = "10.251." + std::to_string(::getpid() % 250);
    addr_a = net + ".1";
    addr_b = net + ".2";
    const std::string cmds[] = {
        "ip netns add " + a, "ip netns add " + b,
        "ip link add " + a + " type veth peer name " + b,
        "ip link set " + a + " netns " + a, "ip link set " + b + " netns " + b,
        "ip -n " + a + " addr add " + addr_a + "/30 dev " + a, "ip -n " + b + " addr add " + addr_b + "/30 dev " + b,
        "ip -n " + a + " link set lo up", "ip -n " + b + " link set lo up",
        "ip -n " + a + " link set " + a + " up", "ip -n " + b + " link set " + b + " up"};
    for (auto& c : cmds)
      if (std::system((c + " >/dev/null 2>&1").c_str()) != 0) {
        error = "`" + c + "` failed (needs root and iproute2)";
        return;
      }
  }
  ~VethHosts() {
    for (auto& ns : {a, b}) std::system(("ip netns pids " + ns + " 2>/dev/null | xargs -r kill -9; ip netns del " + ns + " >/dev/null 2>&1").c_str());
  }
};

// Raw baseline: a child process PULLs n messages; the parent (or, across
// namespaces, a second child) PUSHes them, building each from a buffer as a
// producer would. Timed in the receiver from the first to the last message,
// like the stage path.
Result raw_zmq(const std::string& bind, const std::string& connect, int n, size_t bytes,
               const std::string& ns_push = "", const std::string& ns_pull = "") {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (!enter_netns(ns_pull)) ::_exit(1);
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
  pid_t pusher = ns_push.empty() ? -1 : ::fork();  // -1: push from this process
  if (pusher <= 0) {
    if (pusher == 0 && !enter_netns(ns_push)) ::_exit(1);
    zmq::context_t ctx(1);
    zmq::socket_t push(ctx, zmq::socket_type::push);
    push.set(zmq::sockopt::sndhwm, 16);
    push.set(zmq::sockopt::linger, -1);
    push.bind(bind);
    std::string payload(bytes, 'x');
    for (int i = 0; i < n; ++i) {
      std::memcpy(payload.data(), &i, sizeof i);
      zmq::message_t m(payload.data(), payload.size());
      push.send(m, zmq::send_flags::none);
    }
    if (pusher == 0) {
      push.close();
      ctx.close();
      ::_exit(0);
    }
  }
  {
    if (pusher > 0) ::waitpid(pusher, nullptr, 0);
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

Result summary_rate(const std::string& run_dir, int n, size_t bytes) {
  double first = summary_figure(run_dir, "sink", "first_item_s"), last = summary_figure(run_dir, "sink", "last_item_s");
  if (last <= first) return {};
  double dt = last - first;
  return {(n - 1) / dt, (n - 1) * double(bytes) / dt / 1e9};
}

std::string bench_graph(const std::string& transport, int n, size_t bytes, int nodes,
                        const std::string& security = "curve", bool shm = false) {
  std::ostringstream toml;
  toml << "[graph]\nname = \"bench-transport\"\ntransport = \"" << transport << "\"\nsecurity = \"" << security
       << "\"\nshm = " << (shm ? "true" : "false") << "\n"
       << "prefetch = " << g_prefetch << "\nnodes = " << nodes << "\njoin_timeout_s = 30\n"
       << "[stages.source]\ntype = \"testing.counter\"\ncount = " << n << "\npayload_bytes = " << bytes << "\n"
       << "[stages.sink]\ntype = \"testing.null\"\ninputs = [\"source\"]\nnodes = [" << nodes - 1 << "]\n";
  return toml.str();
}

// A two-node run: the coordinator (node 0, the source) in namespace a, a
// `catlip node` agent (node 1, the sink) in namespace b.
Result cross_host_path(const VethHosts& h, int n, size_t bytes, const std::string& run_dir) {
  std::string coord = h.addr_a + ":29400";
  pid_t agent = ::fork();
  if (agent == 0) {
    if (!enter_netns(h.b)) ::_exit(1);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 2);
    ::setenv("CATLIP_NODE_RANK", "1", 1);
    ::setenv("CATLIP_NNODES", "2", 1);
    ::setenv("CATLIP_COORDINATOR", coord.c_str(), 1);
    std::string exe = catlip_front_end();
    ::execl(exe.c_str(), "catlip", "node", (char*)nullptr);
    ::_exit(127);
  }
  pid_t coordinator = ::fork();
  if (coordinator == 0) {
    if (!enter_netns(h.a)) ::_exit(1);
    GraphSpec g;
    std::vector<Diagnostic> d;
    LoadOptions lo;
    PluginLoader loader;
    std::map<std::string, Params> params;
    if (!load_graph_string(bench_graph("ipc", n, bytes, 2), "<bench>", lo, g, d).ok() || !validate_graph(g, loader, d, &params).ok())
      ::_exit(3);
    RunOptions opt;
    opt.run_dir = run_dir;
    opt.quiet = true;
    opt.coordinator = coord;
    ::_exit(run_graph(g, params, opt));
  }
  int st = 0, ast = 0;
  ::waitpid(coordinator, &st, 0);
  ::waitpid(agent, &ast, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return {};
  return summary_rate(run_dir, n, bytes);
}

// Rows: ipc (the payload through the socket: shm = false); shm (ipc with
// shared-memory payloads, the default); tcp (plain, security = "none");
// curve (tcp with CURVE).
Result stage_path(const std::string& row, int n, size_t bytes, const std::string& run_dir) {
  std::string toml = row == "ipc"   ? bench_graph("ipc", n, bytes, 1)
                     : row == "shm" ? bench_graph("ipc", n, bytes, 1, "curve", true)
                     : row == "tcp" ? bench_graph("tcp", n, bytes, 1, "none")
                                    : bench_graph("tcp", n, bytes, 1, "curve");
  GraphSpec g;
  std::vector<Diagnostic> d;
  LoadOptions lo;
  PluginLoader loader;
  std::map<std::string, Params> params;
  if (!load_graph_string(toml, "<bench>", lo, g, d).ok() || !validate_graph(g, loader, d, &params).ok()) {
    for (auto& x : d) std::cerr << x.str() << "\n";
    return {};
  }
  RunOptions opt;
  opt.run_dir = run_dir;
  opt.quiet = true;
  if (run_graph(g, params, opt) != 0) return {};
  return summary_rate(run_dir, n, bytes);
}

int cmd_bench_transport(int argc, char** argv) {
  Args a(argc, argv, {"help"});
  if (a.has("help")) {
    std::cout << "usage: catlip bench transport [--count N] [--bytes B] [--repeat R] [--prefetch P]\n\n"
                 "Moves N samples of B bytes (default 20000 x 150 KB) between two stage processes\n"
                 "(testing.counter -> testing.null) over ipc with the payload through the socket\n"
                 "(shm = false), over ipc with shared-memory payloads (the shm row: the counter writes\n"
                 "the payload straight into its pool, Emitter::allocate; a 64-byte descriptor on the\n"
                 "socket; the consumer maps the pool; target >= 3x raw ZeroMQ ipc), plain tcp\n"
                 "(security = \"none\") and\n"
                 "CURVE-encrypted tcp (security = \"curve\", the default), and the same bytes between two\n"
                 "processes over raw (plain) ZeroMQ PUSH/PULL; prints messages/s, GB/s, the ratio to raw\n"
                 "ZeroMQ and, for CURVE rows, the ratio to the plain tcp stage path (target >= 0.7).\n"
                 "Each figure is the best of R runs (default 3). P is the stage path's credits per link\n"
                 "(the graph's prefetch, default 8; the shm row's link takes the graph's shm_prefetch,\n"
                 "default 32, when that is more: its items are descriptors; the raw pair's high-water\n"
                 "marks are 16 each side).\n"
                 "The row xhost runs a two-node graph\n"
                 "(coordinator + `catlip node`, CURVE, cluster secret made for the bench) across two\n"
                 "network namespaces joined by a veth pair, against raw ZeroMQ over the same link\n"
                 "(needs root and iproute2; else it is skipped).\n";
    return kOk;
  }
  if (int rc = check_syntax(a, Syntax{"catlip bench transport", "usage: catlip bench transport [--count N] [--bytes B] [--repeat R] [--prefetch P]", {"count", "bytes", "repeat", "prefetch"}, 0, 0})) return rc;
  int n = int(a.get_int("count", 20000));
  size_t bytes = size_t(a.get_int("bytes", 150 * 1024));
  int repeat = int(a.get_int("repeat", 3));
  g_prefetch = int(a.get_int("prefetch", 8));
  auto tmp = std::filesystem::temp_directory_path() / ("catlip-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(tmp);
  std::printf("catlip bench transport: %d samples of %zu bytes, best of %d runs\n", n, bytes, repeat);
  std::printf("%-6s %16s %10s %16s %10s %8s %8s\n", "", "stages msg/s", "GB/s", "raw zmq msg/s", "GB/s", "ratio",
              "vs tcp");
  int rc = kOk;
  std::unique_ptr<VethHosts> hosts;
  // The xhost row's join is authenticated like any multi-node run.
  if (!std::getenv("CATLIP_CLUSTER_SECRET") && !std::getenv("CATLIP_CLUSTER_SECRET_FILE"))
    ::setenv("CATLIP_CLUSTER_SECRET", random_secret_hex().c_str(), 1);
  double plain_tcp = 0;
  for (std::string tr : {"ipc", "shm", "tcp", "curve", "xhost"}) {
    if (tr == "xhost") {
      hosts = std::make_unique<VethHosts>();
      if (!hosts->error.empty()) {
        std::printf("%-6s skipped: %s\n", tr.c_str(), hosts->error.c_str());
        continue;
      }
    }
    Result best_stage, best_raw;
    for (int r = 0; r < repeat; ++r) {
      std::string run = (tmp / (tr + std::to_string(r))).string();
      Result s = tr == "xhost" ? cross_host_path(*hosts, n, bytes, run) : stage_path(tr, n, bytes, run);
      if (s.msgs_per_s > best_stage.msgs_per_s) best_stage = s;
      Result w;
      if (tr == "xhost") {
        std::string ep = "tcp://" + hosts->addr_a + ":" + std::to_string(39000 + r);
        w = raw_zmq(ep, ep, n, bytes, hosts->a, hosts->b);
      } else {
        std::string ep = tr == "ipc" || tr == "shm" ? "ipc://" + (tmp / "raw.sock").string()
                                     : "tcp://127.0.0.1:" + std::to_string(39000 + r + (tr == "curve" ? 10 : 0));
        w = raw_zmq(ep, ep, n, bytes);
      }
      if (w.msgs_per_s > best_raw.msgs_per_s) best_raw = w;
    }
    if (best_stage.msgs_per_s == 0 || best_raw.msgs_per_s == 0) rc = kFailed;
    double ratio = best_raw.msgs_per_s > 0 ? best_stage.msgs_per_s / best_raw.msgs_per_s : 0;
    if (tr == "tcp") plain_tcp = best_stage.msgs_per_s;
    std::string vs_tcp = "";
    if (tr == "curve" && plain_tcp > 0) {
      char b[16];
      std::snprintf(b, sizeof b, "%.2f", best_stage.msgs_per_s / plain_tcp);
      vs_tcp = b;
    }
    std::printf("%-6s %16.0f %10.2f %16.0f %10.2f %8.2f %8s\n", tr.c_str(), best_stage.msgs_per_s, best_stage.gb_per_s,
                best_raw.msgs_per_s, best_raw.gb_per_s, ratio, vs_tcp.c_str());
  }
  hosts.reset();
  // The CPU ceiling of CURVE here, measured now: each message is sealed on
  // the sender and opened on the receiver, each in its process's ZeroMQ I/O
  // thread, on top of the plain stage path's own work.
  double seal = curve_seal_rate(bytes);
  if (seal > 0 && plain_tcp > 0) {
    double plain_cpu_us = 1e6 * double(std::min<long>(2, ::sysconf(_SC_NPROCESSORS_ONLN))) / plain_tcp;
    double crypto_us = 2e6 / seal;
    std::printf("curve ceiling: one core seals %.0f msg/s of %zu bytes (libsodium, %.0f us; x2 with the open), the\n"
                " plain tcp path costs about %.0f us of CPU per message here; with %ld cores the bound is about\n"
                " %.2fx plain tcp (more cores: the seal and open run in the two processes' I/O threads in parallel)\n",
                seal, bytes, 1e6 / seal, plain_cpu_us, ::sysconf(_SC_NPROCESSORS_ONLN),
                plain_cpu_us / (plain_cpu_us + crypto_us));
  }
  std::printf("(targets: ratio >= 0.80 for plain links, >= 3 for shm (against raw ZeroMQ ipc), curve vs tcp >= 0.70;\n"
              " ipc = the payload through the socket (shm = false); shm = shared-memory payloads; stage path = codec + credit-based\n"
              " load balancing + process per stage; curve = the same tcp link authenticated and encrypted with\n"
              " CurveZMQ; xhost = CURVE tcp over a veth pair between two network namespaces, source on node 0,\n"
              " sink on node 1; raw zmq is always plain)\n");
  std::error_code ec;
  std::filesystem::remove_all(tmp, ec);
  return rc;
}

}  // namespace

CATLIP_COMMAND("bench transport", "Stage-to-stage throughput vs raw ZeroMQ PUSH/PULL", cmd_bench_transport);
