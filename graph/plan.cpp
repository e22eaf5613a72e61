// The implementation of catlip/plan.h: where every replica runs and how replicas reach each other.
#include "catlip/plan.h"

#include "catlip/plugin_loader.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace catlip {

std::vector<ReplicaSlot> all_replicas(const GraphSpec& g) {
  std::vector<ReplicaSlot> out;
  for (auto& s : g.stages)
    for (int r = 0; r < s.replicas; ++r) out.push_back({s.name, r, s.node_of(r)});
  return out;
}

std::vector<ReplicaSlot> replicas_on_node(const GraphSpec& g, int node) {
  std::vector<ReplicaSlot> out;
  for (auto& r : all_replicas(g))
    if (r.node == node) out.push_back(r);
  return out;
}

bool node_local_edge(const StageSpec& p, const StageSpec& c) { return p.node_list() == c.node_list(); }

std::vector<int> upstream_replicas(const StageSpec& p, const StageSpec& c, int replica) {
  std::vector<int> out;
  bool local = node_local_edge(p, c);
  int node = c.node_of(replica);
  for (int r = 0; r < p.replicas; ++r)
    if (!local || p.node_of(r) == node) out.push_back(r);
  return out;
}

bool tcp_link(const GraphSpec& g, int producer_node, int consumer_node) {
  return g.transport == "tcp" || producer_node != consumer_node;
}

std::vector<ReplicaSlot> tcp_producers(const GraphSpec& g, int node) {
  std::vector<ReplicaSlot> out;
  for (auto& p : g.stages) {
    for (int r = 0; r < p.replicas; ++r) {
      if (p.node_of(r) != node) continue;
      bool needed = false;
      for (auto* c : g.consumers_of(p.name))
        for (int cr = 0; cr < c->replicas && !needed; ++cr) {
          auto up = upstream_replicas(p, *c, cr);
          needed = std::find(up.begin(), up.end(), r) != up.end() && tcp_link(g, node, c->node_of(cr));
        }
      if (needed) out.push_back({p.name, r, node});
    }
  }
  return out;
}

std::vector<std::string> group_stages(const GraphSpec& g) {
  std::vector<std::string> out;
  PluginLoader loader;
  for (auto& s : g.stages) {
    const StageType* t = loader.find_type(s.type);
    if (t && t->schema.group) out.push_back(s.name);
  }
  return out;
}

std::string endpoints_to_text(const EndpointTable& t) {
  std::string o;
  for (auto& [k, v] : t) o += k + " " + v + "\n";
  return o;
}

EndpointTable endpoints_from_text(const std::string& text) {
  EndpointTable t;
  std::istringstream in(text);
  std::string k, v;
  while (in >> k >> v) t[k] = v;
  return t;
}

std::string control_endpoint(const std::string& sock_dir, bool in_process) {
  return in_process ? "inproc://catlip-control" : "ipc://" + sock_dir + "/control";
}

