// Tests of stage parameters (catlip/params.h): bound members of any depth, named values,
// defaults, ranges, resolve and bind errors.
#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>

#include "catlip/local.h"
#include "testing_stages.h"

using namespace catlip;

namespace {
struct Opts {
  double timeout_s = 0;
  std::vector<int> sizes;
};
// Every member type a parameter binds to.
struct Bound : Stage {
  bool b = false;
  int64_t i64 = 0;
  int i32 = 0;
  size_t sz = 0;
  double d = 0;
  float f = 0;
  std::string s;
  std::vector<std::string> ss;
  std::vector<int64_t> is;
  std::vector<double> ds;
  Opts opts;
  std::string computed;
  static StageSchema schema() {
    StageSchema sc;
    sc.type = "t.bound";
    sc.params = {
        Param("b", &Bound::b).def(true),
        Param("i64", &Bound::i64).def(7).range(0, 100),
        Param("i32", &Bound::i32).def(int64_t{3}),
        Param("sz", &Bound::sz),
        Param("d", &Bound::d).def(1),  // an int default for a float member is a float
        Param("f", &Bound::f).def(0.5),
        Param("s", &Bound::s).def("x").one_of({"x", "y"}),
        Param("ss", &Bound::ss).def({"a", "b"}),
        Param("is", &Bound::is).def(std::vector<int64_t>{1, 2}),
        Param("ds", &Bound::ds).def({0.5}),
        Param("timeout_s", &Bound::opts, &Opts::timeout_s).def(30.0),
        Param("sizes", &Bound::opts, &Opts::sizes).def({}),
        Param("raw", ParamType::String).def(std::string("r")),  // unbound: read in configure()
    };
    return sc;
  }
  void configure() override { computed = s + "/" + params().get_string("raw"); }
  void process(Sample&&, Emitter&) override {}
};

template <class M, class V>
concept can_default = requires(V v) { Param("p", static_cast<M Bound::*>(nullptr)).def(v); };
}  // namespace

TEST_CASE("params: a bound parameter deduces its type from the member") {
  StageSchema sc = Bound::schema();
  auto type = [&](const char* n) { return sc.find(n)->type; };
  CHECK(type("b") == ParamType::Bool);
  CHECK(type("i64") == ParamType::Int);
  CHECK(type("i32") == ParamType::Int);
  CHECK(type("sz") == ParamType::Int);
  CHECK(type("d") == ParamType::Float);
  CHECK(type("f") == ParamType::Float);
  CHECK(type("s") == ParamType::String);
  CHECK(type("ss") == ParamType::StringList);
  CHECK(type("is") == ParamType::IntList);
  CHECK(type("ds") == ParamType::FloatList);
  CHECK(type("timeout_s") == ParamType::Float);
  CHECK(type("sizes") == ParamType::IntList);
  CHECK(type("raw") == ParamType::String);
  // Defaults are stored as the declared type; builder settings are kept.
  CHECK(param_value_to_string(*sc.find("d")->default_value) == "1.0");
  CHECK(param_value_to_string(*sc.find("i32")->default_value) == "3");
  CHECK(param_value_to_string(*sc.find("ss")->default_value) == "[\"a\", \"b\"]");
  CHECK(sc.find("i64")->max == 100);
  CHECK(sc.find("s")->choices.size() == 2);
  CHECK_FALSE(sc.find("sz")->default_value.has_value());
  CHECK(sc.find("b")->setter);
  CHECK_FALSE(sc.find("raw")->setter);
  STATIC_REQUIRE(param_type_of<uint32_t>() == ParamType::Int);
  STATIC_REQUIRE(param_type_of<std::vector<float>>() == ParamType::FloatList);
  STATIC_REQUIRE_FALSE(is_param_member<char*>);
  STATIC_REQUIRE_FALSE(is_param_member<std::vector<bool>>);
  STATIC_REQUIRE(is_param_member<std::vector<int>>);
}

