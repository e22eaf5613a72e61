// The coordinator's side of a multi-host run: joining nodes 1..N-1, then
// relaying their replicas' events into the supervisor's event loop.
#include <string.h>

#include <cstring>

#include <chrono>
#include <iostream>
#include <cmath>
#include <set>
#include <thread>

#include "catlip/cluster.h"
#include "catlip/plugin.h"

namespace catlip {

namespace {
using Clock = std::chrono::steady_clock;
constexpr auto kPingEvery = std::chrono::milliseconds(500);
}  // namespace

struct RemoteNodes::Impl {
  Impl(zmq::context_t& zctx, const GraphSpec& graph)
      : g(graph), sock(zctx, zmq::socket_type::router), mon(zctx, zmq::socket_type::pair) {}
  ~Impl() {
    if (monitoring) zmq_socket_monitor(sock.handle(), nullptr, 0);
  }
  GraphSpec g;
  std::unique_ptr<ZapHandler> zap;  // before sock: destroyed after it
  zmq::socket_t sock;
  // Handshake failures: a node with another secret (or none) is named here,
  // not left to time out silently.
  zmq::socket_t mon;
  bool monitoring = false;
  int64_t refused = 0;
  void read_monitor() {
    if (!monitoring) return;
    for (;;) {
      zmq::message_t ev, addr;
      if (!mon.recv(ev, zmq::recv_flags::dontwait)) return;
      if (ev.more()) (void)mon.recv(addr);
      uint16_t e = 0;
      if (ev.size() >= 2) std::memcpy(&e, ev.data(), 2);
      if (e != ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && e != ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) continue;
      if (refused++ == 0)
        std::cerr << "catlip: refused a node connection to " << addr.to_string() << ": "
                  << (e == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? "its handshake failed" : "it dropped the handshake")
                  << " (another cluster secret, none, or not a catlip node)\n";
    }
  }
  RunKeys keys;
  std::map<std::string, int> rank_of;  // peer routing id -> node rank
  std::vector<std::string> id_of;      // node rank -> peer routing id
  std::vector<Clock::time_point> seen;
  std::vector<bool> ready, lost, bye;
  Clock::time_point start = Clock::now(), last_ping{};
  int killed = 0;
  bool stopping = false;  // STOP sent: failures while winding down are not the node's
  // STOP sent for a restart of the run: a node that said BYE waits for the
  // next ASSIGN and gives up after 10 s without a word, so it is still pinged.
  bool restarting = false;
  std::string table;  // every node's endpoints, sent in START
  std::string reached_at;  // the coordinator's address as the nodes reached it (first join)
  bool renumbered = false;  // a shrink renumbered the nodes: ASSIGN carries rank and node count

  bool send(int rank, const CtlMsg& m) {
    if (rank <= 0 || id_of[size_t(rank)].empty()) return false;
    std::string b = encode_ctl(m);
    try {
      sock.send(zmq::buffer(id_of[size_t(rank)]), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      sock.send(zmq::buffer(b), zmq::send_flags::dontwait);
      return true;
    } catch (const zmq::error_t&) {
      return false;  // EHOSTUNREACH: the node's connection is gone
    }
  }
  // Next message from any peer; false when none is ready.
  bool recv(std::string& id, CtlMsg& m) {
    for (;;) {
      zmq::message_t idm, body;
      if (!sock.recv(idm, zmq::recv_flags::dontwait)) return false;
      if (!idm.more()) continue;
      (void)sock.recv(body);
      while (body.more()) (void)sock.recv(body);  // ignore extra frames
      id = idm.to_string();
      if (decode_ctl(body.data(), body.size(), m)) return true;
    }
  }
  void wait(int ms) {
    zmq::pollitem_t it{sock.handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&it, 1, std::chrono::milliseconds(ms));
    } catch (const zmq::error_t&) {
      // EINTR (a signal): the caller checks its stop flag and polls again
    }
  }
};

static int to_int(const CtlMsg& m, const char* k, int def = -1) {
  auto it = m.find(k);
  if (it == m.end()) return def;
  try {
    return std::stoi(it->second);
  } catch (...) {
    return def;
  }
}

// "plugin 'testing' is version 0.1.0 on node 0 but 9.9.9 on node 2; ..."
static std::string plugin_difference(const std::string& ours, const std::string& theirs, int k) {
  auto parse = [](const std::string& text) {
    std::map<std::string, std::string> m;
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(start, end - start);
      auto sp = line.find(' ');
      if (sp != std::string::npos) m[line.substr(0, sp)] = line.substr(sp + 1);
      start = end + 1;
    }
    return m;
  };
  auto a = parse(ours), b = parse(theirs);
  std::string node = "node " + std::to_string(k), out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : "; ") + s; };
  for (auto& [name, v] : a) {
    auto it = b.find(name);
    if (it == b.end()) add("plugin '" + name + "' " + v + " is missing on " + node);
    else if (it->second != v) add("plugin '" + name + "' is version " + v + " on node 0 but " + it->second + " on " + node);
  }
  for (auto& [name, v] : b)
    if (!a.count(name)) add("plugin '" + name + "' " + v + " is on " + node + " only");
  return "plugin set differs: " + (out.empty() ? "(unreadable list)" : out);
}

