// Tests of the launch environment (catlip/launch_env.h): node rank, count and coordinator
// from flags, Slurm, Open MPI, torchrun and Kubernetes variables.
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <stdexcept>

#include "catlip/launch_env.h"

using namespace catlip;

namespace {

using Env = std::map<std::string, std::string>;

EnvLookup fake_env(Env m) {
  return [m = std::move(m)](const char* name) -> const char* {
    auto it = m.find(name);
    return it == m.end() ? nullptr : it->second.c_str();
  };
}

// The identity; fails the test (with the Status) when there is none.
NodeIdentity detect(const Env& env, const NodeFlags& flags = {}) {
  auto r = detect_node_identity(flags, fake_env(env));
  INFO(r.status().to_string());
  REQUIRE(r.ok());
  return *r;
}

// The Invalid status's message; fails the test when an identity came back.
std::string error_of(const Env& env, const NodeFlags& flags = {}) {
  auto r = detect_node_identity(flags, fake_env(env));
  if (r.ok()) FAIL("expected an error, got " << r->describe());
  CHECK(r.status().code() == Status::Code::Invalid);
  return r.status().message();
}

NodeFlags flags(int rank, int nodes, std::string coordinator = "") { return {rank, nodes, std::move(coordinator)}; }

const Env kSlurm = {{"SLURM_NODEID", "1"},
                    {"SLURM_NNODES", "3"},
                    {"SLURM_JOB_NODELIST", "gpu-[07-09]"},
                    {"SLURM_JOB_ID", "41234"}};
const Env kMpi = {{"OMPI_COMM_WORLD_RANK", "2"}, {"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "1"}};
const Env kTorchrun = {{"GROUP_RANK", "1"},   {"NNODES", "2"},        {"WORLD_SIZE", "16"},
                       {"MASTER_ADDR", "10.1.0.5"}, {"MASTER_PORT", "29500"}};

Env merged(Env a, const Env& b) {
  a.insert(b.begin(), b.end());  // a wins
  return a;
}

}  // namespace

TEST_CASE("launch_env: flags give every field", "[launch_env]") {
  NodeIdentity id = detect({}, flags(1, 3, "head:4000"));
  CHECK(id.rank == 1);
  CHECK(id.nodes == 3);
  CHECK(id.coordinator_host == "head");
  CHECK(id.coordinator_port == 4000);
  CHECK(id.launcher == "flags");
  CHECK(id.describe() ==
        "node 1 of 3 (flags: rank 1 from --rank, nodes 3 from --nodes, coordinator head from --coordinator, "
        "port 4000 from --coordinator), coordinator head:4000");
  id = detect({}, flags(0, 1, "[::1]"));
  CHECK(id.coordinator_host == "::1");
  CHECK(id.coordinator_port == 29400);
  CHECK(id.sources.back() == "port 29400 (default)");
  CHECK_THAT(id.describe(), Catch::EndsWith("coordinator [::1]:29400"));
}

TEST_CASE("launch_env: Slurm", "[launch_env]") {
  NodeIdentity id = detect(kSlurm);
  CHECK(id.rank == 1);
  CHECK(id.nodes == 3);
  CHECK(id.coordinator_host == "gpu-07");
  CHECK(id.coordinator_port == 21234);  // 20000 + 41234 % 20000
  CHECK(id.launcher == "slurm");
  CHECK(id.sources == std::vector<std::string>{"rank 1 from SLURM_NODEID", "nodes 3 from SLURM_NNODES",
                                               "coordinator gpu-07 from SLURM_JOB_NODELIST",
                                               "port 21234 from SLURM_JOB_ID"});
  CHECK_THAT(id.describe(), Catch::StartsWith("node 1 of 3 (slurm: rank 1 from SLURM_NODEID, "));
  // SLURM_NODEID numbers the nodes of the step, which may be fewer than the job's.
  id = detect(merged({{"SLURM_STEP_NODELIST", "gpu-[08-09]"}, {"SLURM_NNODES", "2"}}, kSlurm));
  CHECK(id.coordinator_host == "gpu-08");
  CHECK(id.nodes == 2);
  // Without a job id the port is the default one.
  Env no_job = kSlurm;
  no_job.erase("SLURM_JOB_ID");
  CHECK(detect(no_job).coordinator_port == 29400);
}

TEST_CASE("launch_env: Open MPI", "[launch_env]") {
  CHECK_THAT(error_of(kMpi), Catch::Contains("Open MPI does not say where rank 0 runs") &&
                                 Catch::Contains("--coordinator HOST:PORT") && Catch::Contains("MASTER_ADDR"));
  NodeIdentity id = detect(merged({{"MASTER_ADDR", "10.0.0.1"}}, kMpi));
  CHECK(id.rank == 2);
  CHECK(id.nodes == 4);
  CHECK(id.launcher == "openmpi");
  CHECK(id.coordinator_host == "10.0.0.1");
  CHECK(id.coordinator_port == 29400);
  // All ranks on one host: the coordinator is this host.
  id = detect(merged({{"OMPI_COMM_WORLD_LOCAL_SIZE", "4"}}, kMpi));
  CHECK(id.coordinator_host == "127.0.0.1");
  CHECK(id.coordinator_port == 29400);
  CHECK(detect(kMpi, flags(-1, -1, "n5:7000")).coordinator_port == 7000);
}

TEST_CASE("launch_env: torchrun", "[launch_env]") {
  NodeIdentity id = detect(kTorchrun);
  CHECK(id.rank == 1);
  CHECK(id.nodes == 2);  // NNODES, never WORLD_SIZE (processes)
  CHECK(id.launcher == "torchrun");
  CHECK(id.coordinator_host == "10.1.0.5");
  CHECK(id.coordinator_port == 29500);
  CHECK(id.sources[0] == "rank 1 from GROUP_RANK");
  // NODE_RANK before GROUP_RANK before PET_NODE_RANK.
  CHECK(detect(merged({{"NODE_RANK", "0"}, {"PET_NODE_RANK", "1"}}, kTorchrun)).rank == 0);
  Env pet = kTorchrun;
  pet.erase("GROUP_RANK");
  pet["PET_NODE_RANK"] = "1";
  CHECK(detect(pet).rank == 1);
  CHECK(detect(pet).launcher == "kubernetes");
  // torchrun tells workers GROUP_WORLD_SIZE, not NNODES; WORLD_SIZE alone is not a node count.
  Env world_only = kTorchrun;
  world_only.erase("NNODES");
  CHECK_THAT(error_of(world_only), Catch::Contains("cannot tell the node count") && Catch::Contains("--nodes"));
  world_only["GROUP_WORLD_SIZE"] = "2";
  CHECK(detect(world_only).nodes == 2);
  // No MASTER_PORT: the default port.
  Env no_port = kTorchrun;
  no_port.erase("MASTER_PORT");
  CHECK(detect(no_port).coordinator_port == 29400);
}

TEST_CASE("launch_env: Kubernetes", "[launch_env]") {
  // Kubeflow PyTorchJob
  NodeIdentity id = detect({{"PET_NODE_RANK", "2"}, {"PET_NNODES", "3"}, {"MASTER_ADDR", "job-master-0"},
                            {"MASTER_PORT", "23456"}});
  CHECK(id.rank == 2);
  CHECK(id.nodes == 3);
  CHECK(id.launcher == "kubernetes");
  CHECK(id.describe() == "node 2 of 3 (kubernetes: rank 2 from PET_NODE_RANK, nodes 3 from PET_NNODES, "
                         "coordinator job-master-0 from MASTER_ADDR, port 23456 from MASTER_PORT), "
                         "coordinator job-master-0:23456");
  // Indexed Job
  Env indexed = {{"JOB_COMPLETION_INDEX", "1"}, {"NNODES", "2"}, {"MASTER_ADDR", "catlip-0.catlip"}};
  id = detect(indexed);
  CHECK(id.rank == 1);
  CHECK(id.launcher == "kubernetes");
  CHECK(id.coordinator_host == "catlip-0.catlip");
  CHECK(id.coordinator_port == 29400);
  indexed.erase("MASTER_ADDR");
  CHECK_THAT(error_of(indexed), Catch::Contains("Kubernetes does not say where index 0 runs"));
}

TEST_CASE("launch_env: precedence, field by field", "[launch_env]") {
  Env all = merged(merged(kTorchrun, kSlurm), kMpi);
  Env catlip = {{"CATLIP_NODE_RANK", "0"}, {"CATLIP_NNODES", "5"}, {"CATLIP_COORDINATOR", "boss:1234"}};
  NodeIdentity id = detect(merged(catlip, all));
  CHECK((id.rank == 0 && id.nodes == 5 && id.coordinator_host == "boss" && id.coordinator_port == 1234));
  CHECK(id.launcher == "catlip");
  // Flags over CATLIP_*, one field at a time.
  id = detect(merged(catlip, all), flags(3, -1));
  CHECK((id.rank == 3 && id.nodes == 5 && id.launcher == "flags"));
  id = detect(merged(catlip, all), flags(-1, 9, "other"));
  CHECK((id.rank == 0 && id.nodes == 9 && id.coordinator_host == "other" && id.coordinator_port == 1234));
  // torchrun over Open MPI over Slurm (the inner launcher wins: mpirun inside
  // an sbatch job inherits SLURM_NODEID from the batch step).
  id = detect(all);
  CHECK((id.rank == 1 && id.nodes == 2 && id.launcher == "torchrun"));
  CHECK((id.coordinator_host == "10.1.0.5" && id.coordinator_port == 29500));
  id = detect(merged(kSlurm, kMpi));
  CHECK((id.rank == 2 && id.nodes == 4 && id.launcher == "openmpi" && id.coordinator_host == "gpu-07"));
  // A field the higher source lacks comes from the next one: the rank from Slurm, the
  // count from NNODES, the host from MASTER_ADDR and the port from SLURM_JOB_ID.
  id = detect(merged({{"NNODES", "2"}, {"MASTER_ADDR", "m"}}, kSlurm));
  CHECK((id.rank == 1 && id.nodes == 2 && id.launcher == "slurm"));
  CHECK((id.coordinator_host == "m" && id.coordinator_port == 21234));
  CHECK(id.sources[3] == "port 21234 from SLURM_JOB_ID");
  // A malformed value in a source that does not win is never read.
  CHECK(detect(merged({{"SLURM_NODEID", "abc"}, {"MASTER_PORT", "x"}}, catlip)).rank == 0);
}

TEST_CASE("launch_env: malformed or missing values name the variable", "[launch_env]") {
  CHECK_THAT(error_of(merged({{"SLURM_NODEID", "abc"}}, kSlurm)), Catch::Contains("SLURM_NODEID=abc"));
  CHECK_THAT(error_of({{"NNODES", "0"}}, flags(0, -1, "h")), Catch::Contains("NNODES=0") &&
                                                                 Catch::Contains("node count"));
  CHECK_THAT(error_of(merged({{"MASTER_PORT", "99999"}}, kTorchrun)),
             Catch::Contains("MASTER_PORT=99999") && Catch::Contains("1 to 65535"));
  CHECK_THAT(error_of({{"NODE_RANK", "-1"}}, flags(-1, 2, "h")), Catch::Contains("NODE_RANK=-1"));
  CHECK_THAT(error_of({{"NODE_RANK", "1 "}}, flags(-1, 2, "h")), Catch::Contains("NODE_RANK=1 "));
  CHECK_THAT(error_of({{"SLURM_JOB_ID", "12x"}}, flags(0, 1, "h")), Catch::Contains("SLURM_JOB_ID=12x"));
  CHECK_THAT(error_of({{"CATLIP_COORDINATOR", "h:port"}}, flags(0, 1)), Catch::Contains("CATLIP_COORDINATOR=h:port"));
  CHECK_THAT(error_of({{"MASTER_ADDR", "h:29500"}}, flags(0, 1)),
             Catch::Contains("MASTER_ADDR=h:29500") && Catch::Contains("MASTER_PORT"));
  CHECK_THAT(error_of({}, flags(0, 1, "fe80::1")), Catch::Contains("--coordinator fe80::1") &&
                                                       Catch::Contains("brackets"));
  CHECK_THAT(error_of({}, flags(-2, 1, "h")), Catch::Contains("--rank -2"));
  CHECK_THAT(error_of({}, flags(0, 0, "h")), Catch::Contains("--nodes 0"));
  CHECK_THAT(error_of(merged({{"SLURM_JOB_NODELIST", "n[1-"}}, kSlurm)),
             Catch::Contains("SLURM_JOB_NODELIST=n[1-") && Catch::Contains("unclosed"));
  // A rank not below the node count, naming both sources.
  CHECK_THAT(error_of(merged({{"NNODES", "1"}}, kSlurm)),
             Catch::Contains("rank 1 (from SLURM_NODEID) is not below the node count 1 (from NNODES)"));
  CHECK_THAT(error_of({}, flags(2, 2, "h")), Catch::Contains("from --rank") && Catch::Contains("from --nodes"));
  // Nothing at all: say what would provide each field. Empty variables count as unset.
  CHECK_THAT(error_of({{"SLURM_NODEID", ""}}), Catch::Contains("rank") && Catch::Contains("--rank") &&
                                                   Catch::Contains("CATLIP_NODE_RANK") &&
                                                   Catch::Contains("SLURM_NODEID"));
  CHECK_THAT(error_of({{"NODE_RANK", "0"}}), Catch::Contains("--nodes") && Catch::Contains("CATLIP_NNODES"));
  CHECK_THAT(error_of({{"NODE_RANK", "0"}, {"NNODES", "1"}}),
             Catch::Contains("coordinator") && Catch::Contains("--coordinator HOST:PORT") &&
                 Catch::Contains("CATLIP_COORDINATOR"));
}

TEST_CASE("launch_env: Slurm host lists", "[launch_env]") {
  using V = std::vector<std::string>;
  auto hosts = [](const char* list) { return expand_hostlist(list).value(); };
  CHECK(hosts("n[1-3,5],gpu-[01-02],login") == V{"n1", "n2", "n3", "n5", "gpu-01", "gpu-02", "login"});
  CHECK(hosts("node07") == V{"node07"});
  CHECK(hosts("") == V{});
  CHECK(hosts("c[8-11]") == V{"c8", "c9", "c10", "c11"});
  CHECK(hosts("c[098-101]") == V{"c098", "c099", "c100", "c101"});
  CHECK(hosts("r[1-2]n[1-2]") == V{"r1n1", "r1n2", "r2n1", "r2n2"});
  CHECK(hosts("a[1,3]-ib,b") == V{"a1-ib", "a3-ib", "b"});
  CHECK(hosts("x[7]") == V{"x7"});
  for (const char* bad : {"n[1-", "n]1", "n[[1]]", "n[]", "n[a-b]", "n[3-1]", "n[1-2,]", "a,,b", "a,", "n[-2]",
                          "a b", "n[0-99999999]", "r[0-999]n[0-999]"}) {
    INFO(bad);
    auto r = expand_hostlist(bad);
    CHECK_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::Contains("malformed host list '" + std::string(bad) + "'"));
  }
}

TEST_CASE("launch_env: parse_host_port", "[launch_env]") {
  using P = std::pair<std::string, int>;
  CHECK(parse_host_port("head:4000", 1).value() == P{"head", 4000});
  CHECK(parse_host_port("10.0.0.1", 29400).value() == P{"10.0.0.1", 29400});
  CHECK(parse_host_port("[::1]:80", 1).value() == P{"::1", 80});
  CHECK(parse_host_port("[fe80::2]", 7).value() == P{"fe80::2", 7});
  CHECK(parse_host_port("h:65535", 1).value() == P{"h", 65535});
  for (const char* bad : {"", ":80", "h:", "h:0", "h:65536", "h:80x", "h:-1", "::1", "[::1", "[::1]80", "[]:80",
                          "a b:80"}) {
    INFO(bad);
    auto r = parse_host_port(bad, 1);
    CHECK(r.status().code() == Status::Code::Invalid);
    CHECK_THAT(r.status().message(), Catch::Contains("address '" + std::string(bad) + "'"));
  }
}

namespace {

struct PathGuard {  // prepends a directory to PATH for the lifetime of the guard
  std::string old = getenv("PATH") ? getenv("PATH") : "";
  explicit PathGuard(const std::string& dir) { setenv("PATH", (dir + ":" + old).c_str(), 1); }
  ~PathGuard() { setenv("PATH", old.c_str(), 1); }
};

}  // namespace

TEST_CASE("launch_env: resolving names and the local address", "[launch_env]") {
  CHECK(resolve_host("127.0.0.1").value() == "127.0.0.1");
  CHECK(resolve_host("localhost").value() == "127.0.0.1");
  CHECK(local_address_towards("127.0.0.1").value() == "127.0.0.1");
  auto bad = local_address_towards("not-an-address");
  CHECK(bad.status().code() == Status::Code::Invalid);
  CHECK_THAT(bad.status().message(), Catch::Contains("not-an-address"));
  CHECK_THROWS_AS(bad.value(), std::logic_error);  // a failed Result has no value

  // A name DNS does not know goes to `scontrol show node NAME` (a fake one here).
  char tmpl[] = "/tmp/catlip-launch-env-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  std::string dir = tmpl, script = dir + "/scontrol";
  std::ofstream(script) << "#!/bin/sh\n"
                           "[ \"$*\" = 'show node n7.catlip.invalid' ] || exit 1\n"
                           "echo 'NodeName=n7.catlip.invalid Arch=x86_64 CoresPerSocket=8'\n"
                           "echo '   NodeAddr=127.0.0.9 NodeHostName=n7'\n";
  REQUIRE(chmod(script.c_str(), 0755) == 0);
  {
    PathGuard path(dir);
    CHECK(resolve_host("n7.catlip.invalid").value() == "127.0.0.9");
    auto none = resolve_host("n8.catlip.invalid");
    CHECK(none.status().code() == Status::Code::NotFound);
    CHECK_THAT(none.status().message(), Catch::Contains("n8.catlip.invalid"));
  }
  std::remove(script.c_str());
  rmdir(dir.c_str());
}
