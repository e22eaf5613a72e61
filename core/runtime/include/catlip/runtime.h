// catlip/runtime.h - running one stage replica: the loop between the
// transport and the stage. Used by catlip-worker (one replica per process)
// and by in-process runs (replicas as threads sharing a zmq context).
#pragma once

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "catlip/codec.h"
#include "catlip/stage.h"
#include "catlip/transport.h"

namespace catlip {

// Everything a replica needs to know about its place in the graph.
struct ReplicaPlan {
  std::string graph_name, stage_name, stage_type;
  int replica = 0, replicas = 1;  // global index and count over all nodes
  int node = 0, nodes = 1;          // this replica's node rank and the node count
  int node_replica = 0, node_replicas = 1;  // index among the stage's replicas on this node, their count
  std::string run_dir;
  std::vector<std::string> inputs;     // endpoints of the upstream producer replicas it reads from
  std::vector<std::string> input_stages;  // the producer stage of each input (parallel to inputs)
  // Where this replica binds (ipc for consumers on its node, tcp for the
  // others); empty: nobody consumes. A tcp endpoint uses `listen_fd`, a
  // socket the node agent already bound and listens on, when it is >= 0.
  std::vector<std::string> output_endpoints;
  int listen_fd = -1;
  // Group stages: replica 0's rendezvous endpoint; replica 0 also holds the
  // reserved port as group_fd until just before configure().
  std::string group_endpoint;
  int group_fd = -1;
  std::string node_address;  // this node's address as the other nodes reach it
  std::vector<ConsumerGroup> consumers;  // downstream stages
  int prefetch = 4;                      // credits granted to each upstream replica
  int shm_prefetch = 0;                  // ... whose items come as shared-memory descriptors (0: prefetch)
  size_t max_message_bytes = kDefaultMaxMessageBytes;
  // CURVE on tcp links (catlip/security.h); all empty: plain tcp.
  std::string curve_secret;  // this stage's secret key: its tcp endpoints are CURVE servers
  std::map<std::string, std::string> curve_clients;  // consumer stage public key -> stage name (ZAP)
  CurveClientOptions curve;  // this stage's keypair, and each input's server key ("" if plain)
  // Drop Samples seen before in their epoch (same epoch, shard, index): set
  // for stages that keep state (not restartable), where a re-delivery after
  // an upstream replica's crash would otherwise count twice.
  bool dedupe = false;
  // Shared-memory payloads on node-local (ipc) links (catlip/shm.h): take
  // descriptors from ipc inputs; a pool of shm_pool_bytes (0: none) for
  // attachments of at least shm_threshold bytes sent to consumers on this node.
  bool shm = false;
  size_t shm_pool_bytes = 0;
  size_t shm_threshold = shm::kDefaultThreshold;
  std::string report_endpoint;  // supervisor's PULL socket; empty: no reports
  double report_interval_s = 0.5;
};

// The exit status of a replica process (catlip-worker) whose stage failed
// before its first item (ReplicaResult::config_error): launchers never
// restart it.
inline constexpr int kConfigErrorExit = 3;

struct ReplicaResult {
  bool ok = false;  // also true when the stage ended the run (finish_run)
  bool stopped = false;  // stopped by request, not failed
  bool config_error = false;  // failed before the first item (bound parameters, configure()):
                              // a configuration error, which a restart would only repeat
  std::string error;
};

// Configures the stage (bind_and_configure(): bound parameters, context,
// configure()), runs it until end of stream or `stop`, flushes and closes it.
// Exceptions from the stage become a failed result naming it.
ReplicaResult run_replica(const ReplicaPlan& plan, Stage& stage, const StageSchema& schema, const Params& params,
                          zmq::context_t& zctx, const std::atomic<bool>& stop);

}  // namespace catlip
