// The LibTorch build: `catlip gpu info` runs without a GPU and reports what
// this build links. Built against a CUDA LibTorch (the pinned wheel), the
// binary must link libtorch_cuda (DT_NEEDED, and loaded at run time) and
// ProcessGroupNCCL must be there (the nccl backend is listed only after its
// options were constructed, i.e. the symbol resolved).
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "test_util.h"

using namespace catlip::test;


TEST_CASE("gpu info: the build links LibTorch 2 and, with a CUDA LibTorch, libtorch_cuda and ProcessGroupNCCL") {
  auto bin = torch_cli_or_skip();
  auto r = run_cmd("timeout 120 " + catlip_bin() + " gpu info --json 2>&1");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("\"torch\": \"2.") != std::string::npos);
  CHECK(r.out.find("\"gloo\"") != std::string::npos);
  auto text = run_cmd("timeout 120 " + catlip_bin() + " gpu info 2>&1");
  REQUIRE(text.exit_code == 0);
  CHECK(text.out.find("GPUs visible:") != std::string::npos);
#if CATLIP_TEST_TORCH_CUDA
  CHECK(r.out.find("libtorch_cuda.so") != std::string::npos);
  CHECK(r.out.find("\"nccl\"") != std::string::npos);
  CHECK(r.out.find("\"cuda_built\": \"none\"") == std::string::npos);
  // Linked, not just loadable: a DT_NEEDED entry of the binary itself.
  auto needed = run_cmd("readelf -d " + bin + " 2>&1");
  REQUIRE(needed.exit_code == 0);
  CHECK(needed.out.find("libtorch_cuda.so") != std::string::npos);
  auto plugin = run_cmd("readelf -d " + std::string(CATLIP_PLUGIN_DIR) + "/catlip_train.so 2>&1");
  CHECK(plugin.out.find("libtorch_cuda.so") != std::string::npos);
#else
  WARN("CPU-only LibTorch: the CUDA checks do not apply to this build");
#endif
}
