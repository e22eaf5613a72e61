// catlip/text/hash.h - a fast transparent string hash for the word tables.
//
// Words are short; FNV-1a beats the general-purpose std::hash on them, and
// being transparent it lets a std::string_view look up std::string keys
// without a copy.
#pragma once

#include <cstdint>
#include <string_view>

namespace catlip::text {

struct WordHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

}  // namespace catlip::text
