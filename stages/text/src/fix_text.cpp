// ftfy's default fixes (ftfy.fix_text) for caption cleaning: the per-character
// fixes, NFC and the line-by-line loop; see catlip/text/fix_text.h.
#include "catlip/text/fix_text.h"

#include "catlip/text/clean.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <algorithm>
#include <array>
#include <cstdint>

#include "ftfy_internal.h"
#include "text_internal.h"

namespace catlip::text {

using detail::append_utf8;
using detail::utf8_seq_len;

// ftfy's default fixes. Internally the text is a sequence of code points.

namespace {

using U32 = std::u32string;

void put_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);  // NUL too: the caller decides what to drop
  } else {
    append_utf8(out, cp);
  }
}

void to_u32(std::string_view s, U32& out) { ftfy_detail::utf8_to_u32(s, out); }
void to_utf8(const U32& t, std::string& out) { ftfy_detail::u32_to_utf8(t, out); }

bool all_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

// ftfy's ligature/digraph table (fix_latin_ligatures).
const char32_t* ligature(char32_t c) {
  switch (c) {
    case 0x0132: return U"IJ";
    case 0x0133: return U"ij";
    case 0x0149: return U"\u02BCn";
    case 0x01F1: return U"DZ";
    case 0x01F2: return U"Dz";
    case 0x01F3: return U"dz";
    case 0x01C4: return U"D\u017D";
    case 0x01C5: return U"D\u017E";
    case 0x01C6: return U"d\u017E";
    case 0x01C7: return U"LJ";
    case 0x01C8: return U"Lj";
    case 0x01C9: return U"lj";
    case 0x01CA: return U"NJ";
    case 0x01CB: return U"Nj";
    case 0x01CC: return U"nj";
    case 0xFB00: return U"ff";
    case 0xFB01: return U"fi";
    case 0xFB02: return U"fl";
    case 0xFB03: return U"ffi";
    case 0xFB04: return U"ffl";
    case 0xFB05: return U"\u017Ft";
    case 0xFB06: return U"st";
    default: return nullptr;
  }
}

// fix_character_width's map: NFKC (ICU) of U+FF01..U+FFEF where it differs.
constexpr char32_t kWidthLo = 0xFF01, kWidthHi = 0xFFEF;
const std::array<U32, kWidthHi - kWidthLo + 1>& width_map() {
  static const auto map = [] {
    std::array<U32, kWidthHi - kWidthLo + 1> m;
    UErrorCode err = U_ZERO_ERROR;
    const icu::Normalizer2* nfkc = icu::Normalizer2::getNFKCInstance(err);
    if (U_FAILURE(err) || !nfkc) return m;
    for (char32_t c = kWidthLo; c <= kWidthHi; ++c) {
      icu::UnicodeString in(static_cast<UChar32>(c));
      err = U_ZERO_ERROR;
      icu::UnicodeString norm = nfkc->normalize(in, err);
      if (U_FAILURE(err) || norm == in) continue;
      U32& out = m[c - kWidthLo];
      for (int32_t k = 0; k < norm.length(); k = norm.moveIndex32(k, 1)) out.push_back(static_cast<char32_t>(norm.char32At(k)));
    }
    return m;
  }();
  return map;
}

bool removed_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

// Which of the per-character fixes run.
enum : unsigned {
  kFixC1 = 1, kFixLig = 2, kFixWidth = 4, kFixQuotes = 8, kFixBreaks = 16, kFixEscapes = 32, kFixControls = 64,
  kFixAll = kFixC1 | kFixLig | kFixWidth | kFixQuotes | kFixBreaks | kFixEscapes | kFixControls
};

void emit_quotes_breaks(char32_t c, unsigned fixes, U32& out) {
  if (fixes & kFixQuotes) {
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = '\'';
    else if (c >= 0x201C && c <= 0x201F) c = '"';
  }
  if ((fixes & kFixBreaks) && (c == 0x2028 || c == 0x2029 || c == 0x85)) c = '\n';
  out.push_back(c);
}

