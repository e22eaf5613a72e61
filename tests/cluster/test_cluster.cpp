// Multi-host runs (issue 10, `catlip node`): real processes on emulated hosts
// (network namespaces joined by a bridge), under a real Slurm cluster and
// under Open MPI, and the failure cases: a node that never joins, a node
// killed mid-run, a node with another plugin set.
//
// Each test checks its prerequisites first and exits 77 (skipped) when one is
// missing; it never passes without running. Everything it starts is torn
// down by destructors (namespaces, daemons, processes), also on failure.
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "cluster_util.h"
#include "test_util.h"

using namespace catlip::test;
using namespace catlip::test::cluster;
namespace json = catlip::json;
namespace fs = std::filesystem;

namespace {

// ------------------------------------------------------------------ the data

// Six small synthetic shards (600 samples, 32 x 32) and a vocabulary of six
// synth categories, with the keys the shards hold.
struct Dataset {
  std::string urls;  // brace pattern of the shards
  std::string vocab;
  std::set<std::string> keys;
};

Dataset make_dataset(const TempDir& dir) {
  Dataset d;
  fs::create_directories(dir.file("data"));
  auto r = run_cmd(catlip_bin() + " shards synth " + dir.file("data/s") +
                   " --samples 600 --samples-per-shard 100 --size 32 --seed 7");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  d.urls = dir.file("data/s-{000000..000005}.tar");
  auto ls = run_cmd(catlip_bin() + " shards ls '" + d.urls + "' 2>/dev/null");
  REQUIRE(ls.exit_code == 0);
  for (auto& l : lines_of(ls.out)) {
    if (l[0] == '#') continue;
    d.keys.insert(l.substr(0, l.find(' ')));
  }
  REQUIRE(d.keys.size() == 600);
  // The header comment, then index <TAB> wnid <TAB> lemma (WordNet 3.0
  // first noun senses of synth categories).
  d.vocab = dir.file("vocab.tsv");
  write_file(d.vocab,
             "#index\twnid\tlemma\tcount\tgloss\n"
             "0\tn02778669\tball\n1\tn03147509\tcup\n2\tn02876657\tbottle\n"
             "3\tn02883344\tbox\n4\tn02958343\tcar\n5\tn02121620\tcat\n");
  return d;
}

// shards -> decode -> labels on every node (one replica each), collect on
// node 0: the labels -> collect edge crosses hosts.
std::string main_graph(const Dataset& d) {
  return "[graph]\nname = \"cluster-main\"\n"
         "[stages.shards]\ntype = \"shards.source\"\nurls = [\"" + d.urls + "\"]\n"
         "replicas_per_node = 1\n"
         "[stages.decode]\ntype = \"image.decode\"\ninputs = [\"shards\"]\nreplicas_per_node = 1\n"
         "mode = \"eval\"\nsize = 32\n"
         "[stages.labels]\ntype = \"text.labels\"\ninputs = [\"decode\"]\nreplicas_per_node = 1\n"
         "vocab = \"" + d.vocab + "\"\n"
         "[stages.collect]\ntype = \"testing.collect\"\ninputs = [\"labels\"]\n";
}

// An endless source on every node, collected on node 0.
const char* kEndlessGraph = R"([graph]
name = "cluster-endless"
[stages.numbers]
type = "testing.counter"
count = 1000000000
rate = 200
replicas_per_node = 1
[stages.collect]
type = "testing.collect"
inputs = ["numbers"]
)";

// ---------------------------------------------------------------- the checks

// Every key of the dataset reached a collect replica exactly once.
void check_exactly_once(const std::string& run_dir, const std::set<std::string>& keys) {
  std::map<std::string, int> seen;
  int files = 0;
  if (fs::is_directory(run_dir))
    for (auto& e : fs::directory_iterator(run_dir)) {
      if (e.path().filename().string().rfind("collected.tsv.", 0) != 0) continue;
      ++files;
      for (auto& l : lines_of(read_file(e.path().string()))) ++seen[l.substr(0, l.find('\t'))];
    }
  std::vector<std::string> missing, twice, unknown;
  for (auto& k : keys)
    if (!seen.count(k)) missing.push_back(k);
  for (auto& [k, n] : seen) {
    if (n > 1) twice.push_back(k);
    if (!keys.count(k)) unknown.push_back(k);
  }
  auto some = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < 5; ++i) s += (i ? " " : "") + v[i];
    return s;
  };
  INFO("collected.tsv files: " << files << "; missing " << missing.size() << " (" << some(missing)
                               << "), more than once " << twice.size() << " (" << some(twice) << "), unknown "
                               << unknown.size() << " (" << some(unknown) << ")");
  CHECK(files >= 1);
  CHECK(missing.empty());
  CHECK(twice.empty());
  CHECK(unknown.empty());
}

