// `catlip bench clip` on two small batches: the table has a row per batch
// with finite, positive step times and CLIP/CatLIP ratio, and the summary
// lines (FLOP ratio beside the measured one, loss share first -> last).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

using namespace catlip::test;

namespace {

void check_rows(const std::string& out, size_t fields) {
  for (std::string b : {"8", "16"}) {
    auto v = table_row(out, b);
    INFO("batch " << b);
    REQUIRE(v.size() == fields);
    for (auto& x : v) {
      double d = std::stod(x);
      CHECK(std::isfinite(d));
      CHECK(d >= 0);
    }
    const size_t o = fields == 11 ? 0 : 1;  // --ranks: the global batch after the batch
    CHECK(std::stod(v[1 + o]) > 0);  // CatLIP s/step
    CHECK(std::stod(v[2 + o]) > 0);  // CLIP s/step
    CHECK(std::stod(v[3 + o]) > 0);  // CLIP/CatLIP
    CHECK(std::stod(v[5 + o]) > 0);  // image f+b
    CHECK(std::stod(v[6 + o]) > 0);  // text f+b
  }
  CHECK_THAT(out, Catch::Contains("loss+similarity share of the CLIP step: "));
  const std::string flops = "per-sample FLOP ratio CLIP/CatLIP: ";
  auto k = out.find(flops);
  REQUIRE(k != std::string::npos);
  double flop_ratio = std::stod(out.substr(k + flops.size()));
  CHECK(flop_ratio > 1);  // CLIP adds a text tower
}

}  // namespace

TEST_CASE("bench clip: a row per batch size, finite ratios, FLOP and loss-share lines") {
  torch_cli_or_skip();
  auto r = run_cmd("timeout 240 " + catlip_bin() +
                   " bench clip --batches 8,16 --steps 1 --dim 64 --depth 2 --heads 2 --image 32 "
                   "--text-width 64 --text-depth 2 --text-heads 2 --embed-dim 64 --vocab-size 500 </dev/null");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("CatLIP: head 500 synsets"));
  CHECK_THAT(r.out, Catch::Contains("1 rank x 2 threads"));
  // batch, CatLIP, CLIP, ratio, ratio medians, img, text, loss+sim, opt, share, split
  check_rows(r.out, 11);
}

TEST_CASE("bench clip --ranks 2: the gather and allreduce columns") {
  torch_cli_or_skip();
  auto r = run_cmd("timeout 240 " + catlip_bin() +
                   " bench clip --ranks 2 --batches 8,16 --steps 1 --dim 64 --depth 2 --heads 2 --image 32 "
                   "--text-width 64 --text-depth 2 --text-heads 2 --embed-dim 64 --vocab-size 500 </dev/null");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("2 ranks (processes) x 1 thread"));
  CHECK_THAT(r.out, Catch::Contains("includes the feature gather"));
  // + global batch, gather, allreduce CatLIP, allreduce CLIP
  check_rows(r.out, 15);
  auto v = table_row(r.out, "16");
  CHECK(std::stod(v[1]) == 32);          // global batch
  CHECK(std::stod(v[11]) > 0);           // gather s
}

TEST_CASE("bench clip: bad options are refused") {
  torch_cli_or_skip();
  CHECK(run_cmd(catlip_bin() + " bench clip --batches 8,x </dev/null").exit_code == 2);
  CHECK(run_cmd(catlip_bin() + " bench clip --heads 3 </dev/null").exit_code == 2);
  CHECK(run_cmd(catlip_bin() + " bench clip --bogus 1 </dev/null").exit_code == 2);
}
