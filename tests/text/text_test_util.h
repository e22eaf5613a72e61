// Helpers for the text tests: running the reference implementations (NLTK
// on Debian's WordNet files, the Perl Lingua::EN::Tagger) in subprocesses.
#pragma once

#include <string>
#include <vector>

#include "test_util.h"

namespace catlip::test {

// True if /usr/bin/python3 can import nltk.
bool have_nltk();
// True if perl can load Lingua::EN::Tagger.
bool have_lingua();
// Makes <dir>/corpora/wordnet for NLTK from /usr/share/wordnet (symlinks)
// plus a generated `lexnames`, which Debian's wordnet-base lacks; returns the
// NLTK_DATA directory.
std::string make_nltk_data(const TempDir& dir);
// Runs tests/text/nltk_ref.py MODE IN OUT with NLTK_DATA set; returns output lines.
std::vector<std::string> run_nltk(const TempDir& dir, const std::string& mode,
                                  const std::vector<std::string>& input_lines);
// Runs tests/text/lingua_tag.pl on tab-joined token lines; returns tag lines.
std::vector<std::string> run_lingua(const TempDir& dir, const std::vector<std::string>& token_lines);

std::vector<std::string> split(const std::string& s, char sep);
std::string join(const std::vector<std::string>& v, char sep);

}  // namespace catlip::test