json::Value read_summary(const std::string& run_dir) {
  std::string text = read_file(run_dir + "/summary.json");
  INFO("summary.json: " << text);
  REQUIRE_FALSE(text.empty());
  json::Value v;
  REQUIRE_NOTHROW(v = json::parse(text, run_dir + "/summary.json"));
  REQUIRE(v.is_object());
  return v;
}

const json::Value* member(const json::Value& obj, const std::string& key) { return json::find(obj, key); }

std::string str_member(const json::Value& obj, const std::string& key) {
  auto* m = member(obj, key);
  return m && m->is_string() ? json::string(*m) : std::string();
}

// summary.json "nodes": one entry per rank 0..n-1, in order; returns them.
std::vector<json::Value> summary_nodes(const std::string& run_dir, int n) {
  auto sum = read_summary(run_dir);
  auto* nodes = member(sum, "nodes");
  INFO(read_file(run_dir + "/summary.json"));
  REQUIRE(nodes);
  REQUIRE(nodes->is_array());
  REQUIRE(static_cast<int>(nodes->size()) == n);
  std::vector<json::Value> out(nodes->begin(), nodes->end());
  for (int k = 0; k < n; ++k) {
    auto* rank = member(out[k], "rank");
    REQUIRE(rank);
    REQUIRE(rank->is_number_integer());
    CHECK(json::integer(*rank) == k);
  }
  return out;
}

// The summary of a successful n-node run; with hosts, node k's address is
// host k's.
void check_summary_ok(const std::string& run_dir, int n, const NetnsHosts* hosts) {
  auto nodes = summary_nodes(run_dir, n);
  for (int k = 0; k < n; ++k) {
    INFO("node " << k);
    CHECK(str_member(nodes[k], "status") == "ok");
    CHECK_FALSE(str_member(nodes[k], "host").empty());
    if (hosts) CHECK(str_member(nodes[k], "address") == hosts->address(k));
    auto* reps = member(nodes[k], "replicas");
    REQUIRE(reps);
    REQUIRE(reps->is_number_integer());
    CHECK(json::integer(*reps) >= 3);  // shards, decode and labels (and collect on node 0)
  }
}

// The Slurm daemons' command lines (slurm.sh starts them).
const std::vector<std::string> kSlurmDaemons = {"slurmctld ", "slurmd ", ": slurmscriptd"};

std::string regex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string(".[]{}()\\*+?^$|").find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

constexpr int kPort = 29417;  // in fresh namespaces every port is free

}  // namespace

TEST_CASE("three hosts in network namespaces: every sample reaches collect exactly once") {
  require_netns();
  clean_launcher_env();
  TempDir dir("cl-netns");
  auto data = make_dataset(dir);
  write_file(dir.file("g.toml"), main_graph(data));
  std::string run = dir.file("run");
  NetnsHosts hosts(3);
  int64_t bytes0 = hosts.veth_bytes();
  REQUIRE(bytes0 >= 0);

  std::vector<std::unique_ptr<Proc>> nodes;
  for (int k = 0; k < 3; ++k)
    nodes.push_back(std::make_unique<Proc>(node_cmd(hosts, k, 3, kPort, dir.file("g.toml"), run),
                                           dir.file("node" + std::to_string(k) + ".log")));
  int c0 = nodes[0]->wait(180);
  int c1 = nodes[1]->wait(15);
  int c2 = nodes[2]->wait(15);
  std::string logs = logs_of(nodes);
  INFO(logs);
  REQUIRE(c0 == 0);
  CHECK(c1 == 0);
  CHECK(c2 == 0);
  check_exactly_once(run, data.keys);

  // Nodes 1 and 2 sent their 400 decoded 32 x 32 x 3 images over the bridge.
  int64_t bytes1 = hosts.veth_bytes();
  INFO("veth bytes before " << bytes0 << ", after " << bytes1);
  CHECK(bytes1 - bytes0 > 400 * 32 * 32 * 3);

  check_summary_ok(run, 3, &hosts);
  // The coordinator's plain progress has a line per node.
  std::string log0 = nodes[0]->log();
  CHECK(has_line(log0, "node 0\\b"));
  CHECK(has_line(log0, "node 1\\b.*\\b" + regex_escape(hosts.address(1)) + "\\b"));
  CHECK(has_line(log0, "node 2\\b.*\\b" + regex_escape(hosts.address(2)) + "\\b"));
  check_nothing_left(dir, &hosts);
}

