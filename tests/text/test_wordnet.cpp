// WordNet nouns: morphy, lemmatizer and the synset rule against NLTK.
#include <catch2/catch.hpp>

#include <random>
#include <set>

#include "catlip/text/captions.h"
#include "catlip/text/clean.h"
#include "catlip/text/tokenize.h"
#include "catlip/text/wordnet.h"
#include "text_test_util.h"

using namespace catlip::text;

TEST_CASE("wordnet: ImageNet's first classes") {
  auto wn = WordNet::shared();
  CHECK(WordNet::wnid(wn->synset_offset("tench")) == "n01440764");
  CHECK(WordNet::wnid(wn->synset_offset("goldfish")) == "n01443537");
  CHECK(WordNet::wnid(wn->synset_offset("great_white_shark")) == "n01484850");
  auto s = wn->synset(wn->synset_offset("great_white_shark"));
  REQUIRE(s);
  CHECK(s->head() == "great_white_shark");
  CHECK(s->gloss.find("shark") != std::string::npos);
  CHECK(WordNet::parse_wnid("n01440764") == 1440764);
  CHECK(WordNet::parse_wnid("x01440764") == -1);
  CHECK_FALSE(wn->synset(12345));  // not a synset boundary
}

TEST_CASE("wordnet: morphy and lemmatize basics") {
  auto wn = WordNet::shared();
  CHECK(wn->lemmatize("dogs") == "dog");
  CHECK(wn->lemmatize("geese") == "goose");
  CHECK(wn->lemmatize("women") == "woman");
  CHECK(wn->lemmatize("boxes") == "box");
  CHECK(wn->lemmatize("knives") == "knife");
  CHECK(wn->lemmatize("zzqx") == "zzqx");
  CHECK(wn->lemmatize("") == "");
  // CoreNet's rule drops a lemma whose first sense is headed by another word.
  CHECK(wn->synset_offset("black") >= 0);
  CHECK(wn->synset_offset("zzqx") == -1);
}

TEST_CASE("wordnet: a missing directory is a clear error") {
  CHECK_THROWS_WITH(WordNet("/nonexistent/wn"), Catch::Contains("/nonexistent/wn/index.noun"));
}

TEST_CASE("wordnet: morphy, lemmatizer and synset rule agree 100% with NLTK") {
  if (!catlip::test::have_nltk()) {
    catlip::test::skip_test("/usr/bin/python3 cannot import nltk (install python3-nltk)");
  }
  auto wn = WordNet::shared();
  std::set<std::string> words;
  std::mt19937_64 rng(5);
  auto lemmas = wn->lemmas();
  // Nouns from index.noun, with regular plural forms made from them.
  for (size_t i = 0; i < lemmas.size(); i += 9) {
    const auto& l = lemmas[i];
    words.insert(l);
    words.insert(l + "s");
    words.insert(l + "es");
    if (!l.empty() && l.back() == 'y') words.insert(l.substr(0, l.size() - 1) + "ies");
    if (!l.empty() && l.back() == 'f') words.insert(l.substr(0, l.size() - 1) + "ves");
    if (l.size() > 3 && l.compare(l.size() - 3, 3, "man") == 0) words.insert(l.substr(0, l.size() - 3) + "men");
  }
  // Irregular forms from noun.exc and their bases.
  for (auto& [k, v] : wn->exceptions()) {
    words.insert(k);
    for (auto& b : v) words.insert(b);
  }
  // Caption tokens, capitalized forms and random strings.
  for (auto& c : generate_captions(500, 3))
    for (auto& t : treebank_tokenize(clean_caption(c).text)) words.insert(t);
  for (const char* w : {"Dogs", "GEESE", "Tench", "great_white_sharks", "axes", "glasses", "ss", "s",
                        "ies", "men", "'s", "n't", "3.5", "dog-s", "bus", "buses", "wolves", "mice"})
    words.insert(w);
  for (int i = 0; i < 1500; ++i) {
    std::string w;
    int n = 1 + rng() % 9;
    for (int k = 0; k < n; ++k) w += static_cast<char>('a' + rng() % 26);
    static const char* kEnd[] = {"s", "es", "ies", "ves", "men", "ches", "shes", "xes", "zes", "ses", ""};
    w += kEnd[rng() % 11];
    words.insert(w);
  }
  words.erase("");
  std::vector<std::string> list(words.begin(), words.end());
  REQUIRE(list.size() >= 5000);
  auto ref = catlip::test::run_nltk(catlip::test::TempDir("wn"), "lemmas", list);
  REQUIRE(ref.size() == list.size());
  size_t bad_lemma = 0, bad_morphy = 0, bad_rule = 0, bad_first = 0, with_synset = 0;
  for (size_t i = 0; i < list.size(); ++i) {
    auto f = catlip::test::split(ref[i], '\t');
    REQUIRE(f.size() == 4);
    auto cands = wn->morphy(list[i]);
    std::string lemma = wn->lemmatize(list[i]);
    int64_t head = wn->synset_offset(lemma, SynsetRule::HeadLemma);
    int64_t first = wn->synset_offset(lemma, SynsetRule::FirstSense);
    std::string h = head < 0 ? "-" : WordNet::wnid(head), fs = first < 0 ? "-" : WordNet::wnid(first);
    with_synset += head >= 0;
    auto report = [&](size_t& n, const std::string& what, const std::string& got, const std::string& want) {
      if (got != want && n++ < 5) {
        INFO(what << " of '" << list[i] << "'");
        CHECK(got == want);
      }
    };
    report(bad_lemma, "lemma", lemma, f[0]);
    report(bad_morphy, "morphy", catlip::test::join(cands, ' '), f[1]);
    report(bad_rule, "synset (head_lemma)", h, f[2]);
    report(bad_first, "synset (first_sense)", fs, f[3]);
  }
  std::printf("wordnet vs NLTK: %zu words, %zu with a synset\n", list.size(), with_synset);
  CHECK(with_synset > 2000);
  CHECK(bad_lemma == 0);
  CHECK(bad_morphy == 0);
  CHECK(bad_rule == 0);
  CHECK(bad_first == 0);
}
