// The shards.source stage: assignment, shuffling, epochs, resumption.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <set>

#include "catlip/shards/assignment.h"
#include "http_test_server.h"
#include "shard_fixtures.h"
#include "test_util.h"

using namespace catlip;
using namespace catlip::shards;
using namespace catlip::test;
using Given = std::map<std::string, ParamValue>;
using SV = std::vector<std::string>;

TEST_CASE("the schema declares every parameter with a doc string") {
  auto s = ShardSource::schema();
  CHECK(s.type == "shards.source");
  CHECK(s.kind == StageKind::Source);
  for (auto& p : s.params) CHECK_FALSE(p.doc.empty());
  for (const char* n : {"urls", "seed", "shuffle_shards", "shuffle_buffer", "epochs", "rank", "world_size",
                        "resume_from", "require", "max_member_bytes", "timeout_s", "retries", "shard_timeout_s",
                        "max_redirects"})
    CHECK(s.find(n) != nullptr);
}

TEST_CASE("samples carry key, origin and typed fields") {
  TempDir d("src");
  auto pat = make_shards(d.path(), 2, 3);
  auto r = run_shard_source({{"urls", SV{pat}}, {"shuffle_shards", false}});
  REQUIRE(r.samples.size() == 6);
  auto& s = r.samples[4];
  CHECK(s.key == "000000004");
  CHECK(s.origin.url == d.file("shard-000001.tar"));
  CHECK(s.origin.shard == 1);
  CHECK(s.origin.index == 1);
  CHECK(s.origin.epoch == 0);
  REQUIRE(s.bytes("jpg"));
  CHECK(s.bytes("jpg")->data == payload("000000004", 700 + 4));
  REQUIRE(s.text("txt"));
  CHECK(*s.text("txt") == "caption 000000004");
  CHECK(r.total == 6);
  CHECK(r.counters["samples"] == 6);
}

TEST_CASE("replicas and ranks read disjoint parts that together are complete") {
  TempDir d("repl");
  auto pat = make_shards(d.path(), 10, 4);
  for (int world : {1, 2}) {
    std::multiset<std::string> all;
    for (int rank = 0; rank < world; ++rank)
      for (int rep = 0; rep < 3; ++rep) {
        auto r = run_shard_source({{"urls", SV{pat}}, {"seed", int64_t{5}}, {"rank", int64_t{rank}},
                                   {"world_size", int64_t{world}}},
                                  rep, 3);
        CHECK_FALSE(r.samples.empty());
        for (auto& s : r.samples) all.insert(s.key);
      }
    INFO("world_size " << world);
    CHECK(all.size() == 40);
    CHECK(std::set<std::string>(all.begin(), all.end()).size() == 40);  // each exactly once
  }
  // The plan itself: disjoint and complete for every epoch.
  for (int64_t e = 0; e < 3; ++e) {
    std::vector<int64_t> seen;
    for (int rank = 0; rank < 2; ++rank)
      for (int rep = 0; rep < 3; ++rep) {
        auto p = assign_shards(17, e, AssignOptions{9, true, rank, 2, rep, 3});
        seen.insert(seen.end(), p.begin(), p.end());
      }
    std::sort(seen.begin(), seen.end());
    std::vector<int64_t> want(17);
    for (int i = 0; i < 17; ++i) want[i] = i;
    CHECK(seen == want);
  }
}

TEST_CASE("same seed gives the same order, another seed another order") {
  TempDir d("seed");
  auto pat = make_shards(d.path(), 6, 10);
  auto run = [&](int64_t seed) {
    return keys_of(run_shard_source({{"urls", SV{pat}}, {"seed", seed}, {"shuffle_buffer", int64_t{16}}}).samples);
  };
  auto a = run(1), b = run(1), c = run(2);
  CHECK(a.size() == 60);
  CHECK(a == b);
  CHECK(a != c);
  auto sa = a, sc = c;
  std::sort(sa.begin(), sa.end());
  std::sort(sc.begin(), sc.end());
  CHECK(sa == sc);
  // The shuffle buffer mixes samples across shard boundaries.
  auto in_order = keys_of(run_shard_source({{"urls", SV{pat}}, {"seed", int64_t{1}}}).samples);
  CHECK(in_order != a);
}

