// catlip/shards/url_expand.h - turning shard patterns into shard URL lists.
//
// WebDataset/img2dataset name shard sets with brace patterns:
//   "shard-{000000..000012}.tar"   numeric range; the width of the first bound
//                                  (when zero-padded) is kept: shard-000007.tar
//   "{a,b,c}.tar"                  alternatives
//   "s3-{0..1}/{00..02}.tar"       several braces expand as a cartesian product
// A pattern "@FILE" reads FILE (one pattern per line; '#' comments and blank
// lines ignored; patterns in it are expanded too; relative paths in it stay
// as written). Order is preserved, duplicates are kept.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace catlip::shards {

struct PatternError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Expands the braces of one pattern. Throws PatternError on an unbalanced
// brace, a malformed or reversed range, or more than `limit` results.
std::vector<std::string> expand_braces(const std::string& pattern, size_t limit = 10'000'000);

// Expands a list of patterns, including "@list.txt" shard-list files.
std::vector<std::string> expand_urls(const std::vector<std::string>& patterns,
                                     size_t limit = 10'000'000);

}  // namespace catlip::shards
