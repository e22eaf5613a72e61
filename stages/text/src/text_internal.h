// stages/text/src/text_internal.h - helpers shared by clean.cpp and
// fix_text.cpp (not installed, not for other areas).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace catlip::text::detail {

// Appends code point cp as UTF-8 (NUL, surrogates and > U+10FFFF as U+FFFD).
void append_utf8(std::string& out, uint32_t cp);
// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid.
size_t utf8_seq_len(std::string_view s, size_t i);
// fix_text on text already known to be valid UTF-8, in place.
void fix_text_valid(std::string& s, bool html);

}  // namespace catlip::text::detail
