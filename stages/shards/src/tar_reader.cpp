// The implementation of catlip/shards/tar_reader.h: the streaming tar parser (ustar, GNU
// long names, pax headers), resynchronising after a damaged header.
#include "catlip/shards/tar_reader.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace catlip::shards {
namespace {

constexpr uint64_t kReadBlock = 512;
uint64_t padded(uint64_t n) { return (n + kReadBlock - 1) / kReadBlock * kReadBlock; }

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
  for (size_t i = 0; i < kReadBlock; ++i) {
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
  e.between_members = in_header_;
  throw e;
}

size_t TarReader::fill_block(char* b) {
  size_t got = 0;
  while (got < kReadBlock) {
    size_t k = in_.read(b + got, kReadBlock - got);
    if (k == 0) break;
    got += k;
  }
  return got;
}

bool TarReader::read_block(char* b, bool allow_eof) {
  size_t got = fill_block(b);
  if (got == kReadBlock) return true;
  if (got == 0 && allow_eof) return false;
  fail("truncated tar header at byte " + std::to_string(in_.offset() - got), true);
}

// The header block at `bad_at` failed its checksum. Scans on, block by block,
// for the next block that is a plausible header (valid checksum, not all
// zero); leaves it in `b` and returns true, or false at the end of the stream.
bool TarReader::resync(char* b, uint64_t bad_at) {
  for (;;) {
    uint64_t at = in_.offset();
    if (fill_block(b) < kReadBlock) return false;
    bool zero = true;
    for (size_t i = 0; i < kReadBlock && zero; ++i) zero = b[i] == 0;
    if (zero || !checksum_ok(b)) continue;
    uint64_t skipped = at - bad_at;
    ++stats_.resyncs;
    stats_.resync_bytes += skipped;
    stats_.last_resync = name_ + ": bad tar header checksum at byte " + std::to_string(bad_at) +
                         "; skipped " + std::to_string(skipped) + " bytes to the next valid header at byte " +
                         std::to_string(at);
    return true;
  }
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
  in_header_ = true;
  std::string long_name;
  bool have_pax_size = false;
  uint64_t pax_size = 0;
  char b[kReadBlock];
  for (;;) {
    uint64_t header_at = in_.offset();
    if (!read_block(b, true)) {
      // The stream ended exactly between members without the end marker:
      // accepted (tar writers that stream often omit it).
      done_ = true;
      return false;
    }
    bool zero = true;
    for (size_t i = 0; i < kReadBlock && zero; ++i) zero = b[i] == 0;
    if (zero) {
      done_ = true;
      stats_.clean_end = true;
      return false;
    }
    if (!checksum_ok(b)) {
      if (!resync(b, header_at))
        fail("bad tar header checksum at byte " + std::to_string(header_at) + " and no valid header after it");
      header_at = in_.offset() - kReadBlock;
      long_name.clear();  // a long-name or pax record before the damage belonged to a lost member
      have_pax_size = false;
      pax_size = 0;
    }
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
        // The record is the name plus NUL padding; a NUL inside the name is
        // kept so that safe_member_name() rejects it.
        long_name = data.substr(0, data.find_last_not_of('\0') + 1);
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
    skip_member_data(pending_);
    long_name.clear();
    have_pax_size = false;
  }
}

void TarReader::read_data(std::string& out) {
  in_header_ = false;
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
  in_header_ = false;
  skip_member_data(pending_);
}

void TarReader::skip_member_data(uint64_t n) {
  // A truncated padding block at the very end is tolerated as damage.
  skip_exact(n, "member data");
  pending_ = pending_data_ = 0;
}

bool safe_member_name(std::string_view name) {
  if (name.empty() || name.find('\0') != std::string_view::npos) return false;
  if (name[0] == '/' || name[0] == '\\') return false;
  if (name.size() >= 3 && std::isalpha(static_cast<unsigned char>(name[0])) && name[1] == ':' &&
      (name[2] == '/' || name[2] == '\\'))
    return false;  // a Windows drive path
  size_t start = 0;
  for (;;) {
    size_t end = name.find_first_of("/\\", start);
    std::string_view part = name.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (part == "..") return false;
    if (end == std::string_view::npos) return true;
    start = end + 1;
  }
}

}  // namespace catlip::shards
