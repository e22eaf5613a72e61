// catlip/cluster.h - multi-host runs: the coordinator's view of the other
// nodes, and the `catlip node` agent that runs on each of them.
//
// The cluster launcher (Slurm, mpirun, torchrun, a Kubernetes Indexed Job)
// starts one `catlip node` per host. Node 0 is the coordinator: it binds a
// ROUTER at the coordinator address; every other node connects a DEALER and
// joins:
//
//   node k                        coordinator (node 0)
//   JOIN rank, version, ABI  ->   checks rank, version, ABI
//                            <-   ASSIGN resolved graph, run dir
//   (validates the graph with its own plugins, binds a listening tcp socket
//    on port 0 for each of its producer replicas that a consumer on another
//    node reads)
//   READY plugins, endpoints ->   checks plugin versions against its own
//                            <-   START endpoint table of every node
//   REPORT, LINE, EXIT, PING ->   progress, logs, failures (one display)
//   RESTART                  ->   a failed replica restarted by its agent
//                            <-   PING (every 0.5 s), STOP reason, KILL (a hung replica)
//   BYE                      ->   (the node's replicas are gone)
//
// Messages are msgpack maps of strings. A node that has not joined within
// join_timeout_s, or is silent for node_timeout_s, or whose connection
// drops, fails the run, named. An agent that loses the coordinator for
// node_timeout_s stops its replicas and exits 1; replicas die with their
// agent (PR_SET_PDEATHSIG), so no process outlives the run on any host.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "catlip/launch_env.h"
#include "catlip/launcher.h"
#include "catlip/status.h"
#include "catlip/run_metrics.h"

namespace catlip {

using CtlMsg = std::map<std::string, std::string>;  // "kind" plus fields
std::string encode_ctl(const CtlMsg& m);
bool decode_ctl(const void* data, size_t size, CtlMsg& out);  // false for garbage
std::string ctl_field(const CtlMsg& m, const char* k);        // "" when absent

// What a node must agree on with the coordinator to join.
std::string catlip_version();
// "name version" of each plugin the graph's stage types need, sorted, one
// per line; throws PluginError if one cannot load.
std::string plugin_set(const GraphSpec& g);

// The coordinator's side: a Launcher for every replica on nodes 1..N-1.
class RemoteNodes : public Launcher {
 public:
  // Binds the coordinator socket at address:port ("*" when address is not
  // local to this host). Throws std::runtime_error if it cannot.
  // With [graph] security = "curve" the socket is a CURVE server whose keys
  // derive from the cluster secret (catlip/security.h), admitting only nodes
  // that hold it; each node's ASSIGN then carries its stages' keys.
  RemoteNodes(zmq::context_t& zctx, const GraphSpec& g, const std::string& address, int port,
              const RunKeys& keys = {});
  ~RemoteNodes() override;

  // Waits for nodes 1..N-1 to join and get ready, then asks `node0` for node
  // 0's tcp endpoints, given the address the other nodes reach this host at
  // (they report it at join), and fills `tcp` with every node's endpoints.
  // Returns OK, or why the run cannot start: Unavailable (missing nodes, a
  // refused or failed node, node 0 cannot listen) or Invalid (interrupted).
  using Node0Endpoints = std::function<EndpointTable(const std::string& reached_at)>;
  Status rendezvous(const std::string& graph_toml, const std::string& run_dir, const std::string& plugins,
                         const Node0Endpoints& node0, EndpointTable& tcp, const std::atomic<int>& signal);

  void start() override;
  void add_poll_items(std::vector<zmq::pollitem_t>& items) override;
  void handle(LaunchEvents& ev) override;
  int stop(double grace_s, LaunchEvents& ev) override;
  bool all_exited() const override;
  // Asks the node running the replica to kill it (KILL): a hung replica of
  // a restartable stage; its agent restarts it.
  bool kill_replica(const std::string& stage, int replica) override;

  // Sends STOP (with the outcome) to every node without waiting; stop() then
  // waits for their goodbyes. With restart_wait_s >= 0 the run restarts: the
  // agents stop their replicas and wait up to that long for the next ASSIGN.
  void request_stop(double grace_s, double restart_wait_s = -1);
  // After a stop for a restart: the next generation of the run runs `g`
  // (the same nodes; stages that resume). Nodes still joined get it at the
  // next rendezvous(); a lost or failed node must join again within
  // join_timeout_s (a restarted agent with the same rank). With `new_rank`
  // (shrink_graph's: old rank -> new, -1 lost) the nodes are renumbered and
  // the lost ones forgotten; ASSIGN tells each agent its new rank.
  void next_generation(const GraphSpec& g, double join_timeout_s, const std::vector<int>& new_rank = {});
  // Tells every node the outcome (sent by stop(); also by rendezvous failure).
  void set_outcome(bool ok, const std::string& reason) {
    outcome_ok_ = ok;
    outcome_ = reason;
  }
  const std::vector<NodeView>& nodes() const { return nodes_; }
  // After rendezvous() ran out of join_timeout_s: the nodes that did not get
  // ready (never joined, or joined and went silent). Empty otherwise.
  const std::set<int>& late_nodes() const { return late_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<NodeView> nodes_;
  std::set<int> late_;
  bool outcome_ok_ = false;
  std::string outcome_;
};

struct NodeOptions {
  NodeIdentity id;
  std::string run_dir;     // overrides the coordinator's run directory on this node
  std::string worker_bin;  // default: catlip-worker beside this executable
  double join_timeout_s = 60;
  std::string secret_file;  // cluster secret (else CATLIP_CLUSTER_SECRET[_FILE]); none: plain join
};

// Why a multi-node run with security = "curve" has no cluster secret.
extern const char* const kNoClusterSecret;

// `catlip node` on nodes 1..N-1: joins, runs this node's replicas, forwards
// their reports and logs, stops them when told or when the coordinator is
// lost. Returns 0 when the run succeeded, 1 failed, 130 interrupted.
int run_node_agent(const NodeOptions& opt);

}  // namespace catlip