void emit_width(char32_t c, unsigned fixes, U32& out) {
  if (fixes & kFixWidth) {
    if (c == 0x3000) c = ' ';
    else if (c >= kWidthLo && c <= kWidthHi) {
      const U32& w = width_map()[c - kWidthLo];
      if (!w.empty()) {
        for (char32_t x : w) emit_quotes_breaks(x, fixes, out);
        return;
      }
    }
  }
  emit_quotes_breaks(c, fixes, out);
}

// The per-character fixes, composed in ftfy's order (c1, ligatures, width,
// quotes, line breaks), then terminal escapes and control characters.
void char_fixes(const U32& in, unsigned fixes, U32& mid, U32& out) {
  mid.clear();
  mid.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char32_t c = in[i];
    if ((fixes & kFixBreaks) && c == '\r') {
      mid.push_back('\n');
      if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
      continue;
    }
    if ((fixes & kFixC1) && c >= 0x80 && c <= 0x9F) c = ftfy_data::kCodecHigh[1][c - 0x80];  // sloppy Windows-1252
    if (fixes & kFixLig)
      if (const char32_t* lig = ligature(c)) {
        for (; *lig; ++lig) emit_width(*lig, fixes, mid);
        continue;
      }
    emit_width(c, fixes, mid);
  }
  out.clear();
  out.reserve(mid.size());
  for (size_t i = 0; i < mid.size(); ++i) {
    char32_t c = mid[i];
    if ((fixes & kFixEscapes) && c == 0x1B && i + 1 < mid.size() && mid[i + 1] == '[') {
      size_t j = i + 2;
      while (j < mid.size() && (u_charType(static_cast<UChar32>(mid[j])) == U_DECIMAL_DIGIT_NUMBER || mid[j] == ';')) ++j;
      if (j < mid.size() && ((mid[j] >= 'a' && mid[j] <= 'z') || (mid[j] >= 'A' && mid[j] <= 'Z'))) {
        i = j;
        continue;
      }
    }
    if ((fixes & kFixControls) && removed_control(c)) continue;
    out.push_back(c);
  }
}

std::string char_fixes_utf8(std::string_view s, unsigned fixes) {
  U32 t, mid, out;
  to_u32(s, t);
  char_fixes(t, fixes, mid, out);
  std::string r;
  to_utf8(out, r);
  return r;
}

std::string with_valid_utf8(std::string_view s) {
  std::string r(s);
  repair_utf8(r);
  return r;
}

void nfc_in_place(std::string& s) {
  if (all_ascii(s)) return;
  static const icu::Normalizer2* nfc = [] {
    UErrorCode err = U_ZERO_ERROR;
    const icu::Normalizer2* n = icu::Normalizer2::getNFCInstance(err);
    return U_SUCCESS(err) ? n : nullptr;
  }();
  if (!nfc) return;
  UErrorCode err = U_ZERO_ERROR;
  icu::StringPiece sp(s.data(), static_cast<int32_t>(s.size()));
  if (nfc->isNormalizedUTF8(sp, err) && U_SUCCESS(err)) return;
  std::string out;
  icu::StringByteSink<std::string> sink(&out, static_cast<int32_t>(s.size()));
  err = U_ZERO_ERROR;
  nfc->normalizeUTF8(0, sp, sink, nullptr, err);
  if (U_SUCCESS(err)) s.swap(out);
}

// Text that no fix can change: printable ASCII, tab, newline, form feed
// (and no '&' where entities are decoded).
bool ftfy_inert(std::string_view s, bool html) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x7F || (u < 0x20 && u != '\t' && u != '\n' && u != '\f') || (html && c == '&')) return false;
  }
  return true;
}

