// Tests of graph loading and validation (catlip/graph.h, validate.h, graph_keys.h): positions
// of every error, the shipped configs, the key reference, file checks.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "catlip/graph.h"
#include "catlip/graph_keys.h"
#include "catlip/launcher.h"
#include "catlip/validate.h"
#include "test_util.h"

using namespace catlip;

static bool load(const std::string& text, GraphSpec& g, std::vector<Diagnostic>& d,
                 std::vector<std::string> sets = {}) {
  LoadOptions o;
  o.sets = std::move(sets);
  return load_graph_string(text, "g.toml", o, g, d).ok();
}

static std::string all(const std::vector<Diagnostic>& d) {
  std::string s;
  for (auto& x : d) s += x.str() + "\n";
  return s;
}

TEST_CASE("graph: parse stages, inputs, replicas, params in file order") {
  GraphSpec g;
  std::vector<Diagnostic> d;
  REQUIRE(load(R"(
[graph]
name = "demo"
metrics_port = 9464
[stages.z_read]
type = "testing.counter"
count = 5
[stages.a_work]
type = "testing.map"
inputs = ["z_read"]
replicas = 3
sleep_ms = 1.5
)", g, d));
  CHECK(g.name == "demo");
  CHECK(g.metrics_port == 9464);
  REQUIRE(g.stages.size() == 2);
  CHECK(g.stages[0].name == "z_read");
  CHECK(g.stages[1].replicas == 3);
  CHECK(std::get<double>(g.stages[1].params.at("sleep_ms")) == 1.5);
  CHECK(g.stages[1].param_locs.at("sleep_ms").line == 12);
  CHECK(topo_order(g) == std::vector<std::string>{"z_read", "a_work"});
  CHECK(graph_to_dot(g).find("\"z_read\" -> \"a_work\"") != std::string::npos);
}

TEST_CASE("graph: --set overrides and ${ENV} interpolation") {
  ::setenv("CATLIP_TEST_N", "77", 1);
  ::setenv("CATLIP_TEST_DIR", "/data/x", 1);
  GraphSpec g;
  std::vector<Diagnostic> d;
  REQUIRE(load(R"(
[stages.read]
type = "testing.counter"
key_prefix = "${CATLIP_TEST_DIR}/k-${CATLIP_TEST_MISSING:-dflt}-"
[stages.sink]
type = "testing.null"
inputs = ["read"]
)", g, d, {"read.count=${CATLIP_TEST_N}", "read.rate=2.5", "graph.prefetch=3", "read.key_prefix=plain text"}) == true);
  // --set values are TOML; an unparsable one is a plain string.
  CHECK(std::get<std::string>(g.stages[0].params.at("key_prefix")) == "plain text");
  CHECK(std::get<double>(g.stages[0].params.at("rate")) == 2.5);
  CHECK(g.prefetch == 3);
  GraphSpec g2;
  d.clear();
  REQUIRE(load("[stages.read]\ntype = \"testing.counter\"\nkey_prefix = \"${CATLIP_TEST_DIR}/${CATLIP_TEST_MISSING:-dflt}\"\n", g2, d));
  CHECK(std::get<std::string>(g2.stages[0].params.at("key_prefix")) == "/data/x/dflt");
  GraphSpec g3;
  d.clear();
  CHECK_FALSE(load("[stages.read]\ntype = \"testing.counter\"\nkey_prefix = \"${CATLIP_TEST_UNSET_VAR}\"\n", g3, d));
  CHECK_THAT(all(d), Catch::Contains("g.toml:3:14") && Catch::Contains("CATLIP_TEST_UNSET_VAR"));
}

TEST_CASE("graph: validation reports every problem with file:line:column") {
  GraphSpec g;
  std::vector<Diagnostic> d;
  load(R"([graph]
name = "bad"
[stages.read]
type = "testing.counter"
count = "many"
[stages.work]
type = "testing.map"
inputs = ["read", "nowhere"]
op = "cube"
replicas = 0
[stages.loop_a]
type = "testing.map"
inputs = ["loop_b"]
[stages.loop_b]
type = "testing.map"
inputs = ["loop_a"]
[stages.ghost]
type = "nosuchplugin.thing"
inputs = ["read"]
[stages.typo]
type = "testing.mapp"
inputs = ["read"]
[stages.sink]
type = "testing.null"
inputs = ["work"]
sise = 3
)", g, d);
  PluginLoader loader;
  CHECK_FALSE(validate_graph(g, loader, d).ok());
  std::string s = all(d);
  INFO(s);
  CHECK_THAT(s, Catch::Contains("g.toml:5:9: error: stage 'read': parameter 'count': expected int, got string"));
  CHECK_THAT(s, Catch::Contains("g.toml:10:12: error: stage 'work': replicas: value 0 is below the minimum 1"));
  CHECK_THAT(s, Catch::Contains("g.toml:9:6: error: stage 'work': parameter 'op': value \"cube\" is not one of"));
  CHECK_THAT(s, Catch::Contains("stage 'work': unknown input 'nowhere'"));
  CHECK_THAT(s, Catch::Contains("cycle in the graph"));
  CHECK_THAT(s, Catch::Contains("g.toml:18:8: error: stage 'ghost': unknown stage type 'nosuchplugin.thing'"));
  CHECK_THAT(s, Catch::Contains("stage 'typo': unknown stage type 'testing.mapp' (plugin 'testing' has:"));
  CHECK_THAT(s, Catch::Contains("g.toml:26:8: error: stage 'sink': unknown parameter 'sise'"));
  CHECK_THAT(s, Catch::Contains("loop_a <- loop_b <- loop_a"));
}

TEST_CASE("graph: sources take no inputs, transforms need them") {
  GraphSpec g;
  std::vector<Diagnostic> d;
  REQUIRE(load("[stages.a]\ntype = \"testing.counter\"\ninputs = [\"b\"]\n[stages.b]\ntype = \"testing.map\"\n", g, d));
  PluginLoader loader;
  CHECK_FALSE(validate_graph(g, loader, d).ok());
  std::string s = all(d);
  CHECK_THAT(s, Catch::Contains("testing.counter is a source and takes no inputs"));
  CHECK_THAT(s, Catch::Contains("testing.map needs inputs"));
}

TEST_CASE("graph: syntax errors carry their position") {
  GraphSpec g;
  std::vector<Diagnostic> d;
  CHECK_FALSE(load("[stages.a]\ntype = \"testing.counter\"\ncount = = 3\n", g, d));
  REQUIRE(d.size() == 1);
  CHECK_THAT(d[0].str(), Catch::StartsWith("g.toml:3:") && Catch::Contains("TOML syntax error"));
}

TEST_CASE("graph: the resolved TOML round-trips") {
  GraphSpec g, g2;
  std::vector<Diagnostic> d;
  REQUIRE(load("[graph]\nname=\"x\"\n[stages.a]\ntype = \"testing.counter\"\nkey_prefix = \"q\\\"uote\"\n[stages.b]\ntype=\"testing.null\"\ninputs=[\"a\"]\nreplicas=2\n", g, d));
  REQUIRE(load(graph_to_toml(g), g2, d));
  CHECK(g2.stages.size() == 2);
  CHECK(std::get<std::string>(g2.stages[0].params.at("key_prefix")) == "q\"uote");
  CHECK(g2.stages[1].replicas == 2);
}

TEST_CASE("graph: every shipped config validates") {
  // The configs users start from must stay valid as stage schemas change.
  // Variables the configs require are set to placeholders: validation checks
  // types, parameters and topology, not that the data exists.
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const char* dir : {"/configs", "/configs/examples"})
    for (auto& e : fs::directory_iterator(test::source_dir() + dir))
      if (e.path().extension() == ".toml") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 8);
  // Placeholder files where the configs read some (validate checks they exist).
  test::TempDir tmp("cfg");
  for (const char* f : {"x.tar", "v.tsv", "bpe.txt"}) test::write_file(tmp.file(f), "placeholder\n");
  const std::string env = "DATA=" + tmp.path() + " SHARDS=" + tmp.file("x.tar") + " VOCAB=" + tmp.file("v.tsv") +
                          " MODEL_VOCAB=" + tmp.file("v.tsv") + " CHECKPOINT=" + tmp.path() + " TOKENIZER=" +
                          tmp.file("bpe.txt") + " ";
  for (auto& f : files) {
    auto r = test::run_cmd(env + test::catlip_bin() + " validate --no-check-files '" + f + "' 2>&1");
    INFO(f << "\n" << r.out);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("valid graph") != std::string::npos);
  }
}

