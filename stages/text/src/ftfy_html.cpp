// ftfy's unescape_html: "&name;" (HTML5 names, and upper-cased ones ftfy
// adds) and "&#...;" references as Python's html.unescape reads them.
#include <algorithm>
#include <cstring>

#include "ftfy_internal.h"

namespace catlip::text::ftfy_detail {

using namespace ftfy_data;

namespace {

bool entity_alnum(char32_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
int hex_value(char32_t c) {
  if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<int>(c - 'A' + 10);
  return -1;
}

// html.unescape of "&#" + body + ";" (body: what is between): the
// replacement, or false when Python's unescape would leave a ';' behind.
bool numeric_ref(std::u32string_view body, U32& rep) {
  bool hex = !body.empty() && (body[0] == 'x' || body[0] == 'X');
  std::u32string_view digits = hex ? body.substr(1) : body;
  if (digits.empty()) return false;
  uint64_t num = 0;
  for (char32_t c : digits) {
    int v = hex ? hex_value(c) : (c >= '0' && c <= '9' ? static_cast<int>(c - '0') : -1);
    if (v < 0) return false;
    num = std::min<uint64_t>(num * (hex ? 16 : 10) + static_cast<uint64_t>(v), 0x7FFFFFFF);
  }
  rep.clear();
  const CharRef* end = kInvalidCharrefs + kInvalidCharrefCount;
  const CharRef* it = std::lower_bound(kInvalidCharrefs, end, num, [](const CharRef& r, uint64_t v) { return r.num < v; });
  if (it != end && it->num == num) {
    rep.push_back(it->value);
  } else if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) {
    rep.push_back(0xFFFD);
  } else if (!std::binary_search(kInvalidCodepoints, kInvalidCodepoints + kInvalidCodepointCount,
                                 static_cast<char32_t>(num))) {
    rep.push_back(static_cast<char32_t>(num));
  }
  return rep != U";";
}

const char* named_entity(std::u32string_view name) {
  char buf[32];
  if (name.size() >= sizeof buf) return nullptr;
  for (size_t k = 0; k < name.size(); ++k) buf[k] = static_cast<char>(name[k]);
  buf[name.size()] = 0;
  const Entity* end = kEntities + kEntityCount;
  const Entity* it = std::lower_bound(kEntities, end, buf, [](const Entity& e, const char* v) { return std::strcmp(e.name, v) < 0; });
  return it != end && std::strcmp(it->name, buf) == 0 ? it->value : nullptr;
}

void append_utf8_value(const char* v, U32& out) {
  U32 tmp;
  utf8_to_u32(v, tmp);
  out += tmp;
}

}  // namespace

bool unescape_html(const U32& in, U32& out) {
  out.clear();
  out.reserve(in.size());
  bool changed = false;
  U32 rep;
  for (size_t i = 0; i < in.size();) {
    if (in[i] != '&') {
      out.push_back(in[i++]);
      continue;
    }
    // HTML_ENTITY_RE: & #? [0-9A-Za-z]{1,24} ;
    size_t k = i + 1 + (i + 1 < in.size() && in[i + 1] == '#');
    size_t j = k;
    while (j < in.size() && entity_alnum(in[j])) ++j;
    if (j == k || j - k > 24 || j >= in.size() || in[j] != ';') {
      out.push_back(in[i++]);
      continue;
    }
    std::u32string_view whole(in.data() + i, j + 1 - i);
    if (const char* v = named_entity(whole)) {
      append_utf8_value(v, out);
      changed = true;
    } else if (k == i + 2 && numeric_ref(whole.substr(2, whole.size() - 3), rep)) {
      out += rep;
      changed = true;
    } else {
      out.append(whole);
    }
    i = j + 1;
  }
  return changed;
}

}  // namespace catlip::text::ftfy_detail
