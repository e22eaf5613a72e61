// `catlip bench decode` and `catlip bench pipeline` at a tiny size: a row for
// every peer (WebDataset, SPDL, DALI CPU), SKIPPED only when its package is missing.
#include <catch2/catch.hpp>

#include <filesystem>
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

// What the peer needs in the venv (tools/python/bench_peers.py's versions_*).
const char* probe_of(const std::string& peer) {
  if (peer == "webdataset") return "import webdataset, torch, torchvision, PIL";
  if (peer == "spdl") return "import spdl.io; spdl.io.demux_image";
  return "import nvidia.dali";
}

// Every peer has a row: figures with `count` samples, or SKIPPED where the
// venv really lacks the package.
void check_peer_rows(const std::string& out, const std::string& count) {
  for (const std::string peer : {"webdataset", "spdl", "dali"}) {
    INFO("peer " << peer);
    auto row = bench_row(out, peer);
    REQUIRE(row.size() >= 2);
    CHECK(row[1] != "FAILED:");
    if (row[1] == "SKIPPED:") {
      CHECK(run_cmd(venv_python() + " -c '" + probe_of(peer) + "' >/dev/null 2>&1").exit_code != 0);
      continue;
    }
    REQUIRE(row.size() >= 9);
    CHECK(row[1] == count);
    CHECK(std::stod(row[5]) > 0);                           // per CPU-second
    CHECK(row[6].back() == 'x');                            // catlip/peer
    CHECK((row[9] == "met" || row[9] == "MISSED"));         // ">=", "3.0x", "met"
  }
}

}  // namespace

TEST_CASE("bench decode: catlip's row and one row per peer") {
  auto r = run_cmd("timeout 120 " + catlip_bin() +
                   " bench decode --count 8 --seconds 0.3 --peer-epochs 2 </dev/null");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  auto cat = bench_row(r.out, "catlip");
  REQUIRE(cat.size() >= 6);
  CHECK(std::stod(cat[5]) > 0);  // catlip (a): images/CPU-s
  check_peer_rows(r.out, "16");
}

TEST_CASE("bench pipeline: catlip's row and one row per peer") {
  if (!std::filesystem::exists("/usr/share/wordnet/data.noun") ||
      !std::filesystem::exists("/usr/share/perl5/Lingua/EN/Tagger/tags.yml"))
    skip_test("needs WordNet (wordnet-base) and the Lingua lexicon (liblingua-en-tagger-perl) for text.labels");
  auto r = run_cmd("timeout 180 " + catlip_bin() + " bench pipeline --samples 48 --batch 16 --size 64 --no-steady </dev/null");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(bench_row(r.out, "catlip").at(1) == "48");
  check_peer_rows(r.out, "48");
}
