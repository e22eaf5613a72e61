// catlip/plan.h - where every replica runs and how replicas reach each other.
//
// Placement (graph.h) gives each replica a node. Routing: for an edge P -> C,
// when P and C run on exactly the same nodes, each C replica reads only from
// the P replicas of its own node (decoded images never leave their host);
// otherwise every C replica reads from every P replica. A link within a node
// is ipc:// (tcp:// with [graph] transport = "tcp"); a link between nodes is
// tcp:// to an address and port the producer's node published at join.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "catlip/graph.h"
#include "catlip/runtime.h"

namespace catlip {

struct ReplicaSlot {
  std::string stage;
  int replica = 0;  // global index within the stage
  int node = 0;
  std::string tag() const { return stage + "/" + std::to_string(replica); }
};

// Every replica of the graph, in stage order.
std::vector<ReplicaSlot> all_replicas(const GraphSpec& g);
std::vector<ReplicaSlot> replicas_on_node(const GraphSpec& g, int node);

// True when C's replicas read only from P replicas on their own node.
bool node_local_edge(const StageSpec& producer, const StageSpec& consumer);
// Replicas of `producer` that consumer replica `replica` of `consumer` reads from.
std::vector<int> upstream_replicas(const StageSpec& producer, const StageSpec& consumer, int replica);
// True when the link producer replica -> consumer replica is tcp.
bool tcp_link(const GraphSpec& g, int producer_node, int consumer_node);
// Producer replicas on `node` that some consumer reaches over tcp; each needs
// a published tcp endpoint.
std::vector<ReplicaSlot> tcp_producers(const GraphSpec& g, int node);

// Stages whose replicas form a collective group (StageSchema::group), found
// by loading their plugins' schemas; each gets a rendezvous port on the node
// of its replica 0.
std::vector<std::string> group_stages(const GraphSpec& g);

// tcp endpoints gathered from every node at join, serialized one "key value"
// per line: "stage/replica" -> "tcp://addr:port" of producer replicas,
// "stage/group" -> the rendezvous of a group stage, "node/k" -> the address
// node k is reached at.
using EndpointTable = std::map<std::string, std::string>;
std::string endpoints_to_text(const EndpointTable& t);
EndpointTable endpoints_from_text(const std::string& text);

// The plan of one replica. `sock_dir` is its node's ipc directory.
// True when the run's tcp links use CURVE: [graph] security = "curve" and
// some link crosses tcp (transport = "tcp" or several nodes).
bool curve_links(const GraphSpec& g);
// A fresh keypair per stage when curve_links(g); empty otherwise.
RunKeys make_run_keys(const GraphSpec& g);
// Stages with a replica on `node` (whose secrets that node's workers need).
std::vector<std::string> stages_on_node(const GraphSpec& g, int node);
// Fills the plan's CURVE fields from the run's keys: its own stage's secret
// (required when it has a tcp endpoint), its inputs' public keys, its
// consumers' public keys. Throws std::invalid_argument naming a missing key.
void apply_run_keys(ReplicaPlan& p, const GraphSpec& g, const RunKeys& keys);

ReplicaPlan make_plan(const GraphSpec& g, const EndpointTable& tcp, const std::string& stage, int replica,
                      const std::string& sock_dir, const std::string& run_dir, bool in_process);
std::string control_endpoint(const std::string& sock_dir, bool in_process);

// A TCP socket bound and listening on address:port (port 0: the kernel picks
// one), so the port is known and held before the replica that serves it
// starts; the replica's ROUTER takes it over (ZMQ_USE_FD). Owns the fd.
class Listener {
 public:
  // throws std::runtime_error naming address and port. With listen = false
  // the port is only bound (SO_REUSEADDR), reserved for a process that binds
  // it again: connections to it are refused, not queued, until that process
  // listens (a group's rendezvous; clients retry on refusal).
  Listener(const std::string& address, int port, bool listen = true);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  int fd() const { return fd_; }
  int port() const { return port_; }
  std::string endpoint() const { return "tcp://" + address_ + ":" + std::to_string(port_); }

 private:
  int fd_ = -1, port_ = 0;
  std::string address_;
};

// The listening sockets a node holds for its replicas until they start.
struct NodeListeners {
  std::vector<std::unique_ptr<Listener>> held;
  std::vector<std::pair<std::string, int>> listen_fds;  // "stage/replica" -> producer port
  std::vector<std::pair<std::string, int>> group_fds;   // "stage/0" -> group rendezvous port
};
// Binds, at `address`, a listener for each producer replica on `node` read
// over tcp and for each group stage whose replica 0 runs there (ports from
// base_port up, or chosen by the kernel when 0). Returns their endpoints and
// "node/<node>" -> address. Throws std::runtime_error naming address and port.
EndpointTable listen_for_node(const GraphSpec& g, int node, const std::string& address, int base_port,
                              NodeListeners& out);
// Once the replicas have started: the group rendezvous ports are released
// (the group's replica 0 binds its own), while the producer listeners stay
// open for the run, so a restarted replica takes the same port over again.
void release_group_ports(NodeListeners& l);

}  // namespace catlip
