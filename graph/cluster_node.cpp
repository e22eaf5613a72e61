// `catlip node` on nodes 1..N-1: join the coordinator, run this node's
// replicas, forward what they say, stop when told or when the coordinator
// is lost.
#include <string.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "catlip/cluster.h"
#include "catlip/plugin.h"
#include "catlip/plugin_loader.h"
#include "catlip/validate.h"

namespace fs = std::filesystem;

namespace catlip {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// One line to stderr in one write: agents started by mpirun or srun share
// the launcher's output, and pieces of lines would interleave.
struct Say {
  explicit Say(int rank) : line_("catlip node " + std::to_string(rank) + ": ") {}
  ~Say() {
    line_ += "\n";
    ssize_t w = ::write(2, line_.data(), line_.size());
    (void)w;
  }
  template <class T>
  Say& operator<<(const T& v) {
    std::ostringstream o;
    o << v;
    line_ += o.str();
    return *this;
  }

 private:
  std::string line_;
};

std::string hostname() {
  char b[256] = {0};
  ::gethostname(b, sizeof b - 1);
  return b;
}

// The agent's link to the coordinator.
class Uplink : public LaunchEvents {
 public:
  // `secret`: the cluster secret; the join is then a CURVE client with the
  // keys derived from it (catlip/security.h). Empty: a plain connection.
  Uplink(zmq::context_t& zctx, const std::string& endpoint, const std::string& secret)
      : sock_(zctx, zmq::socket_type::dealer), mon_(zctx, zmq::socket_type::pair) {
    sock_.set(zmq::sockopt::linger, 2000);
    sock_.set(zmq::sockopt::sndhwm, 100000);
    sock_.set(zmq::sockopt::maxmsgsize, int64_t(64) << 20);
    if (!secret.empty()) {
      CurveKeyPair node = curve_keypair_from_secret(secret, "node");
      sock_.set(zmq::sockopt::curve_serverkey, curve_keypair_from_secret(secret, "coordinator").public_z85);
      sock_.set(zmq::sockopt::curve_publickey, node.public_z85);
      sock_.set(zmq::sockopt::curve_secretkey, node.secret_z85);
    }
    // Connection events: a coordinator that closed its end is gone at once,
    // not after a timeout; a refused handshake is named, not a silent wait.
    std::string mon = "inproc://catlip-uplink-" + std::to_string(::getpid());
    zmq_socket_monitor(sock_.handle(), mon.c_str(),
                       ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    mon_.set(zmq::sockopt::linger, 0);
    mon_.connect(mon);
    sock_.connect(endpoint);
  }
  ~Uplink() override { zmq_socket_monitor(sock_.handle(), nullptr, 0); }
  // True once the connection to the coordinator, established before, dropped.
  bool coordinator_gone() {
    for (;;) {
      zmq::message_t ev;
      if (!mon_.recv(ev, zmq::recv_flags::dontwait)) break;
      if (ev.size() >= 2) {
        uint16_t e;
        std::memcpy(&e, ev.data(), 2);
        if (e == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) connected_ = true;
        if (e == ZMQ_EVENT_DISCONNECTED && connected_) gone_ = true;
        if (!connected_ && (e == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL || e == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                            e == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH))
          handshake_failures_ += e == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ? 1 : 3;
      }
      while (ev.more()) (void)mon_.recv(ev, zmq::recv_flags::dontwait);
    }
    return gone_;
  }
  // True when the coordinator keeps refusing the handshake (another secret,
  // or one side has none).
  bool refused() {
    coordinator_gone();
    return !connected_ && handshake_failures_ >= 3;
  }
  void send(const CtlMsg& m) {
    std::string b = encode_ctl(m);
    try {
      if (!sock_.send(zmq::buffer(b), zmq::send_flags::dontwait)) dropped_++;
    } catch (const zmq::error_t&) {
      dropped_++;
    }
  }
  bool recv(CtlMsg& m, int timeout_ms) {
    zmq::pollitem_t it{sock_.handle(), 0, ZMQ_POLLIN, 0};
    try {
      if (timeout_ms > 0) zmq::poll(&it, 1, std::chrono::milliseconds(timeout_ms));
    } catch (const zmq::error_t&) {
      // EINTR (a signal): the caller checks its signal flag and calls again
    }
    for (;;) {
      zmq::message_t msg;
      if (!sock_.recv(msg, zmq::recv_flags::dontwait)) return false;
      while (msg.more()) (void)sock_.recv(msg, zmq::recv_flags::dontwait);
      if (decode_ctl(msg.data(), msg.size(), m)) {
        last_heard_ = Clock::now();
        return true;
      }
    }
  }
  zmq::pollitem_t item() { return {sock_.handle(), 0, ZMQ_POLLIN, 0}; }
  void ping() {
    if (Clock::now() - last_ping_ > std::chrono::milliseconds(500)) {
      last_ping_ = Clock::now();
      send({{"kind", "PING"}});
    }
  }
  double silent_s() const { return since(last_heard_); }

  void on_line(int, const std::string& tag, const std::string& line) override {
    send({{"kind", "LINE"}, {"tag", tag}, {"text", line}});
  }
  void on_report(int, const ReplicaReport& r) override { send({{"kind", "REPORT"}, {"report", encode_report(r)}}); }
  void on_restart(const ReplicaExit& e, int attempt, int max) override {
    send({{"kind", "RESTART"}, {"stage", e.stage}, {"replica", std::to_string(e.replica)},
          {"failure", e.failure}, {"attempt", std::to_string(attempt)}, {"max", std::to_string(max)}});
  }
  void on_exit(const ReplicaExit& e) override {
    send({{"kind", "EXIT"}, {"stage", e.stage}, {"replica", std::to_string(e.replica)}, {"ok", e.ok ? "1" : "0"},
          {"stopped", e.stopped ? "1" : "0"}, {"config_error", e.config_error ? "1" : "0"}, {"failure", e.failure}});
  }

 private:
  zmq::socket_t sock_, mon_;
  bool connected_ = false, gone_ = false;
  int handshake_failures_ = 0;
  Clock::time_point last_heard_ = Clock::now(), last_ping_{};
  int64_t dropped_ = 0;
};

// What the node prepares between ASSIGN and START.
struct Prepared {
  GraphSpec g;
  RunKeys keys;
  std::map<std::string, int> restarts;  // restart_budgets with this node's plugins
  std::map<std::string, Params> params;  // resolved with this node's plugins
  std::string run_dir;
  NodeListeners listeners;
};

// Checks the assigned graph with this node's plugins and binds the tcp
// listeners of its producers; returns OK or why this node cannot run it.
Status prepare(const CtlMsg& assign, const NodeOptions& opt, const std::string& address, Prepared& p,
               CtlMsg& ready) {
  std::vector<Diagnostic> diags;
  LoadOptions lo;
  lo.interpolate_env = false;  // resolved by the coordinator
  if (!load_graph_string(ctl_field(assign, "graph"), "<graph from the coordinator>", lo, p.g, diags).ok()) {
    std::string why = "the coordinator's graph does not load here:";
    for (auto& d : diags) why += " " + d.str() + ";";
    return Status::Invalid(why);
  }
  if (p.g.nodes != opt.id.nodes)
    return Status::Invalid("the graph runs on " + std::to_string(p.g.nodes) + " nodes but this node's launcher says " +
                           std::to_string(opt.id.nodes));
  PluginLoader loader;
  ValidateOptions vo;
  vo.files_of_node = opt.id.rank;  // this node's stages read their files here
  if (!validate_graph(p.g, loader, diags, &p.params, vo).ok()) {
    std::string why = "the graph is invalid with this node's plugins:";
    for (auto& d : diags) why += " " + d.str() + ";";
    return Status::Invalid(why);
  }
  std::string plugins;
  try {
    plugins = plugin_set(p.g);
  } catch (const std::exception& e) {
    return Status::Invalid(e.what());
  }
  p.run_dir = opt.run_dir.empty() ? ctl_field(assign, "run_dir") : opt.run_dir;
  try {
    p.keys = run_keys_from_text(ctl_field(assign, "keys"));
  } catch (const std::exception& e) {
    return Status::Invalid(std::string("the coordinator's keys do not parse: ") + e.what());
  }
  if (curve_links(p.g) && p.keys.empty())
    return Status::Invalid("the graph's tcp links use CURVE but the coordinator sent no keys");
  p.restarts = restart_budgets(p.g, loader);
  EndpointTable mine;
  try {
    mine = listen_for_node(p.g, opt.id.rank, address, 0, p.listeners);
  } catch (const std::exception& e) {
    return Status::Unavailable(e.what());
  }
  ready = {{"kind", "READY"}, {"plugins", plugins}, {"endpoints", endpoints_to_text(mine)}};
  return Status::Ok();
}

}  // namespace

// One `catlip node` agent: joined once, then one pass per generation of
// the run (the first, and one after each restart of the run: STOP with
// restart, whose next ASSIGN may take up to the STOP's wait_s while the
// coordinator waits for a lost node).
struct Agent {
  const NodeOptions& opt;
  NodeOptions cur;  // a shrunk run renumbers the nodes (ASSIGN's rank and nodes)
  int rank;
  std::string address, coord, secret;
  SignalGuard& signals;
  zmq::context_t& zctx;
  Uplink& up;
  bool heard = false;
  double next_wait_s = 0;

