// Rogue peers against a real `catlip run` over tcp: a thief claiming a
// million credits, injected samples, garbage, connect-and-vanish, a 1.5 GB
// frame and a client without the run's key. Nothing is stolen or injected,
// no replica crashes, memory stays bounded, and the run ends as it would
// have without them.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <zmq.hpp>

#include "catlip/codec.h"
#include "catlip/replica_spec.h"
#include "catlip/security.h"
#include "cluster_util.h"

using namespace catlip;
using namespace catlip::test;
using catlip::test::cluster::Proc;
using catlip::test::cluster::wait_until;

namespace {

constexpr int kItems = 3000;

std::string graph(const std::string& security, int rate = 500) {
  return R"([graph]
transport = "tcp"
security = ")" + security + R"("
prefetch = 8
[stages.numbers]
type = "testing.counter"
count = 3000
rate = )" + std::to_string(rate) + R"(
payload_bytes = 2000
[stages.collect]
type = "testing.collect"
inputs = ["numbers"]
)";
}

// "tag endpoint" lines of the run's endpoint table.
std::string endpoint_of(const std::string& run_dir, const std::string& tag) {
  std::istringstream in(read_file(run_dir + "/endpoints.txt"));
  std::string t, ep;
  while (in >> t >> ep)
    if (t == tag) return ep;
  return "";
}

// The latest metrics line's items_in of `stage` (-1 before there is one).
long items_in(const std::string& run_dir, const std::string& stage) {
  std::string m = read_file(run_dir + "/metrics.jsonl");
  auto at = m.rfind("\"" + stage + "\":{");
  if (at == std::string::npos) return -1;
  auto k = m.find("\"items_in\":", at);
  return k == std::string::npos ? -1 : std::atol(m.c_str() + k + 11);
}

// A counter of `stage` in the run's summary.json (0 when absent).
long summary_counter(const std::string& run_dir, const std::string& stage, const std::string& counter) {
  std::string t = read_file(run_dir + "/summary.json");
  auto at = t.find("\"final\"");
  if (at == std::string::npos || (at = t.find("\"" + stage + "\":{", at)) == std::string::npos) return 0;
  auto end = t.find("\"gauges\"", at);
  auto k = t.find("\"" + counter + "\":", at);
  return k == std::string::npos || k > end ? 0 : std::atol(t.c_str() + k + counter.size() + 3);
}

int worker_pid(const std::string& run_dir, const std::string& stage) {
  auto pids = worker_pids(run_dir, stage + "/");
  return pids.empty() ? -1 : pids.front();
}

std::string cmdline_arg(int pid, const std::string& flag) {
  std::string c = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> a;
  std::string cur;
  for (char ch : c) {
    if (ch == 0) {
      a.push_back(cur);
      cur.clear();
    } else cur += ch;
  }
  for (size_t i = 0; i + 1 < a.size(); ++i)
    if (a[i] == flag) return a[i + 1];
  return "";
}

long vm_kb(int pid, const char* field) {
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field) + 1);
  return -1;
}

