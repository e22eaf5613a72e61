// Placement keys and the run plan: which node runs which replica, who reads
// from whom, what crosses hosts.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "catlip/graph.h"
#include "catlip/plan.h"
#include "catlip/plugin_loader.h"
#include "catlip/replica_spec.h"
#include "catlip/validate.h"

using namespace catlip;

namespace {

GraphSpec load(const std::string& text, int nodes, std::vector<Diagnostic>* diags = nullptr) {
  GraphSpec g;
  std::vector<Diagnostic> d;
  LoadOptions o;
  o.nodes = nodes;
  bool ok = load_graph_string(text, "p.toml", o, g, d).ok();
  if (diags) *diags = d;
  else {
    std::string all;
    for (auto& x : d) all += x.str() + "\n";
    INFO(all);
    REQUIRE(ok);
  }
  return g;
}

const char* kPipeline = R"(
[stages.read]
type = "shards.source"
replicas_per_node = 1
[stages.decode]
type = "image.decode"
inputs = ["read"]
replicas_per_node = 2
[stages.labels]
type = "text.labels"
inputs = ["decode"]
replicas_per_node = 1
[stages.collect]
type = "testing.collect"
inputs = ["labels"]
)";

}  // namespace

TEST_CASE("plan: placement keys give replicas per node, node-major") {
  GraphSpec g = load(kPipeline, 3);
  auto* decode = g.find("decode");
  CHECK(decode->replicas == 6);
  CHECK(decode->replica_node == std::vector<int>{0, 0, 1, 1, 2, 2});
  CHECK(decode->node_list() == std::vector<int>{0, 1, 2});
  CHECK(g.find("collect")->replica_node == std::vector<int>{0});
  CHECK(replicas_on_node(g, 1).size() == 4);  // read, 2 decode, labels
  CHECK(replicas_on_node(g, 0).size() == 5);  // + collect

  GraphSpec h = load(R"(
[graph]
nodes = 4
[stages.a]
type = "testing.counter"
nodes = [1, 3]
replicas = 2
[stages.b]
type = "testing.null"
inputs = ["a"]
nodes = "all"
)", 0);
  CHECK(h.nodes == 4);
  CHECK(h.find("a")->replica_node == std::vector<int>{1, 1, 3, 3});
  CHECK(h.find("b")->replica_node == std::vector<int>{0, 1, 2, 3});
  // The resolved TOML keeps the placement as written.
  GraphSpec back = load(graph_to_toml(h), 0);
  CHECK(back.find("a")->replica_node == h.find("a")->replica_node);
  CHECK(back.find("b")->replica_node == h.find("b")->replica_node);
  CHECK(back.nodes == 4);
}

TEST_CASE("plan: placement problems name the line") {
  std::vector<Diagnostic> d;
  load(R"(
[stages.a]
type = "testing.counter"
nodes = [0, 5]
[stages.b]
type = "testing.null"
inputs = ["a"]
replicas = 2
replicas_per_node = 2
[stages.c]
type = "testing.null"
inputs = ["a"]
nodes = "some"
)", 2, &d);
  std::string all;
  for (auto& x : d) all += x.str() + "\n";
  CHECK_THAT(all, Catch::Contains("p.toml:4:9: error: stage 'a': nodes: node 5 does not exist: the graph runs on 2 nodes"));
  CHECK_THAT(all, Catch::Contains("stage 'b': give either replicas or replicas_per_node, not both"));
  CHECK_THAT(all, Catch::Contains("p.toml:13:9: error: stage 'c': nodes: expected a list of node ranks"));
}

TEST_CASE("plan: same node set reads node-local, otherwise all-to-all") {
  GraphSpec g = load(kPipeline, 3);
  const StageSpec &read = *g.find("read"), &decode = *g.find("decode"), &labels = *g.find("labels"),
                  &collect = *g.find("collect");
  CHECK(node_local_edge(read, decode));
  CHECK(node_local_edge(decode, labels));
  CHECK_FALSE(node_local_edge(labels, collect));
  // decode replica 3 runs on node 1: it reads only node 1's source replica.
  CHECK(upstream_replicas(read, decode, 3) == std::vector<int>{1});
  // labels replica 2 (node 2) reads node 2's decode replicas 4 and 5.
  CHECK(upstream_replicas(decode, labels, 2) == std::vector<int>{4, 5});
  // collect (node 0 only) reads every labels replica.
  CHECK(upstream_replicas(labels, collect, 0) == std::vector<int>{0, 1, 2});
  // Only labels on nodes 1 and 2 need a tcp endpoint: decoded images never
  // leave their node.
  CHECK(tcp_producers(g, 0).empty());
  auto t1 = tcp_producers(g, 1);
  REQUIRE(t1.size() == 1);
  CHECK(t1[0].tag() == "labels/1");
}