TEST_CASE("params: a bound default of the wrong type does not compile") {
  STATIC_REQUIRE(can_default<int64_t, int>);
  STATIC_REQUIRE(can_default<double, int>);
  STATIC_REQUIRE(can_default<std::string, const char*>);
  STATIC_REQUIRE(can_default<std::vector<std::string>, std::vector<std::string>>);
  STATIC_REQUIRE_FALSE(can_default<int64_t, double>);       // would truncate
  STATIC_REQUIRE_FALSE(can_default<int64_t, bool>);
  STATIC_REQUIRE_FALSE(can_default<int64_t, std::string>);
  STATIC_REQUIRE_FALSE(can_default<bool, int>);
  STATIC_REQUIRE_FALSE(can_default<bool, const char*>);     // no pointer-to-bool surprise
  STATIC_REQUIRE_FALSE(can_default<std::string, int>);
  STATIC_REQUIRE_FALSE(can_default<std::string, char>);
  STATIC_REQUIRE_FALSE(can_default<double, std::string>);
  STATIC_REQUIRE_FALSE(can_default<std::vector<int64_t>, std::vector<std::string>>);
  STATIC_REQUIRE_FALSE(can_default<std::vector<std::string>, ParamValue>);  // the untyped def() is hidden
}

TEST_CASE("params: bind_params stores resolved values into the members") {
  StageSchema sc = Bound::schema();
  Bound st;
  LocalContext ctx;
  Params p = configure_stage(st, sc,
                             {{"b", false}, {"i32", int64_t{-5}}, {"sz", int64_t{9}}, {"d", int64_t{2}},
                              {"s", std::string("y")}, {"is", std::vector<int64_t>{}},
                              {"ds", std::vector<int64_t>{1, 2}}, {"timeout_s", 1.5},
                              {"sizes", std::vector<int64_t>{224, 256}}, {"raw", std::string("q")}},
                             ctx);
  CHECK_FALSE(st.b);
  CHECK(st.i64 == 7);  // default
  CHECK(st.i32 == -5);
  CHECK(st.sz == 9);
  CHECK(st.d == 2.0);
  CHECK(st.f == 0.5f);
  CHECK(st.s == "y");
  CHECK(st.ss == std::vector<std::string>{"a", "b"});
  CHECK(st.is.empty());
  CHECK(st.ds == std::vector<double>{1.0, 2.0});
  CHECK(st.opts.timeout_s == 1.5);
  CHECK(st.opts.sizes == std::vector<int>{224, 256});
  CHECK(st.computed == "y/q");  // bound members are set before configure()
  CHECK(p.get_int("i32") == -5);  // and Params still hold every value

  // A parameter without value (optional, no default) leaves the member alone.
  Bound st2;
  st2.sz = 42;
  bind_params(sc, resolve_params(sc, {}), st2);
  CHECK(st2.sz == 42);
  CHECK(st2.i64 == 7);

  // A value that does not fit the member is refused, naming the parameter.
  Bound st3;
  CHECK_THROWS_WITH(bind_params(sc, resolve_params(sc, {{"i32", int64_t{1} << 40}}), st3),
                    Catch::Contains("parameter 'i32'") && Catch::Contains("does not fit"));
  CHECK_THROWS_WITH(bind_params(sc, resolve_params(sc, {{"sz", int64_t{-1}}}), st3),
                    Catch::Contains("parameter 'sz'"));
}

TEST_CASE("params: bound parameters are still checked by resolve") {
  StageSchema sc = Bound::schema();
  try {
    resolve_params(sc, {{"bogus", int64_t{1}}, {"i64", std::string("3")}, {"s", std::string("z")},
                        {"i32", 1.5}, {"i64x", true}});
    FAIL("expected an error");
  } catch (const std::invalid_argument& e) {
    std::string m = e.what();
    CHECK_THAT(m, Catch::Contains("unknown parameter 'bogus'"));
    CHECK_THAT(m, Catch::Contains("unknown parameter 'i64x'"));
    CHECK_THAT(m, Catch::Contains("'i64': expected int, got string"));
    CHECK_THAT(m, Catch::Contains("'i32': expected int, got float"));
    CHECK_THAT(m, Catch::Contains("'s': value \"z\" is not one of"));
  }
  CHECK_THROWS_WITH(resolve_params(sc, {{"i64", int64_t{101}}}), Catch::Contains("above the maximum"));
  // A value resolve never lets through is still refused by the setter, not stored.
  Params raw;
  raw.set("b", std::string("yes"));
  Bound st;
  CHECK_THROWS_WITH(bind_params(sc, raw, st), Catch::Contains("parameter 'b' is a string, not bool"));
}

