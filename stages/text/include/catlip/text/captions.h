// catlip/text/captions.h - deterministic, realistic-looking alt-text captions.
//
// Used by tests (tagger agreement, vocabulary graph) and `catlip bench
// labels` so that every comparison runs on the same varied input: several
// sentence templates, plural and irregular nouns, adjectives, numbers,
// punctuation, quotes, contractions and a little web noise (HTML, %20).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace catlip::text {

std::vector<std::string> generate_captions(size_t n, uint64_t seed = 1);

}  // namespace catlip::text
