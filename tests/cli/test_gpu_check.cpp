// tools/gpu/check.sh --dry-run on this CPU (CTest label gpu_check): with the
// binaries of this build (--no-build), every step runs (the bench with
// torch.compile: about 50 s of compilation from a cold cache on 2 cores; 80 s
// in all), the bench and quickstart figures are parsed into results.json and
// the results.md table, and the script exits 0. The .debs (tools/gpu/pack.sh, network) are unpacked when
// .gpu-carry/debs has them; otherwise the step is reported as skipped.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "test_util.h"

using namespace catlip::test;
namespace fs = std::filesystem;

TEST_CASE("gpu check --dry-run: every step runs on CPU, results.json and results.md written") {
  const fs::path bin = fs::path(catlip_bin()).parent_path();
  if (!fs::exists(bin / "catlip-torch")) skip_test("catlip-torch not built (CATLIP_WITH_TORCH off)");
  if (run_cmd(venv_python() + " -c 'import torch' 2>&1").exit_code != 0)
    skip_test(venv_python() + " cannot import torch (tools/requirements.txt; bash tools/setup.sh)");
  if (!fs::exists("/usr/share/wordnet/data.noun") || !fs::exists("/usr/share/perl5/Lingua/EN/Tagger/tags.yml"))
    skip_test("needs WordNet (wordnet-base) and the Lingua lexicon (liblingua-en-tagger-perl) for the quickstart");
  TempDir dir("gpu-check");
  auto r = run_cmd("timeout 280 bash " + source_dir() + "/tools/gpu/check.sh --dry-run --out " +
                   dir.path() + " --build-dir " + bin.parent_path().string() + " --no-build --python " +
                   venv_python() + " </dev/null 2>&1");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("check: every step ran"));
  auto md = read_file(dir.file("results.md"));
  auto json = read_file(dir.file("results.json"));
  INFO(md);
  // torch.compile's row either way: a failed compilation is reported, not fatal.
  for (const char* row : {"| catlip img/s (ViT-tiny, 32 px, batch 4, fp32, cpu) | ", "| catlip / eager img/s | ",
                          "| torch.compile img/s | ", "| catlip / torch.compile img/s | ",
                          "| catlip MFU | ", "| quickstart trainer device | cpu fp32 |", "| quickstart loss, mean of",
                          "| trainer input-wait fraction, whole run | ", "| held-out mAP vs the drawn objects | 0.",
                          "| step: bench | ", "| step: quickstart | "})
    CHECK_THAT(md, Catch::Contains(row));
  CHECK_THAT(md, Catch::Contains("| step: build | 0 s | runs | skipped |"));
  CHECK_THAT(md, !Catch::Contains("FAILED"));
  CHECK_THAT(json, Catch::Contains("\"mode\": \"dry-run\""));
  CHECK_THAT(json, Catch::Contains("\"ok\": true"));
  CHECK(fs::exists(dir.file("bench_train.json")));
  CHECK(fs::exists(dir.file("quickstart/eval/eval.json")));
}