TEST_CASE("params: the shipped testing stages bind their parameters") {
  testing::MapStage m;
  LocalContext ctx("m", "testing.map");
  configure_stage(m, testing::MapStage::schema(), {{"op", std::string("add")}, {"add", int64_t{5}}}, ctx);
  Sample s;
  s.set_ints("n", {2});
  CollectEmitter out;
  run_transform(m, {s}, out);
  REQUIRE(out.samples.size() == 1);
  CHECK(*out.samples[0].ints("n") == IntList{2, 7});
}

namespace {
enum class Mode { Fast, Exact };
struct Inner {
  int64_t depth = 0;
  Mode mode = Mode::Fast;
};
struct Middle {
  Inner inner;
  bool repair = true;
};
struct Deep : Stage {
  struct Impl {
    std::string name;
  };
  Middle mid;
  std::unique_ptr<Impl> impl = std::make_unique<Impl>();
  int seen_replica = -1;
  static StageSchema schema() {
    StageSchema sc;
    sc.type = "t.deep";
    sc.params = {
        Param("depth", &Deep::mid, &Middle::inner, &Inner::depth).def(3).range(0, 10),
        Param("mode", &Deep::mid, &Middle::inner, &Inner::mode)
            .values({{"fast", Mode::Fast}, {"exact", Mode::Exact}}).def(Mode::Exact),
        Param("utf8", &Deep::mid, &Middle::repair).values({{"repair", true}, {"reject", false}}).def(true),
        Param("name", &Deep::impl, &Impl::name).def("n"),
    };
    return sc;
  }
  void configure() override { seen_replica = ctx().replica(); }
  void process(Sample&&, Emitter&) override {}
  StageContext& context() { return ctx(); }
};
}  // namespace

TEST_CASE("params: paths of any depth, pimpls and named values bind") {
  StageSchema sc = Deep::schema();
  // Named values are strings whose names are the choices; the default is written as its name.
  const ParamSpec* mode = sc.find("mode");
  CHECK(mode->type == ParamType::String);
  CHECK(mode->choices == std::vector<std::string>{"fast", "exact"});
  CHECK(std::get<std::string>(*mode->default_value) == "exact");
  CHECK(std::get<std::string>(*sc.find("utf8")->default_value) == "repair");
  CHECK(sc.find("depth")->type == ParamType::Int);

  Deep d;
  CHECK_THROWS_WITH(d.context(), Catch::Contains("before configure()"));
  LocalContext ctx("d", "t.deep", 2, 4);
  configure_stage(d, sc, {{"depth", int64_t{7}}, {"utf8", std::string("reject")}, {"name", std::string("x")}}, ctx);
  CHECK(d.mid.inner.depth == 7);
  CHECK(d.mid.inner.mode == Mode::Exact);  // default
  CHECK_FALSE(d.mid.repair);
  CHECK(d.impl->name == "x");
  CHECK(d.seen_replica == 2);  // ctx() is attached before configure()
  CHECK(&d.context() == &ctx);

  Deep e;
  configure_stage(e, sc, {{"mode", std::string("fast")}}, ctx);
  CHECK(e.mid.inner.mode == Mode::Fast);
  CHECK_THROWS_WITH(resolve_params(sc, {{"mode", std::string("slow")}}), Catch::Contains("not one of"));
  // A name resolve never lets through is refused by the setter, naming the parameter.
  Params raw = resolve_params(sc, {});
  raw.set("mode", std::string("slow"));
  Deep f;
  CHECK_THROWS_WITH(bind_params(sc, raw, f), Catch::Contains("parameter 'mode'") && Catch::Contains("'slow'"));
}

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
  configure_stage(src, testing::CounterSource::schema(), {{"count", int64_t{10}}}, ctx);
  CollectEmitter out;
  run_source(src, out);
  REQUIRE(out.samples.size() == 3);  // 1, 4, 7
  CHECK(out.samples[0].ints("n")->at(0) == 1);
  CHECK(out.samples[2].ints("n")->at(0) == 7);
  CHECK(ctx.total() == 3);
}