// A monitor of the rogue's socket: did a handshake succeed, fail, or neither?
struct Rogue {
  zmq::socket_t sock, mon;
  explicit Rogue(zmq::context_t& ctx, const std::string& id)
      : sock(ctx, zmq::socket_type::dealer), mon(ctx, zmq::socket_type::pair) {
    static int seq = 0;
    std::string addr = "inproc://rogue-mon-" + std::to_string(seq++);
    sock.set(zmq::sockopt::routing_id, id);
    sock.set(zmq::sockopt::linger, 0);
    zmq_socket_monitor(sock.handle(), addr.c_str(), ZMQ_EVENT_ALL);
    mon.set(zmq::sockopt::linger, 0);
    mon.connect(addr);
  }
  ~Rogue() { zmq_socket_monitor(sock.handle(), nullptr, 0); }
  // Waits for the first handshake outcome: 1 succeeded, 0 failed, -1 none.
  int handshake(double timeout_s) {
    int out = -1;
    wait_until(
        [&] {
          zmq::message_t ev;
          while (mon.recv(ev, zmq::recv_flags::dontwait)) {
            uint16_t e = 0;
            if (ev.size() >= 2) std::memcpy(&e, ev.data(), 2);
            while (ev.more()) (void)mon.recv(ev, zmq::recv_flags::dontwait);
            if (e == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) out = 1;
            if (e == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH || e == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                e == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
              out = out == 1 ? 1 : 0;
          }
          return out != -1;
        },
        timeout_s);
    return out;
  }
  int received() {
    int n = 0;
    zmq::message_t m;
    while (sock.recv(m, zmq::recv_flags::dontwait)) n += !m.more();
    return n;
  }
  void hello(const std::string& claim, int64_t credit) {
    Message h;
    h.kind = MsgKind::Hello;
    h.value = credit;
    h.text = claim;
    sock.send(zmq::buffer(encode(h)), zmq::send_flags::dontwait);
  }
};

// Raw tcp: connect, write bytes (possibly none), close.
void raw_tcp(const std::string& endpoint, const std::string& bytes) {
  auto colon = endpoint.rfind(':');
  int port = std::atoi(endpoint.c_str() + colon + 1);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && !bytes.empty())
    (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  ::close(fd);
}

// Sends one 1.5 GB frame from a plain DEALER; the pages are never touched
// (an anonymous mapping reads as zeros), so the test itself stays small.
// Returns the producer's peak RSS growth in MB while the frame was offered.
long huge_frame(zmq::context_t& ctx, const std::string& endpoint, int producer_pid, bool* dropped) {
  const size_t n = size_t(1536) << 20;
  void* p = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  REQUIRE(p != MAP_FAILED);
  long before = vm_kb(producer_pid, "VmRSS:");
  long peak = before;
  {
    Rogue r(ctx, "collect#0");
    r.sock.connect(endpoint);
    zmq::message_t m(p, n, [](void* data, void* hint) { ::munmap(data, reinterpret_cast<size_t>(hint)); },
                     reinterpret_cast<void*>(n));
    r.sock.send(m, zmq::send_flags::dontwait);
    // Until the producer drops the connection (or 10 s).
    *dropped = wait_until(
        [&] {
          peak = std::max(peak, vm_kb(producer_pid, "VmRSS:"));
          zmq::message_t ev;
          bool gone = false;
          while (r.mon.recv(ev, zmq::recv_flags::dontwait)) {
            uint16_t e = 0;
            if (ev.size() >= 2) std::memcpy(&e, ev.data(), 2);
            while (ev.more()) (void)r.mon.recv(ev, zmq::recv_flags::dontwait);
            gone = gone || e == ZMQ_EVENT_DISCONNECTED || e == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                   e == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
          }
          return gone;
        },
        10);
    peak = std::max(peak, vm_kb(producer_pid, "VmHWM:"));
  }
  return (peak - before) / 1024;
}

struct Run {
  TempDir dir;
  std::string run;
  std::unique_ptr<Proc> proc;
  int producer = -1;
  std::string endpoint;
  explicit Run(const std::string& security, int rate = 500) : dir("rogue") {
    write_file(dir.file("g.toml"), graph(security, rate));
    run = dir.file("run");
    proc = std::make_unique<Proc>(catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + run + " --progress plain",
                                  dir.file("run.log"));
    REQUIRE(wait_until([&] { return !(endpoint = endpoint_of(run, "numbers/0")).empty(); }, 30));
    REQUIRE(wait_until([&] { return (producer = worker_pid(run, "numbers")) > 0; }, 30));
  }
  // Waits for the end; checks that collect has every item exactly once.
  void check_outcome() {
    int code = proc->wait(120);
    INFO(proc->log());
    CHECK(code == 0);
    std::set<std::string> keys;
    size_t lines = 0;
    std::istringstream in(read_file(run + "/collected.tsv.0"));
    std::string line;
    while (std::getline(in, line)) {
      lines++;
      keys.insert(line.substr(0, line.find('\t')));
    }
    CHECK(lines == size_t(kItems));
    CHECK(keys.size() == size_t(kItems));
    CHECK(pids_with(run).empty());
  }
};

}  // namespace

