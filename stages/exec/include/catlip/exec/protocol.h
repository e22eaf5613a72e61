// catlip/exec/protocol.h - the framing between an exec stage and its program
// (docs/stage-protocol.md): a frame is a 4-byte little-endian payload length,
// one kind byte, then the payload. Sample frames carry a catlip wire message
// (catlip/codec.h) exactly as stages exchange them over ZeroMQ.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace catlip::exec {

constexpr const char* kProtocolName = "catlip-stage";
constexpr int64_t kProtocolVersion = 1;
constexpr size_t kFrameHeaderBytes = 5;

enum class FrameKind : uint8_t {
  Hello = 'H',   // both ways, first: msgpack map {"protocol", "version", ...}
  Sample = 'S',  // both ways: a catlip wire message (kind sample or batch)
  Done = 'D',    // program -> catlip: finished with one input item
  End = 'E',     // both ways: end of stream
  Error = 'X',   // program -> catlip: UTF-8 message; fails the stage
  Count = 'C',   // program -> catlip: msgpack map {counter name: int}
};
bool known_frame_kind(uint8_t k);
const char* frame_kind_name(FrameKind k);

// Appends one frame to `out`.
void append_frame(std::string& out, FrameKind kind, std::string_view payload);
std::string frame(FrameKind kind, std::string_view payload);

struct Frame {
  FrameKind kind = FrameKind::Sample;
  std::string payload;
};

// Splits a byte stream into frames. Input is untrusted: a length over the
// limit or an unknown kind byte is an error as soon as the header arrives,
// so a misbehaving program never makes it buffer more than one frame.
class FrameParser {
 public:
  explicit FrameParser(size_t max_payload) : max_(max_payload) {}
  void feed(const char* data, size_t n) { buf_.append(data, n); }
  // True and a frame when one is complete; false when more bytes are needed.
  // Throws std::runtime_error on a bad header.
  bool next(Frame& out);
  size_t buffered() const { return buf_.size() - pos_; }
  // Up to `n` bytes at the read position, printable, for error messages.
  std::string preview(size_t n = 32) const;

 private:
  size_t max_;
  std::string buf_;
  size_t pos_ = 0;
};

// The hello payloads. Unknown keys are ignored by both sides.
struct Hello {
  std::string protocol = kProtocolName;
  int64_t version = kProtocolVersion;
  std::map<std::string, std::string> text;  // e.g. mode, stage, type
  std::map<std::string, int64_t> ints;      // e.g. replica, replicas, window
};
std::string encode_hello(const Hello& h);
// Throws std::runtime_error when the payload is not a msgpack map with a
// string "protocol" and an integer "version".
Hello decode_hello(std::string_view payload);
// {name: int} counters; throws on anything else.
std::map<std::string, int64_t> decode_counts(std::string_view payload);

}  // namespace catlip::exec
