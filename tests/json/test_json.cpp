// catlip/json.h: what catlip adds on top of nlohmann-json for its own files.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "test_util.h"

namespace json = catlip::json;
using Catch::Contains;

TEST_CASE("json parse errors name the input and give byte, line and column") {
  CHECK_THROWS_WITH(json::parse("{\"a\": 1,\n \"b\": tru}", "x.json"),
                    Contains("x.json: invalid JSON at byte 19 (line 2, column 10): syntax error") &&
                        Contains("invalid literal"));
  // At the end of the input: the byte after the last one.
  CHECK_THROWS_WITH(json::parse("[1, 2", "t"), Contains("t: invalid JSON at byte 6 (line 1, column 6)"));
  CHECK_THROWS_WITH(json::parse("", "empty"), Contains("empty: invalid JSON at byte 1"));
  CHECK_THROWS_WITH(json::parse("{} x", "trailing"), Contains("trailing: invalid JSON at byte 4"));
  CHECK_THROWS_WITH(json::parse("{", ""), Catch::StartsWith("invalid JSON at byte 2"));

  catlip::test::TempDir d("json");
  catlip::test::write_file(d.file("bad.json"), "{\"k\": [1, 2,]}\n");
  CHECK_THROWS_WITH(json::read_file(d.file("bad.json")), Contains(d.file("bad.json") + ": invalid JSON at byte 13"));
  CHECK_THROWS_WITH(json::read_file(d.file("none.json")), Contains("cannot read " + d.file("none.json")));
  catlip::test::write_file(d.file("ok.json"), "{\"k\": [1, 2]}\n");
  CHECK(json::read_file(d.file("ok.json")).at("k").size() == 2);
}

TEST_CASE("json nesting cap: deep input is an error, not a deep recursion") {
  std::string deep = std::string(65, '[') + std::string(65, ']');
  CHECK_THROWS_WITH(json::parse(deep, "hdr", 64), Contains("hdr: invalid JSON: nested deeper than 64 levels"));
  CHECK_NOTHROW(json::parse(std::string(64, '[') + std::string(64, ']'), "hdr", 64));
  std::string objs;
  for (int i = 0; i < 65; ++i) objs += "{\"a\":";
  objs += "1" + std::string(65, '}');
  CHECK_THROWS_WITH(json::parse(objs, "o", 64), Contains("nested deeper"));
  // Without a cap, nlohmann's parser is iterative: deep input parses.
  CHECK(json::parse(std::string(10000, '[') + std::string(10000, ']'), "d").is_array());
}

TEST_CASE("json typed access: no silent conversions, clear errors") {
  auto v = json::parse(R"({"i": 3, "n": -4, "f": 2.5, "s": "x", "a": [1], "big": 18446744073709551615,
                           "max": 9223372036854775807, "b": true})",
                       "t");
  CHECK(json::integer(v.at("i")) == 3);
  CHECK(json::integer(v.at("n")) == -4);
  CHECK(json::integer(v.at("max")) == std::numeric_limits<int64_t>::max());
  CHECK_THROWS_WITH(json::integer(v.at("f")), "expected an integer, got number");
  CHECK_THROWS_WITH(json::integer(v.at("s")), "expected an integer, got string");
  CHECK_THROWS_WITH(json::integer(v.at("big")), Contains("out of range"));
  CHECK(json::number(v.at("f")) == 2.5);
  CHECK(json::number(v.at("i")) == 3.0);
  CHECK_THROWS_WITH(json::number(v.at("b")), "expected a number, got boolean");
  CHECK(json::string(v.at("s")) == "x");
  CHECK_THROWS_WITH(json::string(v.at("i")), "expected a string, got number");
  CHECK(json::array(v.at("a")).size() == 1);
  CHECK_THROWS_WITH(json::array(v.at("s")), "expected an array, got string");
  CHECK_THROWS_WITH(json::object(v.at("a")), "expected an object, got array");
  CHECK(json::find(v, "s"));
  CHECK_FALSE(json::find(v, "nope"));
  CHECK_FALSE(json::find(v.at("a"), "s"));  // not an object: nullptr
  CHECK_THROWS_WITH(json::at(v, "nope"), "missing 'nope'");
  CHECK_THROWS_WITH(json::at(v.at("a"), "x"), "expected an object, got array");
}

TEST_CASE("json dump: compact, one line with spaces, one member per line") {
  json::Ordered v = {{"z", 1}, {"a", {1, 2}}, {"o", {{"k", "v"}, {"e", json::Ordered::array()}}}, {"d", 0.5}};
  CHECK(json::dump(v) == R"({"z":1,"a":[1,2],"o":{"k":"v","e":[]},"d":0.5})");
  CHECK(json::dump(v, 0) == R"({"z": 1, "a": [1, 2], "o": {"k": "v", "e": []}, "d": 0.5})");
  CHECK(json::dump(v, 1) == "{\n  \"z\": 1,\n  \"a\": [1, 2],\n  \"o\": {\"k\": \"v\", \"e\": []},\n  \"d\": 0.5\n}");
  CHECK(json::dump(v, 2) ==
        "{\n  \"z\": 1,\n  \"a\": [\n    1,\n    2\n  ],\n  \"o\": {\n    \"k\": \"v\",\n    \"e\": []\n  },\n  \"d\": 0.5\n}");
  // Parsed values (sorted keys) dump the same way.
  CHECK(json::dump(json::parse(R"({"b": [1], "a": {}})", "t"), 0) == R"({"a": {}, "b": [1]})");
  // Escaping is nlohmann's: quotes, backslashes and control characters;
  // UTF-8 passes through; invalid UTF-8 becomes U+FFFD instead of throwing.
  json::Ordered s = {{"k\"\\", "a\nb\tc\x01 \xc3\xa9"}, {"bad", std::string("x\xff" "y")}};
  CHECK(json::dump(s) == "{\"k\\\"\\\\\":\"a\\nb\\tc\\u0001 \xc3\xa9\",\"bad\":\"x\xef\xbf\xbdy\"}");
  CHECK(json::dump(s, 0) == "{\"k\\\"\\\\\": \"a\\nb\\tc\\u0001 \xc3\xa9\", \"bad\": \"x\xef\xbf\xbdy\"}");
  // Round trip.
  CHECK(json::parse(json::dump(s), "t").at("k\"\\") == "a\nb\tc\x01 \xc3\xa9");
  // Non-finite numbers are written as null (JSON has no NaN).
  CHECK(json::dump(json::Ordered{std::nan(""), std::numeric_limits<double>::infinity(), 3.0, 1e-7}) == "[null,null,3.0,1e-07]");
}

TEST_CASE("json rounding: the digits printf would keep, written shortest") {
  CHECK(json::dump(json::Ordered(json::round_sig(0.123456789, 6))) == "0.123457");
  CHECK(json::dump(json::Ordered(json::round_sig(1234567.891, 6))) == "1234570.0");
  CHECK(json::dump(json::Ordered(json::round_sig(2.5e-9, 6))) == "2.5e-09");
  CHECK(json::dump(json::Ordered(json::round_fixed(1733512345.123456, 3))) == "1733512345.123");
  CHECK(json::dump(json::Ordered(json::round_fixed(0.05, 4))) == "0.05");
  CHECK(json::dump(json::Ordered(json::round_sig(12345.6789012345, 10))) == "12345.6789");
  CHECK(std::isnan(json::round_sig(std::nan(""), 6)));
  CHECK(std::isinf(json::round_fixed(std::numeric_limits<double>::infinity(), 3)));
}
