// Real-data check: Debian's openclipart PNGs with captions from the SVG
// metadata, packed into shards with the CLI, read back through
// shards.source and decoded by image.decode.
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

#include "catlip/image/decode_stage.h"
#include "catlip/local.h"
#include "catlip/shards/shard_source.h"
#include "test_util.h"

using namespace catlip;

TEST_CASE("openclipart PNGs: pack, read back through shards.source, decode") {
  if (!std::filesystem::is_directory("/usr/share/openclipart/png") ||
      !std::filesystem::is_directory("/usr/share/openclipart/svg")) {
    catlip::test::skip_test("/usr/share/openclipart not found "
                            "(apt-get install openclipart-png openclipart-svg to run this check)");
  }
  test::TempDir dir("openclipart");
  const std::string bin = test::catlip_bin();
  auto r = test::run_cmd(bin + " image openclipart " + dir.file("src") + " --limit 300");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  r = test::run_cmd(bin + " shards pack " + dir.file("src") + " " + dir.file("oc") + " --samples-per-shard 100");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  REQUIRE(std::filesystem::exists(dir.file("oc-000002.tar")));

  LocalContext src_ctx("read", "shards.source");
  shards::ShardSource source;
  configure_stage(source, shards::ShardSource::schema(),
                  {{"urls", std::vector<std::string>{dir.file("oc-{000000..000002}.tar")}},
                   {"shuffle_shards", false},
                   {"keep", std::vector<std::string>{"png", "txt", "json"}}},
                  src_ctx);
  CollectEmitter read;
  run_source(source, read);
  source.close();
  REQUIRE(read.samples.size() == 300);

  LocalContext ctx("decode", "image.decode");
  image::ImageDecodeStage decode;
  configure_stage(decode, image::ImageDecodeStage::schema(),
                  {{"mode", std::string("eval")}, {"size", int64_t{96}}, {"threads", int64_t{2}}}, ctx);
  CollectEmitter out;
  run_transform(decode, std::move(read.samples), out);
  decode.close();
  int64_t skipped = 0;
  for (auto& [name, n] : ctx.counters())
    if (name.rfind("skipped.", 0) == 0) skipped += n;
  CHECK(int64_t(out.samples.size()) + skipped == 300);
  CHECK(out.samples.size() >= 295);  // real files: allow a handful of oddities
  int varied = 0;
  std::set<std::string> captions;
  for (auto& s : out.samples) {
    const Tensor* t = s.tensor("image");
    REQUIRE(t);
    CHECK(t->shape == std::vector<int64_t>{96, 96, 3});
    CHECK(!s.has("png"));
    REQUIRE(s.text("txt"));
    CHECK(!s.text("txt")->empty());
    CHECK(s.text("json")->find("\"keywords\"") != std::string::npos);
    captions.insert(*s.text("txt"));
    // Clip art on a transparent background: composited on white, but the
    // drawing itself must be there.
    auto [lo, hi] = std::minmax_element(t->data.begin(), t->data.end(),
                                        [](char a, char b) { return uint8_t(a) < uint8_t(b); });
    varied += uint8_t(*hi) - uint8_t(*lo) > 40;
  }
  CHECK(varied >= int(out.samples.size()) * 9 / 10);
  CHECK(captions.size() >= 150);  // real titles repeat (series by one author)
}
