// `catlip bench objectives` at a tiny size, batch 8, 1 and 2 ranks: the
// table has a row per objective and rank count with positive times and
// ratios (CatLIP's 1), the closing ratio table has every point, and at 2
// ranks the bytes each rank hands to collectives, as counted by
// DataParallel, equal the formulas recomputed here from the sizes and the
// parameter counts the header prints. Not timings. Bad options: exit 2.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "catlip/json.h"
#include "test_util.h"

using namespace catlip::test;
namespace json = catlip::json;

namespace {

const char* const kObjectives[] = {"catlip", "clip", "siglip", "superclass"};

// The table rows "8 <per rank> <objective> ..." in order.
std::vector<std::vector<std::string>> rows(const std::string& out) {
  std::vector<std::vector<std::string>> res;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::vector<std::string> v;
    for (std::string x; f >> x;) v.push_back(x);
    if (v.size() >= 13 && v[0] == "8") res.push_back(v);
  }
  return res;
}

// "<Title>: ...; N parameters" from the header.
double parameters(const std::string& out, const std::string& title) {
  auto k = out.find("\n" + title + ": ");
  REQUIRE(k != std::string::npos);
  auto e = out.find(" parameters\n", k);
  REQUIRE(e != std::string::npos);
  auto s = out.rfind(' ', e - 1);
  return std::stod(out.substr(s + 1, e - s - 1));
}

}  // namespace

TEST_CASE("bench objectives: rows, positive ratios, bytes equal to the formulas") {
  torch_cli_or_skip();
  TempDir dir("bench-objectives");
  const std::string js = dir.file("objectives.json");
  // E = 32, per-rank batch 4 at 2 ranks, SuperClass head 600 BPE ids.
  auto r = run_cmd("timeout 240 " + catlip_bin() +
                   " bench objectives --batches 8 --ranks 1,2 --steps 2 --warmup 0 --dim 32 --depth 1 --heads 2"
                   " --image 16 --patch 8 --vocab-size 100 --embed-dim 32 --text-width 32 --text-depth 1"
                   " --text-heads 2 --context 16 --min-tokens 4 --tokenizer-vocab 600 --json " + js + " </dev/null");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("1 rank x 2 threads"));
  CHECK_THAT(r.out, Catch::Contains("2 ranks (processes) x 1 thread"));

  // batch, /rank, objective, fastest, median, ratio, ratio medians, image, text, loss+comm, comm, opt, FLOP ratio
  // (+ exchange MB, bytes ratio, bytes = formula at 2 ranks)
  auto v = rows(r.out);
  REQUIRE(v.size() == 8);
  for (size_t i = 0; i < v.size(); ++i) {
    const bool dp = i >= 4;
    INFO("row " << i);
    REQUIRE(v[i].size() == (dp ? 16u : 13u));
    CHECK(v[i][1] == (dp ? "4" : "8"));
    CHECK(v[i][2] == kObjectives[i % 4]);
    for (size_t k = 3; k < 13; ++k) {
      double d = std::stod(v[i][k]);
      CHECK(std::isfinite(d));
      CHECK(d >= 0);
    }
    for (size_t k : {3, 4, 5, 6, 7, 12}) CHECK(std::stod(v[i][k]) > 0);  // times, ratios, image, FLOP ratio
    if (i % 4 == 0) CHECK(std::stod(v[i][5]) == 1.0);                   // CatLIP / CatLIP
    const bool text = i % 4 == 1 || i % 4 == 2;
    CHECK((std::stod(v[i][8]) > 0) == text);  // a text tower: CLIP and SigLIP only
    if (dp) {
      CHECK(std::stod(v[i][13]) > 0);
      CHECK(v[i][15] == "yes");
    }
  }
  CHECK_THAT(r.out, Catch::Contains("step time / CatLIP's"));

  // The JSON: every point, and at 2 ranks the counted bytes against the
  // formulas recomputed from the sizes (fp32 features, int64 counts).
  json::Value j;
  REQUIRE_NOTHROW(j = json::read_file(js));
  const auto& pts = json::array(json::at(j, "points"));
  REQUIRE(pts.size() == 8);
  const double B = 4, E = 32, W = 2, V = 600;
  std::map<std::string, double> features = {
      {"catlip", 0}, {"clip", 2 * 4 * B * E + 2 * 4 * W * B * E}, {"siglip", 2 * 4 * B * E}, {"superclass", 0}};
  std::map<std::string, std::string> titles = {
      {"catlip", "CatLIP"}, {"clip", "CLIP"}, {"siglip", "SigLIP"}, {"superclass", "SuperClass"}};
  for (const auto& p : pts) {
    const std::string obj = json::string(json::at(p, "objective"));
    INFO(obj << " at " << json::integer(json::at(p, "ranks")) << " ranks");
    CHECK(json::number(json::at(p, "ratio")) > 0);
    CHECK(json::number(json::at(p, "ratio_median")) > 0);
    CHECK(json::number(json::at(p, "flop_ratio")) > 0);
    if (json::integer(json::at(p, "ranks")) == 1) {
      CHECK(json::find(p, "bytes") == nullptr);
      continue;
    }
    const auto& b = json::at(p, "bytes");
    CHECK(double(json::integer(json::at(b, "grads"))) == 4 * parameters(r.out, titles[obj]));
    CHECK(double(json::integer(json::at(b, "features"))) == features[obj]);
    CHECK(double(json::integer(json::at(b, "counts"))) == (obj == "superclass" ? 8 * (V + 1) : 0));
    CHECK(json::integer(json::at(b, "total")) == json::integer(json::at(json::at(p, "bytes_formula"), "total")));
    CHECK(json::number(json::at(p, "bytes_ratio")) > 0);
  }
}

TEST_CASE("bench objectives: bad options are refused") {
  torch_cli_or_skip();
  for (std::string bad : {"--objectives catlip,bogus", "--batches 7 --ranks 2", "--batches 8,x", "--ranks 0",
                          "--device tpu", "--bogus 1"}) {
    INFO(bad);
    CHECK(run_cmd(catlip_bin() + " bench objectives " + bad + " </dev/null 2>&1").exit_code == 2);
  }
}
