// The synthetic dataset: categories vs WordNet, determinism, ground truth.
#include <catch2/catch.hpp>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "catlip/image/decode.h"
#include "catlip/shards/byte_stream.h"
#include "catlip/shards/webdataset.h"
#include "catlip/synth/categories.h"
#include "catlip/synth/generator.h"
#include "synth_writer.h"
#include "test_util.h"

using namespace catlip;
using namespace catlip::synth;

namespace {

std::vector<std::string> words_of(const std::string& s) {
  std::vector<std::string> w;
  std::string cur;
  for (char c : s) {
    if (std::isalpha(static_cast<unsigned char>(c))) cur += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else if (!cur.empty()) w.push_back(cur), cur.clear();
  }
  if (!cur.empty()) w.push_back(cur);
  return w;
}

// word (singular or plural) -> category index
std::map<std::string, int> category_words() {
  std::map<std::string, int> m;
  for (size_t i = 0; i < kNumCategories; ++i) {
    m[kCategories[i].name] = int(i);
    m[kCategories[i].plural] = int(i);
  }
  return m;
}

}  // namespace

TEST_CASE("categories: at least 30, first WordNet sense matches the wnid") {
  REQUIRE(kNumCategories >= 30);
  std::set<std::string> names;
  for (auto& c : kCategories) {
    CHECK(names.insert(c.name).second);
    for (auto col : words_of(c.colors)) CHECK(color_index(col) >= 0);
  }
  for (auto d : kDistractorNouns) CHECK(!names.count(d));
}

TEST_CASE("categories: the first WordNet sense of each name is its wnid") {
  std::ifstream idx("/usr/share/wordnet/index.noun");
  if (!idx) catlip::test::skip_test("/usr/share/wordnet/index.noun not found (install wordnet-base)");
  std::map<std::string, std::string> first;  // lemma -> first synset offset
  for (std::string line; std::getline(idx, line);) {
    if (line.empty() || line[0] == ' ') continue;
    std::istringstream in(line);
    std::string lemma, pos;
    int synset_cnt = 0, p_cnt = 0;
    in >> lemma >> pos >> synset_cnt >> p_cnt;
    std::string tok;
    for (int i = 0; i < p_cnt; ++i) in >> tok;
    in >> tok >> tok;  // sense_cnt, tagsense_cnt
    in >> tok;
    first[lemma] = "n" + tok;
  }
  for (auto& c : kCategories) {
    INFO(c.name);
    REQUIRE(first.count(c.name));
    CHECK(first[c.name] == c.wnid);
  }
}

TEST_CASE("synth: same seed and index give identical samples, others differ") {
  SynthOptions o;
  o.seed = 11;
  auto a = generate_sample(o, 5), b = generate_sample(o, 5), c = generate_sample(o, 6);
  CHECK(a.jpg == b.jpg);
  CHECK(a.caption == b.caption);
  CHECK(a.json == b.json);
  CHECK(a.key == "000000005");
  CHECK(a.jpg != c.jpg);
  SynthOptions o2 = o;
  o2.seed = 12;
  CHECK(generate_sample(o2, 5).jpg != a.jpg);
  SynthOptions v = o;
  v.val = true;
  CHECK(generate_sample(v, 5).jpg != a.jpg);
}

