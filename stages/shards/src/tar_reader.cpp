#include "catlip/shards/tar_reader.h"

#include <algorithm>
#include <cstring>

namespace catlip::shards {
namespace {

constexpr uint64_t kBlock = 512;
uint64_t padded(uint64_t n) { return (n + kBlock - 1) / kBlock * kBlock; }

// Parses an octal numeric field (spaces/NULs allowed around), or GNU base-256
// when the high bit of the first byte is set. Returns false if malformed.
bool parse_number(const char* p, size_t width, uint64_t& out) {
  auto u = reinterpret_cast<const unsigned char*>(p);
  if (u[0] & 0x80) {
    if (u[0] & 0x40) return false;  // negative
    uint64_t v = u[0] & 0x3f;
    for (size_t i = 1; i < width; ++i) {
      if (v >> 56) return false;  // overflow
      v = (v << 8) | u[i];
    }
    out = v;
    return true;
  }
  size_t i = 0;
  while (i < width && (p[i] == ' ' || p[i] == '\0')) ++i;
  uint64_t v = 0;
  bool any = false;
  for (; i < width && p[i] >= '0' && p[i] <= '7'; ++i) {
    if (v >> 60) return false;
    v = v * 8 + (p[i] - '0');
    any = true;
  }
  for (; i < width; ++i)
    if (p[i] != ' ' && p[i] != '\0') return false;
  out = any ? v : 0;
  return true;
}

std::string cstr(const char* p, size_t width) { return std::string(p, strnlen(p, width)); }

bool checksum_ok(const char* b) {
  uint64_t stored;
  if (!parse_number(b + 148, 8, stored)) return false;
  uint64_t u = 0;
  int64_t s = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    char c = (i >= 148 && i < 156) ? ' ' : b[i];
    u += static_cast<unsigned char>(c);
    s += static_cast<signed char>(c);  // some old tars summed signed chars
  }
  return stored == u || static_cast<int64_t>(stored) == s;
}

}  // namespace

void TarReader::fail(const std::string& msg, bool truncated) {
  done_ = true;
  TarError e(name_ + ": " + msg);
  e.truncated = truncated;
  throw e;
}

bool TarReader::read_block(char* b, bool allow_eof) {
  size_t got = 0;
  while (got < kBlock) {
    size_t k = in_.read(b + got, kBlock - got);
    if (k == 0) break;
    got += k;
  }
  if (got == kBlock) return true;
  if (got == 0 && allow_eof) return false;
  fail("truncated tar header at byte " + std::to_string(in_.offset() - got), true);
}

void TarReader::read_exact(char* p, uint64_t n, const char* what) {
  uint64_t got = 0;
  while (got < n) {
    size_t k = in_.read(p + got, n - got);
    if (k == 0) fail(std::string("truncated ") + what + " at byte " + std::to_string(in_.offset()), true);
    got += k;
  }
}

void TarReader::skip_exact(uint64_t n, const char* what) {
  if (in_.skip(n) != n) fail(std::string("truncated ") + what + " at byte " + std::to_string(in_.offset()), true);
}

bool TarReader::next(TarHeader& h) {
  if (done_) return false;
  if (pending_) skip_data();
  std::string long_name;
  bool have_pax_size = false;
  uint64_t pax_size = 0;
  char b[kBlock];
  for (;;) {
    uint64_t header_at = in_.offset();
    if (!read_block(b, true)) {
      // The stream ended exactly between members without the end marker:
      // accepted (tar writers that stream often omit it).
      done_ = true;
      return false;
    }
    bool zero = true;
    for (size_t i = 0; i < kBlock && zero; ++i) zero = b[i] == 0;
    if (zero) {
      done_ = true;
      stats_.clean_end = true;
      return false;
    }
    if (!checksum_ok(b)) fail("bad tar header checksum at byte " + std::to_string(header_at));
    uint64_t size;
    if (!parse_number(b + 124, 12, size)) fail("bad tar size field at byte " + std::to_string(header_at));
    if (have_pax_size) size = pax_size;
    char type = b[156];
    if (type == 'L' || type == 'x' || type == 'g' || type == 'K') {
      if (size > kMaxTarMetaBytes)
        fail(std::string("oversized '") + type + "' header (" + std::to_string(size) + " bytes) at byte " +
             std::to_string(header_at));
      std::string data(size, '\0');
      read_exact(data.data(), size, "long-name record");
      skip_exact(padded(size) - size, "long-name record");
      if (type == 'L') {
        long_name = cstr(data.data(), data.size());
      } else if (type == 'x') {
        // Records: "LEN key=value\n"
        size_t p = 0;
        while (p < data.size()) {
          size_t sp = data.find(' ', p);
          if (sp == std::string::npos) break;
          uint64_t len = 0;
          try {
            len = std::stoull(data.substr(p, sp - p));
          } catch (...) {
            fail("bad pax record at byte " + std::to_string(header_at));
          }
          if (len == 0 || p + len > data.size()) fail("bad pax record length at byte " + std::to_string(header_at));
          std::string rec = data.substr(sp + 1, p + len - sp - 1);
          if (!rec.empty() && rec.back() == '\n') rec.pop_back();
          size_t eq = rec.find('=');
          if (eq != std::string::npos) {
            std::string key = rec.substr(0, eq), val = rec.substr(eq + 1);
            if (key == "path") long_name = val;
            else if (key == "size") {
              try {
                pax_size = std::stoull(val);
                have_pax_size = true;
              } catch (...) {
                fail("bad pax size at byte " + std::to_string(header_at));
              }
            }
          }
          p += len;
        }
      }
      continue;  // the real header follows
    }
    std::string name = !long_name.empty() ? long_name : [&] {
      std::string base = cstr(b, 100);
      bool ustar = std::memcmp(b + 257, "ustar", 5) == 0;
      std::string prefix = ustar ? cstr(b + 345, 155) : std::string();
      return prefix.empty() ? base : prefix + "/" + base;
    }();
    h.name = std::move(name);
    h.size = size;
    h.type = type;
    h.offset = in_.offset();
    pending_data_ = size;
    pending_ = padded(size);
    // Hard links, symlinks, char/block devices, directories, fifos: their
    // size field is 0 for all but some writers' directories; skip any data.
    if (type == '0' || type == '\0' || type == '7') return true;
    ++stats_.non_regular;
    skip_data();
    long_name.clear();
    have_pax_size = false;
  }
}

void TarReader::read_data(std::string& out) {
  // Grow with the bytes that actually arrive, so a header that lies about
  // its size costs no more memory than the data behind it.
  int64_t hint = in_.size_hint();
  if (hint >= 0 && pending_data_ > static_cast<uint64_t>(hint) - std::min<uint64_t>(in_.offset(), hint))
    fail("truncated member data at byte " + std::to_string(in_.offset()) + " (header says " +
             std::to_string(pending_data_) + " bytes)",
         true);
  constexpr uint64_t kChunk = 1 << 20;
  out.clear();
  while (out.size() < pending_data_) {
    size_t have = out.size();
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, pending_data_ - have));
    out.resize(have + n);
    read_exact(out.data() + have, n, "member data");
  }
  skip_exact(pending_ - pending_data_, "member padding");
  pending_ = pending_data_ = 0;
}

void TarReader::skip_data() {
  // A truncated padding block at the very end is tolerated as damage.
  skip_exact(pending_, "member data");
  pending_ = pending_data_ = 0;
}

}  // namespace catlip::shards