  // Waits for ASSIGN (prepares the graph) and START; returns -1 with `prep`
  // and `endpoints` filled when the run starts, else the agent's exit code.
  int await_start(int generation, Prepared& prep, std::string& endpoints) {
    auto t0 = Clock::now();
    for (;;) {
      if (int sig = signals.received().load()) {
        up.send({{"kind", "LEAVE"}, {"reason", std::string("received ") + ::strsignal(sig)}});
        return 130;
      }
      double limit = heard ? std::max({opt.join_timeout_s, 60.0, next_wait_s}) : opt.join_timeout_s;
      if (since(t0) > limit) {
        Say(rank) << (heard ? "the coordinator did not start the run" : "no answer from the coordinator at " + coord)
                  << " within " << limit << " s"
                  << (heard ? ""
                      : secret.empty()
                          ? " (is node 0 running? This node has no cluster secret: with security = \"curve\", the "
                            "default, node 0 refuses to start without one; set CATLIP_CLUSTER_SECRET, the same on "
                            "every node)"
                          : " (is node 0 running, and is the address reachable from here?)");
        return 1;
      }
      CtlMsg m;
      if (!up.recv(m, 100)) {
        up.ping();
        // Once it has answered, the coordinator pings every 0.5 s.
        if (up.refused()) {
          Say(rank) << "the coordinator at " << coord << " refused the connection: "
                    << (secret.empty() ? std::string("it requires a cluster secret and this node has none (") +
                                             kNoClusterSecret + ")"
                                       : std::string("this node's cluster secret differs from the coordinator's, or the "
                                                     "coordinator runs with security = \"none\""));
          return 1;
        }
        if (up.coordinator_gone() || (heard && up.silent_s() > 10)) {
          Say(rank) << "lost the coordinator at " << coord << " while joining";
          return 1;
        }
        continue;
      }
      heard = true;
      std::string kind = ctl_field(m, "kind");
      if (kind == "REJECT") {
        Say(rank) << "refused by the coordinator: " << ctl_field(m, "reason");
        return 1;
      } else if (kind == "STOP") {
        up.send({{"kind", "BYE"}, {"killed", "0"}});
        Say(rank) << "the run ended before it started: " << ctl_field(m, "reason");
        return ctl_field(m, "ok") == "1" ? 0 : 1;
      } else if (kind == "ASSIGN") {
        if (generation > 0 && !ctl_field(m, "rank").empty()) {
          // The run shrank to the nodes left: this node's new rank.
          try {
            int r = std::stoi(ctl_field(m, "rank")), n = std::stoi(ctl_field(m, "nodes"));
            if (r != rank) Say(rank) << "the run continues on " << n << " nodes; this node is now node " << r;
            rank = cur.id.rank = r;
            cur.id.nodes = n;
          } catch (...) {
            // a malformed rank: prepare() refuses the graph against the old one
          }
        }
        CtlMsg ready;
        Status prepared = prepare(m, cur, address, prep, ready);
        if (!prepared.ok()) {
          const std::string& why = prepared.message();
          up.send({{"kind", "FAIL"}, {"reason", why}});
          Say(rank) << "cannot run the graph: " << why;
          return 1;
        }
        up.send(ready);
      } else if (kind == "START") {
        endpoints = ctl_field(m, "endpoints");
        return -1;
      }
    }
  }