// The local Slurm cluster: on distinct addresses when namespaces work, else
// all nodes on 127.0.0.1 with distinct ports.
struct SlurmSetup {
  std::unique_ptr<NetnsHosts> hosts;
  std::unique_ptr<LocalSlurm> slurm;
  explicit SlurmSetup(const TempDir& dir) {
    if (netns_available()) hosts = std::make_unique<NetnsHosts>(3);
    else WARN("no network namespaces: the Slurm nodes all listen on 127.0.0.1");
    slurm = std::make_unique<LocalSlurm>(dir.file("slurm"), hosts.get());
    auto nodelist = run_cmd(slurm->client() + " sinfo -h -N -o '%N %t'");
    INFO(nodelist.out);
    REQUIRE(nodelist.exit_code == 0);
  }
  ~SlurmSetup() {
    slurm.reset();  // the daemons before their namespaces
    hosts.reset();
  }
};

TEST_CASE("real Slurm: srun -N 3 starts one catlip node per Slurm node") {
  require_slurm();
  clean_launcher_env();
  TempDir dir("cl-slurm");
  auto data = make_dataset(dir);
  write_file(dir.file("g.toml"), main_graph(data));
  SlurmSetup s(dir);
  std::string run = dir.file("run");
  // Coordinator: the first host of SLURM_JOB_NODELIST (n1, not resolvable:
  // `scontrol show node n1` gives its NodeAddr), port from SLURM_JOB_ID.
  Proc srun(s.slurm->client() + " srun -N 3 -n 3 --ntasks-per-node 1 --label " + catlip_bin() + " node " +
                dir.file("g.toml") + " --run-dir " + run + " --progress plain",
            dir.file("srun.log"));
  int code = srun.wait(180);
  INFO(srun.log());
  REQUIRE(code == 0);
  check_exactly_once(run, data.keys);
  check_summary_ok(run, 3, s.hosts.get());
  check_nothing_left(dir, s.hosts.get(), 10, kSlurmDaemons);
}

TEST_CASE("real Slurm: sbatch --wait with examples/cluster/catlip.sbatch") {
  std::string sbatch = source_dir() + "/examples/cluster/catlip.sbatch";
  if (!fs::exists(sbatch)) skip_test("no " + sbatch + " yet");
  require_slurm();
  clean_launcher_env();
  TempDir dir("cl-sbatch");
  auto data = make_dataset(dir);
  write_file(dir.file("g.toml"), main_graph(data));
  SlurmSetup s(dir);
  // The script gets the graph and `catlip node` options as its arguments
  // (also as GRAPH and RUN_DIR) and finds catlip on PATH (or as $CATLIP).
  std::string run = dir.file("run");
  std::string bin = fs::path(catlip_bin()).parent_path().string();
  Proc sb("env PATH=" + bin + ":$PATH CATLIP=" + catlip_bin() + " GRAPH=" + dir.file("g.toml") + " RUN_DIR=" + run +
              " " + s.slurm->client() + " sbatch --wait -N 3 --ntasks-per-node=1 -o " + dir.file("sbatch-%j.out") +
              " " + sbatch + " " + dir.file("g.toml") + " --run-dir " + run,
          dir.file("sbatch.log"));
  int code = sb.wait(240);
  std::string outs;
  for (auto& e : fs::directory_iterator(dir.path()))
    if (e.path().filename().string().rfind("sbatch-", 0) == 0) outs += read_file(e.path().string());
  INFO(sb.log() << "\n----- job output:\n" << outs);
  REQUIRE(code == 0);
  check_exactly_once(run, data.keys);
  check_summary_ok(run, 3, s.hosts.get());
  check_nothing_left(dir, s.hosts.get(), 10, kSlurmDaemons);
}

TEST_CASE("Open MPI: mpirun -np 3 on one host") {
  require_mpirun();
  clean_launcher_env();
  TempDir dir("cl-mpi");
  auto data = make_dataset(dir);
  write_file(dir.file("g.toml"), main_graph(data));
  std::string run = dir.file("run");
  // In a namespace of its own when possible, so the default coordinator port
  // 29400 is surely free.
  std::unique_ptr<NetnsHosts> host;
  if (netns_available()) host = std::make_unique<NetnsHosts>(1);
  std::string prefix = host ? host->exec_prefix(0) + " " : "";
  Proc mpi(prefix + "mpirun --allow-run-as-root --oversubscribe -x CATLIP_CLUSTER_SECRET -np 3 " + catlip_bin() + " node " +
               dir.file("g.toml") + " --run-dir " + run + " --progress plain",
           dir.file("mpirun.log"));
  int code = mpi.wait(180);
  INFO(mpi.log());
  REQUIRE(code == 0);
  check_exactly_once(run, data.keys);
  check_summary_ok(run, 3, nullptr);
  check_nothing_left(dir, host.get());
}

