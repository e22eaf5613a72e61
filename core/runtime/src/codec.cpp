// The implementation of catlip/codec.h: msgpack wire format for messages between stages.
#include "catlip/codec.h"

#include <msgpack.hpp>

namespace catlip {

const char* msg_kind_name(MsgKind k) {
  switch (k) {
    case MsgKind::Sample: return "sample";
    case MsgKind::Batch: return "batch";
    case MsgKind::EndOfStream: return "end-of-stream";
    case MsgKind::Hello: return "hello";
    case MsgKind::Credit: return "credit";
    case MsgKind::Stop: return "stop";
  }
  return "?";
}

namespace {

constexpr char kMagic[] = "CTLP";
// kBytesRef / kTensorRef: the payload is attachment number N (encode_parts).
enum FieldTag : uint8_t { kBytes = 0, kText = 1, kInts = 2, kTensor = 3, kBytesRef = 4, kTensorRef = 5 };

// Where pack_sample puts large payloads; null: inline.
struct Detach {
  std::vector<Blob>* out = nullptr;
  size_t min_size = 0;
  bool take(const Blob& s) const { return out && s.size() >= min_size; }
};

// msgpack-c writes through any type with write(const char*, size_t).
struct StringBuffer {
  std::string* s;
  void write(const char* p, size_t n) { s->append(p, n); }
};
using Packer = msgpack::packer<StringBuffer>;

void pack_str(Packer& pk, const std::string& s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}
void pack_bin(Packer& pk, const Blob& s) {
  pk.pack_bin(static_cast<uint32_t>(s.size()));
  pk.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
}

void pack_sample(Packer& pk, const Sample& s, const Detach& det = {}) {
  pk.pack_array(3);
  pack_str(pk, s.key);
  pk.pack_array(4);
  pack_str(pk, s.origin.url);
  pk.pack(s.origin.shard);
  pk.pack(s.origin.index);
  pk.pack(s.origin.epoch);
  pk.pack_map(static_cast<uint32_t>(s.fields.size()));
  for (auto& [name, f] : s.fields) {
    pack_str(pk, name);
    std::visit([&](auto& v) {
      using T = std::decay_t<decltype(v)>;
      if constexpr (std::is_same_v<T, Bytes>) {
        if (det.take(v.data)) {
          pk.pack_array(2); pk.pack(uint8_t{kBytesRef}); pk.pack(uint64_t(det.out->size()));
          // The caller passed the message by rvalue: the buffer is moved, not copied.
          det.out->push_back(std::move(const_cast<Blob&>(v.data)));
          return;
        }
        pk.pack_array(2); pk.pack(uint8_t{kBytes}); pack_bin(pk, v.data);
      } else if constexpr (std::is_same_v<T, std::string>) {
        pk.pack_array(2); pk.pack(uint8_t{kText}); pack_str(pk, v);
      } else if constexpr (std::is_same_v<T, IntList>) {
        pk.pack_array(2); pk.pack(uint8_t{kInts});
        pk.pack_array(static_cast<uint32_t>(v.size()));
        for (auto x : v) pk.pack(x);
      } else {
        bool ref = det.take(v.data);
        pk.pack_array(4); pk.pack(uint8_t{ref ? kTensorRef : kTensor}); pk.pack(static_cast<uint8_t>(v.dtype));
        pk.pack_array(static_cast<uint32_t>(v.shape.size()));
        for (auto x : v.shape) pk.pack(x);
        if (ref) {
          pk.pack(uint64_t(det.out->size()));
          det.out->push_back(std::move(const_cast<Blob&>(v.data)));
        } else {
          pack_bin(pk, v.data);
        }
      }
    }, f);
  }
}

size_t estimate(const Sample& s) { return s.payload_bytes() + 64 + 16 * s.fields.size(); }

// ---- decoding: every access is type- and bounds-checked ----
struct Bad : std::exception {
  std::string what_;
  explicit Bad(std::string w) : what_(std::move(w)) {}
  const char* what() const noexcept override { return what_.c_str(); }
};

const msgpack::object_array& arr(const msgpack::object& o, uint32_t min_n, const char* what) {
  if (o.type != msgpack::type::ARRAY) throw Bad(std::string(what) + ": expected array");
  if (o.via.array.size < min_n) throw Bad(std::string(what) + ": array too short");
  return o.via.array;
}
int64_t integer(const msgpack::object& o, const char* what) {
  if (o.type == msgpack::type::POSITIVE_INTEGER) {
    if (o.via.u64 > uint64_t(INT64_MAX)) throw Bad(std::string(what) + ": integer out of range");
    return static_cast<int64_t>(o.via.u64);
  }
  if (o.type == msgpack::type::NEGATIVE_INTEGER) return o.via.i64;
  throw Bad(std::string(what) + ": expected integer");
}
std::string str(const msgpack::object& o, const char* what) {
  if (o.type != msgpack::type::STR) throw Bad(std::string(what) + ": expected string");
  return std::string(o.via.str.ptr, o.via.str.size);
}
std::string bin(const msgpack::object& o, const char* what) {
  if (o.type != msgpack::type::BIN) throw Bad(std::string(what) + ": expected binary");
  return std::string(o.via.bin.ptr, o.via.bin.size);
}

// A shared attachment (a ZeroMQ frame, a shared-memory view) is taken by
// reference, not copied.
Blob attachment(const msgpack::object& o, const std::vector<Blob>& att, const char* what) {
  int64_t i = integer(o, what);
  if (i < 0 || static_cast<size_t>(i) >= att.size())
    throw Bad(std::string(what) + ": reference to missing attachment " + std::to_string(i));
  return att[size_t(i)];
}

Sample unpack_sample(const msgpack::object& o, const std::vector<Blob>& att) {
  auto& a = arr(o, 3, "sample");
  Sample s;
  s.key = str(a.ptr[0], "sample key");
  auto& org = arr(a.ptr[1], 4, "sample origin");
  s.origin.url = str(org.ptr[0], "origin url");
  s.origin.shard = integer(org.ptr[1], "origin shard");
  s.origin.index = integer(org.ptr[2], "origin index");
  s.origin.epoch = integer(org.ptr[3], "origin epoch");
  if (a.ptr[2].type != msgpack::type::MAP) throw Bad("sample fields: expected map");
  auto& m = a.ptr[2].via.map;
  for (uint32_t i = 0; i < m.size; ++i) {
    std::string name = str(m.ptr[i].key, "field name");
    auto& fv = arr(m.ptr[i].val, 2, "field value");
    int64_t tag = integer(fv.ptr[0], "field tag");
    switch (tag) {
      case kBytes: s.fields.insert_or_assign(name, Bytes{bin(fv.ptr[1], "bytes field")}); break;
      case kBytesRef: s.fields.insert_or_assign(name, Bytes{attachment(fv.ptr[1], att, "bytes field")}); break;
      case kText: s.fields.insert_or_assign(name, str(fv.ptr[1], "text field")); break;
      case kInts: {
        auto& li = arr(fv.ptr[1], 0, "int list field");
        IntList v(li.size);
        for (uint32_t k = 0; k < li.size; ++k) v[k] = integer(li.ptr[k], "int list element");
        s.fields.insert_or_assign(name, std::move(v));
        break;
      }
      case kTensor:
      case kTensorRef: {
        arr(m.ptr[i].val, 4, "tensor field");
        Tensor t;
        int64_t dt = integer(fv.ptr[1], "tensor dtype");
        if (dt < 0 || dt > static_cast<int64_t>(DType::F64)) throw Bad("tensor field: unknown dtype");
        t.dtype = static_cast<DType>(dt);
        auto& sh = arr(fv.ptr[2], 0, "tensor shape");
        if (sh.size > 16) throw Bad("tensor field: more than 16 dimensions");
        for (uint32_t k = 0; k < sh.size; ++k) {
          int64_t d = integer(sh.ptr[k], "tensor dim");
          if (d < 0 || d > (int64_t{1} << 40)) throw Bad("tensor field: bad dimension");
          t.shape.push_back(d);
        }
        t.data = tag == kTensorRef ? attachment(fv.ptr[3], att, "tensor data") : Blob(bin(fv.ptr[3], "tensor data"));
        // Checked with the dims bounded above, so numel cannot overflow badly;
        // compare in long double to be safe against products of big dims.
        long double n = 1;
        for (auto d : t.shape) n *= static_cast<long double>(d);
        if (n * dtype_size(t.dtype) != static_cast<long double>(t.data.size()))
          throw Bad("tensor field '" + name + "': data size does not match shape");
        s.fields.insert_or_assign(name, std::move(t));
        break;
      }
      default: throw Bad("field '" + name + "': unknown field tag " + std::to_string(tag));
    }
  }
  return s;
}

bool reference_all(msgpack::type::object_type, std::size_t, void*) { return true; }

}  // namespace

static void encode_impl(const Message& m, std::string& out, const Detach& det) {
  out.clear();
  if (det.out) out.reserve(256);
  else if (auto* s = std::get_if<Sample>(&m.body)) out.reserve(estimate(*s));
  if (auto* b = std::get_if<Batch>(&m.body); b && !det.out) {
    size_t n = 64;
    for (auto& s : b->samples) n += estimate(s);
    out.reserve(n);
  }
  StringBuffer buf{&out};
  Packer pk(buf);
  pk.pack_array(5);
  pk.pack_str(4);
  pk.pack_str_body(kMagic, 4);
  pk.pack(kWireVersion);
  pk.pack(static_cast<uint8_t>(m.kind));
  pk.pack_array(3);
  pk.pack(m.id.epoch);
  pk.pack(m.id.shard);
  pk.pack(m.id.index);
  if (auto* s = std::get_if<Sample>(&m.body)) {
    pack_sample(pk, *s, det);
  } else if (auto* b = std::get_if<Batch>(&m.body)) {
    pk.pack_array(static_cast<uint32_t>(b->samples.size()));
    for (auto& x : b->samples) pack_sample(pk, x, det);
  } else {
    pk.pack_array(2);
    pk.pack(m.value);
    pack_str(pk, m.text);
  }
}

void encode(const Message& m, std::string& out) { encode_impl(m, out, Detach{}); }

void encode_parts(Message&& m, std::string& head, std::vector<Blob>& attachments, size_t min_attachment) {
  attachments.clear();
  encode_impl(m, head, Detach{&attachments, std::max<size_t>(min_attachment, 1)});
}

void encode_parts(Message&& m, std::string& head, std::vector<std::string>& attachments, size_t min_attachment) {
  std::vector<Blob> blobs;
  encode_parts(std::move(m), head, blobs, min_attachment);
  attachments.clear();
  for (auto& b : blobs) attachments.push_back(b.release());
}

std::string encode(const Message& m) {
  std::string s;
  encode(m, s);
  return s;
}

std::string encode_sample(const Sample& s) {
  Message m;
  m.kind = MsgKind::Sample;
  m.id = {s.origin.epoch, s.origin.shard, s.origin.index};
  m.body = s;
  return encode(m);
}

std::string encode_batch(const Batch& b) {
  Message m;
  m.kind = MsgKind::Batch;
  if (!b.samples.empty()) {
    auto& o = b.samples.front().origin;
    m.id = {o.epoch, o.shard, o.index};
  }
  m.body = b;
  return encode(m);
}

DecodeResult decode(const void* data, size_t size, Message& out, size_t max_bytes,
                    const std::vector<Span>& spans) {
  std::vector<Blob> att;
  att.reserve(spans.size());
  for (auto& a : spans) att.emplace_back(static_cast<const char*>(a.data), a.size);
  return decode(data, size, out, max_bytes, att);
}

DecodeResult decode(const void* data, size_t size, Message& out, size_t max_bytes,
                    const std::vector<Blob>& att) {
  DecodeResult r;
  size_t total = size;
  for (auto& a : att) total += a.size();
  if (total > max_bytes) {
    r.error = "message of " + std::to_string(total) + " bytes exceeds the limit of " +
              std::to_string(max_bytes) + " bytes";
    return r;
  }
  if (size == 0) {
    r.error = "empty message";
    return r;
  }
  // Every array element and map entry takes at least one byte, so no valid
  // message claims more than `size` of them; the caps below also bound what
  // msgpack-c allocates up front for a header that lies.
  size_t cap = std::min<size_t>(size, size_t{1} << 20);
  msgpack::unpack_limit limit(cap, std::min<size_t>(size, 1 << 16), size, size, 0, 32);
  try {
    size_t off = 0;
    msgpack::object_handle oh = msgpack::unpack(static_cast<const char*>(data), size, off,
                                                reference_all, nullptr, limit);
    if (off != size) throw Bad("trailing bytes after message");
    const msgpack::object& o = oh.get();
    auto& env = arr(o, 5, "envelope");
    if (env.size != 5) throw Bad("envelope: expected 5 elements");
    if (str(env.ptr[0], "magic") != kMagic) throw Bad("not a catlip message (bad magic)");
    int64_t ver = integer(env.ptr[1], "version");
    if (ver != kWireVersion)
      throw Bad("wire version " + std::to_string(ver) + " is not supported (expected " +
                std::to_string(kWireVersion) + ")");
    int64_t kind = integer(env.ptr[2], "kind");
    if (kind < 1 || kind > static_cast<int64_t>(MsgKind::Stop)) throw Bad("unknown message kind");
    Message m;
    m.kind = static_cast<MsgKind>(kind);
    auto& id = arr(env.ptr[3], 3, "message id");
    m.id.epoch = integer(id.ptr[0], "id epoch");
    m.id.shard = integer(id.ptr[1], "id shard");
    m.id.index = integer(id.ptr[2], "id index");
    if (m.kind == MsgKind::Sample) {
      m.body = unpack_sample(env.ptr[4], att);
    } else if (m.kind == MsgKind::Batch) {
      auto& b = arr(env.ptr[4], 0, "batch");
      Batch batch;
      batch.samples.reserve(b.size);
      for (uint32_t i = 0; i < b.size; ++i) batch.samples.push_back(unpack_sample(b.ptr[i], att));
      m.body = std::move(batch);
    } else {
      auto& c = arr(env.ptr[4], 2, "control body");
      m.value = integer(c.ptr[0], "control value");
      m.text = str(c.ptr[1], "control text");
    }
    out = std::move(m);
    r.ok = true;
  } catch (const msgpack::insufficient_bytes&) {
    r.error = "truncated message";
  } catch (const msgpack::size_overflow& e) {
    r.error = std::string("size limit exceeded: ") + e.what();
  } catch (const std::bad_alloc&) {
    r.error = "message too large to decode";
  } catch (const std::exception& e) {
    r.error = std::string("malformed message: ") + e.what();
  }
  return r;
}

}  // namespace catlip
