// catlip/text/clean.h - caption cleaning as CoreNet does it, made total.
//
// CoreNet unquotes URLs, turns '+' into spaces, strips HTML tags, runs
// ftfy.fix_text, drops newlines, collapses spaces, strips and lowercases. Web
// captions also carry invalid UTF-8 and absurd sizes; here those are repaired
// (or rejected) and truncated, and reported to the caller so a stage can count
// them. The ftfy part (fix_text below) runs only on captions with a byte
// >= 0x80 or an ESC: printable ASCII never reaches it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "catlip/text/fix_text.h"

namespace catlip::text {

struct CleanOptions {
  bool repair_utf8 = true;          // drop invalid bytes; false: reject the caption
  size_t max_bytes = 16384;         // longer input is cut (at a UTF-8 boundary)
};

struct CleanResult {
  std::string text;                 // cleaned caption (may be empty)
  bool invalid_utf8 = false;        // input had invalid UTF-8 (repaired unless rejected)
  bool rejected = false;            // invalid UTF-8 with repair off: text is empty
  bool truncated = false;           // input exceeded max_bytes
};

CleanResult clean_caption(std::string_view raw, const CleanOptions& opt = {});
// Same, reusing out.text's storage.
void clean_caption(std::string_view raw, const CleanOptions& opt, CleanResult& out);

// Replaces each maximal invalid UTF-8 subsequence by U+FFFD. Returns true if
// anything was replaced.
bool repair_utf8(std::string& s);
// Removes invalid UTF-8 bytes (what clean_caption does when repairing).
void drop_invalid_utf8(std::string& s);
bool valid_utf8(std::string_view s);

// Decodes %XX escapes (invalid escapes are kept verbatim), like
// urllib.parse.unquote; the result may be invalid UTF-8.
std::string url_unquote(std::string_view s);
// Decodes &amp; &lt; &gt; &quot; &apos; &#39; &nbsp; and numeric entities.
std::string decode_entities(std::string_view s);

}  // namespace catlip::text