TEST_CASE("Open MPI: mpirun across three hosts with the coordinator from MASTER_ADDR") {
  require_mpirun();
  require_netns();
  clean_launcher_env();
  TempDir dir("cl-mpi3");
  auto data = make_dataset(dir);
  write_file(dir.file("g.toml"), main_graph(data));
  std::string run = dir.file("run");
  NetnsHosts hosts(3);
  int64_t bytes0 = hosts.veth_bytes();
  // mpirun on host 0 starts its daemons on hosts 1 and 2 through nsrsh.sh
  // (an ssh stand-in that enters the namespace owning the address); one rank
  // per host, so OMPI_COMM_WORLD_LOCAL_SIZE is 1 and the coordinator must
  // come from MASTER_ADDR/MASTER_PORT. The daemons' hwloc shared-memory
  // topology (rtc hwloc) crashes intermittently in this emulation, and
  // catlip binds nothing through Open MPI, so it is left out.
  std::string hostlist = hosts.address(0) + "," + hosts.address(1) + "," + hosts.address(2);
  Proc mpi(hosts.exec_prefix(0) + " mpirun --allow-run-as-root --oversubscribe -x CATLIP_CLUSTER_SECRET --mca plm_rsh_agent " +
               script("nsrsh.sh") + " --mca routed direct --mca rtc ^hwloc --host " + hostlist +
               " -np 3 --map-by ppr:1:node -x MASTER_ADDR=" + hosts.address(0) +
               " -x MASTER_PORT=" + std::to_string(kPort) + " " + catlip_bin() + " node " + dir.file("g.toml") +
               " --run-dir " + run + " --progress plain",
           dir.file("mpirun.log"));
  int code = mpi.wait(180);
  INFO(mpi.log());
  REQUIRE(code == 0);
  check_exactly_once(run, data.keys);
  check_summary_ok(run, 3, &hosts);
  CHECK(hosts.veth_bytes() - bytes0 > 400 * 32 * 32 * 3);
  check_nothing_left(dir, &hosts);
}

TEST_CASE("failure: a node missing at join fails the run naming it") {
  require_netns();
  clean_launcher_env();
  TempDir dir("cl-join");
  write_file(dir.file("g.toml"), kEndlessGraph);
  std::string run = dir.file("run");
  NetnsHosts hosts(3);
  // Nodes 0 and 1 of 3; node 2 never comes.
  std::vector<std::unique_ptr<Proc>> nodes;
  for (int k = 0; k < 2; ++k)
    nodes.push_back(std::make_unique<Proc>(
        node_cmd(hosts, k, 3, kPort, dir.file("g.toml"), run, "--join-timeout 5"),
        dir.file("node" + std::to_string(k) + ".log")));
  double took = 0;
  int c0 = nodes[0]->wait(30, &took);
  int c1 = nodes[1]->wait(15);
  std::string logs = logs_of(nodes);
  INFO(logs);
  CHECK(c0 == 1);
  CHECK(took < 10.0);
  CHECK(c1 != -1);  // node 1 stops too
  CHECK(has_line(nodes[0]->log(), "run failed: nodes? 2 did not join within 5(\\.0)? s"));
  auto sum = read_file(run + "/summary.json");
  INFO(sum);
  CHECK_THAT(sum, Catch::Contains("did not join"));
  check_nothing_left(dir, &hosts);
}

TEST_CASE("failure: a node killed mid-run fails the run naming it and leaves nothing anywhere") {
  require_netns();
  clean_launcher_env();
  TempDir dir("cl-lost");
  write_file(dir.file("g.toml"), kEndlessGraph);
  std::string run = dir.file("run");
  NetnsHosts hosts(3);
  std::vector<std::unique_ptr<Proc>> nodes;
  for (int k = 0; k < 3; ++k)
    nodes.push_back(std::make_unique<Proc>(node_cmd(hosts, k, 3, kPort, dir.file("g.toml"), run, "--join-timeout 60"),
                                           dir.file("node" + std::to_string(k) + ".log")));
  // Running: node 0 has its agent, a counter and the collect replica; the
  // others an agent and a counter.
  bool up = all_running(hosts, {2, 1, 1}, 60);
  INFO(logs_of(nodes));
  REQUIRE(up);
  // Items from the other nodes reach node 0's collect file.
  REQUIRE(wait_until([&] { return lines_of(read_file(run + "/collected.tsv.0")).size() >= 50; }, 30));

  nodes[2]->kill(SIGKILL);
  double took = 0;
  int c0 = nodes[0]->wait(30, &took);
  int c1 = nodes[1]->wait(15);
  std::string log0 = nodes[0]->log();
  INFO(logs_of(nodes));
  CHECK(c0 == 1);
  CHECK(took < 15.0);
  CHECK(c1 != -1);
  CHECK(has_line(log0, "run failed: node 2 \\([^)]*\\) lost"));
  auto nodes_json = summary_nodes(run, 3);
  CHECK(str_member(nodes_json[2], "status") == "lost");
  CHECK_THAT(read_file(run + "/summary.json"), Catch::Contains("node 2"));
  // The agents and every replica (catlip-worker, named catlip:<stage>/<n>)
  // are gone on all hosts, node 2's included.
  check_nothing_left(dir, &hosts, 5);
}

