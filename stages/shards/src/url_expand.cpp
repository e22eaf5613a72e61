// The implementation of catlip/shards/url_expand.h: brace expansion of shard patterns and
// @FILE shard lists.
#include "catlip/shards/url_expand.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>

namespace catlip::shards {
namespace {

// Alternatives of one brace body: "000..012" -> numbers, "a,b" -> items.
std::vector<std::string> brace_items(const std::string& body, const std::string& pattern) {
  std::vector<std::string> out;
  auto dots = body.find("..");
  if (dots != std::string::npos && body.find(',') == std::string::npos) {
    std::string lo = body.substr(0, dots), hi = body.substr(dots + 2);
    auto is_num = [](const std::string& s) {
      return !s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string::npos;
    };
    if (!is_num(lo) || !is_num(hi))
      throw PatternError("bad brace range {" + body + "} in '" + pattern + "'");
    long long a = std::stoll(lo), b = std::stoll(hi);
    if (b < a) throw PatternError("reversed brace range {" + body + "} in '" + pattern + "'");
    // Zero padding: keep the width of the bounds as written.
    size_t width = (lo.size() > 1 && lo[0] == '0') || (hi.size() > 1 && hi[0] == '0')
                       ? std::max(lo.size(), hi.size()) : 0;
    for (long long i = a; i <= b; ++i) {
      std::string s = std::to_string(i);
      if (s.size() < width) s.insert(0, width - s.size(), '0');
      out.push_back(std::move(s));
      if (out.size() > 100'000'000) break;
    }
    return out;
  }
  size_t start = 0;
  for (;;) {
    size_t c = body.find(',', start);
    out.push_back(body.substr(start, c == std::string::npos ? std::string::npos : c - start));
    if (c == std::string::npos) break;
    start = c + 1;
  }
  return out;
}

}  // namespace

std::vector<std::string> expand_braces(const std::string& pattern, size_t limit) {
  std::vector<std::string> acc{""};
  size_t i = 0;
  while (i < pattern.size()) {
    size_t open = pattern.find('{', i);
    size_t close_stray = pattern.find('}', i);
    if (close_stray != std::string::npos && (open == std::string::npos || close_stray < open))
      throw PatternError("unbalanced '}' in '" + pattern + "'");
    std::string lit = pattern.substr(i, open == std::string::npos ? std::string::npos : open - i);
    for (auto& a : acc) a += lit;
    if (open == std::string::npos) break;
    size_t close = pattern.find('}', open);
    if (close == std::string::npos) throw PatternError("unbalanced '{' in '" + pattern + "'");
    std::string body = pattern.substr(open + 1, close - open - 1);
    if (body.find('{') != std::string::npos)
      throw PatternError("nested braces are not supported in '" + pattern + "'");
    auto items = brace_items(body, pattern);
    if (acc.size() * items.size() > limit)
      throw PatternError("pattern '" + pattern + "' expands to more than " + std::to_string(limit) + " names");
    std::vector<std::string> next;
    next.reserve(acc.size() * items.size());
    for (auto& a : acc)
      for (auto& it : items) next.push_back(a + it);
    acc.swap(next);
    i = close + 1;
  }
  return acc;
}

std::vector<std::string> expand_urls(const std::vector<std::string>& patterns, size_t limit) {
  std::vector<std::string> out;
  auto add = [&](const std::string& p) {
    auto v = expand_braces(p, limit);
    if (out.size() + v.size() > limit)
      throw PatternError("shard list longer than " + std::to_string(limit));
    out.insert(out.end(), v.begin(), v.end());
  };
  for (auto& p : patterns) {
    if (!p.empty() && p[0] == '@') {
      std::string file = p.substr(1);
      std::ifstream in(file);
      if (!in) throw PatternError("cannot read shard list " + file + ": " + std::strerror(errno));
      std::string line;
      int lineno = 0;
      while (std::getline(in, line)) {
        ++lineno;
        auto b = line.find_first_not_of(" \t\r");
        if (b == std::string::npos || line[b] == '#') continue;
        auto e = line.find_last_not_of(" \t\r");
        std::string pat = line.substr(b, e - b + 1);
        if (pat[0] == '@') throw PatternError(file + ":" + std::to_string(lineno) + ": nested @lists are not supported");
        try {
          add(pat);
        } catch (const PatternError& ex) {
          throw PatternError(file + ":" + std::to_string(lineno) + ": " + ex.what());
        }
      }
    } else {
      add(p);
    }
  }
  return out;
}

}  // namespace catlip::shards
