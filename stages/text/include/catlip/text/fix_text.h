// catlip/text/fix_text.h - Python ftfy's default fixes, which CoreNet and
// CLIP run on every caption; clean_caption (clean.h) applies fix_text to
// captions with a byte >= 0x80 or an ESC.
#pragma once

#include <string>
#include <string_view>

namespace catlip::text {

// Python ftfy's default fixes (ftfy.fix_text, ftfy 6.x), in C++ with ICU.
// Each takes and returns UTF-8; invalid input bytes are read as U+FFFD.
//
// fix_text applies, line by line and until nothing changes, in ftfy's order:
// unescape_html (decode_entities; skipped when the text has a '<', like
// ftfy's "auto"), fix_encoding, fix_c1_controls, fix_latin_ligatures,
// fix_character_width, uncurl_quotes, fix_line_breaks,
// remove_terminal_escapes, remove_control_chars, then NFC.
//
//   fix_text("a ｄｏｇ and a ﬁsh")  -> "a dog and a fish"
//   fix_text("donâ€™t cafÃ©") -> "don't café"
//
// Differences from ftfy, all on the conservative side: mojibake is only
// undone for UTF-8 that was read as Windows-1252 or Latin-1 (ftfy also tries
// cp1250/1251/1253/1254/1257, ISO-8859-2, MacRoman and cp437); there is no
// CESU-8 / "utf-8-variants" decoding and no replace_lossy_sequences (a U+FFFD
// inside mojibake stops the repair); the "looks like mojibake" test is
// is_mojibake below, a smaller heuristic than ftfy's badness regex; entities
// are decode_entities' set, not all of HTML5's.
struct FixTextOptions {
  bool unescape_html = true;  // as ftfy: only when the text has no '<'
};
std::string fix_text(std::string_view s, const FixTextOptions& opt = {});

// Mojibake repair (ftfy.fix_encoding). If the text looks like mojibake
// (is_mojibake) and every character is one that Windows-1252 or Latin-1 can
// encode, the text is encoded so and decoded as UTF-8 -- after
// restore_byte_a0 where a 0xA0 byte seems to have become a space -- and the
// result replaces it only if that is valid UTF-8; repeated while it changes
// (double mojibake). Otherwise runs that look like UTF-8 mojibake inside
// other text are repaired one by one (ftfy's decode_inconsistent_utf8), e.g.
// "ｄog donâ€™t" -> "ｄog don’t". Ordinary accented,
// CJK or emoji text is left alone.
std::string fix_encoding(std::string_view s);
// The heuristic that gates fix_encoding: true if the text has a C1 control,
// or a Latin-1 letter that can start a UTF-8 sequence (U+00C2..U+00F4)
// followed by a Windows-1252 symbol that no word has there ("â€",
// "Ã©", "ðŸ"; "Å™" only before a letter or digit), or
// Ã/Â before any such continuation character or, after start or a
// lowercase ASCII letter, before a space ("cafÃ ", "Â ").
bool is_mojibake(std::string_view s);
// On bytes about to be decoded as UTF-8: puts back 0xA0 bytes that became
// spaces inside what would otherwise be a UTF-8 sequence (ftfy's
// restore_byte_a0, e.g. "\xF0\x9F\x8C " -> "\xF0\x9F\x8C\xA0"; "\xC3 la" ->
// "\xC3\xA0 la", i.e. "à la").
std::string restore_byte_a0(std::string_view bytes);
// U+0080..U+009F read as Windows-1252 (U+0080 -> U+20AC); the five bytes
// that cp1252 leaves undefined (81 8D 8F 90 9D) stay.
std::string fix_c1_controls(std::string_view s);
// ftfy's Latin ligature/digraph table: ﬀ..ﬆ -> ff fi fl ffi ffl
// ſt st, Ĳ ĳ -> IJ ij, ŉ -> ʼn, Ǆ..ǌ and Ǳ..ǳ ->
// their letters (DŽ Dž dž LJ Lj lj NJ Nj nj DZ Dz dz).
std::string fix_latin_ligatures(std::string_view s);
// NFKC (ICU) of the half-width/full-width forms U+FF01..U+FFEF, and U+3000
// IDEOGRAPHIC SPACE -> ' ': "ＬＯＵＤ" -> "LOUD".
std::string fix_character_width(std::string_view s);
// U+02BC and U+2018..U+201B -> ', U+201C..U+201F -> " (ftfy's sets; primes
// U+2032/U+2033 are left alone, as ftfy does).
std::string uncurl_quotes(std::string_view s);
// CRLF, CR, U+2028, U+2029 and U+0085 -> '\n'.
std::string fix_line_breaks(std::string_view s);
// Removes ANSI escapes ESC '[' [0-9;]* [A-Za-z].
std::string remove_terminal_escapes(std::string_view s);
// Removes U+0000..08, 0B, 0E..1F, 7F, U+206A..206F, U+FEFF, U+FFF9..FFFC
// (keeps tab, newline, form feed and CR, as ftfy does).
std::string remove_control_chars(std::string_view s);
// NFC (ICU Normalizer2).
std::string normalize_nfc(std::string_view s);

}  // namespace catlip::text