// Reused buffers for the per-caption path (no allocation once warm).
struct Scratch {
  U32 t, mid, out;
  std::string tmp;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// The per-character fixes of char_fixes(kFixAll) straight on UTF-8, for text
// without ESC (with one, the order of escape and control removal matters and
// char_fixes does it). Characters no fix touches are copied as bytes. Returns
// whether anything changed; `top` is the largest code point of the output.
bool char_fixes_fast(std::string_view s, std::string& out, char32_t& top) {
  out.clear();
  out.reserve(s.size() + 8);
  bool changed = false;
  top = 0;
  U32 tmp, mid, res;
  for (size_t i = 0; i < s.size();) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      if (b >= 0x20 && b != 0x7F) {
        out += static_cast<char>(b);
      } else if (b == '\r') {
        out += '\n';
        changed = true;
        if (i < s.size() && s[i] == '\n') ++i;
      } else if (b == '\t' || b == '\n' || b == '\f') {
        out += static_cast<char>(b);
      } else {
        changed = true;  // a removed control character
      }
      continue;
    }
    size_t n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
    if (i + n > s.size()) n = s.size() - i;  // (valid input: never)
    char32_t cp = n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    // Only these ranges can change: C1, ligatures/digraphs, U+02BC, general
    // punctuation (quotes, separators, U+206A..F), U+3000, U+FB00..06,
    // U+FEFF, U+FF01..FFFC.
    bool maybe = (cp >= 0x80 && cp <= 0x9F) || cp == 0x132 || cp == 0x133 || cp == 0x149 ||
                 (cp >= 0x1C4 && cp <= 0x1CC) || (cp >= 0x1F1 && cp <= 0x1F3) || cp == 0x2BC ||
                 (cp >= 0x2018 && cp <= 0x206F) || cp == 0x3000 || (cp >= 0xFB00 && cp <= 0xFB06) ||
                 cp == 0xFEFF || cp >= 0xFF01;
    if (maybe) {
      tmp.assign(1, cp);
      char_fixes(tmp, kFixAll, mid, res);
      if (res != tmp) {
        changed = true;
        for (char32_t c : res) {
          put_utf8(out, c);
          top = std::max(top, c);
        }
        i += n;
        continue;
      }
    }
    top = std::max(top, cp);
    out.append(s, i, n);
    i += n;
  }
  return changed;
}

// One line of ftfy's fix_and_explain: unescape_html, fix_encoding, the
// character fixes and NFC, repeated until a round changes nothing.
void fix_segment(std::string& seg, bool html) {
  Scratch& sc = scratch();
  std::string before;
  for (int round = 0; round < 16; ++round) {
    // One scan: is there anything to do, and which passes does it need?
    bool inert = true, high = false, amp = false;
    for (char c : seg) {
      auto u = static_cast<unsigned char>(c);
      if (u >= 0x20 && u < 0x7F && c != '&') continue;
      high |= u >= 0x80;
      amp |= c == '&';
      inert &= (u == '\t' || u == '\n' || u == '\f' || (c == '&' && !html));
    }
    if (inert) break;
    before = seg;
    if (html && amp) {
      to_u32(seg, sc.t);
      if (ftfy_detail::unescape_html(sc.t, sc.out)) {
        to_utf8(sc.out, seg);
        high = !all_ascii(seg);
      }
    }
    // ftfy's fix_encoding: only where its badness heuristic fires, which
    // needs a character of its classes (all below U+2600, or U+F8FF, U+FFFD):
    // a UTF-8 lead byte C2..E2 or EF.
    if (high && std::any_of(seg.begin(), seg.end(), [](char c) {
          auto u = static_cast<unsigned char>(c);
          return (u >= 0xC2 && u <= 0xE2) || u == 0xEF;
        })) {
      to_u32(seg, sc.t);
      if (ftfy_detail::is_bad(sc.t)) {
        U32 fixed = ftfy_detail::fix_encoding(sc.t);
        if (fixed != sc.t) to_utf8(fixed, seg);
      }
    }
    char32_t top = 0;
    if (seg.find('\x1B') == std::string::npos) {
      if (char_fixes_fast(seg, sc.tmp, top)) seg.swap(sc.tmp);
    } else {
      to_u32(seg, sc.t);
      char_fixes(sc.t, kFixAll, sc.mid, sc.out);
      for (char32_t c : sc.out) top = std::max(top, c);
      to_utf8(sc.out, seg);
    }
    // Below U+0300 every character is NFC and none combines with another.
    if (top >= 0x300) nfc_in_place(seg);
    if (seg == before) break;
  }
}

}  // namespace

