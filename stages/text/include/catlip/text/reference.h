// catlip/text/reference.h - helpers to run the reference implementations.
//
// Tests and `catlip bench labels` compare catlip with NLTK (python3-nltk) on
// Debian's WordNet files. NLTK expects an nltk_data/corpora/wordnet folder
// that also holds `lexnames`, which Debian's wordnet-base does not ship;
// this builds such a folder from symlinks plus a generated lexnames.
#pragma once

#include <string>

namespace catlip::text {

// Creates <dir>/nltk_data/corpora/wordnet (symlinks to `wordnet_dir`'s files
// and a generated lexnames) and returns <dir>/nltk_data, for NLTK_DATA.
std::string make_nltk_data_dir(const std::string& dir, const std::string& wordnet_dir = "/usr/share/wordnet");

}  // namespace catlip::text
