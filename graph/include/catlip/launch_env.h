// catlip/launch_env.h - who am I in a multi-host run: a `catlip node` agent's
// node rank, node count and coordinator address, from its flags or from the
// environment of the cluster launcher that started it (Slurm, Open MPI,
// torchrun, Kubernetes).
//
// Each field is taken from the first source that gives it, in this order:
//   1. flags --rank, --nodes, --coordinator HOST[:PORT]
//   2. CATLIP_NODE_RANK, CATLIP_NNODES, CATLIP_COORDINATOR (HOST[:PORT])
//   3. torchrun / Kubernetes: rank NODE_RANK, GROUP_RANK, PET_NODE_RANK,
//      JOB_COMPLETION_INDEX; count NNODES, PET_NNODES, GROUP_WORLD_SIZE
//      (never WORLD_SIZE: that counts processes); MASTER_ADDR, MASTER_PORT
//   4. Open MPI: OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE; coordinator
//      127.0.0.1 only when OMPI_COMM_WORLD_LOCAL_SIZE == OMPI_COMM_WORLD_SIZE
//      (the inner launcher wins: mpirun inside an sbatch job inherits
//      SLURM_NODEID from the batch step)
//   5. Slurm: SLURM_NODEID, SLURM_NNODES, the first host of
//      SLURM_STEP_NODELIST (else SLURM_JOB_NODELIST), port 20000 + SLURM_JOB_ID % 20000
// The coordinator's host and port are separate fields (`--coordinator n1` with
// MASTER_PORT=5000 gives n1:5000); the port defaults to 29400. Empty variables
// count as unset; a malformed value is an error only in the source that wins.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "catlip/status.h"

namespace catlip {

struct NodeFlags {
  int rank = -1;            // -1: not given
  int nodes = -1;           // -1: not given
  std::string coordinator;  // "HOST:PORT" or "HOST" ("" = not given)
};

struct NodeIdentity {
  int rank = -1, nodes = -1;
  std::string coordinator_host;  // as given (name or address)
  int coordinator_port = 0;
  // Where the rank came from: "flags", "catlip", "torchrun", "kubernetes", "slurm" or "openmpi".
  std::string launcher;
  // One line per field (rank, nodes, coordinator, port), e.g. "rank 1 from SLURM_NODEID".
  std::vector<std::string> sources;
  // "node 1 of 3 (slurm: rank 1 from SLURM_NODEID, ...), coordinator n1:21234"
  std::string describe() const;
};

// Returns the value of a variable, or nullptr when it is not set.
using EnvLookup = std::function<const char*(const char*)>;
EnvLookup process_env();  // std::getenv

// Applies the precedence above field by field. Invalid, naming the variable
// (or flag) and its value, for malformed input, for a rank
// not below the node count, and when a field cannot be determined at all
// (saying which flags or variables would provide it).
Result<NodeIdentity> detect_node_identity(const NodeFlags& flags, const EnvLookup& env = process_env());

// Slurm compressed host lists: "n[1-3,5],gpu-[01-02],login" -> n1 n2 n3 n5
// gpu-01 gpu-02 login. Zero padding is kept; several bracket groups in one
// name ("r[1-2]n[1-2]") expand as a cartesian product. "" gives no hosts.
// An Invalid status names a malformed list.
Result<std::vector<std::string>> expand_hostlist(const std::string& list);

// "host:port", "host", "[v6addr]:port", "[v6addr]" -> {host, port}; port is
// def_port when absent. Invalid for bad input (empty host, a port outside
// 1-65535, an IPv6 address without brackets), naming it.
Result<std::pair<std::string, int>> parse_host_port(const std::string& s, int def_port);

// Host name or dotted IPv4 -> dotted IPv4 (getaddrinfo, AF_INET). When that
// fails and `scontrol` is on PATH, asks `scontrol show node NAME` for its
// NodeAddr= (Slurm node names often are not in DNS). NotFound, with the
// resolver's reason, when neither works.
Result<std::string> resolve_host(const std::string& host);

// The local IPv4 address the kernel would use to reach `ipv4` (a UDP socket
// connect + getsockname; sends nothing). Invalid for a malformed address,
// Unavailable with the reason (no route) otherwise.
Result<std::string> local_address_towards(const std::string& ipv4);

}  // namespace catlip
