// catlip/text/tokenize.h - NLTK's TreebankWordTokenizer, without regexes.
//
// CoreNet tokenizes captions with nltk's TreebankWordTokenizer; catlip
// reproduces its output token for token (tests compare against NLTK). Each
// regex pass of NLTK 3.8 is one linear scan here, so the cost is a few
// microseconds per caption and a 1 MB caption cannot exhaust a regex stack.
// Character classes are ASCII (\d, \s); bytes >= 0x80 count as word
// characters for \b, which is what Python does for letters.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace catlip::text {

std::vector<std::string> treebank_tokenize(std::string_view text);
// Same, reusing the strings already in `out`.
void treebank_tokenize(std::string_view text, std::vector<std::string>& out);
// The pass-by-pass emulation alone, without the one-pass fast path for
// plain captions (tests check that both agree).
void treebank_tokenize_full(std::string_view text, std::vector<std::string>& out);

}  // namespace catlip::text
