// The implementation of catlip/text/tokenize.h: NLTK's TreebankWordTokenizer, without regexes.
#include "catlip/text/tokenize.h"

#include "chars.h"

#include <array>
#include <cstring>
#include <memory>

namespace catlip::text {
namespace {

using chars::is_digit;
using chars::is_word;
bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
// A byte set, built once per distinct literal: find_first_of/strchr would
// call memchr for every byte of the caption.
struct CharSet {
  bool m[256] = {};
  explicit CharSet(const char* s) {
    for (; *s; ++s) m[static_cast<unsigned char>(*s)] = true;
  }
  bool operator()(char c) const { return m[static_cast<unsigned char>(c)]; }
};
const CharSet& charset(const char* set) {
  // The sets used below are string literals: cache by pointer.
  static thread_local std::vector<std::pair<const char*, std::unique_ptr<CharSet>>> cache;
  for (auto& [k, v] : cache)
    if (k == set) return *v;
  cache.emplace_back(set, std::make_unique<CharSet>(set));
  return *cache.back().second;
}
bool in(char c, const char* set) { return charset(set)(c); }

// Pads every character of `set` with spaces: re.sub(r"[set]", r" \g<0> ").
std::string pad_chars(const std::string& t, const char* set_chars) {
  const CharSet& set = charset(set_chars);
  std::string o;
  o.reserve(t.size() + 16);
  for (char c : t) {
    if (set(c)) {
      o += ' ';
      o += c;
      o += ' ';
    } else {
      o += c;
    }
  }
  return o;
}

// Non-overlapping literal replacement of `pat` by " pat ".
std::string pad_literal(const std::string& t, std::string_view pat) {
  std::string o;
  o.reserve(t.size() + 16);
  for (size_t i = 0; i < t.size();) {
    if (t.compare(i, pat.size(), pat) == 0) {
      o += ' ';
      o += pat;
      o += ' ';
      i += pat.size();
    } else {
      o += t[i++];
    }
  }
  return o;
}

bool has(const std::string& t, std::string_view pat) { return t.find(pat) != std::string::npos; }

bool word_at(const std::string& t, size_t i) { return i < t.size() && is_word(t[i]); }
// \b at position i (between t[i-1] and t[i]).
bool boundary(const std::string& t, size_t i) {
  bool before = i > 0 && is_word(t[i - 1]);
  return before != word_at(t, i);
}
bool iequal(const std::string& t, size_t i, std::string_view w) {
  if (i + w.size() > t.size()) return false;
  for (size_t k = 0; k < w.size(); ++k)
    if (lower(t[i + k]) != w[k]) return false;
  return true;
}

// r"(?i)\b(A)(B)\b" -> r" \1 \2 " (or (?=\s) at the end when `space_after`).
bool contains_ci(const std::string& t, std::string_view a, std::string_view b = {}) {
  for (size_t i = 0; i + a.size() + b.size() <= t.size(); ++i)
    if (lower(t[i]) == a[0] && iequal(t, i, a) && iequal(t, i + a.size(), b)) return true;
  return false;
}

void split_contraction(std::string& t, std::string_view a, std::string_view b, bool space_after) {
  if (!contains_ci(t, a, b)) return;
  std::string o;
  o.reserve(t.size() + 8);
  size_t n = a.size() + b.size();
  for (size_t i = 0; i < t.size();) {
    if (boundary(t, i) && iequal(t, i, a) && iequal(t, i + a.size(), b)) {
      size_t j = i + n;
      bool end_ok = space_after ? (j < t.size() && is_space(t[j])) : boundary(t, j);
      if (end_ok) {
        o += ' ';
        o.append(t, i, a.size());
        o += ' ';
        o.append(t, i + a.size(), b.size());
        o += ' ';
        i = j;
        continue;
      }
    }
    o += t[i++];
  }
  t.swap(o);
}

// r"(?i) ('t)(B)\b" -> r" \1 \2 ".
void split_tis(std::string& t, std::string_view b) {
  if (!contains_ci(t, "'t")) return;
  std::string o;
  o.reserve(t.size() + 8);
  for (size_t i = 0; i < t.size();) {
    if (t[i] == ' ' && iequal(t, i + 1, "'t") && iequal(t, i + 3, b) &&
        boundary(t, i + 3 + b.size())) {
      o += ' ';
      o.append(t, i + 1, 2);
      o += ' ';
      o.append(t, i + 3, b.size());
      o += ' ';
      i += 3 + b.size();
      continue;
    }
    o += t[i++];
  }
  t.swap(o);
}

// The common case in one pass. A caption without backticks, "''", "--",
// ".." or doubled ',' / ':' is changed by only these NLTK rules:
// '"' becomes `` at the start or after a space or opening bracket
// (STARTING_QUOTES), else '' (ENDING_QUOTES 2), split off either way;
// ',' and ':' not followed by a digit are split off (PUNCTUATION 1-2);
// ; @ # $ % & ? ! and brackets are split off (PUNCTUATION 4, 6, PARENS);
// the final '.' before closing brackets and quotes is split off
// (PUNCTUATION 5); at the end of each resulting chunk, a clitic 's 'm 'd or
// a lone ' is split off (PUNCTUATION 7, ENDING_QUOTES 3), then 'll 're 've
// n't (ENDING_QUOTES 4); and the MacIntyre contractions (cannot, gonna,
// 'tis, ...) send the caption to the full path. Returns false, having written nothing, when the caption needs
// the full path.
bool fast_tokenize(std::string_view t, std::vector<std::string>& toks) {
  // 1: allowed; 2: split off on its own; 4: ',' or ':'; 8: closing bracket.
  static const auto kCls = [] {
    std::array<unsigned char, 256> a{};
    for (int c = 'a'; c <= 'z'; ++c) a[c] = a[c - 32] = 1;
    for (int c = '0'; c <= '9'; ++c) a[c] = 1;
    for (int c = 0x80; c < 0x100; ++c) a[c] = 1;
    a[' '] = a['.'] = a['-'] = a['\''] = 1;
    a['"'] = 1 | 2;
    for (unsigned char c : {';', '@', '#', '$', '%', '&', '?', '!', '(', ')', '[', ']', '{', '}', '<', '>'}) a[c] = 1 | 2;
    a[','] = a[':'] = 1 | 4;
    for (unsigned char c : {']', ')', '}', '>', '\'', '"'}) a[c] |= 8;
    return a;
  }();
  const auto* b = reinterpret_cast<const unsigned char*>(t.data());
  const size_t n = t.size();
  bool doubled = false;
  for (size_t i = 0; i < n; ++i) {
    if (!(kCls[b[i]] & 1)) return false;
    if (i + 1 < n) {
      if ((kCls[b[i]] & 4) && (kCls[b[i + 1]] & 4)) return false;  // P1 would consume the second
      if (b[i] == b[i + 1] && (b[i] == '-' || b[i] == '.' || b[i] == '\'')) return false;
      const unsigned char c = b[i] | 0x20;
      doubled |= c == (b[i + 1] | 0x20) && (c == 'n' || c == 'm' || c == 't');
    }
  }
  if (doubled) {
    std::string s(t);
    for (const char* w : {"cannot", "gimme", "gonna", "gotta", "lemme", "wanna"})
      if (contains_ci(s, w)) return false;
  }
  if (t.find('\'') != std::string_view::npos) {
    std::string s(t);
    for (const char* w : {"d'ye", "more'n", "'tis", "'twas"})
      if (contains_ci(s, w)) return false;
  }
  // The final period: the last '.', followed only by closing brackets and
  // spaces, preceded by something (never '.', excluded above).
  size_t final_dot = std::string_view::npos;
  {
    size_t p = t.rfind('.');
    if (p != std::string_view::npos && p >= 1) {
      size_t q = p + 1;
      while (q < n && (kCls[b[q]] & 8)) ++q;
      while (q < n && b[q] == ' ') ++q;
      if (q == n) final_dot = p;
    }
  }
  size_t out = 0;
  auto emit = [&](size_t start, size_t len) {
    if (out < toks.size()) toks[out].assign(t.data() + start, len);
    else toks.emplace_back(t.data() + start, len);
    ++out;
  };
  // A chunk between split points, with its clitics split off its end.
  // `spaced`: a space follows the chunk already when PUNCTUATION 7 runs (an
  // original space, or a character padded by PUNCTUATION 1-6), so a final
  // lone ' goes first and ENDING_QUOTES 3 may then split 's; brackets and
  // the end of the text are padded only later.
  auto chunk = [&](size_t s0, size_t e, bool spaced) {
    std::string_view c(t.data() + s0, e - s0);
    size_t p7 = 0;  // PUNCTUATION 7: ([^'])' before a space
    if (spaced && c.size() >= 2 && c.back() == '\'' && c[c.size() - 2] != '\'') {
      p7 = 1;
      c.remove_suffix(1);
    }
    size_t tail3 = 0;  // ENDING_QUOTES 3: ([^' ])('[sSmMdD]|') before a space
    if (c.size() >= 3 && c[c.size() - 2] == '\'' && std::strchr("sSmMdD", c.back()) && c[c.size() - 3] != '\'')
      tail3 = 2;
    else if (c.size() >= 2 && c.back() == '\'' && c[c.size() - 2] != '\'')
      tail3 = 1;
    std::string_view body = c.substr(0, c.size() - tail3);
    size_t tail4 = 0;  // ENDING_QUOTES 4: ([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) before a space
    if (body.size() >= 4 && body[body.size() - 4] != '\'') {
      std::string_view e3 = body.substr(body.size() - 3);
      for (const char* cl : {"'ll", "'LL", "'re", "'RE", "'ve", "'VE", "n't", "N'T"})
        if (e3 == cl) tail4 = 3;
    }
    emit(s0, body.size() - tail4);
    if (tail4) emit(s0 + body.size() - tail4, tail4);
    if (tail3) emit(s0 + body.size(), tail3);
    if (p7) emit(s0 + c.size(), 1);
  };
  size_t start = std::string_view::npos;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = b[i];
    const bool split = c == ' ' || (kCls[c] & 2) || i == final_dot ||
                       ((kCls[c] & 4) && !(i + 1 < n && is_digit(t[i + 1])));
    if (split) {
      // Brackets and '"' (as '') are padded after PUNCTUATION 7 runs.
      if (start != std::string_view::npos)
        chunk(start, i, c == ' ' || i == final_dot || !(kCls[c] & 8 || c == '(' || c == '[' || c == '{' || c == '<'));
      start = std::string_view::npos;
      if (c == '"') {
        // A '"' at 0 becomes `` padded with spaces (STARTING_QUOTES 1-2), so a
        // second one right after it is preceded by a space too.
        const bool opening = i == 0 || std::strchr(" ([{<", t[i - 1]) != nullptr || (i == 1 && t[0] == '"');
        if (out < toks.size()) toks[out].assign(opening ? "``" : "''");
        else toks.emplace_back(opening ? "``" : "''");
        ++out;
      } else if (c != ' ') {
        emit(i, 1);
      }
      continue;
    }
    if (start == std::string_view::npos) start = i;
  }
  if (start != std::string_view::npos) chunk(start, n, false);
  toks.resize(out);
  return true;
}

}  // namespace

