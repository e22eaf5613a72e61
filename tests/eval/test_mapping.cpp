// Transfer Init's class -> vocabulary mapping on known WordNet 3.0 pairs
// (Debian wordnet-base), and the data.noun pointer reader.
#include <catch2/catch.hpp>

#include <filesystem>

#include "catlip/eval/transfer_map.h"
#include "test_util.h"

using namespace catlip::eval;

namespace {
const char* kDog = "n02084071";        // dog, domestic_dog
const char* kCanine = "n02083346";     // canine, canid: hypernym of dog
const char* kCarnivore = "n02075296";  // carnivore: hypernym of canine
const char* kHairless = "n02113978";   // Mexican_hairless: a dog breed (hyponym of dog)
const char* kCat = "n02121620";        // cat: a sibling branch, never reached

EvalVocab vocab_of(std::vector<std::string> wnids) {
  EvalVocab v;
  for (auto& w : wnids) {
    v.by_wnid.emplace(w, v.size());
    v.wnids.push_back(w);
    v.lemmas.push_back(w);
    v.counts.push_back(1);
  }
  return v;
}

const WordNetGraph& wn() {
  static WordNetGraph g("/usr/share/wordnet");
  return g;
}
}  // namespace

TEST_CASE("WordNet pointers are read from data.noun") {
  const SynsetNode* dog = wn().find(WordNetGraph::parse_wnid(kDog));
  REQUIRE(dog);
  REQUIRE(dog->lemma == "dog");
  auto has = [](const std::vector<int64_t>& v, const char* w) {
    return std::find(v.begin(), v.end(), WordNetGraph::parse_wnid(w)) != v.end();
  };
  REQUIRE(has(dog->up, kCanine));
  REQUIRE(has(dog->down, kHairless));
  REQUIRE(WordNetGraph::wnid(2084071) == kDog);
  REQUIRE(WordNetGraph::parse_wnid("n1234") == -1);
}

TEST_CASE("a class in the vocabulary maps to its own row") {
  auto v = vocab_of({kCat, kDog});
  auto m = map_class(kDog, v, wn());
  REQUIRE(m.kind == MapKind::Exact);
  REQUIRE(m.rows == std::vector<int64_t>{1});
  REQUIRE(m.distance == 0);
}

TEST_CASE("an absent class maps to its nearest present hypernym") {
  // Mexican hairless is not in the vocabulary; its hypernym dog is.
  auto v = vocab_of({kCat, kDog});
  auto m = map_class(kHairless, v, wn());
  REQUIRE(m.kind == MapKind::Hypernym);
  REQUIRE(m.distance == 1);
  REQUIRE(m.rows == std::vector<int64_t>{1});
  // Two hops up: dog -> canine -> carnivore.
  auto m2 = map_class(kDog, vocab_of({kCarnivore}), wn());
  REQUIRE(m2.kind == MapKind::Hypernym);
  REQUIRE(m2.distance == 2);
}

TEST_CASE("an absent class maps to its nearest present hyponyms, hyponyms win ties") {
  auto m = map_class(kCanine, vocab_of({kDog}), wn());
  REQUIRE(m.kind == MapKind::Hyponym);
  REQUIRE(m.distance == 1);
  REQUIRE(m.rows == std::vector<int64_t>{0});
  // carnivore (1 up) and dog (1 down) are equally near: the hyponym is chosen.
  auto t = map_class(kCanine, vocab_of({kCarnivore, kDog}), wn());
  REQUIRE(t.kind == MapKind::Hyponym);
  REQUIRE(t.rows == std::vector<int64_t>{1});
  // A nearer hypernym beats a farther hyponym: canine -> Mexican hairless is 2 down.
  auto u = map_class(kCanine, vocab_of({kHairless, kCarnivore}), wn());
  REQUIRE(u.kind == MapKind::Hypernym);
  REQUIRE(u.rows == std::vector<int64_t>{1});
}

TEST_CASE("siblings are never reached and max_distance bounds the search") {
  auto m = map_class(kDog, vocab_of({kCat}), wn(), 6);
  REQUIRE(m.kind == MapKind::Unmapped);
  REQUIRE(m.rows.empty());
  auto far = map_class(kDog, vocab_of({kCarnivore}), wn(), 1);
  REQUIRE(far.kind == MapKind::Unmapped);
}

TEST_CASE("class lists, the mapping report and its TSV") {
  catlip::test::TempDir d("eval-map");
  catlip::test::write_file(d.file("classes.txt"),
                           std::string("# comment\n") + kDog + "\tdog\n" + kHairless + " hairless dog\n" + kCat + "\n");
  auto cl = load_class_list(d.file("classes.txt"));
  REQUIRE(cl.wnids.size() == 3);
  REQUIRE(cl.names[1] == "hairless dog");
  auto v = vocab_of({kDog});
  auto r = map_classes(cl, v, wn());
  REQUIRE(r.exact == 1);
  REQUIRE(r.hypernym == 1);
  REQUIRE(r.unmapped == 1);
  REQUIRE(r.coverage() == Approx(2.0 / 3.0));
  auto tsv = mapping_tsv(r, v);
  REQUIRE(tsv.find("hypernym") != std::string::npos);
  catlip::test::write_file(d.file("bad.txt"), "dog\n");
  REQUIRE_THROWS_WITH(load_class_list(d.file("bad.txt")), Catch::Contains("bad.txt:1"));
}

TEST_CASE("a malformed data.noun is reported with file and line") {
  catlip::test::TempDir d("eval-wn");
  catlip::test::write_file(d.file("data.noun"),
                           "  licence header line\n"
                           "00000001 03 n 01 thing 0 001 ~ 00000002 n 0000 | a thing\n"
                           "00000002 03 n 01 widget 0 001 @ 00000001 n 0000 | a widget\n"
                           "00000003 03 n zz\n");
  REQUIRE_THROWS_WITH(WordNetGraph(d.path()), Catch::Contains("data.noun:4"));
  catlip::test::write_file(d.file("data.noun"),
                           "00000001 03 n 01 thing 0 001 ~ 00000002 n 0000 | a thing\n"
                           "00000002 03 n 01 widget 0 001 @ 00000001 n 0000 | a widget\n");
  WordNetGraph g(d.path());
  REQUIRE(g.size() == 2);
  auto v = vocab_of({"n00000001"});
  auto m = map_class("n00000002", v, g);
  REQUIRE(m.kind == MapKind::Hypernym);
  REQUIRE(m.name == "widget");
}