namespace ftfy_detail {

// UTF-8 -> code points; each maximal invalid subsequence becomes U+FFFD (the
// callers repair first, so this is only a guard).
void utf8_to_u32(std::string_view s, U32& out) {
  out.clear();
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_seq_len(s, i);
    if (!n) {
      out.push_back(0xFFFD);
      ++i;
      while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
      continue;
    }
    auto b = static_cast<unsigned char>(s[i]);
    char32_t cp = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.push_back(cp);
    i += n;
  }
}

void u32_to_utf8(const U32& t, std::string& out) {
  out.clear();
  out.reserve(t.size() + 8);
  for (char32_t c : t) put_utf8(out, c);
}

}  // namespace ftfy_detail

namespace detail {
// ftfy.fix_text: line by line; from the first line with a '<' on, entities
// are left alone (ftfy's unescape_html="auto" keeps that choice).
void fix_text_valid(std::string& s, bool html) {
  if (ftfy_inert(s, html)) return;
  if (s.find('\n') == std::string::npos) {
    fix_segment(s, html && s.find('<') == std::string::npos);
    return;
  }
  std::string out, seg;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    size_t nl = s.find('\n', pos);
    size_t end = nl == std::string::npos ? s.size() : nl + 1;
    seg.assign(s, pos, end - pos);
    if (html && seg.find('<') != std::string::npos) html = false;
    fix_segment(seg, html);
    out += seg;
    pos = end;
  }
  s.swap(out);
}

}  // namespace detail

std::string fix_text(std::string_view s, const FixTextOptions& opt) {
  std::string r = with_valid_utf8(s);
  detail::fix_text_valid(r, opt.unescape_html);
  return r;
}

std::string fix_encoding(std::string_view s) {
  std::string r = with_valid_utf8(s);
  if (all_ascii(r)) return r;
  std::string out;
  U32 t;
  to_u32(r, t);
  to_utf8(ftfy_detail::fix_encoding(std::move(t)), out);
  return out;
}

bool is_mojibake(std::string_view s) {
  if (all_ascii(s)) return false;
  U32 t;
  to_u32(s, t);
  return ftfy_detail::is_bad(t);
}

std::string restore_byte_a0(std::string_view bytes) { return ftfy_detail::restore_byte_a0(bytes); }

std::string fix_c1_controls(std::string_view s) { return char_fixes_utf8(with_valid_utf8(s), kFixC1); }
std::string fix_latin_ligatures(std::string_view s) { return char_fixes_utf8(with_valid_utf8(s), kFixLig); }
std::string fix_character_width(std::string_view s) { return char_fixes_utf8(with_valid_utf8(s), kFixWidth); }
std::string uncurl_quotes(std::string_view s) { return char_fixes_utf8(with_valid_utf8(s), kFixQuotes); }
std::string fix_line_breaks(std::string_view s) { return char_fixes_utf8(with_valid_utf8(s), kFixBreaks); }
std::string remove_terminal_escapes(std::string_view s) { return char_fixes_utf8(with_valid_utf8(s), kFixEscapes); }
std::string remove_control_chars(std::string_view s) { return char_fixes_utf8(with_valid_utf8(s), kFixControls); }

std::string normalize_nfc(std::string_view s) {
  std::string r = with_valid_utf8(s);
  nfc_in_place(r);
  return r;
}

}  // namespace catlip::text