TEST_CASE("rogue peers: over CURVE tcp nothing is stolen or injected and strangers are refused") {
  Run r("curve");
  zmq::context_t ctx(1);
  // The thief knows the producer's public key (say, from a leaked key
  // table) but has no member key: ZAP refuses it.
  // The producer's public key, from its consumer's replica spec (0600 in
  // the run's socket directory).
  int collect = -1;
  REQUIRE(wait_until([&] { return (collect = worker_pid(r.run, "collect")) > 0; }, 30));
  auto spec = read_replica_spec(cmdline_arg(collect, "--spec"));
  REQUIRE(spec.ok());
  REQUIRE(spec->plan.curve.server_keys.size() == 1);
  const std::string producer_key = spec->plan.curve.server_keys[0];
  REQUIRE_FALSE(producer_key.empty());
  auto mine = curve_keypair();
  Rogue thief(ctx, "collect#0");
  thief.sock.set(zmq::sockopt::curve_serverkey, producer_key);
  thief.sock.set(zmq::sockopt::curve_publickey, mine.public_z85);
  thief.sock.set(zmq::sockopt::curve_secretkey, mine.secret_z85);
  thief.sock.connect(r.endpoint);
  thief.hello("collect#0", 1000000);
  CHECK(thief.handshake(10) == 0);
  // Plain ZeroMQ (no key at all): a mechanism mismatch.
  Rogue plain(ctx, "collect#0");
  plain.sock.connect(r.endpoint);
  plain.hello("collect#0", 1000000);
  Message inj;
  inj.kind = MsgKind::Sample;
  Sample s;
  s.key = "injected";
  inj.body = s;
  plain.sock.send(zmq::buffer(encode(inj)), zmq::send_flags::dontwait);
  CHECK(plain.handshake(10) == 0);
  // Garbage and connect-and-vanish.
  std::mt19937 rng(7);
  std::string junk(1 << 16, '\0');
  for (auto& c : junk) c = char(rng());
  for (int i = 0; i < 20; ++i) raw_tcp(r.endpoint, i % 2 ? junk : "");
  raw_tcp(r.endpoint, std::string("\xff\0\0\0\0\0\0\0\x01\x7f\x03\x01NULL", 14));  // a greeting, then gone
  bool dropped = false;
  long grew_mb = huge_frame(ctx, r.endpoint, r.producer, &dropped);
  CHECK(dropped);
  CHECK(grew_mb < 200);
  CHECK(thief.received() == 0);
  CHECK(plain.received() == 0);
  r.check_outcome();
  std::string log = r.proc->log();
  CHECK_THAT(log, Catch::Contains("refused a connection from 127.0.0.1"));
  CHECK(log.find("injected") == std::string::npos);
  // The plain peer never reaches ZAP: refused at the greeting, and still
  // counted (issue 23), as are the garbage connections. Its log line is not
  // asserted here: the 20 junk connections before it can use up the log's
  // 10 lines a minute, so whether it is named depends on arrival order.
  CHECK(summary_counter(r.run, "numbers", "security.failed_handshakes") >= 2);
  CHECK(summary_counter(r.run, "numbers", "security.refused_connections") >= 1);
}

