// The stage protocol's framing and hello (docs/stage-protocol.md).
#include <catch2/catch.hpp>

#include "catlip/codec.h"
#include "catlip/exec/protocol.h"

using namespace catlip;
using namespace catlip::exec;

TEST_CASE("frames round-trip, whole or byte by byte") {
  Sample s;
  s.key = "k1";
  s.origin = {"u", 2, 3, 1};
  s.set_text("txt", "a cat");
  s.set_bytes("jpg", std::string("\x00\xff\x10", 3));
  s.set_ints("n", {1, -2, 1LL << 40});
  Tensor t;
  t.dtype = DType::F32;
  t.shape = {2, 1};
  t.data = std::string(8, '\x01');
  s.set("img", t);
  std::string stream = frame(FrameKind::Hello, encode_hello(Hello{})) + frame(FrameKind::Sample, encode_sample(s)) +
                       frame(FrameKind::Done, "") + frame(FrameKind::End, "");
  for (int bytewise = 0; bytewise < 2; ++bytewise) {
    FrameParser p(1 << 20);
    std::vector<Frame> got;
    Frame f;
    if (bytewise) {
      for (char c : stream) {
        p.feed(&c, 1);
        while (p.next(f)) got.push_back(f);
      }
    } else {
      p.feed(stream.data(), stream.size());
      while (p.next(f)) got.push_back(f);
    }
    REQUIRE(got.size() == 4);
    CHECK(got[0].kind == FrameKind::Hello);
    CHECK(decode_hello(got[0].payload).version == kProtocolVersion);
    CHECK(got[1].kind == FrameKind::Sample);
    Message m;
    REQUIRE(decode(got[1].payload.data(), got[1].payload.size(), m).ok);
    CHECK(std::get<Sample>(m.body) == s);
    CHECK(got[2].kind == FrameKind::Done);
    CHECK(got[2].payload.empty());
    CHECK(got[3].kind == FrameKind::End);
    CHECK(p.buffered() == 0);
  }
}

TEST_CASE("the frame header is little-endian length then kind") {
  std::string f = frame(FrameKind::Error, "oops");
  REQUIRE(f.size() == 9);
  CHECK(f.substr(0, 5) == std::string("\x04\x00\x00\x00X", 5));
  CHECK(f.substr(5) == "oops");
}

TEST_CASE("bad frame headers are errors as soon as the header arrives") {
  FrameParser p(1000);
  Frame f;
  std::string text = "hello world\n";
  p.feed(text.data(), text.size());
  CHECK_THROWS_WITH(p.next(f), Catch::Contains("unknown frame kind") && Catch::Contains("hello world"));
  FrameParser big(1000);
  std::string h("\xe9\x03\x00\x00S", 5);  // 1001 bytes
  big.feed(h.data(), h.size());
  CHECK_THROWS_WITH(big.next(f), Catch::Contains("exceeds the limit of 1000"));
  FrameParser ok(1000);
  std::string h2("\xe8\x03\x00\x00S", 5);  // exactly 1000: waits for the payload
  ok.feed(h2.data(), h2.size());
  CHECK_FALSE(ok.next(f));
}

TEST_CASE("hello and count payloads") {
  Hello h;
  h.text["mode"] = "source";
  h.ints["replica"] = 3;
  Hello d = decode_hello(encode_hello(h));
  CHECK(d.protocol == "catlip-stage");
  CHECK(d.text["mode"] == "source");
  CHECK(d.ints["replica"] == 3);
  CHECK_THROWS(decode_hello("\x90"));       // an array
  CHECK_THROWS(decode_hello("\x80"));       // a map without protocol/version
  CHECK_THROWS(decode_hello("not msgpack at all"));
  auto c = decode_counts(std::string("\x82\xa1" "a\x02\xa1" "b\xff", 7));
  CHECK(c["a"] == 2);
  CHECK(c["b"] == -1);
  CHECK_THROWS(decode_counts(std::string("\x81\xa1" "a\xa1" "b", 5)));
}