std::vector<std::string> treebank_tokenize(std::string_view text) {
  std::vector<std::string> toks;
  treebank_tokenize(text, toks);
  return toks;
}

void treebank_tokenize(std::string_view text, std::vector<std::string>& toks) {
  if (fast_tokenize(text, toks)) return;
  treebank_tokenize_full(text, toks);
}

void treebank_tokenize_full(std::string_view text, std::vector<std::string>& toks) {
  // Per-thread scratch buffers: no allocation per caption once warm.
  static thread_local std::string t, o;
  t.assign(text.data(), text.size());
  // Which bytes occur: passes only add spaces and quote characters, so one
  // table (plus the quotes '"' turns into) guards every pass. The same scan
  // decides whether any MacIntyre contraction can occur: each contains "nn",
  // "mm", "tt" or an apostrophe before y/n/t (any case; '"' counted as an
  // apostrophe because quote passes turn it into '' or ``).
  // Byte classes for the contraction test, on ASCII-case-folded bytes:
  // 1 = n/m/t (doubled), 2 = quote, 4 = y/n/t (after a quote).
  static const auto kCls = [] {
    std::array<unsigned char, 256> c{};
    for (unsigned char x : {'n', 'm', 't'}) c[x] |= 1;
    for (unsigned char x : {'\'', '"'}) c[x] |= 2;
    for (unsigned char x : {'y', 'n', 't'}) c[x] |= 4;
    return c;
  }();
  bool present[256];
  std::memset(present, 0, sizeof present);
  unsigned maybe_bits = 0;
  {
    const size_t n = t.size();
    const auto* b = reinterpret_cast<const unsigned char*>(t.data());
    for (size_t i = 0; i < n; ++i) present[b[i]] = true;
    for (size_t i = 0; i + 1 < n; ++i) {
      const unsigned char c = b[i] | 0x20, d = b[i + 1] | 0x20;
      maybe_bits |= ((c == d) & kCls[c]) | ((kCls[c] >> 1) & (kCls[d] >> 2));
    }
  }
  const bool maybe = maybe_bits & 1;
  if (present['"']) present['`'] = present['\''] = true;
  auto any = [&](const char* set) {
    for (; *set; ++set)
      if (present[static_cast<unsigned char>(*set)]) return true;
    return false;
  };

  // --- STARTING_QUOTES
  if (!t.empty() && t[0] == '"') t = "``" + t.substr(1);
  // Every pass is guarded by a check for its trigger characters, so a plain
  // caption is copied only a few times.
  if (present['`'] && has(t, "``")) t = pad_literal(t, "``");
  const bool quotes = any("\"'");
  o.clear();
  for (size_t i = 0; quotes && i < t.size();) {  // ([ \(\[{<])(\"|\'{2}) -> \1 ``
    if (in(t[i], " ([{<") && i + 1 < t.size()) {
      if (t[i + 1] == '"') {
        o += t[i];
        o += " `` ";
        i += 2;
        continue;
      }
      if (t[i + 1] == '\'' && i + 2 < t.size() && t[i + 2] == '\'') {
        o += t[i];
        o += " `` ";
        i += 3;
        continue;
      }
    }
    o += t[i++];
  }
  if (quotes) t.swap(o);

  // --- PUNCTUATION
  const bool colon_comma = any(":,");
  o.clear();
  for (size_t i = 0; colon_comma && i < t.size();) {  // ([:,])([^\d]) -> " \1 \2"
    if ((t[i] == ':' || t[i] == ',') && i + 1 < t.size() && !is_digit(t[i + 1])) {
      o += ' ';
      o += t[i];
      o += ' ';
      o += t[i + 1];
      i += 2;
      continue;
    }
    o += t[i++];
  }
  if (colon_comma) t.swap(o);
  {  // ([:,])$ -> " \1 "  ($ also matches before a final newline)
    size_t n = t.size();
    size_t p = std::string::npos;
    if (n >= 1 && (t[n - 1] == ':' || t[n - 1] == ',')) p = n - 1;
    else if (n >= 2 && t[n - 1] == '\n' && (t[n - 2] == ':' || t[n - 2] == ',')) p = n - 2;
    if (p != std::string::npos) t = t.substr(0, p) + " " + t[p] + " " + t.substr(p + 1);
  }
  if (present['.'] && has(t, "...")) t = pad_literal(t, "...");
  if (any(";@#$%&")) t = pad_chars(t, ";@#$%&");
  {  // ([^\.])(\.)([\]\)}>"\']*)\s*$ -> "\1 \2\3 " : the final period
    size_t p = t.rfind('.');
    if (p != std::string::npos && p >= 1 && t[p - 1] != '.') {
      size_t q = p + 1;
      while (q < t.size() && in(t[q], "])}>\"'")) ++q;
      size_t r = q;
      while (r < t.size() && is_space(t[r])) ++r;
      if (r == t.size()) t = t.substr(0, p) + " ." + t.substr(p + 1, q - p - 1) + " ";
    }
  }
  if (any("?!")) t = pad_chars(t, "?!");
  const bool apos = present['\''];
  o.clear();
  for (size_t i = 0; apos && i < t.size();) {  // ([^'])' -> "\1 ' "
    if (t[i] != '\'' && i + 2 < t.size() && t[i + 1] == '\'' && t[i + 2] == ' ') {
      o += t[i];
      o += " ' ";
      i += 3;
      continue;
    }
    o += t[i++];
  }
  if (apos) t.swap(o);

  // --- PARENS_BRACKETS, DOUBLE_DASHES
  if (any("[](){}<>")) t = pad_chars(t, "[](){}<>");
  if (present['-'] && has(t, "--")) t = pad_literal(t, "--");
  t.insert(t.begin(), ' ');
  t.push_back(' ');

  // --- ENDING_QUOTES
  if (present['\''] && has(t, "''")) t = pad_literal(t, "''");
  if (present['"']) {
    o.clear();
    for (char c : t) {
      if (c == '"') o += " '' ";
      else o += c;
    }
    t.swap(o);
  }
  const bool apos2 = present['\''];
  o.clear();
  for (size_t i = 0; apos2 && i < t.size();) {  // ([^' ])('[sS]|'[mM]|'[dD]|') -> "\1 \2 "
    char c = t[i];
    if (c != '\'' && c != ' ' && i + 1 < t.size() && t[i + 1] == '\'') {
      if (i + 3 < t.size() && in(t[i + 2], "sSmMdD") && t[i + 3] == ' ') {
        o += c;
        o += ' ';
        o.append(t, i + 1, 2);
        o += ' ';
        i += 4;
        continue;
      }
      if (i + 2 < t.size() && t[i + 2] == ' ') {
        o += c;
        o += " ' ";
        i += 3;
        continue;
      }
    }
    o += t[i++];
  }
  if (apos2) t.swap(o);
  o.clear();
  static const char* kClitics[] = {"'ll", "'LL", "'re", "'RE", "'ve", "'VE", "n't", "N'T"};
  for (size_t i = 0; apos2 && i < t.size();) {  // ([^' ])('ll|...|N'T) -> "\1 \2 "
    char c = t[i];
    if (c != '\'' && c != ' ' && i + 4 < t.size() && t[i + 4] == ' ') {
      bool hit = false;
      for (const char* cl : kClitics)
        if (t.compare(i + 1, 3, cl) == 0) hit = true;
      if (hit) {
        o += c;
        o += ' ';
        o.append(t, i + 1, 3);
        o += ' ';
        i += 5;
        continue;
      }
    }
    o += t[i++];
  }
  if (apos2) t.swap(o);

  // --- CONTRACTIONS2, CONTRACTIONS3 (MacIntyre)
  if (maybe) {
    // Which patterns occur at all (one scan), then only their passes.
    unsigned found = 0;
    for (size_t i = 0; i < t.size(); ++i) {
      switch (t[i] | 0x20) {
        case 'c': if (iequal(t, i, "cannot")) found |= 1; break;
        case 'd': if (iequal(t, i, "d'ye")) found |= 2; break;
        case 'g':
          if (iequal(t, i, "gimme")) found |= 4;
          if (iequal(t, i, "gonna")) found |= 8;
          if (iequal(t, i, "gotta")) found |= 16;
          break;
        case 'l': if (iequal(t, i, "lemme")) found |= 32; break;
        case 'm': if (iequal(t, i, "more'n")) found |= 64; break;
        case 'w': if (iequal(t, i, "wanna")) found |= 128; break;
        case '\'':
          if (iequal(t, i, "'tis")) found |= 256;
          if (iequal(t, i, "'twas")) found |= 512;
          break;
        default: break;
      }
    }
    if (found & 1) split_contraction(t, "can", "not", false);
    if (found & 2) split_contraction(t, "d", "'ye", false);
    if (found & 4) split_contraction(t, "gim", "me", false);
    if (found & 8) split_contraction(t, "gon", "na", false);
    if (found & 16) split_contraction(t, "got", "ta", false);
    if (found & 32) split_contraction(t, "lem", "me", false);
    if (found & 64) split_contraction(t, "more", "'n", false);
    if (found & 128) split_contraction(t, "wan", "na", true);
    if (found & 256) split_tis(t, "is");
    if (found & 512) split_tis(t, "was");
  }

  size_t n = 0;
  for (size_t i = 0; i < t.size();) {
    while (i < t.size() && is_space(t[i])) ++i;
    size_t j = i;
    while (j < t.size() && !is_space(t[j])) ++j;
    if (j > i) {
      if (n < toks.size()) toks[n].assign(t, i, j - i);
      else toks.emplace_back(t, i, j - i);
      ++n;
    }
    i = j;
  }
  toks.resize(n);
}

}  // namespace catlip::text
