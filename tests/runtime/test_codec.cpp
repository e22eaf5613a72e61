// Tests of the msgpack wire codec (catlip/codec.h): round trips, limits, hostile frames.
#include <catch2/catch.hpp>

#include <random>

#include "catlip/codec.h"

using namespace catlip;

static Sample rich_sample() {
  Sample s;
  s.key = "000000042";
  s.origin = Origin{"https://host/shard-000003.tar", 3, 42, 1};
  s.set_bytes("jpg", std::string("\xff\xd8\xff\x00binary\x00data", 14));
  s.set_text("txt", "two red balls and a blue cup");
  s.set_ints("labels", {3, 17, 24319});
  Tensor t;
  t.dtype = DType::U8;
  t.shape = {4, 5, 3};
  t.data.assign(60, '\x07');
  s.set("image", t);
  return s;
}

TEST_CASE("codec: sample and batch round-trip") {
  Sample s = rich_sample();
  Message m;
  REQUIRE(decode(encode_sample(s).data(), encode_sample(s).size(), m).ok);
  REQUIRE(m.kind == MsgKind::Sample);
  CHECK(std::get<Sample>(m.body) == s);
  CHECK(m.id == MessageId{1, 3, 42});

  Batch b;
  b.samples = {s, s, s};
  b.samples[1].key = "other";
  std::string enc = encode_batch(b);
  REQUIRE(decode(enc.data(), enc.size(), m).ok);
  CHECK(std::get<Batch>(m.body) == b);
}

TEST_CASE("codec: large payloads travel as attachments without changing content") {
  Sample s = rich_sample();
  s.set_bytes("big", std::string(100000, 'z'));
  Sample copy = s;
  Message m;
  m.body = std::move(s);
  std::string head;
  std::vector<std::string> att;
  encode_parts(std::move(m), head, att, 1000);
  REQUIRE(att.size() == 1);
  CHECK(head.size() < 1000);
  std::vector<Span> spans;
  for (auto& a : att) spans.push_back({a.data(), a.size()});
  Message out;
  REQUIRE(decode(head.data(), head.size(), out, kDefaultMaxMessageBytes, spans).ok);
  CHECK(std::get<Sample>(out.body) == copy);
  // Without its attachment the head is an error, not a crash.
  auto r = decode(head.data(), head.size(), out);
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.error, Catch::Contains("attachment"));
}

TEST_CASE("codec: every truncation of a valid message is an error") {
  std::string enc = encode_sample(rich_sample());
  for (size_t n = 0; n < enc.size(); ++n) {
    Message m;
    auto r = decode(enc.data(), n, m);
    INFO("prefix of " << n << " bytes");
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.error.empty());
  }
}

TEST_CASE("codec: random bytes and bit flips never crash") {
  std::mt19937 rng(7);
  int errors = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string junk(rng() % 300, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    Message m;
    if (!decode(junk.data(), junk.size(), m).ok) errors++;
  }
  CHECK(errors == 20000);
  // A flipped byte gives either an error that says why, or a well-formed
  // message: one that encodes again and decodes to the same bytes.
  std::string enc = encode_sample(rich_sample());
  int refused = 0, accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string x = enc;
    x[rng() % x.size()] ^= static_cast<char>(1 + rng() % 255);
    Message m;
    auto r = decode(x.data(), x.size(), m);
    if (!r.ok) {
      refused++;
      if (r.error.empty()) FAIL("a refused message without a reason");
      continue;
    }
    accepted++;
    std::string again = encode(m);
    Message m2;
    REQUIRE(decode(again.data(), again.size(), m2).ok);
    CHECK(encode(m2) == again);
  }
  CHECK(refused + accepted == 20000);
  CHECK(refused > 0);
}

TEST_CASE("codec: lying size headers and limits are refused") {
  // fixarray(5) "CTLP" 1 1 [0,0,0] then an array32 header claiming 4 billion samples.
  static const char lie_raw[] = "\x95\xa4" "CTLP" "\x01\x02\x93\x00\x00\x00" "\xdd\xff\xff\xff\xff";
  std::string lie(lie_raw, sizeof lie_raw - 1);
  Message m;
  auto r = decode(lie.data(), lie.size(), m);
  CHECK_FALSE(r.ok);
  // bin32 claiming 4 GB.
  static const char bin_raw[] = "\xc6\xff\xff\xff\xff\x00";
  std::string bin(bin_raw, sizeof bin_raw - 1);
  CHECK_FALSE(decode(bin.data(), bin.size(), m).ok);
  std::string enc = encode_sample(rich_sample());
  r = decode(enc.data(), enc.size(), m, 10);
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.error, Catch::Contains("exceeds the limit"));
  // A tensor whose data does not match its shape.
  Sample s;
  Tensor t;
  t.shape = {10, 10};
  t.data = "short";
  s.set("t", t);
  std::string bad = encode_sample(s);
  r = decode(bad.data(), bad.size(), m);
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.error, Catch::Contains("does not match shape"));
}

TEST_CASE("codec: wrong magic or version is named") {
  Message c;
  c.kind = MsgKind::Credit;
  c.value = 3;
  std::string enc = encode(c);
  std::string bad = enc;
  bad[2] = 'X';
  Message m;
  auto r = decode(bad.data(), bad.size(), m);
  CHECK_THAT(r.error, Catch::Contains("magic"));
  REQUIRE(decode(enc.data(), enc.size(), m).ok);
  CHECK(m.kind == MsgKind::Credit);
  CHECK(m.value == 3);
}
