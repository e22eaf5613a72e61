// `catlip bench pipeline` on a few samples: the catlip side (a real `catlip
// run` ending in testing.collate) delivers every sample in trainer-ready
// batches; without a Python every peer still gets its (SKIPPED) row.
#include <catch2/catch.hpp>

#include <filesystem>
#include <regex>
#include <string>

#include "test_util.h"

using namespace catlip::test;

namespace {

// The fields of the bench table's row named `first`: table_row on what
// follows the table's header line ("loader ..."), so that the bench's title
// line ("catlip bench pipeline: ...") is not taken for catlip's row.
std::vector<std::string> bench_row(const std::string& out, const std::string& first) {
  auto at = out.find("\nloader ");
  return table_row(at == std::string::npos ? out : out.substr(at + 1), first);
}

void need_text_data() {
  if (!std::filesystem::exists("/usr/share/wordnet/data.noun") ||
      !std::filesystem::exists("/usr/share/perl5/Lingua/EN/Tagger/tags.yml"))
    skip_test("needs WordNet (wordnet-base) and the Lingua lexicon (liblingua-en-tagger-perl) for text.labels");
}

}  // namespace

TEST_CASE("bench pipeline: the catlip run collates every sample into batches") {
  need_text_data();
  TempDir t("bench-pipeline");
  auto r = run_cmd("timeout 240 " + catlip_bin() + " bench pipeline --samples 150 --batch 32 --size 128 --no-peers "
                   "--out " + t.path() + " </dev/null");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  auto cat = bench_row(r.out, "catlip");
  REQUIRE(cat.size() >= 6);  // catlip, samples, wall s, samples/s, CPU s, samples/CPU-s, ...
  CHECK(cat[1] == "150");
  CHECK(std::stod(cat[4]) > 0);
  CHECK_THAT(r.out, Catch::Contains("catlip: 150 of 150 samples in 5 batches"));
  CHECK_THAT(r.out, Catch::Contains("peers: skipped (--no-peers)"));
  // The steady state from the one-shard run (19 of the 150 samples): a
  // positive marginal rate and start-up figure for catlip.
  auto at = r.out.find("\nsteady state: (N - 19)");
  REQUIRE(at != std::string::npos);
  auto steady = table_row(r.out.substr(at + 1), "catlip");
  REQUIRE(steady.size() >= 5);  // catlip, samples/CPU-s, CPU ms/sample, start-up CPU-s, share
  CHECK(std::stod(steady[1]) > 0);
  CHECK(std::stod(steady[2]) > 0);
  CHECK(std::stod(steady[3]) >= 0);
  CHECK(std::filesystem::exists(t.file("run-catlip-small/summary.json")));
  // What ran is left in --out: the graph, its run dir, the vocabulary.
  CHECK(std::filesystem::exists(t.file("pipeline.toml")));
  CHECK(std::filesystem::exists(t.file("run-catlip/summary.json")));
  CHECK(std::filesystem::exists(t.file("vocab.tsv")));
}

// The peers' rows with figures: tests/cli/test_bench_peers.cpp.

TEST_CASE("bench pipeline: with no usable Python every peer is reported as skipped") {
  need_text_data();
  auto r = run_cmd("timeout 240 " + catlip_bin() +
                   " bench pipeline --samples 40 --batch 16 --size 64 --python /nonexistent/python3 </dev/null");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(bench_row(r.out, "catlip").at(1) == "40");
  for (const char* peer : {"webdataset", "spdl", "dali"}) {
    auto row = bench_row(r.out, peer);
    REQUIRE(row.size() >= 2);
    CHECK(row[1] == "SKIPPED:");
  }
  CHECK_THAT(r.out, Catch::Contains("no usable Python at /nonexistent/python3"));
}

TEST_CASE("bench soak: a short soak under kills and pauses loses and doubles nothing") {
  // The short form of `catlip bench soak --minutes 10` (README): the same
  // checks, exit 0 only when every epoch arrived exactly once, the restarts
  // equal the kills and memory stayed flat.
  need_text_data();
  TempDir t("bench-soak");
  auto r = run_cmd("timeout 240 " + catlip_bin() + " bench soak --minutes 0.3 --samples 400 --size 128 "
                   "--fault-every-s 1 --seed 3 --out " + t.path() + " </dev/null 2>&1");
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains(" lost, 0 doubled") && Catch::Contains(", 0 lost,"));
  CHECK_THAT(r.out, Catch::Contains("soak passed"));
  // Some faults were injected, and each kill became one restart.
  const std::string out = r.out;
  const std::regex row(R"((\d+) kills, +\d+ pauses, +(\d+) restarts)");
  int kills = 0;
  for (auto it = std::sregex_iterator(out.begin(), out.end(), row); it != std::sregex_iterator(); ++it) {
    kills += std::stoi((*it)[1]);
    CHECK((*it)[1] == (*it)[2]);
  }
  CHECK(kills >= 1);
}
