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
// unescape_html (HTML5 entities; from the first line with a '<' on, not at
// all, like ftfy's "auto"), fix_encoding, fix_c1_controls, fix_latin_ligatures,
// fix_character_width, uncurl_quotes, fix_line_breaks,
// remove_terminal_escapes, remove_control_chars, then NFC.
//
//   fix_text("a ｄｏｇ and a ﬁsh")  -> "a dog and a fish"
//   fix_text("donâ€™t cafÃ©") -> "don't café"
//
// Mojibake repair, the badness heuristic and entity decoding follow ftfy
// 6.3.1's algorithm and data (stages/text/README.md: the parity check
// against ftfy itself, 100% on 100,000 dirty strings).
struct FixTextOptions {
  bool unescape_html = true;  // as ftfy: only on the lines before the first '<'
};
std::string fix_text(std::string_view s, const FixTextOptions& opt = {});

// Mojibake repair (ftfy.fix_encoding): if the text looks like mojibake
// (is_mojibake), it is encoded in the first of ftfy's single-byte codecs
// that can (Latin-1, sloppy Windows-1252/1251/1250/1253/1254/1257,
// ISO-8859-2, MacRoman, cp437) and decoded as UTF-8 (after restore_byte_a0
// and, for the sloppy codecs, ftfy's replace_lossy_sequences; CESU-8 too);
// failing that, runs that look like UTF-8 mojibake inside other text are
// repaired one by one (decode_inconsistent_utf8), e.g. "ｄog donâ€™t" ->
// "ｄog don’t"; then C1 controls as Windows-1252. Repeated while it
// changes (double mojibake). Ordinary accented, CJK or emoji text is left alone.
std::string fix_encoding(std::string_view s);
// ftfy's badness heuristic (is_bad): an unlikely juxtaposition of
// characters -- a C1 control, "â€", "Ã©", "ðŸ", "вЂ", "√©", a box-drawing
// character after an accented letter, ... ("Å™," alone is fine).
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
// Removes ANSI escapes ESC '[' (decimal digits or ';')* [A-Za-z].
std::string remove_terminal_escapes(std::string_view s);
// Removes U+0000..08, 0B, 0E..1F, 7F, U+206A..206F, U+FEFF, U+FFF9..FFFC
// (keeps tab, newline, form feed and CR, as ftfy does).
std::string remove_control_chars(std::string_view s);
// NFC (ICU Normalizer2).
std::string normalize_nfc(std::string_view s);

}  // namespace catlip::text
