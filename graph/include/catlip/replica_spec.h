// catlip/replica_spec.h - what a catlip-worker is handed to run one replica:
// its plan and resolved parameters, derived once by its node's launcher.
//
// The launcher (graph/launcher_local.cpp) writes one spec file per replica,
// mode 0600, in the node's private socket directory (it holds the stage's
// CURVE secret); the worker reads it and runs. So the graph is parsed,
// validated and planned once per node, and a worker cannot plan differently
// from the supervisor that watches it.
#pragma once

#include <string>

#include "catlip/params.h"
#include "catlip/runtime.h"
#include "catlip/status.h"

namespace catlip {

struct ReplicaSpec {
  // listen_fd and group_fd are not part of the file: a worker gets its
  // sockets as fds 3 and 4 (--listen-fd, --group-fd).
  ReplicaPlan plan;
  Params params;  // resolved against the stage's schema: defaults filled in
};

// JSON text of a spec (one object; parameters keep their types, so an empty
// list or 1.0 reads back as what it was).
std::string replica_spec_to_text(const ReplicaSpec& s);
// Parses a spec; a problem names `what` (the file) and the member.
Result<ReplicaSpec> replica_spec_from_text(const std::string& text, const std::string& what);

// Writes the spec of a replica into `sock_dir` (0600) and returns the path.
Result<std::string> write_replica_spec(const std::string& sock_dir, const ReplicaSpec& s);
// Reads a spec file, refusing one readable by group or others.
Result<ReplicaSpec> read_replica_spec(const std::string& path);

}  // namespace catlip
