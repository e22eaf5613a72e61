// ftfy's "badness" heuristic (is_bad: does the text look like mojibake?) over
// the generated character classes (ftfy_tables.cpp); catlip's own matcher.
#include <unicode/uchar.h>

#include <algorithm>
#include <array>
#include <vector>

#include "ftfy_internal.h"

namespace catlip::text::ftfy_detail {

using namespace ftfy_data;

namespace {

constexpr char32_t kClassDirect = 0x2600;  // classes below this: one array lookup

const std::vector<uint32_t>& class_array() {
  static const std::vector<uint32_t> a = [] {
    std::vector<uint32_t> v(kClassDirect, 0);
    for (int k = 0; k < kClassCount; ++k)
      if (kClasses[k].cp < kClassDirect) v[kClasses[k].cp] = kClasses[k].mask;
    return v;
  }();
  return a;
}

// Python's str.isspace().
bool py_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}
// Python's \w on str: isalnum() or '_'.
bool py_word(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  auto u = static_cast<UChar32>(c);
  return u_isalpha(u) || u_getIntPropertyValue(u, UCHAR_NUMERIC_TYPE) != U_NT_NONE;
}
bool ascii_letter(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool ascii_lower_letter(char32_t c) { return c >= 'a' && c <= 'z'; }
bool one_of(char32_t c, std::u32string_view set) { return set.find(c) != std::u32string_view::npos; }

// The badness patterns that start at t[i] (ftfy 6.3's BADNESS_RE, one
// alternative per line in its order).
bool bad_at(const U32& t, size_t i) {
  const size_t n = t.size();
  auto ch = [&](size_t k) -> char32_t { return k < n ? t[k] : 0xFFFFFFFF; };
  auto cl = [&](size_t k) -> uint32_t { return k < n ? char_class(t[k]) : 0; };
  const uint32_t c0 = cl(i), c1 = cl(i + 1);
  const char32_t a = t[i], b = ch(i + 1);
  constexpr uint32_t kLetterish = kLowerAcc | kUpperAcc | kBox | kStartPunct | kEndPunct | kCurrency | kNumeric | kLaw;
  if (c0 & kC1) return true;
  if ((c0 & (kBad | kLetterish)) && (c1 & kBad)) return true;
  if (ascii_letter(a) && (c1 & (kLowerCommon | kUpperCommon)) && (cl(i + 2) & kBad)) return true;
  if ((c0 & kBad) && (c1 & kLetterish)) return true;
  if ((c0 & (kLowerAcc | kLowerCommon | kBox | kEndPunct | kCurrency | kNumeric)) && (c1 & kUpperAcc)) return true;
  if ((c0 & (kBox | kEndPunct | kCurrency | kNumeric)) && (c1 & kLowerAcc)) return true;
  if ((c0 & (kLowerAcc | kBox | kEndPunct)) && (c1 & kCurrency)) return true;
  if (py_space(a) && (c1 & kUpperAcc) && (cl(i + 2) & kCurrency)) return true;
  if ((c0 & (kUpperAcc | kBox)) && (c1 & (kNumeric | kLaw))) return true;
  if ((c0 & (kLowerAcc | kUpperAcc | kBox | kCurrency | kEndPunct)) && (c1 & kStartPunct) && (cl(i + 2) & kNumeric))
    return true;
  if ((c0 & (kLowerAcc | kUpperAcc | kCurrency | kNumeric | kBox | kLaw)) && (c1 & kEndPunct) &&
      (cl(i + 2) & kStartPunct))
    return true;
  if ((c0 & (kCurrency | kNumeric | kBox)) && (c1 & kStartPunct)) return true;
  if (ascii_lower_letter(a) && (c1 & kUpperAcc) && (cl(i + 2) & (kStartPunct | kCurrency))) return true;
  if ((c0 & kBox) && (c1 & kKaomoji)) return true;
  if ((c0 & (kLowerAcc | kUpperAcc | kCurrency | kNumeric | kStartPunct | kEndPunct | kLaw)) && (c1 & kBox))
    return true;
  if ((c0 & kBox) && (c1 & kEndPunct)) return true;
  if ((c0 & (kLowerAcc | kUpperAcc)) && (c1 & (kStartPunct | kEndPunct)) && i + 2 < n && py_word(t[i + 2]))
    return true;
  if ((a == U'\u0152' || a == U'\u0153') && i + 1 < n && !ascii_letter(b)) return true;
  if ((c0 & kUpperAcc) && b == U'\u00B0') return true;
  if (one_of(a, U"\u00C2\u00C3\u00CE\u00D0") &&
      (one_of(b, U"\u20AC\u0153\u0160\u0161\u00A2\u00A3\u0178\u017E\u00A0\u00AD\u00AE\u00A9\u00B0\u00B7\u00BB"
                 U"\u2013\u2014\u00B4") ||
       (c1 & (kStartPunct | kEndPunct))))
    return true;
  if (a == U'\u00D7' && (b == U'\u00B2' || b == U'\u00B3')) return true;
  if (one_of(a, U"\u00D8\u00D9")) {
    auto arabic = [&](size_t k) {
      return (cl(k) & (kCommon | kCurrency | kBad | kNumeric | kStartPunct)) ||
             one_of(ch(k), U"\u0178\u0160\u00AE\u00B0\u00B5\u00BB");
    };
    if (arabic(i + 1) && one_of(ch(i + 2), U"\u00D8\u00D9") && arabic(i + 3)) return true;
  }
  if (a == U'\u00E0' && one_of(b, U"\u00B2\u00B5\u00B9\u00BC\u00BD\u00BE")) return true;
  if (a == U'\u221A' &&
      one_of(b, U"\u00B1\u2202\u2020\u2260\u00AE\u2122\u00B4\u2264\u2265\u00A5\u00B5\u00F8"))
    return true;
  if (a == U'\u2248' && (b == U'\u00B0' || b == U'\u00A2')) return true;
  if (a == U'\u201A') {
    if (b == U'\u00C4' && one_of(ch(i + 2), U"\u00EC\u00EE\u00EF\u00F2\u00F4\u00FA\u00F9\u00FB\u2020\u00B0\u00A2\u03C0"))
      return true;
    if ((b == U'\u00E2' || b == U'\u00F3') && one_of(ch(i + 2), U"\u00E0\u00E4\u00B0\u00EA")) return true;
  }
  if (a == U'\u0432' && b == U'\u0402') return true;
  constexpr std::u32string_view kCyr = U"\u0412\u0413\u0420\u0421";
  if (one_of(a, kCyr) &&
      ((c1 & (kC1 | kBad | kStartPunct | kEndPunct | kCurrency)) || b == U'\u00B0' || b == U'\u00B5') &&
      one_of(ch(i + 2), kCyr))
    return true;
  if (a == U'\u0413' && b == U'\u045E' && ch(i + 2) == U'\u0412' && ch(i + 3) == U'\u0402' &&
      ch(i + 4) == U'\u0412' && i + 5 < n && t[i + 5] != '\n' && i + 6 < n &&
      (ascii_letter(t[i + 6]) || t[i + 6] == ' '))
    return true;
  if (a == U'\u00C3' && (b == U'\u00A0' || b == U'\u00A1')) return true;
  if (ascii_lower_letter(a)) {
    if ((b == U'\u00C3' || b == U'\u00C2') && ch(i + 2) == ' ') return true;
    if (i + 1 < n && py_space(b) && (ch(i + 2) == U'\u00C3' || ch(i + 2) == U'\u00C2') && ch(i + 3) == ' ')
      return true;
  }
  if (i == 0 && (a == U'\u00C3' || a == U'\u00C2') && b == ' ') return true;
  if ((ascii_lower_letter(a) || one_of(a, U".,?!") || (c0 & kEndPunct)) && b == U'\u00C2' &&
      (ch(i + 2) == ' ' || (cl(i + 2) & (kStartPunct | kEndPunct))))
    return true;
  if (a == U'\u03B2' && b == U'\u20AC' && one_of(ch(i + 2), U"\u2122\u00A0\u0386\u00AD\u00AE\u00B0")) return true;
  constexpr std::u32string_view kGreek = U"\u0392\u0393\u039E\u039F";
  if (one_of(a, kGreek) && ((c1 & (kC1 | kBad | kStartPunct | kEndPunct | kCurrency)) || b == U'\u00B0') &&
      one_of(ch(i + 2), kGreek))
    return true;
  if (a == U'\u0101' && b == U'\u20AC') return true;
  return false;
}

}  // namespace

uint32_t char_class(char32_t c) {
  if (c < kClassDirect) return class_array()[c];
  const CharClass* end = kClasses + kClassCount;
  const CharClass* it = std::lower_bound(kClasses, end, c, [](const CharClass& e, char32_t v) { return e.cp < v; });
  return it != end && it->cp == c ? it->mask : 0;
}

bool is_bad(const U32& t) {
  for (size_t i = 0; i < t.size(); ++i) {
    char32_t c = t[i];
    // Every pattern starts with a non-ASCII character, a space or an ASCII
    // letter or . , ? ! followed by a non-ASCII one.
    if (c < 0x80) {
      if (i + 1 >= t.size() || (t[i + 1] < 0x80 && !(i + 2 < t.size() && t[i + 2] >= 0x80))) continue;
    }
    if (bad_at(t, i)) return true;
  }
  return false;
}

}  // namespace catlip::text::ftfy_detail
