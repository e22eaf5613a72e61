// ftfy's fix_encoding (mojibake repair through its ten single-byte codecs,
// restore_byte_a0, replace_lossy_sequences, utf-8-variants, embedded
// mojibake) and unescape_html, in catlip's C++ over ftfy_tables.cpp.
#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "ftfy_internal.h"
#include "text_internal.h"

namespace catlip::text::ftfy_detail {

using namespace ftfy_data;

namespace {

constexpr int kSloppy1252 = 1, kMacRoman = 8;
bool codec_is_sloppy(int e) { return e >= 1 && e <= 6; }

// Per codec: the characters of bytes 0x80..0xFF and 0x1A, sorted, with their byte.
struct Encoder {
  std::vector<std::pair<char32_t, uint8_t>> map;
};
const std::vector<Encoder>& encoders() {
  static const std::vector<Encoder> e = [] {
    std::vector<Encoder> v(kCodecCount);
    for (int k = 0; k < kCodecCount; ++k) {
      for (int b = 0; b < 128; ++b) v[k].map.emplace_back(kCodecHigh[k][b], static_cast<uint8_t>(0x80 + b));
      v[k].map.emplace_back(kCodecHigh[k][128], static_cast<uint8_t>(0x1A));
      std::sort(v[k].map.begin(), v[k].map.end());
    }
    return v;
  }();
  return e;
}

// Encodes t in codec e (ftfy's possible_encoding + str.encode); false if some
// character has no byte there.
bool encode_in(const U32& t, int e, std::string& out) {
  const auto& m = encoders()[e].map;
  out.clear();
  out.reserve(t.size());
  for (char32_t c : t) {
    if (c < 0x80 && c != 0x1A) {
      out += static_cast<char>(c);
      continue;
    }
    auto it = std::lower_bound(m.begin(), m.end(), std::make_pair(c, uint8_t{0}));
    if (it == m.end() || it->first != c) return false;
    out += static_cast<char>(it->second);
  }
  return true;
}

unsigned byte_at(std::string_view s, size_t i) { return i < s.size() ? static_cast<unsigned char>(s[i]) : 0x100u; }

// ftfy's ALTERED_UTF8_RE at s[i]: the length of the match, or 0.
size_t altered_at(std::string_view s, size_t i) {
  unsigned b0 = byte_at(s, i), b1 = byte_at(s, i + 1), b2 = byte_at(s, i + 2), b3 = byte_at(s, i + 3);
  auto c3 = [](unsigned b) { return b >= 0x80 && b <= 0xBF && b != 0x85 && b != 0xA0; };
  auto cont = [](unsigned b) { return b >= 0x80 && b <= 0xBF; };
  if ((b0 == 0xC2 || b0 == 0xC3 || b0 == 0xC5 || b0 == 0xCE || b0 == 0xD0 || b0 == 0xD9) && b1 == ' ') return 2;
  if ((b0 == 0xE2 || b0 == 0xE3) && b1 == ' ' && c3(b2)) return 3;
  if (b0 >= 0xE0 && b0 <= 0xE3 && c3(b1) && b2 == ' ') return 3;
  if (b0 == 0xF0 && ((b1 == ' ' && cont(b2) && cont(b3)) || (cont(b1) && b2 == ' ' && cont(b3)) ||
                     (cont(b1) && cont(b2) && b3 == ' ')))
    return 4;
  return 0;
}

// ftfy's LOSSY_UTF8_RE at s[i]: the length of the match, or 0.
size_t lossy_at(std::string_view s, size_t i) {
  unsigned b0 = byte_at(s, i), b1 = byte_at(s, i + 1), b2 = byte_at(s, i + 2), b3 = byte_at(s, i + 3);
  auto in = [](unsigned b, unsigned lo, unsigned hi) { return b >= lo && b <= hi; };
  auto sub = [](unsigned b) { return b == 0x1A || b == '?'; };       // [\x1a?]
  auto lc = [&](unsigned b) { return b == 0x1A || in(b, 0x80, 0xBF); };  // [\x1a\x80-\xbf]
  auto any = [&](unsigned b) { return sub(b) || in(b, 0x80, 0xBF); };
  if (in(b0, 0xC2, 0xDF) && b1 == 0x1A) return 2;
  if (in(b0, 0xC2, 0xC3) && b1 == '?') return 2;
  if (b0 == 0xED && in(b1, 0xA0, 0xAF) && b3 == 0xED && in(byte_at(s, i + 4), 0xB0, 0xBF)) {
    unsigned b5 = byte_at(s, i + 5);
    if (sub(b2) && any(b5)) return 6;
    if (any(b2) && sub(b5)) return 6;
  }
  if (in(b0, 0xE0, 0xEF) && ((sub(b1) && lc(b2)) || (lc(b1) && sub(b2)))) return 3;
  if (in(b0, 0xF0, 0xF4) &&
      ((sub(b1) && lc(b2) && lc(b3)) || (lc(b1) && sub(b2) && lc(b3)) || (lc(b1) && lc(b2) && sub(b3))))
    return 4;
  if (b0 == 0x1A) return 1;
  return 0;
}

std::string replace_lossy(std::string_view in) {
  std::string out;
  out.reserve(in.size() + 8);
  for (size_t i = 0; i < in.size();) {
    size_t n = lossy_at(in, i);
    if (!n) {
      out += in[i++];
      continue;
    }
    out += "\xEF\xBF\xBD";
    i += n;
  }
  return out;
}

// Python's strict UTF-8 decoder, or ftfy's utf-8-variants (C0 80 is NUL, a
// CESU-8 surrogate pair one character) when `variants`.
bool decode_utf8(std::string_view s, bool variants, U32& out) {
  out.clear();
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (variants) {
      if (byte_at(s, i) == 0xC0 && byte_at(s, i + 1) == 0x80) {
        out.push_back(0);
        i += 2;
        continue;
      }
      if (byte_at(s, i) == 0xED && i + 6 <= s.size()) {
        unsigned b1 = byte_at(s, i + 1), b2 = byte_at(s, i + 2), b4 = byte_at(s, i + 4), b5 = byte_at(s, i + 5);
        if (b1 >= 0xA0 && b1 <= 0xAF && b2 >= 0x80 && b2 <= 0xBF && byte_at(s, i + 3) == 0xED && b4 >= 0xB0 &&
            b4 <= 0xBF && b5 >= 0x80 && b5 <= 0xBF) {
          out.push_back(((b1 & 0x0F) << 16) + ((b2 & 0x3F) << 10) + ((b4 & 0x0F) << 6) + (b5 & 0x3F) + 0x10000);
          i += 6;
          continue;
        }
      }
    }
    size_t n = detail::utf8_seq_len(s, i);
    if (!n) return false;
    auto b = static_cast<unsigned char>(s[i]);
    char32_t cp = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.push_back(cp);
    i += n;
  }
  return true;
}

bool all_ascii_u32(const U32& t) {
  return std::all_of(t.begin(), t.end(), [](char32_t c) { return c < 0x80; });
}

// ftfy's UTF8_DETECTOR_RE at t[i] (the lookbehind included): match length or 0.
size_t utf8_run_at(const U32& t, size_t i) {
  if (i > 0 && (char_class(t[i - 1]) & kContStrict)) return 0;
  size_t j = i;
  auto cont = [&](size_t k) { return k < t.size() && (char_class(t[k]) & kCont); };
  for (;;) {
    if (j >= t.size()) break;
    uint32_t c = char_class(t[j]);
    size_t k = (c & kFirstOf2) ? 1 : 0;
    if (k && !cont(j + 1)) k = 0;
    if (!k && (c & kFirstOf3) && cont(j + 1) && cont(j + 2)) k = 2;
    if (!k && (c & kFirstOf4) && cont(j + 1) && cont(j + 2) && cont(j + 3)) k = 3;
    if (!k) break;
    j += 1 + k;
  }
  return j - i;
}

// ftfy's decode_inconsistent_utf8: each run the detector finds, shorter than
// the text and bad on its own, is fixed on its own.
U32 decode_inconsistent(const U32& t) {
  U32 out;
  out.reserve(t.size());
  for (size_t i = 0; i < t.size();) {
    size_t n = utf8_run_at(t, i);
    if (!n) {
      out.push_back(t[i++]);
      continue;
    }
    U32 run = t.substr(i, n);
    if (run.size() < t.size() && is_bad(run)) out += fix_encoding(run);
    else out += run;
    i += n;
  }
  return out;
}

bool has_utf8_run(const U32& t) {
  for (size_t i = 0; i < t.size(); ++i)
    if (t[i] >= 0x80 && utf8_run_at(t, i)) return true;
  return false;
}

// One step of ftfy's fix_encoding; false when it changes nothing.
bool fix_encoding_step(U32& t) {
  if (t.empty() || all_ascii_u32(t) || !is_bad(t)) return false;
  std::string bytes;
  U32 fixed;
  for (int e = 0; e < kCodecCount; ++e) {
    if (!encode_in(t, e, bytes)) continue;
    if (e != kMacRoman) bytes = restore_byte_a0(bytes);
    if (codec_is_sloppy(e)) bytes = replace_lossy(bytes);
    bool variants = bytes.find('\xED') != std::string::npos || bytes.find('\xC0') != std::string::npos;
    if (decode_utf8(bytes, variants, fixed)) {
      bool changed = fixed != t;
      t.swap(fixed);
      return changed;
    }
  }
  if (has_utf8_run(t)) {
    fixed = decode_inconsistent(t);
    if (fixed != t) {
      t.swap(fixed);
      return true;
    }
  }
  // Latin-1 -> strict Windows-1252, then C1 controls as sloppy Windows-1252:
  // both come to the C1 characters read as Windows-1252.
  bool changed = false;
  for (char32_t& c : t)
    if (c >= 0x80 && c <= 0x9F) {
      char32_t r = kCodecHigh[kSloppy1252][c - 0x80];
      changed |= r != c;
      c = r;
    }
  return changed;
}

}  // namespace

