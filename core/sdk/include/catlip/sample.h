// catlip/sample.h - the unit of data that flows between stages.
//
// A Sample is a key, an origin (where it came from, so that a run can be
// resumed and a bad input named), and a set of named fields. Field values are
// one of four kinds: raw bytes (an encoded JPEG), text (a caption), a list of
// integers (label indices) or a dense tensor (a decoded image). core knows
// nothing of what the fields mean; stages agree on names by convention.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "catlip/blob.h"

namespace catlip {

// Raw bytes. A distinct type so that bytes and text are never confused.
// The bytes are a Blob (catlip/blob.h): owned, or a view of a shared-memory
// slab upstream that a stage passing the field on unchanged forwards as is.
struct Bytes {
  Blob data;
  bool operator==(const Bytes& o) const { return data == o.data; }
};

enum class DType : uint8_t { U8 = 0, I8, I16, I32, I64, F16, BF16, F32, F64 };
size_t dtype_size(DType t);
const char* dtype_name(DType t);

// A dense row-major tensor: dtype + shape + raw little-endian bytes.
struct Tensor {
  DType dtype = DType::U8;
  std::vector<int64_t> shape;
  Blob data;  // numel(shape) * dtype_size(dtype) bytes (see Bytes)

  int64_t numel() const;
  bool valid() const { return data.size() == static_cast<size_t>(numel()) * dtype_size(dtype); }
  bool operator==(const Tensor& o) const {
    return dtype == o.dtype && shape == o.shape && data == o.data;
  }
};

using IntList = std::vector<int64_t>;
using Field = std::variant<Bytes, std::string, IntList, Tensor>;

// Where a sample came from. shard/index/epoch also form the message id used
// for ordering, resumption and (later) acknowledgement.
struct Origin {
  std::string url;     // shard url or other source name
  int64_t shard = -1;  // shard number in the source's shard list
  int64_t index = -1;  // sample index within the shard
  int64_t epoch = 0;
  bool operator==(const Origin& o) const {
    return url == o.url && shard == o.shard && index == o.index && epoch == o.epoch;
  }
};

struct Sample {
  std::string key;
  Origin origin;
  std::map<std::string, Field, std::less<>> fields;

  bool has(std::string_view name) const { return fields.find(name) != fields.end(); }
  void erase(std::string_view name);

  // Typed accessors: return nullptr if absent or of another kind.
  const Bytes* bytes(std::string_view name) const;
  const std::string* text(std::string_view name) const;
  const IntList* ints(std::string_view name) const;
  const Tensor* tensor(std::string_view name) const;
  Tensor* tensor(std::string_view name);

  void set(std::string name, Field value) { fields.insert_or_assign(std::move(name), std::move(value)); }
  void set_bytes(std::string name, Blob data) { set(std::move(name), Bytes{std::move(data)}); }
  void set_text(std::string name, std::string text) { set(std::move(name), std::move(text)); }
  void set_ints(std::string name, IntList v) { set(std::move(name), std::move(v)); }

  // Approximate in-memory payload size, used for metrics.
  size_t payload_bytes() const;
  bool operator==(const Sample& o) const {
    return key == o.key && origin == o.origin && fields == o.fields;
  }
};

// Deterministic data order (`order = "deterministic"` on shards.source and
// the trainer): the source numbers every sample in one seeded order, and
// the number travels as this int field (one value). The runtime routes a
// numbered sample to replica seq % replicas of a stage whose `order` is
// "deterministic" (the trainer's ranks). A stage between them that emits
// nothing for a numbered sample has the runtime forward a marker in its
// place: the sample's key, origin and number plus kDroppedField (text: the
// stage that dropped it), so that the later samples keep their slots.
inline constexpr const char* kSeqField = "order.seq";
inline constexpr const char* kDroppedField = "order.dropped";
// The sample's sequence number, or -1 when it has none.
inline int64_t sample_seq(const Sample& s) {
  auto it = s.fields.find(kSeqField);
  if (it == s.fields.end()) return -1;
  auto* v = std::get_if<IntList>(&it->second);
  return v && v->size() == 1 && (*v)[0] >= 0 ? (*v)[0] : -1;
}

// A group of samples travelling as one message (e.g. collated for a trainer).
struct Batch {
  std::vector<Sample> samples;
  bool operator==(const Batch& o) const { return samples == o.samples; }
};

}  // namespace catlip
