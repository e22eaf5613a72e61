// Caption cleaning and the Treebank tokenizer (against NLTK's behaviour).
#include <catch2/catch.hpp>

#include <random>

#include "catlip/text/captions.h"
#include "catlip/text/clean.h"
#include "catlip/text/tokenize.h"
#include "text_test_util.h"

using namespace catlip::text;
using catlip::test::join;
using catlip::test::split;

using Toks = std::vector<std::string>;

TEST_CASE("treebank tokenizer: NLTK documented cases") {
  CHECK(treebank_tokenize("Good muffins cost $3.88\nin New York.  Please buy me\ntwo of them.\nThanks.") ==
        Toks{"Good", "muffins", "cost", "$", "3.88", "in", "New", "York.", "Please", "buy", "me", "two",
             "of", "them.", "Thanks", "."});
  CHECK(treebank_tokenize("They'll save and invest more.") ==
        Toks{"They", "'ll", "save", "and", "invest", "more", "."});
  CHECK(treebank_tokenize("hi, my name can't hello,") ==
        Toks{"hi", ",", "my", "name", "ca", "n't", "hello", ","});
  CHECK(treebank_tokenize("Good muffins cost $3.88 (roughly 3,36 euros)") ==
        Toks{"Good", "muffins", "cost", "$", "3.88", "(", "roughly", "3,36", "euros", ")"});
}

TEST_CASE("treebank tokenizer: clitics, quotes, contractions") {
  CHECK(treebank_tokenize("a man's \"dog\" can't run, (really) fast... cannot! it's 3.5$ gonna") ==
        Toks{"a", "man", "'s", "``", "dog", "''", "ca", "n't", "run", ",", "(", "really", ")", "fast",
             "...", "can", "not", "!", "it", "'s", "3.5", "$", "gon", "na"});
  CHECK(treebank_tokenize("\"hello\" she said.") == Toks{"``", "hello", "''", "she", "said", "."});
  CHECK(treebank_tokenize("the dogs' bowls") == Toks{"the", "dogs", "'", "bowls"});
  CHECK(treebank_tokenize("'tis wanna go") == Toks{"'t", "is", "wan", "na", "go"});
  CHECK(treebank_tokenize("i'd say it 'tis") == Toks{"i", "'d", "say", "it", "'t", "is"});
  CHECK(treebank_tokenize("we've we're i'm") == Toks{"we", "'ve", "we", "'re", "i", "'m"});
  CHECK(treebank_tokenize("a--b x:y 10:30 a;b") == Toks{"a", "--", "b", "x", ":", "y", "10:30", "a", ";", "b"});
  CHECK(treebank_tokenize("end.\"") == Toks{"end", ".", "''"});
  CHECK(treebank_tokenize("").empty());
  CHECK(treebank_tokenize("   ").empty());
}

TEST_CASE("treebank tokenizer agrees with NLTK on captions and tricky strings") {
  if (!catlip::test::have_nltk()) {
    catlip::test::skip_test("/usr/bin/python3 cannot import nltk (install python3-nltk)");
  }
  auto lines = generate_captions(2000, 11);
  for (auto& c : std::vector<std::string>{
           "\"quoted\" start", "''double'' single", "it's a 'quote' here", "x.. y...", "a.b.c.",
           "end with period. ", "u.s. army.", "cost: $5, or 10%!", "<tag> & {braces} [brackets]",
           "don't won't shouldn't Can't CANNOT", "more'n d'ye gimme lemme gotta", "wanna", "wanna.",
           "o'clock rock'n'roll", "email me@x.com #tag @user", "a ``b'' c", "(a) [b] {c} <d>",
           "--dash-- -single- a - b", "10,000 and 3,5 and a,b", "hello world...", "what?! no!!",
           "the 90's", "rock 'n' roll", "'twas the night", "she said 'hi' .", "caf\xc3\xa9 na\xc3\xafve",
           // the one-pass common case and its edges
           "a,b", "3,5", "a,5 b", "x, y", "end,", "a.b.c", "hello .", "u.s.a.", "a ,b", "-a- b-", "gonna go",
           "tennis and summer", "a,,b", "a,.", ".", ",", ", ,", "a,5.", "x.", "..", "a.. b", "cannot stop",
           "Gotta Go", "wannabe", "the dog's bone", "dogs' toys", "it's", "you'll see", "isn't it's'",
           "a man's hat.", "end.'", "rock'n'roll", "x's, y's)", "'s", "a 's", "we'll've", "o'clock's", "dinner, lemme see", "caf\xc3\xa9, 3,000 people.", "a-b--c", "1.5, 2.5.",
           "end.)", "end. )", "(a.b.) c", "x?.", "a:b, 10:30: c:", "$3.88 & 5% off!", "<3 you>.", "[a] {b}.",
           "a,:b", "a:,b", "wow!. ok", "photo of a dog (2015)", "#tag @me ; ok", "a . b .", "x .)"})
    lines.push_back(c);
  for (auto& c : lines) c = clean_caption(c).text;
  auto ref = catlip::test::run_nltk(catlip::test::TempDir("tok"), "tokenize", lines);
  REQUIRE(ref.size() == lines.size());
  int bad = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    auto got = join(treebank_tokenize(lines[i]), '\t');
    if (got != ref[i] && bad++ < 10) {
      INFO("caption: " << lines[i]);
      CHECK(got == ref[i]);
    }
  }
  CHECK(bad == 0);
}

