// stages/text/src/ftfy_internal.h - the pieces of catlip's ftfy port shared by
// fix_text.cpp, ftfy_encoding.cpp, ftfy_badness.cpp and the generated tables.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace catlip::text {

namespace ftfy_data {

// Class bits of a character (kClasses; the bit order of gen_ftfy_tables.py).
enum ClassBit : uint32_t {
  kC1 = 1u << 0, kBad = 1u << 1, kLaw = 1u << 2, kCurrency = 1u << 3, kStartPunct = 1u << 4,
  kEndPunct = 1u << 5, kNumeric = 1u << 6, kKaomoji = 1u << 7, kUpperAcc = 1u << 8,
  kLowerAcc = 1u << 9, kUpperCommon = 1u << 10, kLowerCommon = 1u << 11, kBox = 1u << 12,
  kCommon = 1u << 13, kFirstOf2 = 1u << 14, kFirstOf3 = 1u << 15, kFirstOf4 = 1u << 16,
  kCont = 1u << 17, kContStrict = 1u << 18,
};
struct CharClass {
  char32_t cp;
  uint32_t mask;
};
struct Entity {
  const char* name;   // "&amp;"
  const char* value;  // UTF-8
};
struct CharRef {
  uint32_t num;
  char32_t value;
};

// ftfy's single-byte encodings in its trial order: latin-1, sloppy-windows-
// 1252, -1251, -1250, -1253, -1254, -1257, iso-8859-2, macroman, cp437.
// kCodecHigh[e][b - 0x80] is what byte b (0x80..0xFF) decodes to; [e][128]
// is byte 0x1A's character (U+FFFD in the sloppy codecs).
extern const int kCodecCount;
extern const char* const kCodecNames[];
extern const char32_t kCodecHigh[][129];
extern const int kClassCount;
extern const CharClass kClasses[];  // sorted by cp
extern const int kEntityCount;
extern const Entity kEntities[];  // sorted by name (bytewise)
extern const int kInvalidCharrefCount;
extern const CharRef kInvalidCharrefs[];  // sorted by num
extern const int kInvalidCodepointCount;
extern const char32_t kInvalidCodepoints[];  // sorted

}  // namespace ftfy_data

namespace ftfy_detail {

using U32 = std::u32string;

// The class bits of c (0 for most characters).
uint32_t char_class(char32_t c);
// ftfy's is_bad: does any of its badness patterns occur in t?
bool is_bad(const U32& t);
// ftfy's fix_encoding on one line (the whole loop of one-step repairs).
U32 fix_encoding(U32 t);
// ftfy's unescape_html (its HTML_ENTITY_RE, HTML5 names and numeric references).
bool unescape_html(const U32& in, U32& out);
// ftfy's restore_byte_a0 on bytes.
std::string restore_byte_a0(std::string_view in);
// UTF-8 <-> code points (invalid UTF-8: U+FFFD per maximal invalid run).
void utf8_to_u32(std::string_view s, U32& out);
void u32_to_utf8(const U32& t, std::string& out);

}  // namespace ftfy_detail
}  // namespace catlip::text