TEST_CASE("plan: replica plans connect over ipc within a node and tcp across") {
  GraphSpec g = load(kPipeline, 3);
  EndpointTable tcp = {{"labels/1", "tcp://10.0.0.2:4001"}, {"labels/2", "tcp://10.0.0.3:4002"}};
  ReplicaPlan c = make_plan(g, tcp, "collect", 0, "/tmp/s0", "/run", false);
  CHECK(c.inputs == std::vector<std::string>{"ipc:///tmp/s0/labels.0", "tcp://10.0.0.2:4001", "tcp://10.0.0.3:4002"});
  ReplicaPlan l1 = make_plan(g, tcp, "labels", 1, "/tmp/s1", "/run", false);
  CHECK(l1.node == 1);
  CHECK(l1.nodes == 3);
  ReplicaPlan d3 = make_plan(g, tcp, "decode", 3, "/tmp/s1", "/run", false);
  CHECK(d3.node_replica == 1);  // decode replicas 2 and 3 run on node 1
  CHECK(d3.node_replicas == 2);
  CHECK(l1.inputs == std::vector<std::string>{"ipc:///tmp/s1/decode.2", "ipc:///tmp/s1/decode.3"});
  CHECK(l1.output_endpoints == std::vector<std::string>{"tcp://10.0.0.2:4001"});
  REQUIRE(l1.consumers.size() == 1);
  CHECK(l1.consumers[0].replicas == 1);
  // A source replica on node 2 feeds only node 2's two decode replicas.
  ReplicaPlan r2 = make_plan(g, tcp, "read", 2, "/tmp/s2", "/run", false);
  CHECK(r2.output_endpoints == std::vector<std::string>{"ipc:///tmp/s2/read.2"});
  CHECK(r2.consumers[0].replicas == 2);
  // A missing endpoint is an error, not a silent hang.
  CHECK_THROWS_WITH(make_plan(g, {}, "collect", 0, "/tmp/s0", "/run", false),
                    Catch::Contains("no tcp endpoint published for labels/1"));
  // transport = "tcp" uses tcp within a node too.
  g.transport = "tcp";
  CHECK(tcp_producers(g, 0).size() == 4);  // read, decode x2, labels
}

TEST_CASE("plan: shared-memory links get shm_prefetch credits unless the stage sets its own prefetch") {
  GraphSpec g = load(kPipeline, 1);
  g.prefetch = 8;
  g.shm_prefetch = 32;
  for (auto& st : g.stages)
    if (st.name == "labels") st.prefetch = 4;  // its own: on every link
  ReplicaPlan d = make_plan(g, {}, "decode", 0, "/tmp/x", "/run", false);
  CHECK(d.prefetch == 8);
  CHECK(d.shm_prefetch == 32);
  REQUIRE(d.consumers.size() == 1);  // labels
  CHECK(d.consumers[0].prefetch == 4);
  CHECK(d.consumers[0].shm_prefetch == 4);
  ReplicaPlan l = make_plan(g, {}, "labels", 0, "/tmp/x", "/run", false);
  CHECK(l.shm_prefetch == 4);
  // Never below prefetch.
  g.prefetch = 64;
  ReplicaPlan r = make_plan(g, {}, "read", 0, "/tmp/x", "/run", false);
  CHECK(r.consumers[0].shm_prefetch == 64);
  auto back = replica_spec_from_text(replica_spec_to_text(ReplicaSpec{d, {}}), "spec.json");
  REQUIRE(back.ok());
  CHECK(back->plan.shm_prefetch == 32);
  CHECK(back->plan.consumers[0].shm_prefetch == 4);
  // Deterministic order anywhere in the graph: every link keeps prefetch.
  g.prefetch = 8;
  for (auto& st : g.stages)
    if (st.name == "read") st.params["order"] = ParamValue(std::string("deterministic"));
  ReplicaPlan k = make_plan(g, {}, "decode", 0, "/tmp/x", "/run", false);
  CHECK(k.shm_prefetch == 8);
  CHECK(make_plan(g, {}, "read", 0, "/tmp/x", "/run", false).consumers[0].shm_prefetch == 8);
}

TEST_CASE("plan: a listener holds a kernel-chosen port") {
  Listener a("127.0.0.1", 0), b("127.0.0.1", 0);
  CHECK(a.port() > 0);
  CHECK(a.port() != b.port());
  CHECK(a.endpoint() == "tcp://127.0.0.1:" + std::to_string(a.port()));
  CHECK_THROWS_WITH(Listener("127.0.0.1", a.port()), Catch::Contains("cannot listen on 127.0.0.1:"));
  CHECK_THROWS_WITH(Listener("not-an-ip", 0), Catch::Contains("not an IPv4 address"));
}