const char* const kNoClusterSecret =
    "a multi-node run authenticates its nodes with a cluster secret: export CATLIP_CLUSTER_SECRET=\"$(catlip secret)\" "
    "on every node (or CATLIP_CLUSTER_SECRET_FILE, [graph] secret_file, catlip node --secret-file), or set "
    "[graph] security = \"none\" on a network you trust";

RemoteNodes::RemoteNodes(zmq::context_t& zctx, const GraphSpec& g, const std::string& address, int port,
                         const RunKeys& keys)
    : impl_(std::make_unique<Impl>(zctx, g)) {
  auto& s = impl_->sock;
  impl_->keys = keys;
  s.set(zmq::sockopt::maxmsgsize, int64_t(64) << 20);  // reports and logs; the graph itself is small
  if (g.security == "curve") {
    std::string secret = cluster_secret(g.secret_file);
    if (secret.empty()) throw std::runtime_error(kNoClusterSecret);
    // Only a holder of the secret can derive the node key the ZAP handler
    // admits, or the coordinator key it must encrypt to.
    impl_->zap = std::make_unique<ZapHandler>(zctx);
    impl_->zap->allow(curve_keypair_from_secret(secret, "node").public_z85, "node");
    impl_->zap->on_refused = [](const std::string& address, const std::string& why) {
      std::cerr << "catlip: refused a node connection from " << address << ": " << why
                << " (wrong cluster secret?)\n";
    };
    s.set(zmq::sockopt::curve_server, 1);
    s.set(zmq::sockopt::curve_secretkey, curve_keypair_from_secret(secret, "coordinator").secret_z85);
    s.set(zmq::sockopt::zap_domain, "catlip-join");
    std::string mon = "inproc://catlip-coordinator-mon";
    if (zmq_socket_monitor(s.handle(), mon.c_str(),
                           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0) {
      impl_->mon.set(zmq::sockopt::linger, 0);
      impl_->mon.connect(mon);
      impl_->monitoring = true;
    }
  }
  s.set(zmq::sockopt::router_mandatory, 1);
  s.set(zmq::sockopt::linger, 2000);
  s.set(zmq::sockopt::sndhwm, 100000);
  s.set(zmq::sockopt::rcvhwm, 100000);
  std::string ep = "tcp://" + address + ":" + std::to_string(port);
  try {
    if (address == "*") throw zmq::error_t(EADDRNOTAVAIL);  // straight to the wildcard
    s.bind(ep);
  } catch (const zmq::error_t& e) {
    if (address != "*" && e.num() != EADDRNOTAVAIL)
      throw std::runtime_error("cannot listen for nodes at " + ep + ": " + e.what());
    // Any address: the given one is not this host's (e.g. a service address)
    // or names loopback here only (a host name mapped to 127.0.1.1).
    try {
      s.bind("tcp://*:" + std::to_string(port));
    } catch (const zmq::error_t& e2) {
      throw std::runtime_error("cannot listen for nodes on port " + std::to_string(port) + ": " + e2.what());
    }
  }
  size_t n = static_cast<size_t>(g.nodes);
  impl_->id_of.assign(n, "");
  impl_->seen.assign(n, Clock::now());
  impl_->ready.assign(n, false);
  impl_->lost.assign(n, false);
  impl_->bye.assign(n, false);
  nodes_.resize(n);
  for (int k = 0; k < g.nodes; ++k) {
    nodes_[size_t(k)].rank = k;
    nodes_[size_t(k)].replicas = static_cast<int>(replicas_on_node(g, k).size());
  }
}

RemoteNodes::~RemoteNodes() = default;

Status RemoteNodes::rendezvous(const std::string& graph_toml, const std::string& run_dir,
                               const std::string& plugins, const Node0Endpoints& node0, EndpointTable& tcp,
                               const std::atomic<int>& signal) {
  Impl& im = *impl_;
  const int n = im.g.nodes;
  auto deadline = Clock::now() + std::chrono::duration<double>(im.g.join_timeout_s);
  auto who = [&](int k) {
    auto& ni = nodes_[size_t(k)];
    return "node " + std::to_string(k) + (ni.host.empty() ? "" : " (" + ni.host + ")");
  };
  auto refuse = [&](const std::string& id, int k, const std::string& why) {
    std::string b = encode_ctl({{"kind", "REJECT"}, {"reason", why}});
    try {
      im.sock.send(zmq::buffer(id), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      im.sock.send(zmq::buffer(b), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
      // a node that left cannot be told anything: its loss is noticed by liveness
    }
    if (k > 0 && k < n) {
      nodes_[size_t(k)].status = "failed";
      im.bye[size_t(k)] = true;  // nothing to wait for at stop()
    }
    return Status::Unavailable((k >= 0 ? who(k) + " " : std::string("a node ")) + "refused at join: " + why);
  };
  auto assign = [&](int k) {
    CtlMsg a{{"kind", "ASSIGN"}, {"graph", graph_toml}, {"run_dir", run_dir}};
    // After a shrink the agents learn their new rank and the node count.
    if (im.renumbered) a["rank"] = std::to_string(k), a["nodes"] = std::to_string(n);
    // This node's stages' secret keys and every stage's public key,
    // over the join channel (encrypted when security = "curve").
    if (!im.keys.empty()) a["keys"] = run_keys_to_text(im.keys, stages_on_node(im.g, k));
    im.send(k, a);
  };
  int ready = 1;
  late_.clear();
  std::string reached_at = im.reached_at;  // the coordinator's address as the nodes reached it
  // A later generation (a restart of the run): the nodes still joined get
  // the new graph at once; a lost one must join again.
  for (int k = 1; k < n; ++k)
    if (!im.id_of[size_t(k)].empty()) {
      nodes_[size_t(k)].status = "joined";
      assign(k);
    }
  while (ready < n) {
    if (int sig = signal.load())
      return Status::Invalid(std::string("interrupted by ") + ::strsignal(sig) + " while nodes were joining");
    if (Clock::now() > deadline) {
      std::string missing;
      int joined = 1;
      for (int k = 1; k < n; ++k) {
        if (!im.ready[size_t(k)]) late_.insert(k);
        if (im.id_of[size_t(k)].empty()) {
          missing += (missing.empty() ? "" : ", ") + std::to_string(k);
          nodes_[size_t(k)].status = "missing";
          im.bye[size_t(k)] = true;
        } else joined++;
      }
      if (missing.empty())
        for (int k = 1; k < n; ++k)
          if (!im.ready[size_t(k)]) missing += (missing.empty() ? "" : ", ") + std::to_string(k) + " (joined, not ready)";
      return Status::Unavailable(
          "node" + std::string(missing.find(',') == std::string::npos ? " " : "s ") + missing +
             " did not join within " + param_value_to_string(im.g.join_timeout_s) + " s (" + std::to_string(joined) +
             " of " + std::to_string(n) + " joined" +
             (im.refused ? "; " + std::to_string(im.refused) +
                               " connection(s) failed the handshake: another cluster secret, or none?"
                         : std::string()) +
             ")");
    }
    im.wait(100);
    im.read_monitor();
    if (Clock::now() - im.last_ping >= kPingEvery) {  // joined nodes wait alive
      im.last_ping = Clock::now();
      for (int k = 1; k < n; ++k) im.send(k, {{"kind", "PING"}});
    }
    std::string id;
    CtlMsg m;
    while (im.recv(id, m)) {
      const std::string kind = ctl_field(m, "kind");
      auto known = im.rank_of.find(id);
      if (kind == "JOIN") {
        int k = to_int(m, "rank");
        if (k < 1 || k >= n)
          return refuse(id, -1, "rank " + ctl_field(m, "rank") + " is outside 1.." + std::to_string(n - 1) +
                                    " (the coordinator is node 0 of " + std::to_string(n) + ")");
        if (!im.id_of[size_t(k)].empty() && im.id_of[size_t(k)] != id)
          return refuse(id, -1, "node rank " + std::to_string(k) + " joined twice (from " + nodes_[size_t(k)].host +
                                    " and " + ctl_field(m, "host") + ")");
        auto& ni = nodes_[size_t(k)];
        ni.host = ctl_field(m, "host");
        ni.address = ctl_field(m, "address");
        ni.pid = to_int(m, "pid", 0);
        if (ctl_field(m, "version") != catlip_version())
          return refuse(id, k, "catlip " + ctl_field(m, "version") + " there, " + catlip_version() + " here");
        im.id_of[size_t(k)] = id;
        im.rank_of[id] = k;
        if (reached_at.empty()) reached_at = ctl_field(m, "via");
        im.seen[size_t(k)] = Clock::now();
        ni.status = "joined";
        im.lost[size_t(k)] = false;
        im.bye[size_t(k)] = false;
        assign(k);
      } else if (known == im.rank_of.end()) {
        continue;  // not a member
      } else if (kind == "READY") {
        int k = known->second;
        im.seen[size_t(k)] = Clock::now();
        std::string theirs = ctl_field(m, "plugins");
        if (theirs != plugins) return refuse(id, k, plugin_difference(plugins, theirs, k));
        for (auto& [tag, ep] : endpoints_from_text(ctl_field(m, "endpoints"))) tcp[tag] = ep;
        if (!im.ready[size_t(k)]) {
          im.ready[size_t(k)] = true;
          ready++;
        }
      } else if (kind == "FAIL") {
        int k = known->second;
        nodes_[size_t(k)].status = "failed";
        return Status::Unavailable(who(k) + " cannot run the graph: " + ctl_field(m, "reason"));
      } else if (kind == "LEAVE") {
        int k = known->second;
        im.lost[size_t(k)] = true;
        nodes_[size_t(k)].status = "lost";
        return Status::Unavailable(who(k) + " left while joining: " + ctl_field(m, "reason"));
      } else {
        im.seen[size_t(known->second)] = Clock::now();
      }
    }
  }
  try {
    for (auto& [tag, ep] : node0(reached_at)) tcp[tag] = ep;
  } catch (const std::exception& e) {
    return Status::Unavailable(std::string("node 0 cannot listen for the other nodes' consumers: ") + e.what());
  }
  im.table = endpoints_to_text(tcp);
  im.reached_at = reached_at;
  return Status::Ok();
}

void RemoteNodes::next_generation(const GraphSpec& g, double join_timeout_s, const std::vector<int>& new_rank) {
  Impl& im = *impl_;
  if (!new_rank.empty()) {
    // Renumber: node k's state moves to new_rank[k]; lost nodes are dropped.
    const size_t n = size_t(g.nodes);
    std::vector<std::string> id_of(n);
    std::vector<Clock::time_point> seen(n, Clock::now());
    std::vector<bool> lost(n, false);
    std::vector<NodeView> views(n);
    im.rank_of.clear();
    for (size_t k = 0; k < new_rank.size() && k < im.id_of.size(); ++k) {
      int j = new_rank[k];
      if (j < 0) continue;
      id_of[size_t(j)] = im.id_of[k];
      views[size_t(j)] = nodes_[k];
      views[size_t(j)].rank = j;
      if (j > 0 && !id_of[size_t(j)].empty()) im.rank_of[id_of[size_t(j)]] = j;
    }
    im.id_of = id_of;
    im.seen = seen;
    im.lost = lost;
    im.ready.assign(n, false);
    im.bye.assign(n, false);
    nodes_ = views;
    im.renumbered = true;
  }
  im.g = g;
  im.g.join_timeout_s = join_timeout_s;
  im.stopping = false;
  im.restarting = false;
  im.killed = 0;
  im.table.clear();
  const size_t n = size_t(g.nodes);
  for (size_t k = 1; k < n; ++k) {
    im.ready[k] = false;
    im.bye[k] = false;
    im.seen[k] = Clock::now();
    NodeView& v = nodes_[k];
    v.exited = v.failed = 0;
    v.replicas = static_cast<int>(replicas_on_node(g, int(k)).size());
    if (im.lost[k] || v.status == "failed") {
      // Gone: it may join again (a restarted agent with the same rank).
      if (!im.id_of[k].empty()) im.rank_of.erase(im.id_of[k]);
      im.id_of[k].clear();
      v.status = "waiting";
    }
  }
}

void RemoteNodes::start() {
  Impl& im = *impl_;
  for (int k = 1; k < im.g.nodes; ++k) {
    if (!im.send(k, {{"kind", "START"}, {"endpoints", im.table}}))
      throw std::runtime_error("node " + std::to_string(k) + " is gone before the start");
    nodes_[size_t(k)].status = "running";
  }
}

void RemoteNodes::add_poll_items(std::vector<zmq::pollitem_t>& items) {
  items.push_back({impl_->sock.handle(), 0, ZMQ_POLLIN, 0});
}

void RemoteNodes::handle(LaunchEvents& ev) {
  Impl& im = *impl_;
  auto now = Clock::now();
  auto lose = [&](int k, const std::string& why) {
    if (im.lost[size_t(k)] || im.bye[size_t(k)]) return;
    im.lost[size_t(k)] = true;
    nodes_[size_t(k)].status = "lost";
    ev.on_node_lost(k, "node " + std::to_string(k) + " (" + nodes_[size_t(k)].host + ") " + why);
  };
  std::string id;
  CtlMsg m;
  while (im.recv(id, m)) {
    auto it = im.rank_of.find(id);
    if (it == im.rank_of.end()) continue;
    int k = it->second;
    im.seen[size_t(k)] = now;
    nodes_[size_t(k)].last_seen_s = std::chrono::duration<double>(now - im.start).count();
    const std::string kind = ctl_field(m, "kind");
    if (kind == "REPORT") {
      ReplicaReport r;
      std::string b = ctl_field(m, "report");
      if (decode_report(b.data(), b.size(), r)) ev.on_report(k, r);
    } else if (kind == "LINE") {
      ev.on_line(k, ctl_field(m, "tag"), ctl_field(m, "text"));
    } else if (kind == "EXIT") {
      ReplicaExit e;
      e.stage = ctl_field(m, "stage");
      e.replica = to_int(m, "replica", 0);
      e.node = k;
      e.ok = ctl_field(m, "ok") == "1";
      e.stopped = ctl_field(m, "stopped") == "1";
      e.config_error = ctl_field(m, "config_error") == "1";
      e.failure = ctl_field(m, "failure");
      nodes_[size_t(k)].exited++;
      if (im.stopping) e.stopped = e.stopped || !e.ok, e.failure.clear();  // winding down
      else if (!e.ok && !e.stopped) nodes_[size_t(k)].failed++;
      ev.on_exit(e);
    } else if (kind == "RESTART") {
      ReplicaExit e;
      e.stage = ctl_field(m, "stage");
      e.replica = to_int(m, "replica", 0);
      e.node = k;
      e.failure = ctl_field(m, "failure");
      ev.on_restart(e, to_int(m, "attempt", 1), to_int(m, "max", 1));
    } else if (kind == "BYE") {
      im.bye[size_t(k)] = true;
      im.killed += to_int(m, "killed", 0);
      if (nodes_[size_t(k)].status == "running") nodes_[size_t(k)].status = nodes_[size_t(k)].failed ? "failed" : "ok";
    } else if (kind == "LEAVE") {
      lose(k, "left: " + ctl_field(m, "reason"));
    }
  }
  if (now - im.last_ping >= kPingEvery) {
    im.last_ping = now;
    for (int k = 1; k < im.g.nodes; ++k)
      if (!im.lost[size_t(k)] && (!im.bye[size_t(k)] || im.restarting) && !im.send(k, {{"kind", "PING"}}))
        lose(k, "lost: its connection to the coordinator dropped (killed, or its host went down)");
  }
  for (int k = 1; k < im.g.nodes; ++k) {
    double silent = std::chrono::duration<double>(now - im.seen[size_t(k)]).count();
    if (silent > im.g.node_timeout_s)
      lose(k, "lost: no message for " + param_value_to_string(std::round(silent * 10) / 10) + " s (node_timeout_s " +
                  param_value_to_string(im.g.node_timeout_s) + ")");
  }
}

bool RemoteNodes::kill_replica(const std::string& stage, int replica) {
  const StageSpec* s = impl_->g.find(stage);
  if (!s || replica < 0 || replica >= s->replicas) return false;
  int k = s->node_of(replica);
  return k > 0 && impl_->send(k, {{"kind", "KILL"}, {"stage", stage}, {"replica", std::to_string(replica)}});
}

void RemoteNodes::request_stop(double grace_s, double restart_wait_s) {
  Impl& im = *impl_;
  if (im.stopping) return;
  im.stopping = true;
  im.restarting = restart_wait_s >= 0;
  for (int k = 1; k < im.g.nodes; ++k)
    if (!im.lost[size_t(k)] && !im.bye[size_t(k)]) {
      if (!outcome_ok_ && nodes_[size_t(k)].status == "running")
        nodes_[size_t(k)].status = restart_wait_s >= 0 ? "restarting" : nodes_[size_t(k)].failed ? "failed" : "stopped";
      CtlMsg stop{{"kind", "STOP"}, {"ok", outcome_ok_ ? "1" : "0"}, {"reason", outcome_},
                  {"grace", param_value_to_string(grace_s)}};
      if (restart_wait_s >= 0) stop["restart"] = "1", stop["wait_s"] = param_value_to_string(restart_wait_s);
      im.send(k, stop);
    }
}

int RemoteNodes::stop(double grace_s, LaunchEvents& ev) {
  Impl& im = *impl_;
  request_stop(grace_s);
  auto deadline = Clock::now() + std::chrono::duration<double>(grace_s + 5);
  for (;;) {
    bool waiting = false;
    for (int k = 1; k < im.g.nodes; ++k)
      if (!im.lost[size_t(k)] && !im.bye[size_t(k)] && !im.id_of[size_t(k)].empty()) waiting = true;
    if (!waiting || Clock::now() > deadline) break;
    im.wait(50);
    handle(ev);
  }
  return im.killed;
}

bool RemoteNodes::all_exited() const {
  const Impl& im = *impl_;
  for (int k = 1; k < im.g.nodes; ++k)
    if (!im.lost[size_t(k)] && !im.bye[size_t(k)] && nodes_[size_t(k)].exited < nodes_[size_t(k)].replicas) return false;
  return true;
}

}  // namespace catlip