std::string restore_byte_a0(std::string_view in) {
  // "\xC3 " is "à " unless a space, "quele", "quela", "quilo" or "s " follows.
  std::string a;
  a.reserve(in.size() + 4);
  for (size_t i = 0; i < in.size(); ++i) {
    if (byte_at(in, i) == 0xC3 && byte_at(in, i + 1) == ' ') {
      std::string_view rest = in.substr(i + 2);
      bool keep = rest.starts_with(" ") || rest.starts_with("quele") || rest.starts_with("quela") ||
                  rest.starts_with("quilo") || rest.starts_with("s ");
      if (!keep) {
        a += "\xC3\xA0 ";
        ++i;
        continue;
      }
    }
    a += in[i];
  }
  std::string out;
  out.reserve(a.size());
  const std::string_view s = a;
  for (size_t i = 0; i < s.size();) {
    size_t len = altered_at(s, i);
    if (!len) {
      out += s[i++];
      continue;
    }
    for (size_t k = 0; k < len; ++k) out += s[i + k] == ' ' ? '\xA0' : s[i + k];
    i += len;
  }
  return out;
}

U32 fix_encoding(U32 t) {
  for (int step = 0; step < 64; ++step)
    if (!fix_encoding_step(t)) break;
  return t;
}

}  // namespace catlip::text::ftfy_detail
