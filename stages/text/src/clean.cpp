// The implementation of catlip/text/clean.h: caption cleaning as CoreNet does it, made total.
#include "catlip/text/clean.h"

#include "text_internal.h"

#include <unicode/stringpiece.h>
#include <unicode/locid.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <array>
#include <cstdint>

namespace catlip::text {
namespace {

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

namespace detail {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid.
size_t utf8_seq_len(std::string_view s, size_t i) {
  auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return 1;
  size_t n;
  uint32_t lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) n = 2;
  else if (b == 0xE0) { n = 3; lo = 0xA0; }
  else if (b >= 0xE1 && b <= 0xEC) n = 3;
  else if (b == 0xED) { n = 3; hi = 0x9F; }
  else if (b >= 0xEE && b <= 0xEF) n = 3;
  else if (b == 0xF0) { n = 4; lo = 0x90; }
  else if (b >= 0xF1 && b <= 0xF3) n = 4;
  else if (b == 0xF4) { n = 4; hi = 0x8F; }
  else return 0;
  if (i + n > s.size()) return 0;
  auto c1 = static_cast<unsigned char>(s[i + 1]);
  if (c1 < lo || c1 > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    auto c = static_cast<unsigned char>(s[i + k]);
    if (c < 0x80 || c > 0xBF) return 0;
  }
  return n;
}

}  // namespace detail

using detail::append_utf8;
using detail::utf8_seq_len;

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_seq_len(s, i);
    if (!n) return false;
    i += n;
  }
  return true;
}

void drop_invalid_utf8(std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_seq_len(s, i);
    if (n) {
      out.append(s, i, n);
      i += n;
    } else {
      ++i;
    }
  }
  s.swap(out);
}

bool repair_utf8(std::string& s) {
  if (valid_utf8(s)) return false;
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_seq_len(s, i);
    if (n) {
      out.append(s, i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
      // Skip stray continuation bytes of the same broken sequence.
      while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
    }
  }
  s.swap(out);
  return true;
}

