// Byte classes the tokenizer and the tagger share (ASCII rules; any byte
// >= 0x80 of UTF-8 text counts as a letter, as Perl's \w does on decoded text).
#pragma once

namespace catlip::text::chars {

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
inline bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
// Perl's \w: letters, digits, '_' (non-ASCII counted as letters).
inline bool is_word(char c) {
  return is_digit(c) || is_upper(c) || is_lower(c) || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}

}  // namespace catlip::text::chars
