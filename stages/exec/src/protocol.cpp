// The implementation of catlip/exec/protocol.h: the framing between an exec stage and its program
#include "catlip/exec/protocol.h"

#include <msgpack.hpp>

#include <stdexcept>

namespace catlip::exec {

bool known_frame_kind(uint8_t k) {
  switch (static_cast<FrameKind>(k)) {
    case FrameKind::Hello:
    case FrameKind::Sample:
    case FrameKind::Done:
    case FrameKind::End:
    case FrameKind::Error:
    case FrameKind::Count: return true;
  }
  return false;
}

const char* frame_kind_name(FrameKind k) {
  switch (k) {
    case FrameKind::Hello: return "hello";
    case FrameKind::Sample: return "sample";
    case FrameKind::Done: return "done";
    case FrameKind::End: return "end";
    case FrameKind::Error: return "error";
    case FrameKind::Count: return "count";
  }
  return "?";
}

void append_frame(std::string& out, FrameKind kind, std::string_view payload) {
  uint32_t n = static_cast<uint32_t>(payload.size());
  char h[kFrameHeaderBytes] = {char(n & 0xff), char((n >> 8) & 0xff), char((n >> 16) & 0xff), char((n >> 24) & 0xff),
                               char(kind)};
  out.append(h, sizeof h);
  out.append(payload.data(), payload.size());
}

std::string frame(FrameKind kind, std::string_view payload) {
  std::string s;
  s.reserve(payload.size() + kFrameHeaderBytes);
  append_frame(s, kind, payload);
  return s;
}

bool FrameParser::next(Frame& out) {
  if (buffered() < kFrameHeaderBytes) return false;
  auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
  uint64_t n = uint64_t(p[0]) | uint64_t(p[1]) << 8 | uint64_t(p[2]) << 16 | uint64_t(p[3]) << 24;
  if (!known_frame_kind(p[4]))
    throw std::runtime_error("unknown frame kind " + std::to_string(int(p[4])) + " (bytes: " + preview() + ")");
  if (n > max_)
    throw std::runtime_error("frame of " + std::to_string(n) + " bytes exceeds the limit of " + std::to_string(max_) +
                             " bytes (bytes: " + preview() + ")");
  if (buffered() < kFrameHeaderBytes + n) return false;
  out.kind = static_cast<FrameKind>(p[4]);
  out.payload.assign(buf_.data() + pos_ + kFrameHeaderBytes, n);
  pos_ += kFrameHeaderBytes + n;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > (size_t{1} << 20) && pos_ > buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return true;
}

std::string FrameParser::preview(size_t n) const {
  std::string s = "\"";
  for (size_t i = pos_; i < buf_.size() && i < pos_ + n; ++i) {
    unsigned char c = buf_[i];
    if (c >= 32 && c < 127 && c != '"' && c != '\\') {
      s += char(c);
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      s += b;
    }
  }
  return s + (buffered() > n ? "\"..." : "\"");
}

namespace {
struct StringBuffer {
  std::string* s;
  void write(const char* p, size_t n) { s->append(p, n); }
};
}  // namespace

std::string encode_hello(const Hello& h) {
  std::string out;
  StringBuffer buf{&out};
  msgpack::packer<StringBuffer> pk(buf);
  pk.pack_map(static_cast<uint32_t>(2 + h.text.size() + h.ints.size()));
  pk.pack(std::string("protocol"));
  pk.pack(h.protocol);
  pk.pack(std::string("version"));
  pk.pack(h.version);
  for (auto& [k, v] : h.text) {
    pk.pack(k);
    pk.pack(v);
  }
  for (auto& [k, v] : h.ints) {
    pk.pack(k);
    pk.pack(v);
  }
  return out;
}

namespace {
// Unpacks a msgpack map with bounded sizes; throws on anything else.
msgpack::object_handle unpack_map(std::string_view payload, const char* what) {
  size_t size = payload.size();
  msgpack::unpack_limit limit(std::min<size_t>(size, 1 << 16), std::min<size_t>(size, 1 << 16), size, size, 0, 8);
  size_t off = 0;
  msgpack::object_handle oh;
  try {
    oh = msgpack::unpack(payload.data(), size, off, nullptr, nullptr, limit);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(what) + " frame: not msgpack (" + e.what() + ")");
  }
  if (off != size) throw std::runtime_error(std::string(what) + " frame: trailing bytes");
  if (oh.get().type != msgpack::type::MAP) throw std::runtime_error(std::string(what) + " frame: expected a msgpack map");
  return oh;
}

bool as_int(const msgpack::object& o, int64_t& v) {
  if (o.type == msgpack::type::POSITIVE_INTEGER && o.via.u64 <= uint64_t(INT64_MAX)) {
    v = int64_t(o.via.u64);
    return true;
  }
  if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    v = o.via.i64;
    return true;
  }
  return false;
}
}  // namespace

Hello decode_hello(std::string_view payload) {
  auto oh = unpack_map(payload, "hello");
  auto& m = oh.get().via.map;
  Hello h;
  h.protocol.clear();
  h.version = -1;
  for (uint32_t i = 0; i < m.size; ++i) {
    if (m.ptr[i].key.type != msgpack::type::STR) continue;
    std::string k(m.ptr[i].key.via.str.ptr, m.ptr[i].key.via.str.size);
    auto& v = m.ptr[i].val;
    int64_t n;
    if (v.type == msgpack::type::STR) {
      std::string s(v.via.str.ptr, v.via.str.size);
      if (k == "protocol") h.protocol = s;
      else h.text[k] = s;
    } else if (as_int(v, n)) {
      if (k == "version") h.version = n;
      else h.ints[k] = n;
    }
  }
  if (h.protocol.empty() || h.version < 0)
    throw std::runtime_error("hello frame: needs a string \"protocol\" and an integer \"version\"");
  return h;
}

std::map<std::string, int64_t> decode_counts(std::string_view payload) {
  auto oh = unpack_map(payload, "count");
  auto& m = oh.get().via.map;
  std::map<std::string, int64_t> out;
  for (uint32_t i = 0; i < m.size; ++i) {
    int64_t n;
    if (m.ptr[i].key.type != msgpack::type::STR || !as_int(m.ptr[i].val, n))
      throw std::runtime_error("count frame: expected a map of counter names to integers");
    out[std::string(m.ptr[i].key.via.str.ptr, m.ptr[i].key.via.str.size)] += n;
  }
  return out;
}

}  // namespace catlip::exec
