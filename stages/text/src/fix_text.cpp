// ftfy's default fixes (ftfy.fix_text) for caption cleaning; see
// catlip/text/fix_text.h. clean.cpp calls detail::fix_text_valid.
#include "catlip/text/fix_text.h"

#include "catlip/text/clean.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#include <unicode/locid.h>
#include <unicode/unistr.h>
#include <algorithm>
#include <array>
#include <cstdint>

#include "text_internal.h"

namespace catlip::text {

using detail::append_utf8;
using detail::utf8_seq_len;

// ftfy's default fixes. Internally the text is a sequence of code points.

namespace {

using U32 = std::u32string;

// UTF-8 -> code points; each maximal invalid subsequence becomes U+FFFD (the
// callers repair first, so this is only a guard).
void to_u32(std::string_view s, U32& out) {
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

void put_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);  // NUL too: the caller decides what to drop
  } else {
    append_utf8(out, cp);
  }
}

void to_utf8(const U32& t, std::string& out) {
  out.clear();
  out.reserve(t.size() + 8);
  for (char32_t c : t) put_utf8(out, c);
}

bool all_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

// Windows-1252 bytes 0x80..0x9F; 0 where cp1252 leaves the byte undefined.
constexpr char32_t kCp1252[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

// The byte that "sloppy" Windows-1252 (cp1252 whose undefined bytes pass
// through as the C1 controls, as in Latin-1) or Latin-1 encodes `c` as; -1 if
// neither can.
int sloppy_byte(char32_t c) {
  if (c < 0x100) return static_cast<int>(c);
  if (c < 0x152 || c > 0x2122) return -1;
  for (int k = 0; k < 32; ++k)
    if (kCp1252[k] == c) return 0x80 + k;
  return -1;
}

bool is_cont_byte(int b) { return b >= 0x80 && b <= 0xBF; }

// Continuation-byte symbols after which a word never goes on like this:
// "â€", "Ã©", "ðŸ", "Ð¿", "ä¸". Bytes 80..BF minus the neutral ones
// (… ’ ” – — NBSP SHY ·, which do follow letters) and the weak ones below.
bool strong_cont(int b) {
  switch (b) {
    case 0x85: case 0x92: case 0x94: case 0x96: case 0x97: case 0xA0: case 0xAD: case 0xB7:  // neutral
    case 0x99: case 0x9B: case 0xAE: case 0xB0: case 0xBB:  // weak
      return false;
    default:
      return is_cont_byte(b);
  }
}
// ™ › ® ° »: end a word legitimately ("Å™,"), so only bad before a letter or digit.
bool weak_cont(int b) { return b == 0x99 || b == 0x9B || b == 0xAE || b == 0xB0 || b == 0xBB; }

bool letter_or_digit(char32_t c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7);
}
bool ascii_lower(char32_t c) { return c >= 'a' && c <= 'z'; }
bool space_char(char32_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

bool is_mojibake_u32(const U32& t) {
  const size_t n = t.size();
  for (size_t i = 0; i < n; ++i) {
    char32_t c = t[i];
    if (c >= 0x80 && c <= 0x9F) return true;  // C1 controls: nothing but mojibake
    if (c < 0xC2 || c > 0xF4 || i + 1 == n) continue;
    char32_t d = t[i + 1];
    int b = sloppy_byte(d);
    if (c == 0xC2 || c == 0xC3) {  // Â Ã
      if (is_cont_byte(b)) return true;
      if (d == ' ' && (i == 0 || ascii_lower(t[i - 1]) ||
                       (i >= 2 && space_char(t[i - 1]) && ascii_lower(t[i - 2]))))
        return true;
      continue;
    }
    if (strong_cont(b)) return true;
    if (weak_cont(b) && i + 2 < n && letter_or_digit(t[i + 2])) return true;
  }
  return false;
}

// ftfy's restore_byte_a0 on the bytes of a whole re-encoded text.
void restore_a0(std::string_view in, std::string& out) {
  auto at = [&](std::string_view s, size_t i) { return i < s.size() ? static_cast<unsigned char>(s[i]) : 0x100u; };
  // "Ã la" is "à la", not "àla": the space stays (except before the
  // Portuguese "às", "àquele", "àquela", "àquilo").
  std::string a;
  a.reserve(in.size() + 4);
  for (size_t i = 0; i < in.size(); ++i) {
    if (at(in, i) == 0xC3 && at(in, i + 1) == ' ') {
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
  auto c3 = [](unsigned b) { return b >= 0x80 && b <= 0xBF && b != 0x85 && b != 0xA0; };
  auto cont = [](unsigned b) { return b >= 0x80 && b <= 0xBF; };
  out.clear();
  out.reserve(a.size());
  const std::string_view s = a;
  for (size_t i = 0; i < s.size();) {
    unsigned b0 = at(s, i), b1 = at(s, i + 1), b2 = at(s, i + 2), b3 = at(s, i + 3);
    size_t len = 0;
    if ((b0 == 0xC2 || b0 == 0xC3 || b0 == 0xC5 || b0 == 0xCE || b0 == 0xD0 || b0 == 0xD9) && b1 == ' ') len = 2;
    else if ((b0 == 0xE2 || b0 == 0xE3) && b1 == ' ' && c3(b2)) len = 3;
    else if (b0 >= 0xE0 && b0 <= 0xE3 && c3(b1) && b2 == ' ') len = 3;
    else if (b0 == 0xF0 && ((b1 == ' ' && cont(b2) && cont(b3)) || (cont(b1) && b2 == ' ' && cont(b3)) ||
                            (cont(b1) && cont(b2) && b3 == ' ')))
      len = 4;
    if (!len) {
      out += s[i++];
      continue;
    }
    for (size_t k = 0; k < len; ++k) out += s[i + k] == ' ' ? '\xA0' : s[i + k];
    i += len;
  }
}

// One whole-text step: encode as sloppy cp1252/Latin-1, decode as UTF-8.
bool redecode_whole(U32& t) {
  std::string bytes;
  bytes.reserve(t.size());
  bool high = false;
  for (char32_t c : t) {
    int b = sloppy_byte(c);
    if (b < 0) return false;
    high |= b >= 0x80;
    bytes += static_cast<char>(b);
  }
  if (!high) return false;
  if (!valid_utf8(bytes)) {
    std::string fixed;
    restore_a0(bytes, fixed);
    if (fixed == bytes || !valid_utf8(fixed)) return false;
    bytes.swap(fixed);
  }
  U32 out;
  to_u32(bytes, out);
  if (out == t) return false;
  t.swap(out);
  return true;
}

U32 fix_encoding_u32(U32 t);

// ftfy's decode_inconsistent_utf8: runs that look like UTF-8 read as
// cp1252/Latin-1 (a lead character, then 1-3 continuation characters or
// spaces, repeated), not just after another continuation character, and
// shorter than the text, are fixed on their own if they look like mojibake.
bool redecode_runs(U32& t) {
  const size_t n = t.size();
  auto cont_or_space = [&](size_t j) {
    return j < n && (t[j] == ' ' || is_cont_byte(sloppy_byte(t[j])));
  };
  U32 out;
  bool changed = false;
  for (size_t i = 0; i < n;) {
    if (i == 0 || !is_cont_byte(sloppy_byte(t[i - 1]))) {
      size_t j = i;
      for (;;) {
        int b = j < n ? sloppy_byte(t[j]) : -1;
        size_t k = b >= 0xC2 && b <= 0xDF ? 1 : b >= 0xE0 && b <= 0xEF ? 2 : (b == 0xF0 || b == 0xF3) ? 3 : 0;
        if (!k) break;
        bool ok = true;
        for (size_t m = 1; m <= k && ok; ++m) ok = cont_or_space(j + m);
        if (!ok) break;
        j += 1 + k;
      }
      if (j > i) {
        U32 run = t.substr(i, j - i);
        if (run.size() < n && is_mojibake_u32(run)) {
          U32 fixed = fix_encoding_u32(run);
          changed |= fixed != run;
          out += fixed;
        } else {
          out += run;
        }
        i = j;
        continue;
      }
    }
    out.push_back(t[i++]);
  }
  if (changed) t.swap(out);
  return changed;
}

U32 fix_encoding_u32(U32 t) {
  for (int step = 0; step < 8; ++step) {
    bool ascii = true;
    for (char32_t c : t) ascii &= c < 0x80;
    if (ascii || !is_mojibake_u32(t)) break;
    if (redecode_whole(t)) continue;
    if (redecode_runs(t)) continue;
    break;
  }
  return t;
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
  kC1 = 1, kLig = 2, kWidth = 4, kQuotes = 8, kBreaks = 16, kEscapes = 32, kControls = 64,
  kAllChar = kC1 | kLig | kWidth | kQuotes | kBreaks | kEscapes | kControls
};

void emit_quotes_breaks(char32_t c, unsigned fixes, U32& out) {
  if (fixes & kQuotes) {
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = '\'';
    else if (c >= 0x201C && c <= 0x201F) c = '"';
  }
  if ((fixes & kBreaks) && (c == 0x2028 || c == 0x2029 || c == 0x85)) c = '\n';
  out.push_back(c);
}

void emit_width(char32_t c, unsigned fixes, U32& out) {
  if (fixes & kWidth) {
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
    if ((fixes & kBreaks) && c == '\r') {
      mid.push_back('\n');
      if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
      continue;
    }
    if ((fixes & kC1) && c >= 0x80 && c <= 0x9F && kCp1252[c - 0x80]) c = kCp1252[c - 0x80];
    if (fixes & kLig)
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
    if ((fixes & kEscapes) && c == 0x1B && i + 1 < mid.size() && mid[i + 1] == '[') {
      size_t j = i + 2;
      while (j < mid.size() && ((mid[j] >= '0' && mid[j] <= '9') || mid[j] == ';')) ++j;
      if (j < mid.size() && ((mid[j] >= 'a' && mid[j] <= 'z') || (mid[j] >= 'A' && mid[j] <= 'Z'))) {
        i = j;
        continue;
      }
    }
    if ((fixes & kControls) && removed_control(c)) continue;
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

// The per-character fixes of char_fixes(kAllChar) straight on UTF-8, for text
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
      char_fixes(tmp, kAllChar, mid, res);
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

// One line of fix_text (ftfy fixes line by line), until nothing changes.
// The character fixes are idempotent (none of their outputs is an input of
// another, and ESC itself is always removed), so another round is needed only
// when entities, the encoding repair or NFC changed something, or the
// character fixes made something that those could change.
void fix_segment(std::string& seg, bool html) {
  Scratch& sc = scratch();
  for (int round = 0; round < 4; ++round) {
    // One scan: is there anything to do, and which passes does it need?
    bool inert = true, latin1 = false, esc = false, amp = false;
    for (char c : seg) {
      auto u = static_cast<unsigned char>(c);
      if (u >= 0x20 && u < 0x7F && c != '&') continue;
      latin1 |= u == 0xC2 || u == 0xC3;  // C1 controls and Latin-1 letters
      esc |= u == 0x1B;
      amp |= c == '&';
      inert &= (u == '\t' || u == '\n' || u == '\f' || (c == '&' && !html));
    }
    if (inert) break;
    bool again = false;
    if (html && amp) {
      std::string dec = decode_entities(seg);
      again |= dec != seg;
      seg.swap(dec);
      latin1 = esc = true;  // (entities may have made them)
    }
    // Mojibake needs a C1 control or a Latin-1 letter: UTF-8 lead byte C2/C3.
    if (latin1) {
      to_u32(seg, sc.t);
      if (is_mojibake_u32(sc.t)) {
        U32 fixed = fix_encoding_u32(sc.t);
        if (fixed != sc.t) {
          again = true;
          to_utf8(fixed, seg);
        }
      }
    }
    char32_t top = 0;
    bool changed = false;
    if (!esc || seg.find('\x1B') == std::string::npos) {
      changed = char_fixes_fast(seg, sc.tmp, top);
      if (changed) seg.swap(sc.tmp);
    } else {
      to_u32(seg, sc.t);
      char_fixes(sc.t, kAllChar, sc.mid, sc.out);
      for (char32_t c : sc.out) top = std::max(top, c);
      to_utf8(sc.out, seg);
      changed = true;
    }
    // What they output can be input to the entity or encoding fixes
    // ("Ã　" -> "Ã " is mojibake, "＆amp;" -> "&amp;"): then another round.
    if (changed && !again)
      for (char c : seg)
        if (c == '\xC2' || c == '\xC3' || (html && c == '&')) {
          again = true;
          break;
        }
    // Below U+0300 every character is NFC and none combines with another.
    if (top >= 0x300) {
      sc.tmp = seg;
      nfc_in_place(seg);
      again |= seg != sc.tmp;
    }
    if (!again) break;
  }
}

}  // namespace

namespace detail {
void fix_text_valid(std::string& s, bool html) {
  if (ftfy_inert(s, html)) return;
  if (s.find('\n') == std::string::npos) {
    fix_segment(s, html);
    return;
  }
  std::string out, seg;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    size_t nl = s.find('\n', pos);
    size_t end = nl == std::string::npos ? s.size() : nl + 1;
    seg.assign(s, pos, end - pos);
    fix_segment(seg, html);
    out += seg;
    pos = end;
  }
  s.swap(out);
}

}  // namespace detail

std::string fix_text(std::string_view s, const FixTextOptions& opt) {
  std::string r = with_valid_utf8(s);
  detail::fix_text_valid(r, opt.unescape_html && r.find('<') == std::string::npos);
  return r;
}

std::string fix_encoding(std::string_view s) {
  std::string r = with_valid_utf8(s);
  if (all_ascii(r)) return r;
  std::string out;
  U32 t;
  to_u32(r, t);
  to_utf8(fix_encoding_u32(std::move(t)), out);
  return out;
}

bool is_mojibake(std::string_view s) {
  if (all_ascii(s)) return false;
  U32 t;
  to_u32(s, t);
  return is_mojibake_u32(t);
}

std::string restore_byte_a0(std::string_view bytes) {
  std::string out;
  restore_a0(bytes, out);
  return out;
}

std::string fix_c1_controls(std::string_view s) { return char_fixes_utf8(with_valid_utf8(s), kC1); }
std::string fix_latin_ligatures(std::string_view s) { return char_fixes_utf8(with_valid_utf8(s), kLig); }
std::string fix_character_width(std::string_view s) { return char_fixes_utf8(with_valid_utf8(s), kWidth); }
std::string uncurl_quotes(std::string_view s) { return char_fixes_utf8(with_valid_utf8(s), kQuotes); }
std::string fix_line_breaks(std::string_view s) { return char_fixes_utf8(with_valid_utf8(s), kBreaks); }
std::string remove_terminal_escapes(std::string_view s) { return char_fixes_utf8(with_valid_utf8(s), kEscapes); }
std::string remove_control_chars(std::string_view s) { return char_fixes_utf8(with_valid_utf8(s), kControls); }

std::string normalize_nfc(std::string_view s) {
  std::string r = with_valid_utf8(s);
  nfc_in_place(r);
  return r;
}

}  // namespace catlip::text