ReplicaPlan make_plan(const GraphSpec& g, const EndpointTable& tcp, const std::string& stage, int replica,
                      const std::string& sock_dir, const std::string& run_dir, bool in_process) {
  const StageSpec* s = g.find(stage);
  if (!s || replica < 0 || replica >= s->replicas)
    throw std::invalid_argument("no replica " + std::to_string(replica) + " of stage '" + stage + "'");
  const int node = s->node_of(replica);
  auto local_ep = [&](const std::string& st, int r) {
    std::string leaf = st + "." + std::to_string(r);
    return in_process ? "inproc://" + leaf : "ipc://" + sock_dir + "/" + leaf;
  };
  auto tcp_ep = [&](const std::string& st, int r) {
    auto it = tcp.find(st + "/" + std::to_string(r));
    if (it == tcp.end()) throw std::invalid_argument("no tcp endpoint published for " + st + "/" + std::to_string(r));
    return it->second;
  };
  ReplicaPlan p;
  p.graph_name = g.name;
  p.stage_name = stage;
  p.stage_type = s->type;
  p.replica = replica;
  p.replicas = s->replicas;
  p.node = node;
  p.nodes = g.nodes;
  p.node_replica = p.node_replicas = 0;
  for (int r = 0; r < s->replicas; ++r)
    if (s->node_of(r) == node) {
      if (r < replica) p.node_replica++;
      p.node_replicas++;
    }
  p.run_dir = run_dir;
  p.prefetch = s->prefetch ? s->prefetch : g.prefetch;
  // A stage's own prefetch holds on every link; else shared-memory links
  // get the deeper shm_prefetch, except in a graph with deterministic order:
  // there the windows bound how far apart in sequence the replicas' items
  // run, and keyed routing's parking is sized for `prefetch` (a deeper
  // window upstream let one decode replica fill its parking with one rank's
  // items while the other rank waited for an item behind them).
  bool keyed = false;
  for (auto& st : g.stages)
    if (auto it = st.params.find("order"); it != st.params.end())
      if (auto* v = std::get_if<std::string>(&it->second); v && *v == "deterministic") keyed = true;
  auto shm_window = [&g, keyed](const StageSpec& c) {
    return c.prefetch ? c.prefetch : keyed ? g.prefetch : std::max(g.prefetch, g.shm_prefetch);
  };
  p.shm_prefetch = shm_window(*s);
  p.max_message_bytes = static_cast<size_t>(g.max_message_mb) << 20;
  p.report_endpoint = control_endpoint(sock_dir, in_process);
  p.report_interval_s = g.report_interval_s;
  for (auto& in : s->inputs) {
    const StageSpec* u = g.find(in);
    for (int r : upstream_replicas(*u, *s, replica))
    {
      p.inputs.push_back(!in_process && tcp_link(g, u->node_of(r), node) ? tcp_ep(in, r) : local_ep(in, r));
      p.input_stages.push_back(in);
    }
  }
  bool local_consumer = false, tcp_consumer = false;
  for (auto* c : g.consumers_of(stage)) {
    ConsumerGroup cg{c->name, 0, {}, c->prefetch ? c->prefetch : g.prefetch};
    cg.shm_prefetch = shm_window(*c);
    // A stage whose `order` parameter is "deterministic" (the trainer) gets
    // numbered samples by their number: seq % replicas (keyed routing).
    if (auto it = c->params.find("order"); it != c->params.end())
      if (auto* v = std::get_if<std::string>(&it->second); v && *v == "deterministic") cg.keyed_replicas = c->replicas;
    for (int cr = 0; cr < c->replicas; ++cr) {
      auto up = upstream_replicas(*s, *c, cr);
      if (std::find(up.begin(), up.end(), replica) == up.end()) continue;
      cg.replicas++;
      cg.members.push_back(cr);
      (!in_process && tcp_link(g, node, c->node_of(cr)) ? tcp_consumer : local_consumer) = true;
    }
    p.consumers.push_back(std::move(cg));
  }
  if (auto it = tcp.find(stage + "/group"); it != tcp.end()) p.group_endpoint = it->second;
  if (auto it = tcp.find("node/" + std::to_string(node)); it != tcp.end()) p.node_address = it->second;
  // Shared-memory payloads on ipc links (both ends on this node).
  p.shm = g.shm && !in_process;
  p.shm_threshold = static_cast<size_t>(g.shm_threshold_kb) << 10;
  if (p.shm && local_consumer) p.shm_pool_bytes = static_cast<size_t>(g.shm_mb) << 20;
  if (local_consumer) p.output_endpoints.push_back(local_ep(stage, replica));
  if (tcp_consumer) p.output_endpoints.push_back(tcp_ep(stage, replica));
  return p;
}

