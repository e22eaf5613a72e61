// `catlip bench train` on one small case without torch.compile (its
// compilation costs minutes on CPU): the header names the interpreter and its
// torch, the row has C++ and eager min/median times and a finite C++/eager
// ratio, the compile column says skipped, the target line is printed, and
// --json writes the figures. Bad options are refused (exit 2).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

using namespace catlip::test;

namespace {

void need_venv_torch() {
  if (run_cmd(venv_python() + " -c 'import torch' 2>&1").exit_code != 0)
    skip_test(venv_python() + " cannot import torch (tools/requirements.txt; bash tools/setup.sh)");
}

// "MIN/MEDIAN" -> both positive and finite.
void check_pair(const std::string& s) {
  INFO(s);
  auto k = s.find('/');
  REQUIRE(k != std::string::npos);
  double a = std::stod(s.substr(0, k)), b = std::stod(s.substr(k + 1));
  CHECK(std::isfinite(a));
  CHECK(a > 0);
  CHECK(b >= a);
}

}  // namespace

TEST_CASE("bench train: the C++ vs eager row, the target line and the JSON (no torch.compile)") {
  torch_cli_or_skip();
  need_venv_torch();
  TempDir dir("bench-train");
  const std::string json = dir.file("bench.json");
  auto r = run_cmd("timeout 240 " + catlip_bin() + " bench train --cases 32x4 --steps 1 --warmup 1 --rounds 1 " +
                   "--threads 1 --no-compile --python " + venv_python() + " --json " + json + " </dev/null");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("Python: " + venv_python() + ", torch "));
  CHECK_THAT(r.out, Catch::Contains("C++: LibTorch "));
  // image, batch, C++ min/med, eager min/med, compile, C++/eager, C++/compile, img/s, GFLOP/s, MFU
  auto v = table_row(r.out, "32x32");
  REQUIRE(v.size() == 10);
  CHECK(v[1] == "4");
  check_pair(v[2]);
  check_pair(v[3]);
  CHECK(v[4] == "skipped");
  double ratio = std::stod(v[5]);
  CHECK(std::isfinite(ratio));
  CHECK(ratio > 0);
  CHECK(v[6] == "n/a");
  CHECK(std::stod(v[7]) > 0);
  CHECK_THAT(r.out, Catch::Contains("torch.compile: skipped (--no-compile)"));
  CHECK((r.out.find("target C++/eager <= 1.0: met") != std::string::npos ||
         r.out.find("target C++/eager <= 1.0: NOT met") != std::string::npos));
  auto j = read_file(json);
  CHECK_THAT(j, Catch::Contains("\"ratio_eager\": "));
  CHECK_THAT(j, Catch::Contains("\"compile\": null"));
  CHECK_THAT(j, Catch::Contains("\"python\": \"" + venv_python() + "\""));
  CHECK_THAT(j, Catch::Contains("\"mfu\": "));
}

TEST_CASE("bench train: bad options are refused") {
  torch_cli_or_skip();
  for (std::string bad : {"--precision fp16", "--device tpu", "--cases 32", "--cases 32xq", "--bogus 1",
                          "--ranks 2 --precision bf16", "--ranks 2 --device cuda"}) {
    INFO(bad);
    CHECK(run_cmd(catlip_bin() + " bench train " + bad + " </dev/null 2>&1").exit_code == 2);
  }
}
