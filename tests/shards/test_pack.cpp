// `pack` turns a folder of images + captions into shards that read back.
#include <catch2/catch.hpp>

#include <filesystem>

#include "catlip/shards/pack.h"
#include "shard_fixtures.h"
#include "test_util.h"

using namespace catlip;
using namespace catlip::shards;
using namespace catlip::test;
using SV = std::vector<std::string>;

namespace {

void make_folder(const std::string& dir) {
  std::filesystem::create_directories(dir + "/sub");
  write_file(dir + "/b_cat.jpg", payload("cat", 900));
  write_file(dir + "/b_cat.txt", "a cat on a mat\n");
  write_file(dir + "/b_cat.json", "{\"objects\": [\"cat\"]}");
  write_file(dir + "/a_dog.PNG", payload("dog", 1200));
  write_file(dir + "/a_dog.txt", "a dog");
  write_file(dir + "/sub/c_cup.webp", payload("cup", 400));
  write_file(dir + "/sub/c_cup.txt", "a cup");
  write_file(dir + "/d_orphan.jpeg", payload("orphan", 10));  // no caption
  write_file(dir + "/notes.md", "ignored");
}

}  // namespace

TEST_CASE("pack -> read round trip") {
  TempDir d("pack");
  make_folder(d.file("src"));
  std::filesystem::create_directories(d.file("out"));
  PackOptions o;
  o.samples_per_shard = 2;
  auto rep = pack_directory(d.file("src"), d.file("out/data"), o);
  CHECK(rep.samples == 3);
  CHECK(rep.skipped_no_caption == 1);
  REQUIRE(rep.shards.size() == 2);
  CHECK(rep.shards[0] == d.file("out/data-000000.tar"));

  auto r = run_shard_source({{"urls", SV{d.file("out/data-{000000..000001}.tar")}},
                             {"shuffle_shards", false},
                             {"require", SV{"jpg|png|webp", "txt"}}});
  REQUIRE(r.samples.size() == 3);
  // Sorted by path: a_dog.PNG, b_cat.jpg, sub/c_cup.webp; keys img2dataset-style.
  CHECK(keys_of(r.samples) == SV{"000000000", "000000001", "000000002"});
  CHECK(r.samples[0].bytes("png")->data == payload("dog", 1200));
  CHECK(*r.samples[0].text("txt") == "a dog");
  CHECK(r.samples[1].bytes("jpg")->data == payload("cat", 900));
  CHECK(*r.samples[1].text("txt") == "a cat on a mat");
  CHECK(*r.samples[1].text("json") == "{\"objects\": [\"cat\"]}");
  CHECK(r.samples[2].bytes("webp")->data == payload("cup", 400));
  CHECK(r.counters.count("skipped.unknown_extension") == 0);
}

TEST_CASE("catlip shards pack / ls / stat") {
  auto bin = catlip_bin();
  if (!std::filesystem::exists(bin)) {
    catlip::test::skip_test("catlip binary not built");
  }
  TempDir d("packcli");
  make_folder(d.file("src"));
  auto p = run_cmd(bin + " shards pack " + d.file("src") + " " + d.file("ds") + " --samples-per-shard 2");
  INFO(p.out);
  REQUIRE(p.exit_code == 0);
  CHECK(std::filesystem::exists(d.file("ds-000001.tar")));
  auto ls = run_cmd(bin + " shards ls '" + d.file("ds-{000000..000001}.tar") + "'");
  INFO(ls.out);
  CHECK(ls.exit_code == 0);
  CHECK(ls.out.find("000000002") != std::string::npos);
  CHECK(ls.out.find("webp") != std::string::npos);
  auto st = run_cmd(bin + " shards stat '" + d.file("ds-{000000..000001}.tar") + "'");
  INFO(st.out);
  CHECK(st.exit_code == 0);
  CHECK(st.out.find("samples 3") != std::string::npos);
  auto missing = run_cmd(bin + " shards stat " + d.file("none.tar"));
  CHECK(missing.exit_code == 1);
  CHECK(missing.out.find("error.shard_open 1") != std::string::npos);
  CHECK(run_cmd(bin + " shards pack --help").exit_code == 0);
  CHECK(run_cmd(bin + " shards pack").exit_code == 2);
}
