// The vocabulary graph as processes: configs/vocab.toml on synthetic shards
// with 2 replicas of parse and count gives exactly the vocabulary of a run
// with one replica of each; `catlip vocab merge` agrees; `catlip label` runs.
#include <catch2/catch.hpp>

#include <filesystem>
#include <algorithm>
#include <map>
#include <regex>
#include <sstream>
#include <vector>

#include "test_util.h"

using namespace catlip::test;

namespace {

std::string with_replicas(std::string toml, int n) {
  toml = std::regex_replace(toml, std::regex("replicas = 2"), "replicas = " + std::to_string(n));
  toml = std::regex_replace(toml, std::regex("expect_parts = 2"), "expect_parts = " + std::to_string(n));
  return toml;
}

}  // namespace

TEST_CASE("vocab graph: 2 replicas give exactly the 1-replica vocabulary") {
  TempDir d("vocab-graph");
  std::string cat = catlip_bin();
  auto synth = run_cmd(cat + " shards synth " + d.file("data/train") +
                       " --samples 2000 --samples-per-shard 500 --size 32 2>&1");
  REQUIRE(synth.exit_code == 0);
  std::string toml = read_file(source_dir() + "/configs/vocab.toml");
  write_file(d.file("two.toml"), with_replicas(toml, 2));
  write_file(d.file("one.toml"), with_replicas(toml, 1));
  for (const char* v : {"one", "two"}) {
    auto r = run_cmd("DATA=" + d.file("data") + " " + cat + " run " + d.file(std::string(v) + ".toml") +
                     " --run-dir " + d.file(std::string("run-") + v) + " 2>&1");
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
  }
  std::string one = read_file(d.file("run-one/vocab.tsv")), two = read_file(d.file("run-two/vocab.tsv"));
  CHECK(one.size() > 100);
  CHECK(one == two);
  CHECK(read_file(d.file("run-one/vocab.stats.txt")) == read_file(d.file("run-two/vocab.stats.txt")));
  CHECK(std::filesystem::exists(d.file("run-two/vocab.part-0.tsv")));
  CHECK(std::filesystem::exists(d.file("run-two/vocab.part-1.tsv")));
  CHECK(read_file(d.file("run-one/vocab.stats.txt")).find("samples_seen\t2000") != std::string::npos);

  // The CLI merge of the part files gives the same vocabulary.
  auto m = run_cmd(cat + " vocab merge " + d.file("run-two") + " --min-count 5 -o " + d.file("cli.tsv") + " 2>&1");
  INFO(m.out);
  REQUIRE(m.exit_code == 0);
  CHECK(read_file(d.file("cli.tsv")) == two);

  // catlip label with that vocabulary prints indices.
  auto l = run_cmd(cat + " label \"a dog on a red car\" --vocab " + d.file("cli.tsv") + " 2>&1");
  INFO(l.out);
  CHECK(l.exit_code == 0);
  CHECK(l.out.find("n02084071") != std::string::npos);  // dog.n.01
  CHECK(l.out.find("labels:") != std::string::npos);
}

TEST_CASE("stage order: text.labels before or after image.decode gives the same samples") {
  // The shipped configs run caption-only stages before image.decode, while
  // samples are still small (encoded bytes rather than ~10x larger pixels).
  // Both orders validate, and a real run of each gives every sample with the
  // same labels and the same pixels (a crop depends only on seed, key, epoch).
  TempDir d("stage-order");
  const std::string cat = catlip_bin();
  auto synth = run_cmd(cat + " shards synth " + d.file("data/train") +
                       " --samples 400 --samples-per-shard 100 --size 48 2>&1");
  REQUIRE(synth.exit_code == 0);
  auto v = run_cmd("DATA=" + d.file("data") + " " + cat + " run " + source_dir() + "/configs/vocab.toml --run-dir " +
                   d.file("run-vocab") + " --quiet 2>&1");
  INFO(v.out);
  REQUIRE(v.exit_code == 0);
  auto graph = [&](bool labels_first) {
    const std::string decode_in = labels_first ? "labels" : "read", labels_in = labels_first ? "read" : "decode",
                      sink_in = labels_first ? "decode" : "labels";
    return "[graph]\nname = \"order\"\n[stages.read]\ntype = \"shards.source\"\nurls = [\"" + d.file("data") +
           "/train-{000000..000003}.tar\"]\n"
           "[stages.decode]\ntype = \"image.decode\"\ninputs = [\"" + decode_in +
           "\"]\nreplicas = 2\nmode = \"train\"\nsize = 32\nscale = [0.5, 1.0]\nflip = 0.5\nseed = 3\n"
           "[stages.labels]\ntype = \"text.labels\"\ninputs = [\"" + labels_in + "\"]\nvocab = \"" +
           d.file("run-vocab/vocab.tsv") + "\"\n"
           "[stages.sink]\ntype = \"testing.jsonl\"\ninputs = [\"" + sink_in + "\"]\nfields = [\"labels\", \"image\"]\n";
  };
  std::map<std::string, std::vector<std::string>> lines;
  for (bool first : {false, true}) {
    const std::string name = first ? "labels-first" : "decode-first";
    write_file(d.file(name + ".toml"), graph(first));
    auto val = run_cmd(cat + " validate " + d.file(name + ".toml") + " 2>&1");
    INFO(val.out);
    CHECK(val.exit_code == 0);
    auto r = run_cmd(cat + " run " + d.file(name + ".toml") + " --run-dir " + d.file("run-" + name) + " --quiet 2>&1");
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
    std::istringstream in(read_file(d.file("run-" + name + "/samples.jsonl")));
    for (std::string l; std::getline(in, l);) lines[name].push_back(l);
    std::sort(lines[name].begin(), lines[name].end());
  }
  REQUIRE(lines["decode-first"].size() == 400);
  CHECK(lines["decode-first"][0].find("\"fnv1a\":\"") != std::string::npos);
  CHECK(lines["decode-first"][0].find("\"labels\":[") != std::string::npos);
  CHECK(lines["labels-first"] == lines["decode-first"]);
}
