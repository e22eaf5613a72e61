// CLIP's byte-level BPE tokenizer: pre-tokenizer, learning (against a naive
// reference learner), encode/decode round trips, file format, truncation.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "catlip/synth/generator.h"
#include "catlip/text/bpe.h"
#include "test_util.h"

using namespace catlip::text;
using catlip::test::TempDir;

namespace {

const std::vector<std::string>& realistic_captions() {
  static const std::vector<std::string> v = {
      "A photo of a dog sitting on a red couch.",
      "Two cats, one black & one white, sleeping in the sun!",
      "It's a beautiful day at the café; we'll have 3 coffees.",
      "They're walking along the beach at 5:30pm (sunset).",
      "I've been to 東京 twice — the 2nd time in 2019.",
      "Emoji party 🐶🐱🎉 with friends :)",
      "  Lots   of\tspaces   and TABS  ",
      "Résumé of a naïve coöperative in São Paulo",
      "Don't touch the 100% organic apples!!!",
      "the quick brown fox jumps over the lazy dog",
      "A DOG. A CAT. A DOG AND A CAT.",
      "Москва — столица России",
      "price: $4.99 / kg, was $5.49",
      "he'd said she'll come, but I'm not sure we'd go",
      "#sunset #beach @home http://example.com/a%20b",
  };
  return v;
}

std::vector<std::string> training_captions() {
  std::vector<std::string> caps = realistic_captions();
  catlip::synth::SynthOptions o;
  o.size = 32;
  for (int64_t i = 0; i < 600; ++i) caps.push_back(catlip::synth::generate_sample(o, i).caption);
  return caps;
}

BpeWordCounts count_words(const std::vector<std::string>& caps) {
  BpeWordCounts c;
  for (auto& cap : caps)
    for (auto& w : bpe_pretokenize(bpe_normalize(cap))) ++c[w];
  return c;
}

std::string joined_pretokens(const std::string& cap) {
  std::string s;
  for (auto& w : bpe_pretokenize(bpe_normalize(cap))) s += (s.empty() ? "" : " ") + w;
  return s;
}

// The textbook learner: recount every pair after every merge.
std::vector<std::pair<std::string, std::string>> naive_learn(const BpeWordCounts& counts, int64_t merges) {
  const auto& sym = bpe_byte_symbols();
  std::vector<std::pair<std::vector<std::string>, int64_t>> words;
  std::set<std::string> existing;
  for (int b = 0; b < 256; ++b) {
    existing.insert(sym[b]);
    existing.insert(sym[b] + "</w>");
  }
  for (auto& [w, c] : counts) {
    std::vector<std::string> s;
    for (unsigned char ch : w) s.push_back(sym[ch]);
    s.back() += "</w>";
    words.emplace_back(std::move(s), c);
  }
  std::set<std::pair<std::string, std::string>> banned;
  std::vector<std::pair<std::string, std::string>> out;
  while (static_cast<int64_t>(out.size()) < merges) {
    std::map<std::pair<std::string, std::string>, int64_t> pc;
    for (auto& [s, c] : words)
      for (size_t k = 0; k + 1 < s.size(); ++k) pc[{s[k], s[k + 1]}] += c;
    const std::pair<std::string, std::string>* best = nullptr;
    int64_t bc = 0;
    for (auto& [p, c] : pc)  // map order: the smallest pair first among equal counts
      if (c > bc && !banned.count(p)) {
        best = &p;
        bc = c;
      }
    if (!best) break;
    auto p = *best;
    if (existing.count(p.first + p.second)) {
      banned.insert(p);
      continue;
    }
    existing.insert(p.first + p.second);
    out.push_back(p);
    for (auto& [s, c] : words) {
      std::vector<std::string> n;
      for (size_t k = 0; k < s.size();) {
        if (k + 1 < s.size() && s[k] == p.first && s[k + 1] == p.second) {
          n.push_back(p.first + p.second);
          k += 2;
        } else {
          n.push_back(s[k++]);
        }
      }
      s.swap(n);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("bpe: bytes_to_unicode as CLIP") {
  const auto& s = bpe_byte_symbols();
  std::set<std::string> uniq(s.begin(), s.end());
  CHECK(uniq.size() == 256);
  CHECK(s['!'] == "!");
  CHECK(s['a'] == "a");
  CHECK(s[' '] == "\xC4\xA0");   // U+0120 'Ġ'
  CHECK(s[0] == "\xC4\x80");     // U+0100 'Ā'
  CHECK(s[0xE9] == "\xC3\xA9");  // é maps to itself
  BpeTokenizer t;
  CHECK(t.vocab_size() == 514);
  CHECK(t.token(0) == "!");
  CHECK(t.token(256) == "!</w>");
  CHECK(t.token(188) == "\xC4\x80");  // byte 0 comes after the 188 printable bytes
  CHECK(t.token(512) == "<|startoftext|>");
  CHECK(t.token(513) == "<|endoftext|>");
  CHECK(t.sot_id() == 512);
  CHECK(t.eot_id() == 513);
}

TEST_CASE("bpe: pre-tokenizer follows CLIP's pattern") {
  using V = std::vector<std::string>;
  CHECK(bpe_pretokenize("a photo of 2 dogs, it's a café 東京 🐶!!") ==
        V{"a", "photo", "of", "2", "dogs", ",", "it", "'s", "a", "café", "東京", "🐶!!"});
  CHECK(bpe_pretokenize("123 x1y") == V{"1", "2", "3", "x", "1", "y"});
  CHECK(bpe_pretokenize("we'll they're i'm you've he'd don't") ==
        V{"we", "'ll", "they", "'re", "i", "'m", "you", "'ve", "he", "'d", "don", "'t"});
  CHECK(bpe_pretokenize("'sun !'s") == V{"'s", "un", "!'", "s"});  // as the regex does
  CHECK(bpe_pretokenize("<|startoftext|>hi<|endoftext|>") == V{"<|startoftext|>", "hi", "<|endoftext|>"});
  CHECK(bpe_pretokenize("  \t ").empty());
  CHECK(bpe_pretokenize("Ⅻ½") == V{"Ⅻ", "½"});  // letter number, other number: one each
  CHECK(bpe_normalize("  A  Photo\tOF   x ") == "a photo of x");
  CHECK(bpe_normalize("a\xE3\x80\x80" "b\xC2\xA0" "c") == "a b c");  // ideographic and no-break spaces
}

TEST_CASE("bpe: learning matches the naive reference learner") {
  auto counts = count_words(training_captions());
  for (int64_t vocab : {600, 1024}) {
    BpeLearnStats st;
    auto t = BpeTokenizer::learn(counts, vocab, BpeTokenizer::kDefaultMaxWords, &st);
    auto ref = naive_learn(counts, vocab - 514);
    INFO("vocab " << vocab);
    REQUIRE(t.merges().size() == ref.size());
    CHECK(t.merges() == ref);
    CHECK(t.num_merges() == vocab - 514);
    CHECK(t.vocab_size() == vocab);
    CHECK(st.merges == vocab - 514);
    CHECK(st.symbols_after < st.symbols_before);
  }
  // A tiny hand-checked case: "low" x5, "lower" x2, "newest" x6, "widest" x3.
  BpeWordCounts c{{"low", 5}, {"lower", 2}, {"newest", 6}, {"widest", 3}};
  auto t = BpeTokenizer::learn(c, 514 + 4);
  REQUIRE(t.num_merges() == 4);
  CHECK(t.merges()[0] == std::pair<std::string, std::string>("e", "s"));  // 9, ties broken by strings
  CHECK(t.merges()[1] == std::pair<std::string, std::string>("es", "t</w>"));
  CHECK(t.merges() == naive_learn(c, 4));
}

TEST_CASE("bpe: learned deterministically, common words become one token") {
  auto caps = training_captions();
  auto counts = count_words(caps);
  auto a = BpeTokenizer::learn(counts, 1024);
  // The same counts inserted in another order.
  std::vector<std::pair<std::string, int64_t>> v(counts.begin(), counts.end());
  std::reverse(v.begin(), v.end());
  BpeWordCounts again;
  for (auto& e : v) again.insert(e);
  auto b = BpeTokenizer::learn(again, 1024);
  CHECK(a.serialize() == b.serialize());
  CHECK(a.checksum() == b.checksum());
  CHECK(a.checksum().size() == 16);
  CHECK(a.checksum() != BpeTokenizer::learn(counts, 1000).checksum());

  for (const char* w : {"a", "the", "of", "on", "photo", "car", "ball"}) {
    auto ids = a.encode(w);
    INFO(w);
    REQUIRE(ids.size() == 1);
    CHECK(a.token(ids[0]) == std::string(w) + "</w>");
  }
  CHECK(a.encode("a photo of the car").size() == 5);
  // Every learned token is distinct.
  std::set<std::string> toks;
  for (int64_t i = 0; i < a.vocab_size(); ++i) toks.insert(a.token(i));
  CHECK(static_cast<int64_t>(toks.size()) == a.vocab_size());
}

TEST_CASE("bpe: encode -> decode round trips") {
  auto caps = training_captions();
  auto t = BpeTokenizer::learn(count_words(caps), 1024);
  std::vector<std::string> extra = {"unseen words: zyxwvut qqq", "🦄 ünïcödé ✓ 42", "東京タワー", "ok"};
  for (auto* list : {&caps, &extra})
    for (auto& c : *list) {
      auto ids = t.encode(c);
      INFO(c);
      for (auto id : ids) {
        CHECK(id >= 0);
        CHECK(id < t.sot_id());
      }
      // CLIP's decode puts a space after every pre-token.
      CHECK(t.decode(ids) == joined_pretokens(c));
    }
  // Without punctuation next to a word, that is the normalized caption.
  for (const char* c : {"the quick brown fox jumps over the lazy dog", "  Lots   of\tspaces   and TABS  ",
                        "東京 café 🐶", "Résumé of a naïve coöperative"})
    CHECK(t.decode(t.encode(c)) == bpe_normalize(c));
  CHECK(t.decode({t.sot_id(), t.eot_id()}).empty());
  CHECK_THROWS_AS(t.decode({t.vocab_size()}), std::out_of_range);
  CHECK(t.encode("").empty());
  // Byte tokens can split a character: decode repairs it.
  auto ids = BpeTokenizer().encode("é");
  REQUIRE(ids.size() == 2);
  CHECK(BpeTokenizer().decode({ids[0]}) == "\xEF\xBF\xBD");
}

TEST_CASE("bpe: encode_context as open_clip's tokenize(truncate=True), unpadded") {
  auto t = BpeTokenizer::learn(count_words(training_captions()), 1024);
  std::string cap = "a photo of a dog";
  bool cut = true;
  auto ids = t.encode_context(cap, 77, &cut);
  CHECK_FALSE(cut);
  auto body = t.encode(cap);
  REQUIRE(ids.size() == body.size() + 2);
  CHECK(ids.front() == t.sot_id());
  CHECK(ids.back() == t.eot_id());
  CHECK(std::equal(body.begin(), body.end(), ids.begin() + 1));

  std::string longcap;
  for (int i = 0; i < 100; ++i) longcap += "dog cat ";
  auto l = t.encode_context(longcap, 10, &cut);
  CHECK(cut);
  REQUIRE(l.size() == 10);
  CHECK(l.front() == t.sot_id());
  CHECK(l.back() == t.eot_id());
  CHECK(std::equal(l.begin() + 1, l.end() - 1, t.encode(longcap).begin()));
  // Exactly fitting: not cut.
  auto exact = t.encode_context(cap, static_cast<int64_t>(body.size() + 2), &cut);
  CHECK_FALSE(cut);
  CHECK(exact == ids);
  CHECK(t.encode_context("", 77) == std::vector<int64_t>{t.sot_id(), t.eot_id()});
  CHECK(t.encode_context(longcap, 2) == std::vector<int64_t>{t.sot_id(), t.eot_id()});
  CHECK_THROWS_AS(t.encode_context(cap, 1), std::invalid_argument);
}

TEST_CASE("bpe: save and load give the same tokenizer") {
  TempDir d("bpe");
  auto caps = training_captions();
  auto t = BpeTokenizer::learn(count_words(caps), 1024);
  std::string path = d.file("bpe.txt");
  t.save(path);
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  std::string text = catlip::test::read_file(path);
  CHECK(text.rfind("#version: catlip-bpe/1 vocab_size=1024 merges=510\n", 0) == 0);
  CHECK(std::count(text.begin(), text.end(), '\n') == 511);
  auto u = BpeTokenizer::load(path);
  CHECK(u.serialize() == t.serialize());
  CHECK(u.checksum() == t.checksum());
  CHECK(u.vocab_size() == t.vocab_size());
  for (auto& c : caps) CHECK(u.encode(c) == t.encode(c));
  for (int64_t i = 0; i < t.vocab_size(); ++i) CHECK(u.token_id(t.token(i)) == i);
  // A second save is byte-identical.
  u.save(d.file("again.txt"));
  CHECK(catlip::test::read_file(d.file("again.txt")) == text);
}

TEST_CASE("bpe: a damaged file is refused, naming file and line") {
  TempDir d("bpe-bad");
  auto t = BpeTokenizer::learn(count_words(training_captions()), 600);
  std::string good = t.serialize();
  std::vector<std::string> lines;
  {
    std::istringstream ss(good);
    std::string l;
    while (std::getline(ss, l)) lines.push_back(l);
  }
  auto write = [&](const std::vector<std::string>& ls) {
    std::string s;
    for (auto& l : ls) s += l + "\n";
    std::string p = d.file("bad.txt");
    catlip::test::write_file(p, s);
    return p;
  };
  auto expect = [&](const std::vector<std::string>& ls, const std::string& where, const std::string& what) {
    std::string p = write(ls);
    try {
      BpeTokenizer::load(p);
      FAIL("loaded a damaged file: " << where);
    } catch (const std::runtime_error& e) {
      std::string m = e.what();
      INFO(m);
      CHECK(m.find(p + ":" + where) != std::string::npos);
      CHECK(m.find(what) != std::string::npos);
    }
  };
  auto l = lines;
  l[4] = "justonetoken";
  expect(l, "5:", "two tokens");
  l = lines;
  l[6] = "zz qq\xC3";  // invalid UTF-8 / not byte symbols
  expect(l, "7:", "not a token");
  l = lines;
  l[3] = "xyzzy q";  // never merged before
  expect(l, "4:", "neither a byte symbol nor an earlier merge");
  l = lines;
  l[0] = "#version: 0.2";
  expect(l, "1:", "not a catlip BPE file");
  l = lines;
  l[0] = "#version: catlip-bpe/1 vocab_size=601 merges=86";
  expect(l, "1:", "does not match");
  l = lines;
  l.pop_back();
  expect(l, std::to_string(lines.size() + 0) + ":", "file ends after");
  l = lines;
  l.push_back("a b");
  expect(l, std::to_string(lines.size() + 1) + ":", "more merges");
  CHECK_THROWS_WITH(BpeTokenizer::load(d.file("missing.txt")), Catch::Contains("missing.txt"));
}

TEST_CASE("bpe: vocab_size limits, max_words cap, special words") {
  auto counts = count_words(training_captions());
  CHECK_THROWS_AS(BpeTokenizer::learn(counts, 514), std::invalid_argument);
  CHECK(BpeTokenizer::learn(counts, 515).num_merges() == 1);
  // Few words: fewer merges than asked for.
  BpeWordCounts tiny{{"ab", 3}};
  auto t = BpeTokenizer::learn(tiny, 2000);
  CHECK(t.num_merges() == 1);
  CHECK(t.vocab_size() == 515);
  // max_words keeps the most frequent words only.
  BpeWordCounts c{{"aaaa", 10}, {"bbbb", 9}, {"xyxy", 1}};
  BpeLearnStats st;
  auto m = BpeTokenizer::learn(c, 600, 2, &st);
  CHECK(st.kept_words == 2);
  CHECK(st.distinct_words == 3);
  for (auto& [a, b] : m.merges()) CHECK((a + b).find('x') == std::string::npos);
  BpeWordCounts k{{"a", 5}, {"b", 5}, {"c", 7}, {"d", 1}};
  CHECK(bpe_keep_most_frequent(k, 2) == 2);
  CHECK(k.size() == 2);
  CHECK(k.count("c"));
  CHECK(k.count("a"));  // ties: the smaller word
  // Special tokens are whole tokens, never learned from.
  BpeWordCounts sp{{"<|endoftext|>", 100}, {"ab", 1}};
  auto s = BpeTokenizer::learn(sp, 600);
  CHECK(s.num_merges() == 1);
  std::vector<int64_t> ids;
  s.encode_normalized("<|startoftext|>ab<|endoftext|>", ids);
  CHECK(ids == std::vector<int64_t>{s.sot_id(), 514 - 2, s.eot_id()});
}

TEST_CASE("bpe: learning scales (incremental pair counts)") {
  // 200k distinct random words (Zipf-like counts), 2000 merges.
  std::mt19937_64 rng(7);
  BpeWordCounts c;
  const std::string letters = "etaoinshrdlcumwfgypbvkjxqz";
  while (c.size() < 200000) {
    std::string w;
    int len = 2 + static_cast<int>(rng() % 9);
    for (int i = 0; i < len; ++i) w += letters[std::min<size_t>(rng() % 26, rng() % 26)];
    c[w] += 1 + static_cast<int64_t>(1000 / (1 + rng() % 1000));
  }
  auto t0 = std::chrono::steady_clock::now();
  auto t = BpeTokenizer::learn(c, 514 + 2000);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO("learned in " << s << " s");
  CHECK(t.num_merges() == 2000);
  CHECK(s < 60);
  // The cache is bounded and can be turned off without changing results.
  auto ids = t.encode("tea to the sea");
  t.set_cache_words(0);
  CHECK(t.encode("tea to the sea") == ids);
}

TEST_CASE("bpe: ids equal CLIP's Python SimpleTokenizer on the same merges") {
  if (catlip::test::run_cmd("python3 -c 'import regex' 2>&1").exit_code != 0)
    catlip::test::skip_test("python3 with the `regex` module is needed for CLIP's reference tokenizer");
  TempDir d("bpe-clip");
  auto caps = training_captions();
  for (const char* c : {"'sun !'s x'LL Ⅻ½ ٣٤ a\xCC\x81" "b", "ＦＵＬＬ width ｗｉｄｔｈ", "ﬁ ligature ß straße",
                        "🇫🇷 flag 👩‍👩‍👧 family", "tab\there  nbsp\xC2\xA0x ideo\xE3\x80\x80y", "<|endoftext|> after"})
    caps.push_back(c);
  // Learned on these captions plus random multi-script words: merges across
  // scripts, bytes of partial characters.
  std::mt19937 rng(3);
  const std::vector<std::string> chars = {"a", "b", "e", "n", "t", "é", "ü", "ß", "東", "京", "タ", "ワ", "М", "о", "с"};
  auto counts = count_words(caps);
  for (int i = 0; i < 3000; ++i) {
    std::string w;
    for (int k = 0, n = 1 + static_cast<int>(rng() % 7); k < n; ++k) w += chars[rng() % chars.size()];
    ++counts[w];
  }
  auto t = BpeTokenizer::learn(counts, 2000);
  std::string tok = d.file("bpe.txt"), tsv;
  t.save(tok);
  for (auto& c : caps) {
    std::string n = bpe_normalize(c);
    std::vector<int64_t> ids;
    t.encode_normalized(n, ids);
    tsv += n + "\t";
    for (size_t i = 0; i < ids.size(); ++i) tsv += (i ? " " : "") + std::to_string(ids[i]);
    tsv += "\n";
  }
  catlip::test::write_file(d.file("ids.tsv"), tsv);
  auto r = catlip::test::run_cmd("python3 " + catlip::test::source_dir() + "/tests/text/clip_bpe_ref.py " + tok + " " +
                                 d.file("ids.tsv") + " 2>&1");
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find(std::to_string(caps.size()) + " lines, 0 mismatches") != std::string::npos);
}
