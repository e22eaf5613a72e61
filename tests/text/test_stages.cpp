// The text stages in-process: parse, synset_count (per replica), vocab_merge,
// labels; replicas vs one replica; hostile captions.
#include <catch2/catch.hpp>

#include <filesystem>

#include "catlip/local.h"
#include "catlip/text/captions.h"
#include "catlip/text/stages.h"
#include "text_test_util.h"

using namespace catlip;
using namespace catlip::text;
using catlip::test::TempDir;

namespace {

template <class S>
std::unique_ptr<S> make(LocalContext& ctx, std::map<std::string, ParamValue> given = {}) {
  auto s = std::make_unique<S>();
  configure_stage(*s, S::schema(), given, ctx);
  return s;
}

std::vector<Sample> caption_samples(size_t n, uint64_t seed) {
  std::vector<Sample> v;
  size_t i = 0;
  for (auto& c : generate_captions(n, seed)) {
    Sample s;
    s.key = "s" + std::to_string(i);
    s.origin.index = static_cast<int64_t>(i++);
    s.set_text("txt", c);
    v.push_back(std::move(s));
  }
  return v;
}

// Runs parse -> synset_count for one replica on `in`; returns the partial.
Sample count_replica(const std::vector<Sample>& in, int replica, int replicas, const std::string& run_dir) {
  LocalContext pctx("parse", "text.parse", replica, replicas, run_dir);
  LocalContext cctx("count", "text.synset_count", replica, replicas, run_dir);
  auto parse = make<ParseStage>(pctx);
  auto count = make<SynsetCountStage>(cctx);
  CollectEmitter parsed, partial;
  run_transform(*parse, in, parsed);
  run_transform(*count, std::move(parsed.samples), partial);
  REQUIRE(partial.samples.size() == 1);
  return std::move(partial.samples[0]);
}

std::string merge(std::vector<Sample> partials, const std::string& run_dir, int64_t min_count, int64_t top_k) {
  LocalContext mctx("merge", "text.vocab_merge", 0, 1, run_dir);
  auto m = make<VocabMergeStage>(mctx, {{"min_count", min_count}, {"top_k", top_k}});
  CollectEmitter none;
  run_transform(*m, std::move(partials), none);
  REQUIRE(mctx.counter("partials") >= 1);
  return catlip::test::read_file(run_dir + "/vocab.tsv");
}

}  // namespace

TEST_CASE("text.parse writes tokens, tags, noun lemmas and synsets") {
  LocalContext ctx("parse", "text.parse");
  auto p = make<ParseStage>(ctx);
  Sample s;
  s.key = "k";
  s.set_text("txt", "A man riding a horse on a sandy beach, two Dogs!");
  CollectEmitter out;
  p->process(std::move(s), out);
  REQUIRE(out.samples.size() == 1);
  auto& o = out.samples[0];
  REQUIRE(o.text("tokens"));
  CHECK(*o.text("tokens") == "a man riding a horse on a sandy beach , two dogs !");
  CHECK(o.text("tags")->rfind("DT NN", 0) == 0);
  CHECK(*o.text("nouns") == "man horse beach dog");  // "sandy" is an adjective, "dogs" lemmatized
  auto wn = WordNet::shared();
  IntList want;
  for (auto* l : {"man", "horse", "beach", "dog"}) want.push_back(wn->synset_offset(l));
  std::sort(want.begin(), want.end());
  CHECK(*o.ints("synsets") == want);

  // pos = "all" is CoreNet's behaviour: adjectives become labels too.
  LocalContext actx("parse", "text.parse");
  auto pa = make<ParseStage>(actx, {{"pos", std::string("all")}});
  Sample s2;
  s2.set_text("txt", "a black dog");
  CollectEmitter out2;
  pa->process(std::move(s2), out2);
  CHECK(*out2.samples[0].text("nouns") == "a black dog");
  // "a" lemmatizes to "a", whose first sense is headed by "angstrom": no synset.
  CHECK(out2.samples[0].ints("synsets")->size() == 2);
}