TEST_CASE("failure: a node with another plugin version is refused at join") {
  require_netns();
  clean_launcher_env();
  TempDir dir("cl-plugin");
  write_file(dir.file("g.toml"), kEndlessGraph);
  std::string run = dir.file("run");
  // The other build of the testing plugin is found first on node 2.
  std::string other = std::string("CATLIP_PLUGIN_PATH=") + CATLIP_OTHER_PLUGIN_DIR;
  auto inspect = run_cmd("env " + other + " " + catlip_bin() + " inspect");
  INFO(inspect.out);
  REQUIRE(inspect.out.find("9.9.9") != std::string::npos);

  NetnsHosts hosts(3);
  std::vector<std::unique_ptr<Proc>> nodes;
  for (int k = 0; k < 3; ++k)
    nodes.push_back(std::make_unique<Proc>(node_cmd(hosts, k, 3, kPort, dir.file("g.toml"), run, "--join-timeout 8",
                                                    k == 2 ? other : ""),
                                           dir.file("node" + std::to_string(k) + ".log")));
  int c0 = nodes[0]->wait(40);
  // Node 1 is stopped by the coordinator if it joined before node 2 was
  // refused; if its JOIN came later, nobody answers and it gives up at its
  // own join timeout (it cannot tell a coordinator that is gone from one
  // that has not started yet).
  int c1 = nodes[1]->wait(20);
  int c2 = nodes[2]->wait(15);
  std::string log0 = nodes[0]->log();
  INFO(logs_of(nodes));
  CHECK(c0 == 1);
  CHECK(c1 != -1);
  CHECK(c2 != 0);
  CHECK(c2 != -1);
  // Names node 2 and the plugin, with both versions.
  CHECK(has_line(log0, "run failed: node 2 .*refused at join"));
  CHECK_THAT(log0, Catch::Contains("testing") && Catch::Contains("0.1.0") && Catch::Contains("9.9.9"));
  CHECK_THAT(read_file(run + "/summary.json"), Catch::Contains("refused at join") && Catch::Contains("testing"));
  check_nothing_left(dir, &hosts);
}

// ------------------------------------------------------- data-parallel training

namespace {

// shards -> decode -> labels -> train.catlip with two data-parallel ranks:
// on one host (replicas = 2), or one rank per node on two hosts.
std::string train_graph(const Dataset& d, const std::string& model_vocab, bool two_nodes) {
  std::string place = two_nodes ? "replicas_per_node = 1\n" : "";
  return "[graph]\nname = \"cluster-train\"\n"
         "[stages.shards]\ntype = \"shards.source\"\nurls = [\"" + d.urls + "\"]\n" + place +
         "[stages.decode]\ntype = \"image.decode\"\ninputs = [\"shards\"]\nmode = \"eval\"\nsize = 32\n" +
         (two_nodes ? place : "replicas = 2\n") +
         "[stages.labels]\ntype = \"text.labels\"\ninputs = [\"decode\"]\nvocab = \"" + d.vocab + "\"\n" + place +
         "[stages.train]\ntype = \"train.catlip\"\ninputs = [\"labels\"]\nvocab = \"" + model_vocab + "\"\n" +
         (two_nodes ? place : "replicas = 2\n") +
         "dim = 32\ndepth = 1\nheads = 2\nimage_size = 32\npatch_size = 8\nbatch_size = 16\n"
         "warmup_steps = 2\ndevice = \"cpu\"\nthreads = 1\nlog_every = 1\ncheckpoint_every = 0\n";
}

// The trainer's vocabulary: the dataset's rows under the header it expects.
std::string model_vocab(const TempDir& dir, const Dataset& d) {
  std::string out = "index\twnid\tlemma\tcount\tgloss\n";
  for (auto& l : lines_of(read_file(d.vocab))) out += l + "\t1\t-\n";
  write_file(dir.file("vocab_model.tsv"), out);
  return dir.file("vocab_model.tsv");
}

// "training finished at step N" of train/0 and train/1, from the log.
std::vector<long> finish_steps(const std::string& log) {
  std::vector<long> steps(2, -1);
  std::regex r(R"(train/([01])\] info: training finished at step ([0-9]+))");
  for (auto& l : lines_of(log)) {
    std::smatch m;
    if (std::regex_search(l, m, r)) steps[size_t(std::stoi(m[1]))] = std::stol(m[2]);
  }
  return steps;
}

}  // namespace