TEST_CASE("epochs reshuffle shards, endless mode keeps going") {
  TempDir d("epochs");
  auto pat = make_shards(d.path(), 5, 2);
  auto r = run_shard_source({{"urls", SV{pat}}, {"epochs", int64_t{3}}, {"seed", int64_t{3}}});
  REQUIRE(r.samples.size() == 30);
  CHECK(r.total == 30);
  std::vector<int64_t> first, second;
  for (auto& s : r.samples) (s.origin.epoch == 0 ? first : second).push_back(s.origin.shard);
  CHECK(r.samples[10].origin.epoch == 1);
  CHECK(r.samples[29].origin.epoch == 2);
  auto e0 = keys_of({r.samples.begin(), r.samples.begin() + 10});
  auto e1 = keys_of({r.samples.begin() + 10, r.samples.begin() + 20});
  CHECK(e0 != e1);  // a fresh shard order each epoch
  auto endless = run_shard_source({{"urls", SV{pat}}, {"epochs", int64_t{0}}}, 0, 1, 55);
  CHECK(endless.samples.size() == 55);
  CHECK(endless.samples.back().origin.epoch == 5);
  CHECK(endless.total == -1);
}

TEST_CASE("resuming from a saved position yields exactly the remaining samples") {
  TempDir d("resume");
  auto pat = make_shards(d.path(), 4, 5);
  for (int64_t buffer : {int64_t{0}, int64_t{7}}) {
    for (int replicas : {1, 2}) {
      for (int rep = 0; rep < replicas; ++rep) {
        Given base{{"urls", SV{pat}}, {"seed", int64_t{11}}, {"epochs", int64_t{2}}, {"shuffle_buffer", buffer}};
        auto full = run_shard_source(base, rep, replicas).samples;
        REQUIRE(full.size() >= 10);
        for (size_t cut : {size_t{0}, size_t{3}, full.size() / 2, full.size() - 1}) {
          std::vector<std::string> resume(replicas, "");
          resume[rep] = format_position(full[cut].origin);
          Given g = base;
          g["resume_from"] = resume;
          auto rest = run_shard_source(g, rep, replicas).samples;
          INFO("buffer " << buffer << " replicas " << replicas << " replica " << rep << " cut " << cut << " at "
                         << resume[rep]);
          std::vector<Sample> want(full.begin() + cut + 1, full.end());
          REQUIRE(rest.size() == want.size());
          CHECK(keys_of(rest) == keys_of(want));
          for (size_t i = 0; i < rest.size(); ++i) CHECK(rest[i].origin == want[i].origin);
        }
      }
    }
  }
}

TEST_CASE("resume positions are validated") {
  TempDir d("resume2");
  auto pat = make_shards(d.path(), 2, 2);
  CHECK(parse_position("3:14:159")->sample == 159);
  CHECK_FALSE(parse_position(""));
  CHECK_THROWS(parse_position("1:2"));
  CHECK_THROWS(parse_position("a:b:c"));
  CHECK_THROWS_WITH(run_shard_source({{"urls", SV{pat}}, {"resume_from", SV{"0:9:0"}}}),
                    Catch::Contains("outside the shard list"));
  CHECK_THROWS_WITH(run_shard_source({{"urls", SV{pat}}, {"resume_from", SV{"0:0:0", "0:1:0"}}}),
                    Catch::Contains("replicas"));
  // A position in the last epoch's last sample: nothing left.
  auto full = run_shard_source({{"urls", SV{pat}}}).samples;
  auto rest = run_shard_source({{"urls", SV{pat}}, {"resume_from", SV{format_position(full.back().origin)}}});
  CHECK(rest.samples.empty());
}