TEST_CASE("text.parse handles hostile captions: non-UTF-8, empty, 1 MB, HTML only, missing") {
  LocalContext ctx("parse", "text.parse");
  auto p = make<ParseStage>(ctx);
  std::vector<Sample> in(6);
  in[0].set_text("txt", std::string("a dog \xff\xfe on grass"));
  in[1].set_text("txt", "");
  std::string big;
  while (big.size() < (1 << 20)) big += "a dog and a cat on a mat, ";
  in[2].set_text("txt", big);
  in[3].set_text("txt", "<div><span class=\"x\"></span></div>");
  in[4].set_text("other", "no caption field");
  in[5].set_bytes("txt", "a cat");  // caption stored as bytes is accepted
  CollectEmitter out;
  run_transform(*p, std::move(in), out);
  CHECK(out.samples.size() == 5);
  CHECK(ctx.counter("repaired.invalid_utf8") == 1);
  CHECK(ctx.counter("truncated.long_caption") == 1);
  CHECK(ctx.counter("empty_caption") == 2);
  CHECK(ctx.counter("skipped.no_caption") == 1);
  CHECK(*out.samples[0].text("nouns") == "dog grass");
  CHECK(out.samples[1].ints("synsets")->empty());
  CHECK(out.samples[3].ints("synsets")->empty());

  LocalContext rctx("parse", "text.parse");
  auto strict = make<ParseStage>(rctx, {{"invalid_utf8", std::string("reject")}});
  CollectEmitter out2;
  Sample bad;
  bad.set_text("txt", std::string("\xc0\xaf"));
  strict->process(std::move(bad), out2);
  CHECK(out2.samples.empty());
  CHECK(rctx.counter("skipped.invalid_utf8") == 1);
}

TEST_CASE("vocabulary: 2 replicas on disjoint halves give exactly the 1-replica result") {
  auto samples = caption_samples(1500, 21);
  std::vector<Sample> half[2];
  for (size_t i = 0; i < samples.size(); ++i) half[i % 2].push_back(samples[i]);

  TempDir one("v1"), two("v2");
  Sample single = count_replica(samples, 0, 1, one.path());
  Sample p0 = count_replica(half[0], 0, 2, two.path());
  Sample p1 = count_replica(half[1], 1, 2, two.path());
  CHECK(std::filesystem::exists(two.file("vocab.part-0.tsv")));
  CHECK(std::filesystem::exists(two.file("vocab.part-1.tsv")));

  auto c1 = SynsetCounts::from_sample(single);
  auto c2 = SynsetCounts::from_sample(p0);
  c2.merge(SynsetCounts::from_sample(p1));
  CHECK(c1 == c2);
  CHECK(c1.samples == 1500);
  CHECK(c1.counts.size() > 50);

  for (auto [mc, tk] : {std::pair<int64_t, int64_t>{1, 0}, {5, 0}, {1, 40}, {3, 25}}) {
    std::string v1 = merge({single}, one.path(), mc, tk);
    std::string v2 = merge({p1, p0}, two.path(), mc, tk);  // arrival order must not matter
    CHECK(v1 == v2);
    CHECK(v1.find("\n0\tn") != std::string::npos);
  }
  // The part files merge to the same counts (`catlip vocab merge RUN_DIR`).
  SynsetCounts files;
  CHECK(merge_part_files(two.path(), files) == 2);
  CHECK(files == c1);

  // TSV shape: sorted by count desc, ties by wnid; stats written.
  auto v = Vocab::load(one.file("vocab.tsv"));
  REQUIRE(v.size() == 25);
  for (size_t i = 1; i < v.size(); ++i) {
    auto& a = v.entries()[i - 1];
    auto& b = v.entries()[i];
    CHECK((a.count > b.count || (a.count == b.count && a.offset < b.offset)));
    CHECK(b.count >= 3);
  }
  auto stats = catlip::test::read_file(one.file("vocab.stats.txt"));
  CHECK(stats.find("samples_seen\t1500") != std::string::npos);
  CHECK(stats.find("fraction_with_synset") != std::string::npos);
  CHECK(stats.find("hist\t0\t") != std::string::npos);
  CHECK(stats.find("top\t0\tn") != std::string::npos);
}