TEST_CASE("data parallel: two trainer ranks on one host end together and write one checkpoint") {
  clean_launcher_env();
  TempDir dir("cl-dp1");
  Dataset data = make_dataset(dir);
  write_file(dir.file("g.toml"), train_graph(data, model_vocab(dir, data), false));
  auto r = run_cmd("timeout 240 " + catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run") +
                   " --progress plain");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  // 600 samples, batch 16 per rank: the ranks' shares differ by demand, and
  // they stop together at the step the shorter one allows.
  auto steps = finish_steps(r.out);
  CHECK(steps[0] > 5);
  CHECK(steps[0] == steps[1]);
  CHECK(steps[0] <= 600 / 32);
  CHECK_THAT(r.out, Catch::Contains("global batch 32 = 16 x 2 ranks (gloo, this is rank 0)"));
  // Rank 0 alone writes the checkpoint, the export and the metrics.
  CHECK(fs::exists(dir.file("run/export/model.safetensors")));
  CHECK(lines_of(read_file(dir.file("run/train_metrics.jsonl"))).size() == size_t(steps[0]));
  check_nothing_left(dir, nullptr);
}

TEST_CASE("data parallel: two train.clip ranks contrast against each other's features and end together") {
  clean_launcher_env();
  TempDir dir("cl-dpclip");
  Dataset data = make_dataset(dir);
  // The tokenizer, learned from the captions by a graph (as the quickstart does).
  write_file(dir.file("bpe.toml"), "[graph]\nname = \"bpe\"\n[stages.read]\ntype = \"shards.source\"\nurls = [\"" +
                                       data.urls + "\"]\n[stages.count]\ntype = \"text.bpe_count\"\ninputs = [\"read\"]\n"
                                       "[stages.learn]\ntype = \"text.bpe_learn\"\ninputs = [\"count\"]\nvocab_size = 700\n"
                                       "output = \"" + dir.file("bpe.txt") + "\"\n");
  auto b = run_cmd("timeout 120 " + catlip_bin() + " run " + dir.file("bpe.toml") + " --run-dir " + dir.file("bpe") +
                   " --progress plain");
  INFO(b.out);
  REQUIRE(b.exit_code == 0);
  write_file(dir.file("g.toml"),
             "[graph]\nname = \"cluster-clip\"\n"
             "[stages.shards]\ntype = \"shards.source\"\nurls = [\"" + data.urls + "\"]\n"
             "[stages.decode]\ntype = \"image.decode\"\ninputs = [\"shards\"]\nmode = \"eval\"\nsize = 32\nreplicas = 2\n"
             "[stages.tokens]\ntype = \"text.bpe_encode\"\ninputs = [\"decode\"]\ntokenizer = \"" + dir.file("bpe.txt") +
             "\"\ncontext_length = 24\n"
             "[stages.train]\ntype = \"train.clip\"\ninputs = [\"tokens\"]\ntokenizer = \"" + dir.file("bpe.txt") + "\"\n"
             "replicas = 2\ndim = 32\ndepth = 1\nheads = 2\nimage_size = 32\npatch_size = 8\nembed_dim = 32\n"
             "text_width = 32\ntext_depth = 1\ntext_heads = 2\ncontext_length = 24\nbatch_size = 16\n"
             "warmup_steps = 2\ndevice = \"cpu\"\nthreads = 1\nlog_every = 1\ncheckpoint_every = 0\n");
  auto r = run_cmd("timeout 240 " + catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run") +
                   " --progress plain");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  auto steps = finish_steps(r.out);
  CHECK(steps[0] > 5);
  CHECK(steps[0] == steps[1]);
  CHECK_THAT(r.out, Catch::Contains("CLIP: image ViT"));
  CHECK_THAT(r.out, Catch::Contains("global batch 32 = 16 x 2 ranks (gloo, this is rank 0)"));
  // Rank 0 alone exports: the CLIP weights with the tokenizer beside them.
  CHECK(fs::exists(dir.file("run/export/model.safetensors")));
  CHECK(read_file(dir.file("run/export/tokenizer.txt")) == read_file(dir.file("bpe.txt")));
  CHECK_THAT(read_file(dir.file("run/export/config.json")), Catch::Contains("\"architecture\": \"clip\""));
  check_nothing_left(dir, nullptr);
}