TEST_CASE("rogue peers: with security = none the plan's identities, credit cap and frame limit still hold") {
  Run r("none", 300);  // 10 s: room for the impersonator to be noticed (5 s of silence)
  zmq::context_t ctx(1);
  // Identities outside the plan, with a million credits each.
  Rogue t1(ctx, "thief#0"), t2(ctx, "collect#7");
  t1.sock.connect(r.endpoint);
  t2.sock.connect(r.endpoint);
  t1.hello("thief#0", 1000000);
  t2.hello("collect#7", 1000000);
  // A Hello, then gone: must not fail the run.
  {
    Rogue v(ctx, "vanish#0");
    v.sock.connect(r.endpoint);
    v.hello("vanish#0", 5);
    v.handshake(5);
  }
  // Injected data messages are not control messages: ignored.
  Rogue inj(ctx, "collect#3");
  inj.sock.connect(r.endpoint);
  Message m;
  m.kind = MsgKind::Sample;
  Sample s;
  s.key = "injected";
  m.body = s;
  for (int i = 0; i < 100; ++i) inj.sock.send(zmq::buffer(encode(m)), zmq::send_flags::dontwait);
  bool dropped = false;
  long grew_mb = huge_frame(ctx, r.endpoint, r.producer, &dropped);
  CHECK(dropped);
  CHECK(grew_mb < 200);
  CHECK(t1.handshake(5) == 1);  // plain tcp: connected, but ignored
  // The live consumer's identity, claimed by a second connection once the
  // consumer is receiving: ZeroMQ ignores it silently; the producer names it.
  REQUIRE(wait_until([&] { return items_in(r.run, "collect") > 0; }, 30));
  Rogue imp(ctx, "collect#0");
  imp.sock.connect(r.endpoint);
  imp.hello("collect#0", 1000000);
  CHECK(t1.received() == 0);
  CHECK(t2.received() == 0);
  r.check_outcome();
  CHECK(imp.received() == 0);
  std::string log = r.proc->log();
  // Rejected Hellos are logged now, not only counted, naming the peer.
  CHECK_THAT(log, Catch::Contains("rejected a Hello from 'thief#0', not a consumer of this producer") &&
                      Catch::Contains("(peer 127.0.0.1)"));
  CHECK_THAT(log, Catch::Contains("rejected a Hello from 'collect#7'"));
  CHECK_THAT(log, Catch::Contains("rejected a sample message from"));
  CHECK(summary_counter(r.run, "numbers", "security.rejected_hellos") >= 2);
  CHECK_THAT(log, Catch::Contains("refused a connection from 127.0.0.1:") && Catch::Contains("impersonated identity"));
  CHECK(summary_counter(r.run, "numbers", "security.silent_connections") >= 1);
}

namespace {
// The join tests' graph: `count` numbers from one counter per node, collected
// on node 0; nodes wait join_timeout_s for each other.
std::string two_node_counter_graph(int join_timeout_s, int count) {
  return "[graph]\nnodes = 2\njoin_timeout_s = " + std::to_string(join_timeout_s) +
         "\n[stages.numbers]\ntype = \"testing.counter\"\ncount = " + std::to_string(count) +
         "\nreplicas_per_node = 1\n[stages.collect]\ntype = \"testing.collect\"\ninputs = [\"numbers\"]\n";
}
}  // namespace

TEST_CASE("rogue peers: a node with another cluster secret is refused at join, named") {
  TempDir dir("secret");
  write_file(dir.file("g.toml"), two_node_counter_graph(8, 10));
  int port = free_port();
  std::string coord = "127.0.0.1:" + std::to_string(port);
  Proc c0("env -u CATLIP_CLUSTER_SECRET_FILE CATLIP_CLUSTER_SECRET=the-coordinators-secret-0123 " + catlip_bin() +
              " node " + dir.file("g.toml") + " --rank 0 --nodes 2 --coordinator " + coord + " --run-dir " +
              dir.file("run") + " --progress plain",
          dir.file("node0.log"));
  Proc c1("env -u CATLIP_CLUSTER_SECRET_FILE CATLIP_CLUSTER_SECRET=a-different-secret-45678 " + catlip_bin() +
              " node --rank 1 --nodes 2 --coordinator " + coord + " --join-timeout 20",
          dir.file("node1.log"));
  double took = 0;
  int code1 = c1.wait(30, &took);
  INFO(c1.log());
  CHECK(code1 == 1);
  CHECK(took < 10);  // the Done-when of issue 24: named within 10 s
  CHECK_THAT(c1.log(), Catch::Contains("refused the connection") && Catch::Contains("cluster secret"));
  int code0 = c0.wait(30);
  INFO(c0.log());
  CHECK(code0 == 1);
  CHECK_THAT(c0.log(), Catch::Contains("refused a node connection") && Catch::Contains("another cluster secret"));
  // Without any secret the coordinator says what to set.
  Proc c2("env -u CATLIP_CLUSTER_SECRET -u CATLIP_CLUSTER_SECRET_FILE " + catlip_bin() + " node " +
              dir.file("g.toml") + " --rank 0 --nodes 2 --coordinator " + coord + " --run-dir " + dir.file("run2"),
          dir.file("node0b.log"));
  CHECK(c2.wait(30) == 1);
  CHECK_THAT(c2.log(), Catch::Contains("CATLIP_CLUSTER_SECRET"));
}

