// The BPE tokenizer graphs as processes: configs/quickstart_bpe.toml on
// synthetic shards writes the tokenizer (2 replicas of text.bpe_count give
// exactly the 1-replica file); text.bpe_encode then adds token ids; a run
// without captions fails clearly.
#include <catch2/catch.hpp>

#include <filesystem>
#include <regex>
#include <sstream>

#include "catlip/text/bpe.h"
#include "test_util.h"

using namespace catlip::test;
using catlip::text::BpeTokenizer;

namespace {

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream ss(s);
  std::string l;
  while (std::getline(ss, l))
    if (!l.empty()) v.push_back(l);
  return v;
}

std::vector<int64_t> parse_ids(const std::string& csv) {
  std::vector<int64_t> v;
  std::istringstream ss(csv);
  std::string x;
  while (std::getline(ss, x, ',')) v.push_back(std::stoll(x));
  return v;
}

}  // namespace

TEST_CASE("bpe graph: learn the tokenizer, then encode captions") {
  TempDir d("bpe-graph");
  std::string cat = catlip_bin();
  auto synth = run_cmd(cat + " shards synth " + d.file("data/train") +
                       " --samples 400 --samples-per-shard 50 --size 32 2>&1");
  INFO(synth.out);
  REQUIRE(synth.exit_code == 0);
  REQUIRE(std::filesystem::exists(d.file("data/train-000007.tar")));

  std::string toml = read_file(source_dir() + "/configs/quickstart_bpe.toml");
  REQUIRE(toml.find("replicas = 2") != std::string::npos);
  write_file(d.file("one.toml"), std::regex_replace(toml, std::regex("replicas = 2"), "replicas = 1"));

  // Two replicas of text.bpe_count (the config as shipped), TOKENIZER set.
  std::string tok_path = d.file("tok/bpe.txt");
  std::filesystem::create_directories(d.file("tok"));
  auto two = run_cmd("DATA=" + d.file("data") + " TOKENIZER=" + tok_path + " " + cat + " run " + source_dir() +
                     "/configs/quickstart_bpe.toml --run-dir " + d.file("run-two") + " 2>&1");
  INFO(two.out);
  REQUIRE(two.exit_code == 0);
  REQUIRE(std::filesystem::exists(tok_path));
  // One replica, the default output inside the run dir.
  auto one = run_cmd("DATA=" + d.file("data") + " " + cat + " run " + d.file("one.toml") + " --run-dir " +
                     d.file("run-one") + " 2>&1");
  INFO(one.out);
  REQUIRE(one.exit_code == 0);
  CHECK(read_file(d.file("run-one/bpe.txt")) == read_file(tok_path));

  auto tok = BpeTokenizer::load(tok_path);
  // 400 synthetic captions have ~190 distinct words: learning stops once
  // every word is one token, short of the 510 merges asked for.
  CHECK(tok.num_merges() > 400);
  CHECK(tok.num_merges() <= 510);
  CHECK(tok.vocab_size() == 514 + tok.num_merges());
  CHECK(tok.encode("a small orange background, and two").size() == 7);  // "," is a pre-token
  std::string stats = read_file(d.file("run-two/bpe.stats.json"));
  INFO(stats);
  CHECK(stats.find("\"partials\": 2,") != std::string::npos);
  CHECK(stats.find("\"captions\": 400,") != std::string::npos);
  CHECK(stats.find("\"checksum\": \"" + tok.checksum() + "\"") != std::string::npos);
  CHECK(stats.find("\"vocab_size\": " + std::to_string(tok.vocab_size()) + ",") != std::string::npos);
  CHECK(stats.find("\"requested_vocab_size\": 1024,") != std::string::npos);

  // Encode: tokens into the int-list field `n`, which testing.collect writes.
  write_file(d.file("encode.toml"),
             "[graph]\nname = \"bpe-encode\"\n"
             "[stages.read]\ntype = \"shards.source\"\nurls = [\"" + d.file("data") +
                 "/train-{000000..000007}.tar\"]\nkeep = [\"txt\"]\nshuffle_shards = false\n"
                 "[stages.encode]\ntype = \"text.bpe_encode\"\ninputs = [\"read\"]\nreplicas = 2\n"
                 "tokenizer = \"" + tok_path + "\"\ncontext_length = 12\noutput_field = \"n\"\n"
                 "[stages.collect]\ntype = \"testing.collect\"\ninputs = [\"encode\"]\n");
  auto enc = run_cmd(cat + " run " + d.file("encode.toml") + " --run-dir " + d.file("run-enc") + " 2>&1");
  INFO(enc.out);
  REQUIRE(enc.exit_code == 0);
  auto rows = lines_of(read_file(d.file("run-enc/collected.tsv.0")));
  CHECK(rows.size() == 400);
  int cut = 0;
  for (auto& r : rows) {
    auto parts = std::vector<std::string>();
    std::istringstream ss(r);
    std::string f;
    while (std::getline(ss, f, '\t')) parts.push_back(f);
    REQUIRE(parts.size() >= 2);
    auto ids = parse_ids(parts[1]);
    INFO(r);
    REQUIRE(ids.size() >= 3);
    CHECK(ids.size() <= 12);
    CHECK(ids.front() == tok.sot_id());
    CHECK(ids.back() == tok.eot_id());
    if (ids.size() == 12) ++cut;
    CHECK_FALSE(tok.decode(ids).empty());
  }
  CHECK(cut > 0);  // synthetic captions are longer than 10 tokens now and then
  std::string summary = read_file(d.file("run-enc/summary.json"));
  CHECK(summary.find("bpe_truncated") != std::string::npos);
}

TEST_CASE("bpe graph: no captions fails clearly") {
  TempDir d("bpe-graph-empty");
  std::string cat = catlip_bin();
  auto synth = run_cmd(cat + " shards synth " + d.file("data/train") +
                       " --samples 40 --samples-per-shard 5 --size 32 2>&1");
  REQUIRE(synth.exit_code == 0);
  std::string toml = read_file(source_dir() + "/configs/quickstart_bpe.toml");
  toml = std::regex_replace(toml, std::regex("keep = \\[\"txt\"\\]"), "keep = [\"jpg\"]");
  write_file(d.file("nocap.toml"), toml);
  auto r = run_cmd("DATA=" + d.file("data") + " " + cat + " run " + d.file("nocap.toml") + " --run-dir " +
                   d.file("run") + " 2>&1");
  INFO(r.out);
  CHECK(r.exit_code != 0);
  CHECK(r.out.find("no caption words to learn from") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(d.file("run/bpe.txt")));
}