TEST_CASE("plan: validate refuses data-parallel ranks that would share one GPU") {
  auto check = [](const std::string& placement, const std::string& device) {
    GraphSpec g;
    std::vector<Diagnostic> d;
    LoadOptions o;
    o.nodes = 2;
    std::string text = "[stages.read]\ntype = \"testing.counter\"\n[stages.train]\ntype = \"train.catlip\"\n"
                       "inputs = [\"read\"]\nvocab = \"v.tsv\"\ndevice = \"" + device + "\"\n" + placement + "\n";
    REQUIRE(load_graph_string(text, "t.toml", o, g, d).ok());
    PluginLoader loader;
    ValidateOptions vo;
    vo.check_files = false;  // v.tsv is a name only: placement is under test
    (void)validate_graph(g, loader, d, nullptr, vo);  // the diagnostics are checked
    std::string all;
    for (auto& x : d) all += x.str() + "\n";
    return all;
  };
  CHECK_THAT(check("replicas = 2", "cuda:0"), Catch::Contains("t.toml:8:12: error: stage 'train': 2 data-parallel ranks on one node would share cuda:0"));
  CHECK(check("replicas = 2", "cuda") == "");
  CHECK(check("replicas_per_node = 1", "cuda:0") == "");  // one rank per node
  CHECK(check("replicas = 2", "cpu") == "");
}

TEST_CASE("replica spec: the plan and typed parameters round-trip through the worker's file", "[plan]") {
  GraphSpec g = load(kPipeline, 1);
  ReplicaSpec s;
  s.plan = make_plan(g, {}, "decode", 1, "/tmp/x", "/runs/r", false);
  REQUIRE_FALSE(s.plan.inputs.empty());
  s.plan.curve.client = {"pub", "sec"};
  s.plan.curve.server_keys = {"k1", ""};
  s.plan.curve_clients = {{"pk", "collect"}};
  s.plan.dedupe = true;
  s.params.set("flag", true);
  s.params.set("n", int64_t{-3});
  s.params.set("lr", 1.0);
  s.params.set("tiny", 1e-300);
  s.params.set("name", std::string("a \"quoted\"\nname"));
  s.params.set("empty_strings", std::vector<std::string>{});
  s.params.set("empty_ints", std::vector<int64_t>{});
  s.params.set("floats", std::vector<double>{0.1, 2});
  auto back = replica_spec_from_text(replica_spec_to_text(s), "spec.json");
  REQUIRE(back.ok());
  const ReplicaPlan& p = back->plan;
  CHECK(p.stage_name == "decode");
  CHECK(p.stage_type == s.plan.stage_type);
  CHECK(p.replica == 1);
  CHECK(p.node == s.plan.node);
  CHECK(p.inputs == s.plan.inputs);
  CHECK(p.input_stages == s.plan.input_stages);
  CHECK(p.output_endpoints == s.plan.output_endpoints);
  REQUIRE(p.consumers.size() == s.plan.consumers.size());
  for (size_t i = 0; i < p.consumers.size(); ++i) {
    CHECK(p.consumers[i].stage == s.plan.consumers[i].stage);
    CHECK(p.consumers[i].members == s.plan.consumers[i].members);
  }
  CHECK(p.curve.client.secret_z85 == "sec");
  CHECK(p.curve.server_keys == s.plan.curve.server_keys);
  CHECK(p.curve_clients == s.plan.curve_clients);
  CHECK(p.dedupe);
  CHECK(p.listen_fd == -1);
  CHECK(back->params.values() == s.params.values());
  // Types survive: 1.0 stays a float, an empty list keeps its element type.
  CHECK(std::holds_alternative<double>(back->params.values().at("lr")));
  CHECK(std::holds_alternative<std::vector<int64_t>>(back->params.values().at("empty_ints")));
}

TEST_CASE("replica spec: a damaged or exposed file is refused, naming it", "[plan]") {
  auto bad = replica_spec_from_text(R"({"graph": "g", "stage": 3})", "r.json");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("r.json") != std::string::npos);
  CHECK(bad.status().message().find("'stage'") != std::string::npos);
  auto junk = replica_spec_from_text("{not json", "r.json");
  REQUIRE_FALSE(junk.ok());
  CHECK(junk.status().message().find("r.json") != std::string::npos);

  char dir[] = "/tmp/catlip-spec-XXXXXX";
  REQUIRE(::mkdtemp(dir));
  ReplicaSpec s;
  s.plan.stage_name = "decode";
  s.plan.replica = 2;
  auto path = write_replica_spec(dir, s);
  REQUIRE(path.ok());
  struct stat st {};
  REQUIRE(::stat(path->c_str(), &st) == 0);
  CHECK((st.st_mode & 077) == 0);
  CHECK(read_replica_spec(*path).ok());
  ::chmod(path->c_str(), 0644);
  auto exposed = read_replica_spec(*path);
  CHECK_FALSE(exposed.ok());
  std::filesystem::remove_all(dir);
}
