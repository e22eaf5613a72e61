// Brace expansion and shard-list files.
#include <catch2/catch.hpp>

#include "catlip/shards/url_expand.h"
#include "test_util.h"

using namespace catlip::shards;
using V = std::vector<std::string>;

TEST_CASE("brace ranges keep zero padding") {
  auto v = expand_braces("shard-{000000..000012}.tar");
  REQUIRE(v.size() == 13);
  CHECK(v.front() == "shard-000000.tar");
  CHECK(v[7] == "shard-000007.tar");
  CHECK(v.back() == "shard-000012.tar");
  CHECK(expand_braces("s{8..11}") == V{"s8", "s9", "s10", "s11"});
  CHECK(expand_braces("s{08..11}") == V{"s08", "s09", "s10", "s11"});
  CHECK(expand_braces("plain.tar") == V{"plain.tar"});
}

TEST_CASE("several braces and alternatives expand as a product") {
  CHECK(expand_braces("http://h/{a,b}/{0..1}.tar") ==
        V{"http://h/a/0.tar", "http://h/a/1.tar", "http://h/b/0.tar", "http://h/b/1.tar"});
  CHECK(expand_braces("x{,y}") == V{"x", "xy"});
  CHECK(expand_urls({"a{1..2}", "b"}) == V{"a1", "a2", "b"});
}

TEST_CASE("malformed patterns are rejected with the pattern named") {
  CHECK_THROWS_WITH(expand_braces("a{1..2"), Catch::Contains("unbalanced") && Catch::Contains("a{1..2"));
  CHECK_THROWS_AS(expand_braces("a}b"), PatternError);
  CHECK_THROWS_AS(expand_braces("a{5..1}"), PatternError);
  CHECK_THROWS_AS(expand_braces("a{x..y}"), PatternError);
  CHECK_THROWS_AS(expand_braces("{a{b}}"), PatternError);
  CHECK_THROWS_WITH(expand_braces("{0..99999}{0..99999}", 1000), Catch::Contains("more than"));
}

TEST_CASE("shard-list files") {
  catlip::test::TempDir d("list");
  catlip::test::write_file(d.file("list.txt"), "# shards\n  /data/x-{0..2}.tar  \n\nhttp://h/y.tar\r\n");
  CHECK(expand_urls({std::string("@") + d.file("list.txt"), "z.tar"}) ==
        V{"/data/x-0.tar", "/data/x-1.tar", "/data/x-2.tar", "http://h/y.tar", "z.tar"});
  CHECK_THROWS_WITH(expand_urls({std::string("@") + d.file("none.txt")}), Catch::Contains("none.txt"));
  catlip::test::write_file(d.file("bad.txt"), "ok.tar\nbad{.tar\n");
  CHECK_THROWS_WITH(expand_urls({std::string("@") + d.file("bad.txt")}), Catch::Contains("bad.txt:2"));
}
