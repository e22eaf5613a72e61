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
#include <vector>

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

// Large payloads travel out of band: encode_parts() moves every Bytes field
// and tensor buffer of at least `min_attachment` bytes out of the message
// (no copy) into `attachments`, leaving a reference in the msgpack head. The
// transport sends them as extra ZeroMQ frames without copying.
// Attachments are Blobs: a field that is a shared view (a shared-memory
// payload received from upstream) stays one, so the transport can forward
// its descriptor instead of its bytes.
constexpr size_t kDefaultMinAttachment = 16 * 1024;
void encode_parts(Message&& m, std::string& head, std::vector<Blob>& attachments,
                  size_t min_attachment = kDefaultMinAttachment);
void encode_parts(Message&& m, std::string& head, std::vector<std::string>& attachments,
                  size_t min_attachment = kDefaultMinAttachment);

// A read-only view of one attachment frame.
struct Span {
  const void* data;
  size_t size;
};

struct DecodeResult {
  bool ok = false;
  std::string error;  // set when !ok, e.g. "truncated message", "message of 300 MB exceeds limit"
};

// `attachments` are the frames following the head (encode_parts); a
// reference to a missing attachment is an error. The limit applies to the
// head and attachments together.
DecodeResult decode(const void* data, size_t size, Message& out,
                    size_t max_message_bytes = kDefaultMaxMessageBytes,
                    const std::vector<Span>& attachments = {});
// The same with attachments as Blobs: the fields share them (no copy).
DecodeResult decode(const void* data, size_t size, Message& out, size_t max_message_bytes,
                    const std::vector<Blob>& attachments);

}  // namespace catlip
