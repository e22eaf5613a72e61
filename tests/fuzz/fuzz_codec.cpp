// Fuzzes catlip::decode (core/runtime/src/codec.cpp): the msgpack envelope, samples,
// batches, control messages and out-of-band attachments.
//
// Input: byte 0 selects the attachment count (low 2 bits); then, per
// attachment, a 2-byte little-endian length and its bytes; the rest is the
// message head. (make_seeds.cpp writes seeds in this layout.)
//
// Properties: decode never crashes and is bounded; a decoded message
// re-encodes to bytes that decode again and re-encode identically, both
// inline (encode) and split (encode_parts + attachments).
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "catlip/codec.h"
#include "fuzz_common.h"

using namespace catlip;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  size_t n_att = data[0] & 3;
  size_t pos = 1;
  std::vector<Span> att;
  for (size_t i = 0; i < n_att; ++i) {
    if (pos + 2 > size) return 0;
    size_t len = data[pos] | (size_t{data[pos + 1]} << 8);
    pos += 2;
    if (len > size - pos) len = size - pos;
    att.push_back({data + pos, len});
    pos += len;
  }
  // The head in its own allocation, so ASan sees reads past its end.
  std::vector<uint8_t> head(data + pos, data + size);
  constexpr size_t kMax = size_t{1} << 20;
  Message m;
  DecodeResult r = decode(head.data(), head.size(), m, kMax, att);
  if (!r.ok) {
    FUZZ_CHECK(!r.error.empty(), "failed decode without an error message");
    return 0;
  }

  // Inline round trip.
  std::string e1 = encode(m);
  Message m2;
  DecodeResult r2 = decode(e1.data(), e1.size(), m2, size_t{1} << 30);
  FUZZ_CHECK(r2.ok, "re-encoded message does not decode: %s", r2.error.c_str());
  std::string e2 = encode(m2);
  FUZZ_CHECK(e1 == e2, "encode(decode(encode(m))) != encode(m)");

  // Split round trip (large payloads as attachments).
  std::string head2;
  std::vector<std::string> parts;
  encode_parts(std::move(m2), head2, parts, 4);
  std::vector<Span> spans;
  for (auto& p : parts) spans.push_back({p.data(), p.size()});
  Message m3;
  DecodeResult r3 = decode(head2.data(), head2.size(), m3, size_t{1} << 30, spans);
  FUZZ_CHECK(r3.ok, "encode_parts output does not decode: %s", r3.error.c_str());
  FUZZ_CHECK(encode(m3) == e1, "encode_parts round trip changed the message");
  return 0;
}