TEST_CASE("synth: the default set is stable across versions") {
  // Datasets are regenerated, not shipped: a change to the generator must not
  // silently change what `catlip shards synth` writes with default options.
  // The fingerprint covers pixels (before JPEG), captions and ground truth of
  // the first 50 samples at 64x64, seed 0. If a change is meant to alter the
  // default set, update the value and say so in the change.
  SynthOptions o;
  o.size = 64;
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  auto mix_in = [&h](const void* p, size_t n) {
    auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  for (int i = 0; i < 50; ++i) {
    auto s = generate_sample(o, i);
    mix_in(s.rgb.data(), s.rgb.size());
    mix_in(s.caption.data(), s.caption.size());
    mix_in(s.json.data(), s.json.size());
  }
  CHECK(h == 0x5b5984699090fbf9ull);
}

TEST_CASE("synth: difficulty knobs bound object count and size and calm the background") {
  // Per-channel pixel variance outside every object's box: the clutter.
  auto background_var = [](const SynthSample& s, int S) {
    double sum[3] = {}, sq[3] = {};
    int64_t n = 0;
    for (int y = 0; y < S; ++y)
      for (int x = 0; x < S; ++x) {
        bool inside = false;
        for (auto& ob : s.objects)
          if (std::abs(x + 0.5f - ob.place.cx) < ob.place.half * 1.5f && std::abs(y + 0.5f - ob.place.cy) < ob.place.half * 1.5f)
            inside = true;
        if (inside) continue;
        for (int c = 0; c < 3; ++c) {
          double v = s.rgb[(size_t(y) * S + x) * 3 + c];
          sum[c] += v, sq[c] += v * v;
        }
        ++n;
      }
    double var = 0;
    for (int c = 0; n && c < 3; ++c) var += sq[c] / n - (sum[c] / n) * (sum[c] / n);
    return var;
  };
  SynthOptions full, easy;
  easy.size = 64;
  easy.max_objects = 3;
  easy.min_object = 0.2;
  easy.clutter = 0.3f;
  full = easy;
  full.clutter = 1.0f;  // the same scenes (clutter draws no random numbers), full contrast
  std::set<size_t> counts;
  double var_full = 0, var_easy = 0;
  for (int i = 0; i < 300; ++i) {
    auto e = generate_sample(easy, i);
    counts.insert(e.objects.size());
    REQUIRE(e.objects.size() <= 3);
    for (auto& ob : e.objects) CHECK(ob.place.half >= 0.2f * 64 - 1e-3f);
    var_easy += background_var(e, 64);
    var_full += background_var(generate_sample(full, i), 64);
  }
  CHECK(counts == std::set<size_t>{1, 2, 3});
  // Same scenes, a third of the background contrast.
  CHECK(var_easy < 0.5 * var_full);

  // Typical colours: at most two per category, so colour is a cue.
  easy.typical_colors = true;
  std::map<int, std::set<int>> colors;
  for (int i = 0; i < 600; ++i)
    for (auto& ob : generate_sample(easy, i).objects) colors[ob.category].insert(ob.color);
  CHECK(colors.size() == kNumCategories);
  size_t two = 0;
  for (auto& [cat, cs] : colors) {
    INFO(kCategories[cat].name);
    CHECK(cs.size() <= 2);
    two += cs.size() == 2;
  }
  CHECK(two > kNumCategories / 2);
}

TEST_CASE("synth: captions name every drawn object and no undrawn category, json holds the truth") {
  SynthOptions o;
  o.seed = 3;
  auto words = category_words();
  std::set<int> seen_cats, seen_bg;
  std::set<std::string> captions;
  int with_count = 0, with_distractor = 0, with_color = 0;
  const int n = 400;
  for (int i = 0; i < n; ++i) {
    auto s = generate_sample(o, i);
    INFO(s.caption);
    REQUIRE(!s.objects.empty());
    REQUIRE(s.objects.size() <= 4);
    auto cats = object_categories(s.objects);
    std::set<int> drawn(cats.begin(), cats.end()), mentioned;
    for (auto& w : words_of(s.caption)) {
      auto it = words.find(w);
      if (it != words.end()) mentioned.insert(it->second);
      if (w == "two" || w == "three" || w == "four" || w == "pair") ++with_count;
      for (auto d : kDistractorNouns)
        if (w == d) ++with_distractor;
      if (color_index(w) >= 0) ++with_color;
    }
    CHECK(mentioned == drawn);
    // JSON ground truth lists the same objects and the class of the largest.
    for (int c : cats) CHECK(s.json.find(std::string("\"") + kCategories[c].name + "\"") != std::string::npos);
    CHECK(drawn.count(s.cls));
    float largest = 0;
    for (auto& ob : s.objects) largest = std::max(largest, ob.place.half);
    CHECK(s.objects[0].place.half == largest);
    CHECK(s.objects[0].category == s.cls);
    CHECK(s.json.find("\"class_index\": " + std::to_string(s.cls)) != std::string::npos);
    // The JPEG decodes at the configured size.
    std::vector<uint8_t> px;
    auto d = image::decode_full(s.jpg.data(), s.jpg.size(), image::kDefaultMaxPixels, px);
    REQUIRE(d.ok());
    CHECK(d.info.width == 128);
    CHECK(d.info.height == 128);
    for (int c : cats) seen_cats.insert(c);
    seen_bg.insert(int(s.background));
    captions.insert(s.caption);
  }
  CHECK(seen_cats.size() == kNumCategories);
  CHECK(seen_bg.size() == size_t(kNumBackgrounds));
  CHECK(captions.size() > n * 9 / 10);
  CHECK(with_count > 20);
  CHECK(with_distractor > 20);
  CHECK(with_color > n / 2);
}

TEST_CASE("synth: objects are visible (differ from the background)") {
  SynthOptions o;
  o.seed = 8;
  for (int i = 0; i < 50; ++i) {
    auto s = generate_sample(o, i);
    auto& ob = s.objects.back();  // smallest, drawn last
    int cx = int(ob.place.cx), cy = int(ob.place.cy), S = 128;
    // Pixels within the object's box vary (an object, not flat background).
    int lo = 255, hi = 0;
    for (int y = std::max(0, cy - int(ob.place.half)); y < std::min(S, cy + int(ob.place.half)); ++y)
      for (int x = std::max(0, cx - int(ob.place.half)); x < std::min(S, cx + int(ob.place.half)); ++x) {
        int v = s.rgb[(y * S + x) * 3] + s.rgb[(y * S + x) * 3 + 1] + s.rgb[(y * S + x) * 3 + 2];
        lo = std::min(lo, v / 3), hi = std::max(hi, v / 3);
      }
    CHECK(hi - lo > 25);
  }
}

TEST_CASE("synth: shards are byte-identical for the same seed and readable") {
  test::TempDir d1("synth1"), d2("synth2");
  SynthOptions o;
  o.seed = 42;
  auto r1 = cli::write_synth_shards(d1.file("syn"), 25, 10, o);
  auto r2 = cli::write_synth_shards(d2.file("syn"), 25, 10, o);
  REQUIRE(r1.shards.size() == 3);
  REQUIRE(r2.shards.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(test::read_file(r1.shards[i]) == test::read_file(r2.shards[i]));
  CHECK(std::filesystem::path(r1.shards[0]).filename() == "syn-000000.tar");
  // Read back through the WebDataset reader.
  int64_t n = 0;
  for (size_t i = 0; i < r1.shards.size(); ++i) {
    shards::SampleReader rd(shards::open_stream(r1.shards[i]), r1.shards[i], int64_t(i), {}, nullptr);
    Sample s;
    while (rd.next(s)) {
      CHECK(s.bytes("jpg"));
      REQUIRE(s.text("txt"));
      REQUIRE(s.text("json"));
      REQUIRE(s.text("cls"));
      auto g = generate_sample(o, n);
      CHECK(s.key == g.key);
      CHECK(*s.text("txt") == g.caption);
      CHECK(*s.text("cls") == std::to_string(g.cls));
      CHECK(s.text("json")->find("\"objects\": [") != std::string::npos);
      ++n;
    }
    CHECK(!rd.failed());
  }
  CHECK(n == 25);
  o.seed = 43;
  test::TempDir d3("synth3");
  auto r3 = cli::write_synth_shards(d3.file("syn"), 25, 10, o);
  CHECK(test::read_file(r3.shards[0]) != test::read_file(r1.shards[0]));
}