TEST_CASE("join: an agent without a cluster secret says so at once and again when no coordinator answers") {
  catlip::test::cluster::clean_launcher_env();
  ::unsetenv("CATLIP_CLUSTER_SECRET");
  ::unsetenv("CATLIP_CLUSTER_SECRET_FILE");
  int port = catlip::test::free_port();
  auto t0 = std::chrono::steady_clock::now();
  auto r = catlip::test::run_cmd("timeout 30 " + catlip::test::catlip_bin() +
                                 " node --rank 1 --nodes 2 --coordinator 127.0.0.1:" + std::to_string(port) +
                                 " --join-timeout 3 2>&1");
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK(took < 10);
  CHECK_THAT(r.out, Catch::Contains("no cluster secret set") && Catch::Contains("export CATLIP_CLUSTER_SECRET"));
  CHECK_THAT(r.out, Catch::Contains("This node has no cluster secret") &&
                        Catch::Contains("set CATLIP_CLUSTER_SECRET, the same on every node"));
}

TEST_CASE("join: `catlip run --nodes 2` on loopback without a secret makes a one-run secret, never for a host name") {
  TempDir dir("onerun");
  write_file(dir.file("g.toml"), two_node_counter_graph(30, 20));
  std::string no_secret = "env -u CATLIP_CLUSTER_SECRET -u CATLIP_CLUSTER_SECRET_FILE ";
  int port = free_port();
  Proc c0(no_secret + catlip_bin() + " run " + dir.file("g.toml") + " --nodes 2 --listen 127.0.0.1:" +
              std::to_string(port) + " --run-dir " + dir.file("run") + " --progress plain",
          dir.file("node0.log"));
  // The export line, as a user would copy it into the agent's shell.
  std::string secret;
  REQUIRE(wait_until(
      [&] {
        auto log = c0.log();
        auto at = log.find("export CATLIP_CLUSTER_SECRET=");
        if (at == std::string::npos) return false;
        auto end = log.find('\n', at);
        if (end == std::string::npos) return false;
        secret = log.substr(at + 29, end - at - 29);
        return true;
      },
      20));
  INFO(c0.log());
  CHECK(secret.size() >= 32);
  CHECK_THAT(c0.log(), Catch::Contains("made one for this run"));
  Proc c1("env -u CATLIP_CLUSTER_SECRET_FILE CATLIP_CLUSTER_SECRET=" + secret + " " + catlip_bin() +
              " node --rank 1 --nodes 2 --coordinator 127.0.0.1:" + std::to_string(port) + " --join-timeout 20",
          dir.file("node1.log"));
  CHECK(c1.wait(60) == 0);
  CHECK(c0.wait(60) == 0);
  INFO(c1.log());
  CHECK_THAT(c0.log(), Catch::Contains("finished"));

  // A host name (Debian maps this host's own name to 127.0.1.1, and the
  // coordinator then listens on every interface): no secret is made.
  char host[256] = {};
  REQUIRE(::gethostname(host, sizeof host - 1) == 0);
  auto r = run_cmd("timeout 30 " + no_secret + catlip_bin() + " run " + dir.file("g.toml") + " --nodes 2 --listen " +
                   std::string(host) + ":" + std::to_string(free_port()) + " --run-dir " + dir.file("run2") + " 2>&1");
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Catch::Contains("CATLIP_CLUSTER_SECRET"));
  CHECK_THAT(r.out, !Catch::Contains("made one for this run"));
}
