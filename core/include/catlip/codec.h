// catlip/codec.h - msgpack wire format for messages between stages.
//
// Every message is a msgpack array in a versioned envelope:
//   ["CTLP", version, kind, [epoch, shard, index], body]
// kind is Sample, Batch or one of the runtime's control kinds. Decoding
// treats input as untrusted: sizes are bounded by the configured maximum
// message size and checked against the bytes actually present, so truncated
// or random input yields an error, never a crash or a huge allocation.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "catlip/sample.h"

namespace catlip {

constexpr uint32_t kWireVersion = 1;
constexpr size_t kDefaultMaxMessageBytes = size_t{256} << 20;  // 256 MiB

enum class MsgKind : uint8_t {
  Sample = 1,
  Batch = 2,
  EndOfStream = 3,  // sender replica has finished
  Hello = 4,        // consumer announces itself to a producer
  Credit = 5,       // consumer grants the producer N more items
  Stop = 6,         // stop now (failure or signal elsewhere)
};
const char* msg_kind_name(MsgKind k);

// Identifies an item for ordering, resumption and acknowledgement.
struct MessageId {
  int64_t epoch = 0, shard = -1, index = -1;
  bool operator==(const MessageId& o) const {
    return epoch == o.epoch && shard == o.shard && index == o.index;
  }
};

struct Message {
  MsgKind kind = MsgKind::Sample;
  MessageId id;
  // Sample for kind Sample, Batch for kind Batch; control messages carry an
  // integer (credit count, replica index) in `value`.
  std::variant<std::monostate, Sample, Batch> body;
  int64_t value = 0;
  std::string text;  // control messages: sender name or reason
};

// Encoding appends to `out` (which is cleared first).
void encode(const Message& m, std::string& out);
std::string encode(const Message& m);
std::string encode_sample(const Sample& s);  // kind Sample, id from origin
std::string encode_batch(const Batch& b);

struct DecodeResult {
  bool ok = false;
  std::string error;  // set when !ok, e.g. "truncated message", "message of 300 MB exceeds limit"
};

DecodeResult decode(const void* data, size_t size, Message& out,
                    size_t max_message_bytes = kDefaultMaxMessageBytes);

}  // namespace catlip