TEST_CASE("text::Vocab reads the vocabulary with model::load_vocab's rules") {
  TempDir d("vocab_rules");
  catlip::test::write_file(d.file("v.tsv"), "index\twnid\tlemma\tcount\tgloss\n0\tn02084071\tdog\t5\ta dog\n");
  auto v = Vocab::load(d.file("v.tsv"));
  REQUIRE(v.size() == 1);
  CHECK(v.entries()[0].gloss == "a dog");
  CHECK(v.entries()[0].count == 5);
  CHECK(v.index_of(2084071) == 0);
  catlip::test::write_file(d.file("headerless.tsv"), "0\tn02084071\tdog\t5\ta dog\n");
  CHECK_THROWS_WITH(Vocab::load(d.file("headerless.tsv")), Catch::Contains("headerless.tsv:1"));
  catlip::test::write_file(d.file("badwnid.tsv"), "index\twnid\tlemma\tcount\tgloss\n0\tdog\tdog\t5\tx\n");
  CHECK_THROWS_WITH(Vocab::load(d.file("badwnid.tsv")), Catch::Contains("bad wnid 'dog'"));
}

TEST_CASE("text.labels maps nouns, synsets or captions to sorted unique vocabulary indices") {
  TempDir d("labels");
  auto wn = WordNet::shared();
  std::vector<VocabEntry> ents;
  for (auto* l : {"dog", "horse", "beach", "man"}) {
    VocabEntry e;
    e.index = static_cast<int64_t>(ents.size());
    e.offset = wn->synset_offset(l);
    e.lemma = l;
    e.count = 10 - e.index;
    ents.push_back(e);
  }
  write_vocab_tsv(d.file("vocab.tsv"), ents);

  for (bool drop : {false, true}) {
    LocalContext ctx("labels", "text.labels");
    auto st = make<LabelsStage>(ctx, {{"vocab", d.file("vocab.tsv")}, {"drop_unlabeled", drop}});
    std::vector<Sample> in(4);
    in[0].set_text("nouns", "man dog man horse");
    in[1].set_text("txt", "Dogs running on the beach");
    in[2].set_text("txt", "a red car");
    in[3].set_ints("synsets", {wn->synset_offset("beach"), wn->synset_offset("dog"), 999});
    CollectEmitter out;
    run_transform(*st, std::move(in), out);
    CHECK(ctx.counter("labeled") == 3);
    CHECK(ctx.counter("unlabeled") == 1);
    REQUIRE(out.samples.size() == (drop ? 3u : 4u));
    CHECK(*out.samples[0].ints("labels") == IntList{0, 1, 3});
    CHECK(*out.samples[1].ints("labels") == IntList{0, 2});
    if (!drop) CHECK(out.samples[2].ints("labels")->empty());
    CHECK(*out.samples.back().ints("labels") == IntList{0, 2});
    if (drop) CHECK(ctx.counter("dropped.unlabeled") == 1);
  }

  // A malformed vocabulary names its file and line.
  catlip::test::write_file(d.file("bad.tsv"), "#index\twnid\tlemma\tcount\tgloss\n0\tn02084071\tdog\n1\tnotawnid\tx\n");
  LocalContext ctx("labels", "text.labels");
  LabelsStage st;
  CHECK_THROWS_WITH(configure_stage(st, LabelsStage::schema(), {{"vocab", d.file("bad.tsv")}}, ctx),
                    Catch::Contains("bad.tsv:3"));
}

TEST_CASE("text stage schemas document every parameter") {
  for (auto schema : {ParseStage::schema(), SynsetCountStage::schema(), VocabMergeStage::schema(),
                      LabelsStage::schema()}) {
    CHECK(schema.type.rfind("text.", 0) == 0);
    for (auto& p : schema.params) {
      INFO(schema.type << "." << p.name);
      CHECK_FALSE(p.doc.empty());
    }
  }
}
