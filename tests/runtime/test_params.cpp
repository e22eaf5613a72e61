#include <catch2/catch.hpp>

#include "catlip/local.h"
#include "testing_stages.h"

using namespace catlip;

TEST_CASE("params: schema checks types, ranges and choices") {
  ParamSpec n = Param("n", ParamType::Int).range(1, 10);
  CHECK(n.check(int64_t{5}).empty());
  CHECK_THAT(n.check(int64_t{0}), Catch::Contains("below the minimum"));
  CHECK_THAT(n.check(int64_t{11}), Catch::Contains("above the maximum"));
  CHECK_THAT(n.check(std::string("5")), Catch::Contains("expected int, got string"));
  ParamSpec f = Param("f", ParamType::Float).range(0, 1);
  CHECK(f.check(int64_t{1}).empty());  // ints are accepted as floats
  CHECK_THAT(f.check(1.5), Catch::Contains("above"));
  ParamSpec c = Param("mode", ParamType::String).one_of({"train", "eval"});
  CHECK(c.check(std::string("eval")).empty());
  CHECK_THAT(c.check(std::string("test")), Catch::Contains("not one of"));
  ParamSpec l = Param("urls", ParamType::StringList);
  CHECK(l.check(std::vector<std::string>{"a", "b"}).empty());
  CHECK_FALSE(l.check(std::string("a")).empty());
}

TEST_CASE("params: resolve fills defaults and reports every problem") {
  StageSchema s = testing::MapStage::schema();
  Params p = resolve_params(s, {{"op", std::string("add")}});
  CHECK(p.get_string("op") == "add");
  CHECK(p.get_int("add") == 1);
  CHECK(p.get_float("sleep_ms") == 0.0);
  try {
    resolve_params(s, {{"op", std::string("cube")}, {"bogus", int64_t{1}}, {"add", 2.5}});
    FAIL("expected an error");
  } catch (const std::invalid_argument& e) {
    std::string m = e.what();
    CHECK_THAT(m, Catch::Contains("unknown parameter 'bogus'"));
    CHECK_THAT(m, Catch::Contains("'op'"));
    CHECK_THAT(m, Catch::Contains("'add': expected int, got float"));
  }
  CHECK_THROWS_AS(p.get_int("op"), ParamError);
}

TEST_CASE("local harness: a stage runs in-process with counters") {
  testing::CounterSource src;
  LocalContext ctx("numbers", "testing.counter", 1, 3);
  src.configure(resolve_params(testing::CounterSource::schema(), {{"count", int64_t{10}}}), ctx);
  CollectEmitter out;
  run_source(src, out);
  REQUIRE(out.samples.size() == 3);  // 1, 4, 7
  CHECK(out.samples[0].ints("n")->at(0) == 1);
  CHECK(out.samples[2].ints("n")->at(0) == 7);
  CHECK(ctx.total() == 3);
}