bool curve_links(const GraphSpec& g) {
  if (g.security != "curve") return false;
  for (int k = 0; k < g.nodes; ++k)
    if (!tcp_producers(g, k).empty()) return true;
  return false;
}

RunKeys make_run_keys(const GraphSpec& g) {
  RunKeys k;
  if (curve_links(g))
    for (auto& s : g.stages) k.stages[s.name] = curve_keypair();
  return k;
}

std::vector<std::string> stages_on_node(const GraphSpec& g, int node) {
  std::vector<std::string> out;
  for (auto& s : g.stages)
    for (int r = 0; r < s.replicas; ++r)
      if (s.node_of(r) == node) {
        out.push_back(s.name);
        break;
      }
  return out;
}


void apply_run_keys(ReplicaPlan& p, const GraphSpec& g, const RunKeys& keys) {
  auto is_tcp = [](const std::string& ep) { return ep.rfind("tcp://", 0) == 0; };
  auto pub = [&](const std::string& stage) {
    const CurveKeyPair* k = keys.find(stage);
    if (!k) throw std::invalid_argument("no CURVE key for stage '" + stage + "' in the run's key table");
    return k->public_z85;
  };
  bool tcp_out = std::any_of(p.output_endpoints.begin(), p.output_endpoints.end(), is_tcp);
  bool tcp_in = std::any_of(p.inputs.begin(), p.inputs.end(), is_tcp);
  if (!tcp_out && !tcp_in) return;
  const CurveKeyPair* own = keys.find(p.stage_name);
  if (!own || own->secret_z85.empty())
    throw std::invalid_argument("no CURVE secret key for stage '" + p.stage_name + "' in the run's key table");
  if (tcp_out) {
    p.curve_secret = own->secret_z85;
    for (auto* c : g.consumers_of(p.stage_name)) p.curve_clients[pub(c->name)] = c->name;
  }
  if (tcp_in) {
    p.curve.client = *own;
    p.curve.server_keys.clear();
    for (size_t i = 0; i < p.inputs.size(); ++i)
      p.curve.server_keys.push_back(is_tcp(p.inputs[i]) ? pub(p.input_stages[i]) : "");
  }
}

EndpointTable listen_for_node(const GraphSpec& g, int node, const std::string& address, int base_port,
                              NodeListeners& out) {
  EndpointTable tcp;
  int next_port = base_port;
  auto listen = [&](bool really = true) -> Listener& {
    out.held.push_back(std::make_unique<Listener>(address, base_port > 0 ? next_port++ : 0, really));
    return *out.held.back();
  };
  for (auto& slot : tcp_producers(g, node)) {
    Listener& l = listen();
    tcp[slot.tag()] = l.endpoint();
    out.listen_fds.emplace_back(slot.tag(), l.fd());
  }
  for (auto& name : group_stages(g)) {
    const StageSpec* s = g.find(name);
    if (s->node_of(0) != node) continue;
    Listener& l = listen(false);
    tcp[name + "/group"] = l.endpoint();
    out.group_fds.emplace_back(name + "/0", l.fd());
  }
  tcp["node/" + std::to_string(node)] = address;
  return tcp;
}

Listener::Listener(const std::string& address, int port, bool listen) : address_(address) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, address.c_str(), &a.sin_addr) != 1)
    throw std::runtime_error("cannot listen on '" + address + "': not an IPv4 address");
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || (listen && ::listen(fd_, 256) != 0)) {
    int e = errno;
    ::close(fd_);
    throw std::runtime_error("cannot listen on " + address + ":" + std::to_string(port) + ": " + std::strerror(e));
  }
  socklen_t len = sizeof a;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
}

Listener::~Listener() {
  if (fd_ >= 0) ::close(fd_);
}

void release_group_ports(NodeListeners& l) {
  for (auto& [tag, fd] : l.group_fds)
    for (auto& h : l.held)
      if (h && h->fd() == fd) h.reset();
  l.group_fds.clear();
}

}  // namespace catlip