TEST_CASE("data parallel: two train.siglip ranks exchange text features round the ring and end together") {
  clean_launcher_env();
  TempDir dir("cl-dpsiglip");
  Dataset data = make_dataset(dir);
  write_file(dir.file("bpe.toml"), "[graph]\nname = \"bpe\"\n[stages.read]\ntype = \"shards.source\"\nurls = [\"" +
                                       data.urls + "\"]\n[stages.count]\ntype = \"text.bpe_count\"\ninputs = [\"read\"]\n"
                                       "[stages.learn]\ntype = \"text.bpe_learn\"\ninputs = [\"count\"]\nvocab_size = 700\n"
                                       "output = \"" + dir.file("bpe.txt") + "\"\n");
  auto b = run_cmd("timeout 120 " + catlip_bin() + " run " + dir.file("bpe.toml") + " --run-dir " + dir.file("bpe") +
                   " --progress plain");
  INFO(b.out);
  REQUIRE(b.exit_code == 0);
  write_file(dir.file("g.toml"),
             "[graph]\nname = \"cluster-siglip\"\n"
             "[stages.shards]\ntype = \"shards.source\"\nurls = [\"" + data.urls + "\"]\n"
             "[stages.decode]\ntype = \"image.decode\"\ninputs = [\"shards\"]\nmode = \"eval\"\nsize = 32\nreplicas = 2\n"
             "[stages.tokens]\ntype = \"text.bpe_encode\"\ninputs = [\"decode\"]\ntokenizer = \"" + dir.file("bpe.txt") +
             "\"\ncontext_length = 24\n"
             "[stages.train]\ntype = \"train.siglip\"\ninputs = [\"tokens\"]\ntokenizer = \"" + dir.file("bpe.txt") + "\"\n"
             "replicas = 2\ndim = 32\ndepth = 1\nheads = 2\nimage_size = 32\npatch_size = 8\nembed_dim = 32\n"
             "text_width = 32\ntext_depth = 1\ntext_heads = 2\ncontext_length = 24\nbatch_size = 16\n"
             "warmup_steps = 2\ndevice = \"cpu\"\nthreads = 1\nlog_every = 1\ncheckpoint_every = 0\n");
  auto r = run_cmd("timeout 240 " + catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("run") +
                   " --progress plain");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  auto steps = finish_steps(r.out);
  CHECK(steps[0] > 5);
  CHECK(steps[0] == steps[1]);
  CHECK_THAT(r.out, Catch::Contains("SigLIP: image ViT"));
  CHECK_THAT(r.out, Catch::Contains("global batch 32 = 16 x 2 ranks (gloo, this is rank 0)"));
  CHECK(fs::exists(dir.file("run/export/model.safetensors")));
  CHECK_THAT(read_file(dir.file("run/export/config.json")), Catch::Contains("\"loss\": \"siglip\""));
  check_nothing_left(dir, nullptr);
}

TEST_CASE("data parallel: one trainer rank on each of two namespace hosts") {
  require_netns();
  clean_launcher_env();
  TempDir dir("cl-dp2");
  Dataset data = make_dataset(dir);
  write_file(dir.file("g.toml"), train_graph(data, model_vocab(dir, data), true));
  std::string run = dir.file("run");
  NetnsHosts hosts(2);
  int64_t bytes0 = hosts.veth_bytes();
  std::vector<std::unique_ptr<Proc>> nodes;
  for (int k = 0; k < 2; ++k)
    nodes.push_back(std::make_unique<Proc>(node_cmd(hosts, k, 2, kPort, dir.file("g.toml"), run),
                                           dir.file("node" + std::to_string(k) + ".log")));
  int c0 = nodes[0]->wait(240), c1 = nodes[1]->wait(30);
  INFO(logs_of(nodes));
  REQUIRE(c0 == 0);
  CHECK(c1 == 0);
  auto steps = finish_steps(nodes[0]->log());
  CHECK(steps[0] > 5);
  CHECK(steps[0] == steps[1]);
  CHECK(hosts.veth_bytes() - bytes0 > 100000);  // gradients crossed the link
  CHECK(fs::exists(run + "/export/model.safetensors"));
  check_nothing_left(dir, &hosts);
}