TEST_CASE("graph: numeric [graph] and stage keys out of range are errors at their position") {
  const std::string stages = R"(
[stages.read]
type = "testing.counter"
[stages.sink]
type = "testing.null"
inputs = ["read"]
)";
  struct Case {
    std::string graph_line, expect;
  };
  std::vector<Case> cases = {
      {"report_interval_s = 0", "g.toml:2:21: error: [graph] report_interval_s: value 0 is below the minimum 0.01"},
      {"report_interval_s = -1.0", "g.toml:2:21: error: [graph] report_interval_s"},
      {"report_interval_s = nan", "g.toml:2:21: error: [graph] report_interval_s"},
      {"report_interval_s = inf", "g.toml:2:21: error: [graph] report_interval_s"},
      {"join_timeout_s = -inf", "g.toml:2:18: error: [graph] join_timeout_s"},
      {"node_timeout_s = 0", "g.toml:2:18: error: [graph] node_timeout_s"},
      {"metrics_port = 70000", "g.toml:2:16: error: [graph] metrics_port: value 70000 is above the maximum 65535"},
      {"prefetch = 0", "g.toml:2:12: error: [graph] prefetch: value 0 is below the minimum 1"},
      {"max_message_mb = 0", "g.toml:2:18: error: [graph] max_message_mb"},
      {"liveness_timeout_s = 0", "g.toml:2:22: error: [graph] liveness_timeout_s: value 0 is below the minimum 0.1"},
      {"liveness_timeout_s = nan", "g.toml:2:22: error: [graph] liveness_timeout_s"},
      {"liveness_timeout_s = 0.3\nreport_interval_s = 0.5",
       "g.toml:2:22: error: [graph] liveness_timeout_s (0.3) must be greater than report_interval_s (0.5)"},
      {"max_error_fraction = 1.5", "g.toml:2:22: error: [graph] max_error_fraction: value 1.5 is above the maximum 1"},
      {"max_error_fraction = -0.1", "g.toml:2:22: error: [graph] max_error_fraction"},
      {"metrics_bind = \"everywhere\"", "g.toml:2:16: error: [graph] metrics_bind: expected an IP address"},
      {"nodes = 0", "g.toml:2:9: error: [graph] nodes"},
  };
  for (auto& c : cases) {
    GraphSpec g;
    std::vector<Diagnostic> d;
    INFO(c.graph_line);
    CHECK_FALSE(load("[graph]\n" + c.graph_line + "\n" + stages, g, d));
    CHECK_THAT(all(d), Catch::Contains(c.expect));
  }
  std::vector<Case> stage_cases = {
      {"prefetch = 0", "g.toml:7:12: error: stage 'sink': prefetch: value 0 is below the minimum 1"},
      {"prefetch = 99999999999", "g.toml:7:12: error: stage 'sink': prefetch"},
      {"replicas = -2", "g.toml:7:12: error: stage 'sink': replicas: value -2 is below the minimum 1"},
      {"min_samples = -1", "g.toml:7:15: error: stage 'sink': min_samples: value -1 is below the minimum 0"},
      {"min_samples = 1.5", "g.toml:7:15: error: stage 'sink': min_samples"},
      {"max_error_fraction = 2", "g.toml:7:22: error: stage 'sink': max_error_fraction: value 2 is above the maximum 1"},
      {"liveness_timeout_s = inf", "g.toml:7:22: error: stage 'sink': liveness_timeout_s: value inf is above the maximum 86400"},
      {"liveness_timeout_s = 0.2", "g.toml:7:22: error: stage 'sink': liveness_timeout_s: 0.2 must be greater than [graph] report_interval_s (0.5)"},
  };
  for (auto& c : stage_cases) {
    GraphSpec g;
    std::vector<Diagnostic> d;
    INFO(c.graph_line);
    CHECK_FALSE(load(stages + c.graph_line + "\n", g, d));
    CHECK_THAT(all(d), Catch::Contains(c.expect));
  }
}

