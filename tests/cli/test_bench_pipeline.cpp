// `catlip bench pipeline` on a few samples: the catlip side (a real `catlip
// run` ending in testing.collate) delivers every sample in trainer-ready
// batches, and the PyTorch DataLoader + NLTK baseline prints its row beside it.
#include <catch2/catch.hpp>

#include <filesystem>
#include <sstream>
#include <string>

#include "test_util.h"

using namespace catlip::test;

namespace {

// The whitespace-separated fields of the first line that starts with `prefix`
// after the label (the label itself ends at the first run of two spaces).
std::vector<std::string> row_fields(const std::string& out, const std::string& prefix) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    auto gap = line.find("  ");
    std::istringstream f(gap == std::string::npos ? "" : line.substr(gap));
    std::vector<std::string> v;
    std::string x;
    while (f >> x) v.push_back(x);
    return v;
  }
  return {};
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
  auto r = run_cmd("timeout 240 " + catlip_bin() + " bench pipeline --samples 150 --batch 32 --size 128 --no-baseline "
                   "--out " + t.path() + " </dev/null");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  auto cat = row_fields(r.out, "catlip run:");
  REQUIRE(cat.size() == 5);  // samples, wall s, samples/s, CPU s, samples/CPU-s
  CHECK(cat[0] == "150");
  CHECK(std::stod(cat[3]) > 0);
  CHECK_THAT(r.out, Catch::Contains("catlip: 150 of 150 samples in 5 batches"));
  CHECK_THAT(r.out, Catch::Contains("skipped (--no-baseline)"));
  // What ran is left in --out: the graph, its run dir, the vocabulary.
  CHECK(std::filesystem::exists(t.file("pipeline.toml")));
  CHECK(std::filesystem::exists(t.file("run-catlip/summary.json")));
  CHECK(std::filesystem::exists(t.file("vocab.tsv")));
}

TEST_CASE("bench pipeline: the PyTorch baseline row is printed beside the catlip row") {
  need_text_data();
  if (run_cmd(venv_python() + " -c 'import torch, torchvision, PIL, numpy, nltk' 2>&1").exit_code != 0)
    skip_test(venv_python() + " lacks torch/torchvision/PIL/numpy/nltk (tools/requirements.txt; bash tools/setup.sh)");
  auto r = run_cmd("timeout 240 " + catlip_bin() + " bench pipeline --samples 120 --batch 32 --size 128 </dev/null");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  auto cat = row_fields(r.out, "catlip run:");
  auto py = row_fields(r.out, "PyTorch DataLoader");
  REQUIRE(cat.size() == 5);
  REQUIRE(py.size() == 5);
  CHECK(cat[0] == "120");
  CHECK(py[0] == "120");
  CHECK(std::stod(py[3]) > 0);
  CHECK_THAT(r.out, Catch::Contains("samples per CPU-second (per core)"));
  CHECK_THAT(r.out, Catch::Contains("target >= 3x per core: "));
}

TEST_CASE("bench pipeline: with no usable Python the baseline is reported as skipped") {
  need_text_data();
  auto r = run_cmd("timeout 240 " + catlip_bin() +
                   " bench pipeline --samples 40 --batch 16 --size 64 --python /nonexistent/python3 </dev/null");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(row_fields(r.out, "catlip run:").at(0) == "40");
  CHECK_THAT(r.out, Catch::Contains("skipped: /nonexistent/python3 lacks"));
}