std::string url_unquote(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      out += static_cast<char>(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string decode_entities(std::string_view s) {
  static const struct { const char* name; uint32_t cp; } kNamed[] = {
      {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", ' '},
      {"ndash", 0x2013}, {"mdash", 0x2014}, {"hellip", 0x2026}, {"copy", 0xA9},
      {"reg", 0xAE}, {"rsquo", 0x2019}, {"lsquo", 0x2018}, {"ldquo", 0x201C}, {"rdquo", 0x201D}};
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    size_t semi = s.find(';', i + 1);
    if (semi == std::string_view::npos || semi - i > 10) {
      out += s[i];
      continue;
    }
    std::string_view ent = s.substr(i + 1, semi - i - 1);
    bool done = false;
    if (ent.size() >= 2 && ent[0] == '#') {
      uint32_t cp = 0;
      bool hex = ent[1] == 'x' || ent[1] == 'X';
      size_t k = hex ? 2 : 1;
      bool ok = k < ent.size();
      for (; k < ent.size() && ok; ++k) {
        int v = hex ? hexval(ent[k]) : (ent[k] >= '0' && ent[k] <= '9' ? ent[k] - '0' : -1);
        if (v < 0 || cp > 0x10FFFF) ok = false;
        else cp = cp * (hex ? 16 : 10) + v;
      }
      if (ok) {
        append_utf8(out, cp);
        done = true;
      }
    } else {
      for (auto& e : kNamed)
        if (ent == e.name) {
          append_utf8(out, e.cp);
          done = true;
          break;
        }
    }
    if (done) i = semi;
    else out += s[i];
  }
  return out;
}


CleanResult clean_caption(std::string_view raw, const CleanOptions& opt) {
  CleanResult r;
  clean_caption(raw, opt, r);
  return r;
}

void clean_caption(std::string_view raw, const CleanOptions& opt, CleanResult& r) {
  r.text.clear();
  r.invalid_utf8 = r.rejected = r.truncated = false;
  if (raw.size() > opt.max_bytes) {
    // Cut at a character boundary so that a long caption does not become an
    // invalid one.
    size_t cut = opt.max_bytes;
    while (cut > 0 && (static_cast<unsigned char>(raw[cut]) & 0xC0) == 0x80) --cut;
    raw = raw.substr(0, cut);
    r.truncated = true;
  }
  // Fast path: printable ASCII with nothing to unquote, strip or decode
  // (most captions) is lowercased and space-collapsed in one pass; anything
  // else restarts on the general path below.
  {
    std::string& out = r.text;
    out.resize(raw.size());
    char* w = out.data();
    char* const w0 = w;
    bool plain = true;
    for (char c : raw) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u >= 0x7F || u == '%' || u == '+' || u == '<' || u == '&') {
        plain = false;
        break;
      }
      if (c == ' ') {
        if (w != w0 && w[-1] != ' ') *w++ = ' ';
        continue;
      }
      *w++ = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    }
    if (plain) {
      while (w != w0 && w[-1] == ' ') --w;
      out.resize(static_cast<size_t>(w - w0));
      return;
    }
    out.clear();
  }
  // Each pass runs only when its trigger character is present.
  std::string s = raw.find('%') != std::string_view::npos ? url_unquote(raw) : std::string(raw);
  for (char& c : s)
    if (c == '+') c = ' ';
  if (!valid_utf8(s)) {
    r.invalid_utf8 = true;
    if (!opt.repair_utf8) {
      r.rejected = true;
      return;
    }
    // Invalid bytes are dropped (Python's errors="ignore"): a U+FFFD would
    // become a token, and an unknown token is tagged as a noun.
    drop_invalid_utf8(s);
  }
  if (s.find('<') != std::string::npos) {
    // Strip tags: '<' up to the next '>' on the same line (CoreNet's "<.*?>").
    std::string notags;
    notags.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '<') {
        size_t j = i + 1;
        while (j < s.size() && s[j] != '>' && s[j] != '\n') ++j;
        if (j < s.size() && s[j] == '>') {
          i = j;
          continue;
        }
      }
      notags += s[i];
    }
    s.swap(notags);
  }
  std::string dec = s.find('&') != std::string::npos ? decode_entities(s) : std::move(s);
  // ftfy.fix_text (CoreNet and CLIP run it): only text with a byte >= 0x80
  // or an ESC can change; entities are already decoded.
  for (char c : dec)
    if (static_cast<unsigned char>(c) >= 0x80 || c == '\x1B') {
      detail::fix_text_valid(dec, /*html=*/false);
      break;
    }
  // Newlines and other control whitespace become spaces; runs of spaces
  // collapse; ends are stripped; letters are lowercased.
  std::string& out = r.text;
  out.reserve(dec.size());
  for (char c : dec) {
    auto u = static_cast<unsigned char>(c);
    if (u == '\n' || u == '\r' || u == '\t' || u == '\v' || u == '\f' || u == ' ') {
      if (!out.empty() && out.back() != ' ') out += ' ';
      continue;
    }
    if (u < 0x20 || u == 0x7F) continue;  // other control characters
    out += (u >= 'A' && u <= 'Z') ? static_cast<char>(u + 32) : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  // Non-ASCII letters are lowercased too, as Python's str.lower() does in
  // CoreNet and CLIP ("ÉCOLE" -> "école"): ICU's full case mapping, root locale.
  for (char c : out)
    if (static_cast<unsigned char>(c) >= 0x80) {
      std::string lowered;
      icu::UnicodeString::fromUTF8(icu::StringPiece(out.data(), static_cast<int32_t>(out.size())))
          .toLower(icu::Locale::getRoot())
          .toUTF8String(lowered);
      if (lowered.size() > opt.max_bytes) {  // a few letters grow ("İ" -> "i̇"): stay within max_bytes
        size_t cut = opt.max_bytes;
        while (cut > 0 && (static_cast<unsigned char>(lowered[cut]) & 0xC0) == 0x80) --cut;
        lowered.resize(cut);
        r.truncated = true;
      }
      out.swap(lowered);
      break;
    }
  // Decoding "&#xFFFD;" etc. cannot create invalid UTF-8 (append_utf8 is safe).
}

}  // namespace catlip::text