TEST_CASE("graph: liveness, outcome and metrics_bind keys: defaults, values and the resolved TOML") {
  GraphSpec g;
  std::vector<Diagnostic> d;
  REQUIRE(load(R"(
[stages.read]
type = "testing.counter"
[stages.sink]
type = "testing.null"
inputs = ["read"]
)", g, d));
  CHECK(g.liveness_timeout_s == 30);
  CHECK(g.max_error_fraction == 0.5);
  CHECK(g.metrics_bind == "127.0.0.1");
  CHECK(g.stages[1].min_samples == -1);
  // A slow report interval stretches the default liveness timeout.
  GraphSpec slow;
  REQUIRE(load("[graph]\nreport_interval_s = 10\n[stages.read]\ntype = \"testing.counter\"\n", slow, d));
  CHECK(slow.liveness_timeout_s == 100);

  GraphSpec h;
  REQUIRE(load(R"(
[graph]
liveness_timeout_s = 5
max_error_fraction = 0.1
metrics_bind = "0.0.0.0"
[stages.read]
type = "testing.counter"
[stages.sink]
type = "testing.null"
inputs = ["read"]
min_samples = 0
max_error_fraction = 1
liveness_timeout_s = 600
)", h, d));
  INFO(all(d));
  CHECK(h.liveness_timeout_s == 5);
  CHECK(h.max_error_fraction == 0.1);
  CHECK(h.metrics_bind == "0.0.0.0");
  CHECK(h.stages[1].min_samples == 0);
  CHECK(h.stages[1].max_error_fraction == 1);
  CHECK(h.stages[1].liveness_timeout_s == 600);
  CHECK(h.stages[1].params.empty());  // reserved keys, not parameters
  GraphSpec back;
  REQUIRE(load(graph_to_toml(h), back, d));
  CHECK(back.liveness_timeout_s == 5);
  CHECK(back.metrics_bind == "0.0.0.0");
  CHECK(back.stages[1].min_samples == 0);
  CHECK(back.stages[1].max_error_fraction == 1);
  CHECK(back.stages[1].liveness_timeout_s == 600);
}

TEST_CASE("graph: docs/graph-reference.md's key table is the one the declarations print") {
  std::ifstream in(std::string(CATLIP_SOURCE_DIR) + "/docs/graph-reference.md");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string doc = ss.str();
  const std::string begin = "<!-- keys: catlip inspect graph --markdown -->\n", end = "<!-- /keys -->";
  auto b = doc.find(begin), e = doc.find(end);
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  INFO("regenerate with: catlip inspect graph --markdown");
  CHECK(doc.substr(b + begin.size(), e - b - begin.size()) == catlip::graph_keys_markdown());
  // Every key is declared once per table, and every [graph] key has a doc.
  std::set<std::string> seen;
  for (auto& k : catlip::graph_keys()) {
    INFO("[graph] key " << k.spec.name);
    CHECK(seen.insert(k.spec.name).second);
    CHECK_FALSE(k.spec.doc.empty());
  }
}

TEST_CASE("validate: missing shard, vocabulary and program files are named at file:line:col before anything runs") {
  test::TempDir dir("files");
  test::write_file(dir.file("present-000000.tar"), "");
  test::write_file(dir.file("g.toml"), "[stages.read]\ntype = \"shards.source\"\nurls = [\"" + dir.path() +
                                           "/missing-{000000..000003}.tar\", \"" + dir.path() +
                                           "/present-{000000..000001}.tar\"]\n"
                                           "[stages.labels]\ntype = \"text.labels\"\ninputs = [\"read\"]\nvocab = \"" +
                                           dir.file("nope.tsv") + "\"\n"
                                           "[stages.py]\ntype = \"exec.process\"\ninputs = [\"labels\"]\n"
                                           "command = [\"no-such-program-xyz\"]\n"
                                           "[stages.sink]\ntype = \"testing.collect\"\ninputs = [\"py\"]\n");
  for (std::string cmd : {"validate", "run"}) {
    auto r = test::run_cmd(test::catlip_bin() + " " + cmd + " " + dir.file("g.toml") +
                           (cmd == "run" ? " --run-dir " + dir.file("run-" + cmd) : std::string()) + " 2>&1");
    INFO(cmd << "\n" << r.out);
    CHECK(r.exit_code == 3);
    CHECK_THAT(r.out, Catch::Contains(dir.file("g.toml") + ":3:8: error: stage 'read': parameter 'urls': '" +
                                      dir.path() + "/missing-{000000..000003}.tar' matches no readable file (4 names, e.g. " +
                                      dir.path() + "/missing-000000.tar (No such file or directory))"));
    CHECK(r.out.find("present-") == std::string::npos);  // a pattern with one file is fine
    CHECK_THAT(r.out, Catch::Contains(dir.file("g.toml") + ":7:9: error: stage 'labels': parameter 'vocab': '" +
                                      dir.file("nope.tsv") + "' does not exist"));
    CHECK_THAT(r.out, Catch::Contains("stage 'py': parameter 'command': program 'no-such-program-xyz' is not in PATH"));
    CHECK_THAT(r.out, Catch::Contains("3 errors in " + dir.file("g.toml") + "; nothing was started"));
    CHECK_FALSE(std::filesystem::exists(dir.file("run-" + cmd)));
  }
  auto skip = test::run_cmd(test::catlip_bin() + " validate --no-check-files " + dir.file("g.toml") + " 2>&1");
  INFO(skip.out);
  CHECK(skip.exit_code == 0);
}

TEST_CASE("graph: a bad --set value is reported against the --set argument, not the graph file") {
  GraphSpec g;
  std::vector<Diagnostic> d;
  load(R"([graph]
name = "s"
[stages.read]
type = "testing.counter"
count = 10
[stages.sink]
type = "testing.null"
inputs = ["read"]
)", g, d, {"read.count=-5", "read.replicas=0", "graph.report_interval_s=-1", "sink.sise=3"});
  PluginLoader loader;
  CHECK_FALSE(validate_graph(g, loader, d).ok());
  std::string s = all(d);
  INFO(s);
  CHECK_THAT(s, Catch::Contains("--set read.count=-5: error: stage 'read': parameter 'count': value -5 is below the minimum 0"));
  CHECK_THAT(s, Catch::Contains("--set read.replicas=0: error: stage 'read': replicas: value 0 is below the minimum 1"));
  CHECK_THAT(s, Catch::Contains("--set graph.report_interval_s=-1: error: [graph] report_interval_s"));
  CHECK_THAT(s, Catch::Contains("--set sink.sise=3: error: stage 'sink': unknown parameter 'sise'"));
  // Nothing that came from --set is blamed on the file without a position.
  CHECK_THAT(s, !Catch::Contains("g.toml: error"));
  // A key given with --set is "given" (liveness_timeout_s is not raised to
  // 10 x report_interval_s as an absent one would be).
  GraphSpec g2;
  d.clear();
  REQUIRE(load("[stages.read]\ntype = \"testing.counter\"\n", g2, d,
               {"graph.report_interval_s=2", "graph.liveness_timeout_s=5"}));
  CHECK(g2.liveness_timeout_s == 5);
}

TEST_CASE("launcher: a replica's failure says 'failed:' once, not 'failed: error:'") {
  // The worker prints "error: ..." on stderr; when its report did not carry
  // the error, that line is the failure text.
  CHECK(failure_text("m", 0, 0, 1, "error: failing on purpose at item 5", "exited with status 1") ==
        "stage 'm' (replica 0) failed: failing on purpose at item 5 [exited with status 1]");
  CHECK(failure_text("m", 2, 1, 2, "configure: bad", "") == "stage 'm' (replica 2, node 1) failed: configure: bad");
  CHECK(failure_text("m", 0, 0, 1, "", "killed by signal 9 (Killed)") ==
        "stage 'm' (replica 0) failed [killed by signal 9 (Killed)]");
}