  // Runs this node's replicas until STOP; returns -1 when the run restarts
  // (the next generation follows), else the agent's exit code.
  int run_generation(Prepared& prep, const std::string& endpoints) {
    std::string node_dir = prep.run_dir + "/node-" + std::to_string(rank);
    fs::create_directories(node_dir);
    prep.g.run_dir = prep.run_dir;
    std::ofstream(node_dir + "/graph.toml") << graph_to_toml(prep.g);
    std::ofstream(node_dir + "/endpoints.txt") << endpoints;
    SocketDir sock_dir;
    LocalRun run{prep.g, rank, prep.run_dir, node_dir, sock_dir.path(), endpoints_from_text(endpoints),
                 prep.listeners.listen_fds, prep.listeners.group_fds, cur.worker_bin, prep.keys, prep.restarts,
                 prep.params};
    auto launcher = make_process_launcher(zctx, run);
    try {
      launcher->start();
    } catch (const std::exception& e) {
      up.send({{"kind", "LEAVE"}, {"reason", std::string("cannot start replicas: ") + e.what()}});
      launcher->stop(0, up);
      return 1;
    }
    release_group_ports(prep.listeners);  // producer ports stay held: a restarted replica reuses its own
    for (;;) {
      std::vector<zmq::pollitem_t> items{up.item()};
      launcher->add_poll_items(items);
      try {
        zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
      } catch (const zmq::error_t&) {
        // EINTR (a signal): the loop checks its signal flag next
      }
      launcher->handle(up);
      up.ping();
      CtlMsg m;
      while (up.recv(m, 0)) {
        if (ctl_field(m, "kind") == "KILL") {
          int r = -1;
          try {
            r = std::stoi(ctl_field(m, "replica"));
          } catch (...) {
            // no or bad replica index: -1 kills none, and the coordinator notices
          }
          launcher->kill_replica(ctl_field(m, "stage"), r);
          continue;
        }
        if (ctl_field(m, "kind") != "STOP") continue;
        double grace = 3;
        try {
          grace = std::stod(ctl_field(m, "grace"));
        } catch (...) {
          // no or bad grace from the coordinator: keep the default
        }
        int killed = launcher->stop(grace, up);
        up.send({{"kind", "BYE"}, {"killed", std::to_string(killed)}});
        if (ctl_field(m, "restart") == "1") {
          // The run restarts from its checkpoint: wait for its next ASSIGN.
          Say(rank) << "run restarting: " << ctl_field(m, "reason");
          try {
            next_wait_s = std::stod(ctl_field(m, "wait_s"));
          } catch (...) {
            next_wait_s = 0;  // none given: the join timeout
          }
          return -1;
        }
        bool ok = ctl_field(m, "ok") == "1";
        Say(rank) << (ok ? "run finished" : "run stopped: " + ctl_field(m, "reason"));
        return ok ? 0 : 1;
      }
      if (int sig = signals.received().load()) {
        Say(rank) << "received " << ::strsignal(sig) << ", stopping this node's replicas";
        launcher->stop(3, up);
        up.send({{"kind", "LEAVE"}, {"reason", std::string("received ") + ::strsignal(sig)}});
        return 130;
      }
      if (up.coordinator_gone() || up.silent_s() > prep.g.node_timeout_s) {
        Say(rank) << "lost the coordinator at " << coord << " ("
                  << (up.coordinator_gone() ? std::string("its connection closed")
                                            : "nothing for " + std::to_string(prep.g.node_timeout_s) + " s")
                  << "); stopping this node's replicas";
        launcher->stop(3, up);
        return 1;
      }
    }
  }
};

int run_node_agent(const NodeOptions& opt) {
  const int rank = opt.id.rank;
  std::string coord_ip;
  // Node 0's name may appear in DNS after this node starts (a Kubernetes
  // pod's record): keep asking until the join timeout.
  for (auto t0 = Clock::now();; std::this_thread::sleep_for(std::chrono::milliseconds(500))) {
    auto ip = resolve_host(opt.id.coordinator_host);
    if (ip.ok()) {
      coord_ip = *ip;
      break;
    }
    if (since(t0) > opt.join_timeout_s) {
      Say(rank) << "cannot resolve the coordinator '" << opt.id.coordinator_host << "' within " << opt.join_timeout_s
                << " s: " << ip.status().message();
      return 1;
    }
  }
  auto route = local_address_towards(coord_ip);
  if (!route.ok()) {
    Say(rank) << "no route to the coordinator " << coord_ip << ": " << route.status().message();
    return 1;
  }
  const std::string address = *route;
  std::string coord = "tcp://" + coord_ip + ":" + std::to_string(opt.id.coordinator_port);
  Say(rank) << opt.id.describe() << "; joining " << coord << " from " << address;

  std::string secret = cluster_secret(opt.secret_file);
  if (secret.empty())
    Say(rank) << "no cluster secret set: the coordinator accepts this node only if its graph has security = "
                 "\"none\"; otherwise export CATLIP_CLUSTER_SECRET on every node (`catlip secret` makes one)";
  SignalGuard signals;
  zmq::context_t zctx(1);
  Uplink up(zctx, coord, secret);
  up.send({{"kind", "JOIN"}, {"rank", std::to_string(rank)}, {"host", hostname()}, {"address", address}, {"via", coord_ip},
           {"pid", std::to_string(::getpid())}, {"version", catlip_version()}});

  Agent agent{opt, opt, rank, address, coord, secret, signals, zctx, up};
  for (int generation = 0;; ++generation) {
    Prepared prep;
    std::string endpoints;
    if (int rc = agent.await_start(generation, prep, endpoints); rc >= 0) return rc;
    if (int rc = agent.run_generation(prep, endpoints); rc >= 0) return rc;
  }
}

}  // namespace catlip