TEST_CASE("data parallel: deterministic order routes each numbered sample to its rank on another host") {
  require_netns();
  clean_launcher_env();
  TempDir dir("cl-order");
  Dataset data = make_dataset(dir);
  // source and labels on node 0, decode and one trainer rank on each host:
  // labels -> train is all-to-all, keyed over CURVE tcp to rank 1 on node 1.
  const std::string per_node = "replicas_per_node = 1\n";
  write_file(dir.file("g.toml"),
             "[graph]\nname = \"cluster-order\"\n"
             "[stages.shards]\ntype = \"shards.source\"\nurls = [\"" + data.urls + "\"]\n"
             "order = \"deterministic\"\nshuffle_buffer = 32\nseed = 3\n"
             "[stages.decode]\ntype = \"image.decode\"\ninputs = [\"shards\"]\nmode = \"eval\"\nsize = 32\n" + per_node +
             "[stages.labels]\ntype = \"text.labels\"\ninputs = [\"decode\"]\nvocab = \"" + data.vocab + "\"\n"
             "[stages.train]\ntype = \"train.catlip\"\ninputs = [\"labels\"]\nvocab = \"" + model_vocab(dir, data) + "\"\n" +
             per_node + "order = \"deterministic\"\n"
             "dim = 32\ndepth = 1\nheads = 2\nimage_size = 32\npatch_size = 8\nbatch_size = 8\nsteps = 6\n"
             "lr = 0.001\nmin_lr = 0.001\nwarmup_steps = 0\ndevice = \"cpu\"\nprecision = \"fp32\"\nthreads = 1\n"
             "log_every = 1\ncheckpoint_every = 0\nexport = false\nid_log = true\n");
  std::string run = dir.file("run");
  {
    NetnsHosts hosts(2);
    std::vector<std::unique_ptr<Proc>> nodes;
    for (int k = 0; k < 2; ++k)
      nodes.push_back(std::make_unique<Proc>(node_cmd(hosts, k, 2, kPort, dir.file("g.toml"), run),
                                             dir.file("node" + std::to_string(k) + ".log")));
    int c0 = nodes[0]->wait(240), c1 = nodes[1]->wait(30);
    INFO(logs_of(nodes));
    REQUIRE(c0 == 0);
    CHECK(c1 == 0);
    check_nothing_left(dir, &hosts);
  }
  // The same graph on one host: one rank, two micro-steps of the same slots.
  auto one = run_cmd("timeout 240 " + catlip_bin() + " run " + dir.file("g.toml") + " --run-dir " + dir.file("one") +
                     " --progress plain --set train.accumulate_steps=2 2>&1");
  INFO(one.out);
  REQUIRE(one.exit_code == 0);
  // step -> "shard index key" of every rank's id log lines.
  auto ids = [](const std::vector<std::string>& files) {
    std::map<std::string, std::multiset<std::string>> out;
    for (auto& f : files)
      for (auto& l : lines_of(read_file(f))) {
        if (l.empty() || l[0] == '#') continue;
        std::vector<std::string> c;
        std::istringstream in(l);
        for (std::string x; std::getline(in, x, '\t');) c.push_back(x);
        REQUIRE(c.size() == 6);
        out[c[0]].insert(c[2] + " " + c[3] + " " + c[5]);
      }
    return out;
  };
  auto two_nodes = ids({run + "/train_ids.tsv", run + "/train_ids.rank-1.tsv"});
  auto one_host = ids({dir.file("one/train_ids.tsv")});
  REQUIRE(two_nodes.size() == 6);
  CHECK(two_nodes == one_host);
  for (auto& [step, got] : two_nodes) CHECK(got.size() == 16);
}

TEST_CASE("restarts: a replica killed on node 1 is restarted by its agent, every item reaches collect once") {
  require_netns();
  clean_launcher_env();
  TempDir dir("cl-restart");
  // counter on node 0 -> work x2 on each of two hosts (all-to-all over
  // CURVE tcp) -> collect on node 0.
  write_file(dir.file("g.toml"), R"([graph]
name = "cluster-restart"
max_restarts = 3
[stages.numbers]
type = "testing.counter"
count = 3000
rate = 1000
[stages.work]
type = "testing.map"
op = "identity"
inputs = ["numbers"]
replicas_per_node = 2
[stages.collect]
type = "testing.collect"
inputs = ["work"]
)");
  std::string run = dir.file("run");
  NetnsHosts hosts(2);
  std::vector<std::unique_ptr<Proc>> nodes;
  for (int k = 0; k < 2; ++k)
    nodes.push_back(std::make_unique<Proc>(node_cmd(hosts, k, 2, kPort, dir.file("g.toml"), run),
                                           dir.file("node" + std::to_string(k) + ".log")));
  // Once items flow, kill one of node 1's work replicas.
  REQUIRE(wait_until([&] { return lines_of(read_file(run + "/collected.tsv.0")).size() > 300; }, 60));
  int victim = -1;
  for (int pid : hosts.pids(1))
    if (read_file("/proc/" + std::to_string(pid) + "/cmdline").rfind("catlip:work/", 0) == 0) victim = pid;
  REQUIRE(victim > 0);
  REQUIRE(::kill(victim, SIGKILL) == 0);
  int c0 = nodes[0]->wait(120);
  int c1 = nodes[1]->wait(15);
  std::string logs = logs_of(nodes);
  INFO(logs);
  REQUIRE(c0 == 0);
  CHECK(c1 == 0);
  std::set<std::string> keys;
  for (int i = 0; i < 3000; ++i) {
    char k[32];
    std::snprintf(k, sizeof k, "item%09d", i);
    keys.insert(k);
  }
  check_exactly_once(run, keys);
  CHECK_THAT(nodes[0]->log(), Catch::Contains("restarting stage 'work' replica") && Catch::Contains("(node 1)"));
  check_nothing_left(dir, &hosts);
}
