// The HMM tagger against Lingua::EN::Tagger (Perl), on the same tokens.
#include <catch2/catch.hpp>

#include <cstdio>

#include "catlip/text/captions.h"
#include "catlip/text/clean.h"
#include "catlip/text/tagger.h"
#include "catlip/text/tokenize.h"
#include "text_test_util.h"

using namespace catlip::text;

static std::vector<std::string> penn(const Tagger& t, const std::vector<int>& ids) {
  std::vector<std::string> v;
  for (int i : ids) v.push_back(t.penn_tag(i));
  return v;
}

TEST_CASE("tagger loads Lingua's model and tags a caption") {
  auto t = Tagger::shared();
  CHECK(t->num_tags() >= 40);
  CHECK(t->tag_id("nn") >= 0);
  auto toks = treebank_tokenize("a man riding a horse on a sandy beach");
  auto tags = penn(*t, t->tag(toks));
  REQUIRE(tags.size() == toks.size());
  CHECK(tags[0] == "DT");
  CHECK(tags[1] == "NN");
  CHECK(tags[4] == "NN");
  CHECK(tags[5] == "IN");
  CHECK(tags[8] == "NN");
  CHECK(penn(*t, t->tag({"two", "dogs", "."})) == std::vector<std::string>{"CD", "NNS", "."});
  CHECK(t->tag({}).empty());
}

TEST_CASE("tagger: unknown-word classes follow Lingua") {
  auto t = Tagger::shared();
  CHECK(t->lexicon_key("dog") == "dog");
  CHECK(t->lexicon_key("3.25") == "*NUM*");
  CHECK(t->lexicon_key("10:30:15") == "*NUM*");
  CHECK(t->lexicon_key("4kx") == "*ORD*");
  CHECK(t->lexicon_key("zorblaxing") == "-ing-");
  CHECK(t->lexicon_key("zorblaxes") == "-s-");
  CHECK(t->lexicon_key("zorblaxtion") == "-tion-");
  CHECK(t->lexicon_key("zorblaxly") == "-ly-");
  CHECK(t->lexicon_key("zorblaxed") == "-ed-");
  CHECK(t->lexicon_key("zorblax") == "-unknown-");
  CHECK(t->lexicon_key("ZORB") == "-abr-");
  CHECK(t->lexicon_key("Zorblax") == "-cap-");
  CHECK(t->lexicon_key("zorb-quick") == "-hyp-adj-");
  CHECK(t->lexicon_key("zorb-blax") == "-hyp-");
  CHECK(t->lexicon_key("{zorb") == "*LRB*");
  CHECK(t->lexicon_key("\xe2\x86\x92\xe2\x86\x92") != "-sym-");  // non-ASCII counts as word characters
  CHECK(t->lexicon_key("@@") == "-sym-");
}

TEST_CASE("tagger: a missing model directory is a clear error") {
  try {
    Tagger t("/nonexistent/lingua");
    FAIL("expected an exception");
  } catch (const std::runtime_error& e) {
    std::string m = e.what();
    CHECK(m.find("/nonexistent/lingua/tags.yml") != std::string::npos);
    CHECK(m.find("liblingua-en-tagger-perl") != std::string::npos);
  }
}

TEST_CASE("tagger agrees with Lingua::EN::Tagger on >= 97% of caption tokens") {
  if (!catlip::test::have_lingua()) {
    catlip::test::skip_test("perl cannot load Lingua::EN::Tagger (install liblingua-en-tagger-perl)");
  }
  auto t = Tagger::shared();
  auto caps = generate_captions(3000, 7);
  std::vector<std::vector<std::string>> toks;
  std::vector<std::string> lines;
  for (auto& c : caps) {
    toks.push_back(treebank_tokenize(clean_caption(c).text));
    lines.push_back(catlip::test::join(toks.back(), '\t'));
  }
  auto ref = catlip::test::run_lingua(catlip::test::TempDir("lingua"), lines);
  REQUIRE(ref.size() == lines.size());
  size_t total = 0, same_viterbi = 0, same_greedy = 0;
  for (size_t i = 0; i < toks.size(); ++i) {
    auto want = ref[i].empty() ? std::vector<std::string>{} : catlip::test::split(ref[i], '\t');
    REQUIRE(want.size() == toks[i].size());
    auto v = t->tag(toks[i]), g = t->tag_greedy(toks[i]);
    for (size_t k = 0; k < want.size(); ++k) {
      ++total;
      same_viterbi += t->tag_name(v[k]) == want[k];
      same_greedy += t->tag_name(g[k]) == want[k];
    }
  }
  double av = double(same_viterbi) / total, ag = double(same_greedy) / total;
  std::printf("tagger agreement with Lingua on %zu tokens: viterbi %.4f, greedy %.4f\n", total, av, ag);
  // Greedy decoding of the same model must reproduce Lingua (up to ties);
  // Viterbi may differ where later context changes the best path.
  CHECK(ag >= 0.999);
  CHECK(av >= 0.97);
}