TEST_CASE("caption cleaning as CoreNet: unquote, +, html, entities, spaces, lowercase") {
  CHECK(clean_caption("A%20Dog+On  the <b>Beach</b>\n").text == "a dog on the beach");
  CHECK(clean_caption("Tom &amp; Jerry &lt;3 &#39;hi&#39; &#x41;").text == "tom & jerry <3 'hi' a");
  CHECK(clean_caption("   ").text.empty());
  CHECK(clean_caption("").text.empty());
  CHECK(clean_caption("<div><img src='x'></div>").text.empty());  // HTML only
  CHECK(clean_caption("100% %zz").text == "100% %zz");            // bad escapes kept
}

TEST_CASE("caption cleaning: invalid UTF-8 repaired or rejected, long captions cut") {
  std::string rep("a\xff b");
  CHECK(repair_utf8(rep));
  CHECK(rep == "a\xEF\xBF\xBD b");
  auto r = clean_caption(std::string("bad \xff\xfe bytes \xc3"));
  CHECK(r.invalid_utf8);
  CHECK_FALSE(r.rejected);
  CHECK(valid_utf8(r.text));
  CHECK(r.text == "bad bytes");
  CleanOptions strict;
  strict.repair_utf8 = false;
  auto s = clean_caption(std::string("x\xc0\xafy"), strict);
  CHECK(s.rejected);
  CHECK(s.text.empty());
  // %-escapes that decode to invalid UTF-8 are caught too.
  CHECK(clean_caption("a%FFb").invalid_utf8);

  std::string big(1 << 20, 'a');
  for (size_t i = 0; i < big.size(); i += 7) big[i] = ' ';
  auto b = clean_caption(big);
  CHECK(b.truncated);
  CHECK(b.text.size() <= 16384);
  // A cut never splits a character.
  std::string multi;
  while (multi.size() < 20000) multi += "\xc3\xa9";
  auto m = clean_caption(multi);
  CHECK(m.truncated);
  CHECK(valid_utf8(m.text));
  // The tokenizer itself copes with a whole megabyte (no regex recursion).
  CHECK(treebank_tokenize(big).size() > 100000);
}

namespace {
std::vector<std::string> random_strings(size_t n, const std::string& alphabet, uint64_t seed) {
  std::mt19937_64 r(seed);
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    std::string s;
    size_t len = r() % 24;
    for (size_t k = 0; k < len; ++k) s += alphabet[r() % alphabet.size()];
    out.push_back(s);
  }
  return out;
}
}  // namespace

TEST_CASE("treebank tokenizer: the one-pass fast path equals the full emulation") {
  auto strs = random_strings(200000, "abnmt CNT0123456789,.:-;@#$%&?!()[]{}<>xyz\xc3\xa9", 99);
  // Apostrophes and clitics.
  for (auto& s : random_strings(200000, "a's'dmSlLrevVEnt'T ,.;:()!?iyw\"\"[<", 98)) strs.push_back(s);
  for (auto& w : {"cannot", "gonna", "gotta", "gimme", "lemme", "wanna", "more", "tennis"})
    for (int i = 0; i < 200; ++i) strs.push_back(std::string(w) + (i % 2 ? ", " : " ") + strs[i]);
  size_t bad = 0;
  std::vector<std::string> a, b;
  for (auto& s : strs) {
    treebank_tokenize(s, a);
    treebank_tokenize_full(s, b);
    if (a != b && bad++ < 5) {
      INFO("input: '" << s << "'");
      CHECK(join(a, '|') == join(b, '|'));
    }
  }
  CHECK(bad == 0);
}

TEST_CASE("treebank tokenizer agrees with NLTK on random punctuation soup") {
  if (!catlip::test::have_nltk()) {
    catlip::test::skip_test("/usr/bin/python3 cannot import nltk (install python3-nltk)");
  }
  auto strs = random_strings(4000, "ab tsdmnlyeo'\"`,.:-;@#$%&?!()[]{}<>19 CANT", 7);
  auto ref = catlip::test::run_nltk(catlip::test::TempDir("soup"), "tokenize", strs);
  REQUIRE(ref.size() == strs.size());
  size_t bad = 0;
  for (size_t i = 0; i < strs.size(); ++i) {
    auto got = join(treebank_tokenize(strs[i]), '\t');
    if (got != ref[i] && bad++ < 8) {
      INFO("input: '" << strs[i] << "'");
      CHECK(got == ref[i]);
    }
  }
  CHECK(bad == 0);
}