TEST_CASE("missing fields, missing shards and damaged shards are counted, the run goes on") {
  TempDir d("robust");
  make_shards(d.path(), 2, 3);
  {
    TarWriter w(d.file("odd.tar"));
    w.add("k1.jpg", "img");  // no caption
    w.add("k2.txt", "caption only");
    w.add("k3.png", "img");
    w.add("k3.txt", "ok");
    w.close();
  }
  auto r = run_shard_source({{"urls", SV{d.file("shard-{000000..000001}.tar"), d.file("odd.tar"),
                                         d.file("missing.tar")}},
                             {"require", SV{"jpg|png|webp", "txt"}},
                             {"shuffle_shards", false}});
  CHECK(r.samples.size() == 7);
  CHECK(r.samples.back().key == "k3");
  CHECK(r.counters["skipped.missing_txt"] == 1);
  CHECK(r.counters["skipped.missing_jpg_png_webp"] == 1);
  CHECK(r.counters["error.shard_open"] == 1);
  bool named = false;
  for (auto& l : r.logs) named |= l.find("missing.tar") != std::string::npos;
  CHECK(named);
}

TEST_CASE("a source whose every shard fails fails, naming the count and the first error") {
  TempDir d("allfail");
  make_shards(d.path(), 1, 3);
  HttpTestServer srv(d.path());
  SV missing{srv.url("a.tar"), srv.url("b.tar")};
  CHECK_THROWS_WITH(run_shard_source({{"urls", missing}, {"shuffle_shards", false}}),
                    Catch::Contains("all 2 shards failed; first: ") && Catch::Contains(srv.url("a.tar")) &&
                        Catch::Contains("HTTP 404"));
  // Missing local files and several epochs: still a failure, at the end of the first epoch.
  CHECK_THROWS_WITH(run_shard_source({{"urls", SV{d.file("x.tar"), d.file("y.tar"), d.file("z.tar")}},
                                      {"epochs", int64_t{0}}}),
                    Catch::Contains("all 3 shards failed") && Catch::Contains("cannot open"));
  // A shard that is permanently 503 counts as failed too.
  srv.fail_responses(1000);
  CHECK_THROWS_WITH(run_shard_source({{"urls", SV{srv.url("shard-000000.tar")}}, {"retries", int64_t{1}}}),
                    Catch::Contains("all 1 shard failed") && Catch::Contains("503"));
  srv.fail_responses(0);

  // One good shard and one 404: the good samples, the loss counted.
  auto r = run_shard_source({{"urls", SV{srv.url("shard-000000.tar"), srv.url("nope.tar")}}});
  CHECK(keys_of(r.samples) == SV{"000000000", "000000001", "000000002"});
  CHECK(r.counters["error.shard_read"] == 1);

  // Replicas own parts of the shard list: one that got no shard does not fail.
  CHECK_THROWS(run_shard_source({{"urls", SV{d.file("x.tar")}}}, 0, 3));
  auto idle = run_shard_source({{"urls", SV{d.file("x.tar")}}}, 1, 3);
  CHECK(idle.samples.empty());
  CHECK(idle.counters.count("error.shard_open") == 0);
}

TEST_CASE("catlip run: a graph whose source shards all 404 exits 1 with the reason") {
  auto bin = catlip_bin();
  if (!std::filesystem::exists(bin)) {
    catlip::test::skip_test("catlip binary not built");
  }
  TempDir d("run404");
  HttpTestServer srv(d.path());
  write_file(d.file("g.toml"), "[stages.src]\ntype = \"shards.source\"\nurls = [\"" + srv.url("s-{0..3}.tar") +
                                   "\"]\n[stages.sink]\ntype = \"testing.null\"\ninputs = [\"src\"]\n");
  auto r = run_cmd("timeout 120 " + bin + " run " + d.file("g.toml") + " --run-dir " + d.file("run") + " 2>&1");
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Catch::Contains("all 4 shards failed; first: ") && Catch::Contains("HTTP 404") &&
                        Catch::Contains(srv.url("s-")));
  CHECK(srv.requests().size() == 4);  // each shard asked once: a 404 is not retried
}
