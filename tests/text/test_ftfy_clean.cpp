// ftfy.fix_text's default fixes in catlip's caption cleaning (clean.h):
// ftfy's documented examples, text that must stay untouched, the labels of
// dirty captions against hand-cleaned ones, and (where python3 is there)
// mojibake made by Python's own cp1252/Latin-1 codecs.
#include <catch2/catch.hpp>

#include <filesystem>
#include <random>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "catlip/text/clean.h"
#include "catlip/text/labeler.h"
#include "text_test_util.h"

using namespace catlip::text;

TEST_CASE("ftfy: uncurl_quotes") {
  CHECK(uncurl_quotes("\u201chere\u2019s a test\u201d") == "\"here's a test\"");
  CHECK(uncurl_quotes("\u2018a\u2019 \u201ab\u201b \u201ec\u201f \u02bcd") == "'a' 'b' \"c\" 'd");
  // ftfy leaves primes alone.
  CHECK(uncurl_quotes("5\u2032 10\u2033") == "5\u2032 10\u2033");
  CHECK(uncurl_quotes("plain 'ascii' \"text\"") == "plain 'ascii' \"text\"");
}

TEST_CASE("ftfy: fix_latin_ligatures") {
  CHECK(fix_latin_ligatures("\ufb02u\ufb03e\ufb06") == "fluffiest");
  CHECK(fix_latin_ligatures("\ufb01sh \ufb00 \ufb04") == "fish ff ffl");
  CHECK(fix_latin_ligatures("\ufb05") == "\u017ft");  // ftfy's table, not NFKC's "st"
  CHECK(fix_latin_ligatures("\u0132\u0133 \u0149") == "IJij \u02bcn");
  CHECK(fix_latin_ligatures("\u01c4\u01c5\u01c6 \u01c7\u01c8\u01c9 \u01ca\u01cb\u01cc \u01f1\u01f2\u01f3") ==
        "D\u017dD\u017ed\u017e LJLjlj NJNjnj DZDzdz");
  CHECK(fix_latin_ligatures("\u00e6 \u0153") == "\u00e6 \u0153");  // not Latin typographic ligatures
}

TEST_CASE("ftfy: fix_character_width") {
  CHECK(fix_character_width("\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33") ==
        "LOUD NOISES");
  CHECK(fix_character_width("\uff35\uff80\uff70\uff9d") == "U\u30bf\u30fc\u30f3");  // "U-turn"
  CHECK(fix_character_width("\uff44\uff4f\uff47") == "dog");
  CHECK(fix_character_width("\uff01\uff1f\uffe5") == "!?\u00a5");
  CHECK(fix_character_width("\u6771\u4eac \u30c6\u30b9\u30c8") == "\u6771\u4eac \u30c6\u30b9\u30c8");
}

TEST_CASE("ftfy: NFC normalization") {
  CHECK(normalize_nfc("cafe\u0301") == "caf\u00e9");
  CHECK(normalize_nfc("A\u030a") == "\u00c5");
  CHECK(normalize_nfc("caf\u00e9") == "caf\u00e9");
  CHECK(fix_text("cafe\u0301 na\u0131\u0308ve") == "caf\u00e9 na\u0131\u0308ve");  // dotless i has no composite
  CHECK(fix_text("cafe\u0301") == "caf\u00e9");
}

TEST_CASE("ftfy: mojibake, UTF-8 read as cp1252 or Latin-1") {
  CHECK(fix_encoding("don\u00e2\u20ac\u2122t") == "don\u2019t");
  CHECK(fix_text("don\u00e2\u20ac\u2122t") == "don't");
  CHECK(fix_encoding("caf\u00c3\u00a9") == "caf\u00e9");
  CHECK(fix_encoding("\u00c3\u00banico") == "\u00fanico");
  CHECK(fix_encoding("This \u00e2\u20ac\u201d should be an em dash") == "This \u2014 should be an em dash");
  // cp1252 leaves 0x81 undefined: it arrives as U+0081 next to cp1252 symbols.
  CHECK(fix_encoding("This text is sad .\u00e2\u0081\u201d.") == "This text is sad .\u2054.");
  CHECK(fix_text("\u00e2\u20ac\u0153quoted\u00e2\u20ac\u009d") == "\"quoted\"");
  // Mojibake of mojibake.
  CHECK(fix_encoding("\u00c3\u00a2\u00e2\u201a\u00ac\u00e2\u201e\u00a2") == "\u2019");
  // Latin-1 reading of UTF-8 (C1 controls instead of cp1252 symbols).
  CHECK(fix_encoding("\u00e2\u0080\u0099") == "\u2019");
  // Emoji, and Greek / Cyrillic / CJK read as cp1252.
  CHECK(fix_encoding("\u00f0\u0178\u0090\u00b6 dog") == "\U0001f436 dog");
  CHECK(fix_encoding("\u00e4\u00b8\u00ad\u00e6\u2013\u2021") == "\u4e2d\u6587");
  CHECK(fix_encoding("\u00d0\u0153\u00d0\u00be\u00d1\u0081\u00d0\u00ba\u00d0\u00b2\u00d0\u00b0") ==
        "\u041c\u043e\u0441\u043a\u0432\u0430");
  // Mojibake inside text that cp1252 cannot encode: fixed run by run.
  CHECK(fix_encoding("\uff44og don\u00e2\u20ac\u2122t caf\u00c3\u00a9!") == "\uff44og don\u2019t caf\u00e9!");
}

TEST_CASE("ftfy: mojibake through cp1251, cp1250, MacRoman, cp437, and lossy sequences") {
  CHECK(fix_text("\u0420\u0457\u0421\u0402\u0420\u0451\u0420\u0406\u0420\u00b5\u0421\u201a") ==
        "\u043f\u0440\u0438\u0432\u0435\u0442");                            // cp1251
  CHECK(fix_text("Dvo\u0139\u2122\u0102\u02c7k") == "Dvo\u0159\u00e1k");     // cp1250
  CHECK(fix_text("caf\u221a\u00a9") == "caf\u00e9");                            // MacRoman
  CHECK(fix_text("caf\u251c\u2310") == "caf\u00e9");                            // cp437
  CHECK(fix_text("na\u00c3\u0192\u00c2\u00afve") == "na\u00efve");            // twice
  // replace_lossy_sequences: a U+FFFD inside mojibake stands for a lost byte.
  CHECK(fix_text("\u00c3\u00a9t\u00e2\u20ac\ufffd") == "\u00e9t\ufffd");
}

TEST_CASE("ftfy: restore_byte_a0 (a 0xA0 byte that became a space)") {
  CHECK(restore_byte_a0("\xF0\x9F\x8C ") == "\xF0\x9F\x8C\xA0");
  CHECK(restore_byte_a0("\xC3 la mode") == "\xC3\xA0 la mode");
  CHECK(restore_byte_a0("\xC3 s ") == "\xC3\xA0s ");  // Portuguese "as"
  CHECK(restore_byte_a0("plain text") == "plain text");
  CHECK(fix_encoding("The more you know \u00f0\u0178\u0152 ") == "The more you know \U0001f320");
  CHECK(fix_encoding("\u00c3 la mode") == "\u00e0 la mode");
  CHECK(fix_encoding("a dog\u00c2 running") == "a dog\u00a0running");
}

TEST_CASE("ftfy: ordinary text is never damaged") {
  for (const char* s : {"caf\u00e9 na\u00efve Z\u00fcrich \u6771\u4eac \U0001f436", "This text is fine already :\u00fe",
                        "not such a fan of Charlotte Bront\u00eb\u2026\u201d", "AH\u00c5\u2122, the new sofa from IKEA\u00ae",
                        "NG\u00c3 BA", "S\u00e3o Paulo, Espa\u00f1a, \u00c5 river, 25\u00b0C, \u00bd cup, \u00ab\u00e0 bient\u00f4t\u00bb",
                        "\u0395\u03bb\u03bb\u03ac\u03b4\u03b1 \u041c\u043e\u0441\u043a\u0432\u0430 \uc548\ub155",
                        "r\u00e9sum\u00e9 \u00a9 2020 \u2014 \u00e9t\u00e9", "\u00e0 la carte"}) {
    INFO(s);
    CHECK_FALSE(is_mojibake(s));
    CHECK(fix_encoding(s) == s);
    CHECK(fix_text(s) == uncurl_quotes(s));
  }
  // ASCII comes back byte for byte.
  std::string ascii = "A plain caption, with 'quotes' & \"more\"; 100% ASCII.";
  CHECK(fix_text(ascii, {.unescape_html = false}) == ascii);
}

TEST_CASE("ftfy: fix_c1_controls") {
  CHECK(fix_c1_controls("\u0080 10 \u0085 \u0093x\u0094") == "\u20ac 10 \u2026 \u201cx\u201d");
  CHECK(fix_c1_controls("\u0081\u008d\u008f\u0090\u009d") == "\u0081\u008d\u008f\u0090\u009d");  // undefined in cp1252
  CHECK(fix_text("price \u0080 5") == "price \u20ac 5");
  CHECK(fix_text("This text was never UTF-8 at all\u0085") == "This text was never UTF-8 at all\u2026");
}

TEST_CASE("ftfy: control characters, terminal escapes, line breaks") {
  CHECK(remove_terminal_escapes("\x1b[36;44mI'm blue, da ba dee da ba doo...\x1b[0m") ==
        "I'm blue, da ba dee da ba doo...");
  CHECK(remove_control_chars("a\x01" "b\x7f\tc\x0b\fd\u200b\ufeffe\u206a\ufffc") ==
        "ab\tc\fd\u200be");
  CHECK(fix_line_breaks("a\r\nb\rc\u2028d\u2029e") == "a\nb\nc\nd\ne");
  CHECK(fix_text("\x1b[1mbold\x1b[0m \x1b") == "bold ");
  CHECK(fix_text("line one\r\nline two") == "line one\nline two");
}

TEST_CASE("ftfy: fix_text runs the fixes in ftfy's order") {
  CHECK(fix_text("a \uff44\uff4f\uff47 and a \ufb01sh \u2026 don\u00e2\u20ac\u2122t") ==
        "a dog and a fish \u2026 don't");
  // Entities first (then their mojibake), unless the text has a '<'.
  CHECK(fix_text("caf&Atilde;&copy; &amp; more") == "caf\u00e9 & more");  // HTML5 names, then the mojibake
  CHECK(fix_text("&NTILDE;o &#x41; &#x3b; &bogus;") == "\u00d1o A &#x3b; &bogus;");
  // From the first line with a '<' on, entities stay (ftfy keeps the choice).
  CHECK(fix_text("a&amp;b\n<i>c&amp;d\ne&amp;f") == "a&b\n<i>c&amp;d\ne&amp;f");
  CHECK(fix_text("it&rsquo;s") == "it's");
  CHECK(fix_text("<b>it&rsquo;s</b>") == "<b>it&rsquo;s</b>");
  CHECK(fix_text("it&rsquo;s", {.unescape_html = false}) == "it&rsquo;s");
  // Width before quotes: a full-width apostrophe is an ASCII one.
  CHECK(fix_text("\uff34\uff48\uff45 \uff43\uff41\uff54\u2019\uff53") == "The cat's");
  // Invalid UTF-8 is read as U+FFFD, not dropped or passed through.
  CHECK(fix_text("a\xff" "b") == "a\ufffdb");
}

TEST_CASE("ftfy in clean_caption") {
  CHECK(clean_caption("A Knight\u2019s Horse").text == "a knight's horse");
  CHECK(clean_caption("\u201cFuji\u201d mountain at dawn").text == "\"fuji\" mountain at dawn");
  CHECK(clean_caption("a \uff24\uff4f\uff47 and a \ufb01sh \u2026 don\u00e2\u20ac\u2122t").text ==
        "a dog and a fish \u2026 don't");
  CHECK(clean_caption("the caf\u00c3\u00a9\u3000sign").text == "the caf\u00e9 sign");
  CHECK(clean_caption("it&rsquo;s a <b>dog</b>").text == "it's a dog");
  CHECK(clean_caption("\x1b[31mred\x1b[0m car").text == "red car");
  CHECK(clean_caption("a cat\u2028on a mat").text == "a cat on a mat");
  CHECK(clean_caption("cafe\u0301").text == "caf\u00e9");
  // The ASCII fast path is unchanged.
  CHECK(clean_caption("  A  Plain   Caption ").text == "a plain caption");
}

TEST_CASE("ftfy: dirty captions get the labels of their clean versions") {
  LabelerOptions opt;
  if (!std::filesystem::exists(opt.wordnet_dir + "/index.noun") ||
      !std::filesystem::exists(opt.lexicon_dir)) {
    catlip::test::skip_test("WordNet (" + opt.wordnet_dir + ") or the Lingua lexicon (" + opt.lexicon_dir +
                            ") is missing");
  }
  Labeler lab(opt);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a knight\u2019s horse", "a knight's horse"},
      {"\u201cFuji\u201d mountain at dawn", "\"Fuji\" mountain at dawn"},
      {"a \uff44\uff4f\uff47 and a \ufb01sh", "a dog and a fish"},
      {"the don\u00e2\u20ac\u2122t sign near a caf\u00c3\u00a9", "the don't sign near a caf\u00e9"},
      {"\uff2c\uff21\uff32\uff27\uff25\u3000\uff37\uff28\uff29\uff34\uff25\u3000\uff28\uff2f\uff32\uff33\uff25",
       "large white horse"},
      {"a \ufb02ock of birds \ufb02ying over the \ufb01eld", "a flock of birds flying over the field"},
      {"children\u2019s toys on a shelf", "children's toys on a shelf"},
      {"a \u2018vintage\u2019 car parked outside", "a 'vintage' car parked outside"},
      {"the mountain\u00e2\u20ac\u2122s peak covered in snow", "the mountain's peak covered in snow"},
      {"\u00e2\u20ac\u0153sunset\u00e2\u20ac\u009d over the ocean", "\"sunset\" over the ocean"},
      {"a cat\u2028sitting on a sofa", "a cat sitting on a sofa"},
      {"\x1b[1ma red car\x1b[0m in the street", "a red car in the street"},
      {"two \ufb01sh in a \ufb01shbowl", "two fish in a fishbowl"},
      {"a woman\u2019s hand holding a phone", "a woman's hand holding a phone"},
      {"\uff34\uff48\uff45 \uff43\uff41\uff54\u2019\uff53 whiskers", "the cat's whiskers"},
      {"a man at a caf\u00c3\u00a9 drinking coffee", "a man at a caf\u00e9 drinking coffee"},
      {"a \u00e2\u20ac\u02dcvintage\u00e2\u20ac\u2122 bicycle", "a 'vintage' bicycle"},
      {"a boat on the lake\r\nat sunset", "a boat on the lake at sunset"},
      {"the dog\u00e2\u20ac\u201dand the cat", "the dog\u2014and the cat"},
      {"\u00e2\u20ac\u0153\uff26\uff55\uff4a\uff49\u00e2\u20ac\u009d at dawn", "\"Fuji\" at dawn"},
      {"a bird\u0080s nest", "a bird\u20acs nest"},
      {"cafe\u0301 tables on a street", "caf\u00e9 tables on a street"},
  };
  int with_labels = 0;
  for (auto& [dirty, clean] : cases) {
    INFO(dirty << "  vs  " << clean);
    auto a = lab.parse(dirty);
    auto b = lab.parse(clean);
    CHECK(a.clean.text == b.clean.text);
    CHECK(a.unique_synsets() == b.unique_synsets());
    with_labels += !b.unique_synsets().empty();
  }
  CHECK(with_labels >= 18);
  // The dirty captions really have labels they had not before ftfy: "dog" and "fish".
  auto p = lab.parse("a \uff44\uff4f\uff47 and a \ufb01sh \u2026 don\u00e2\u20ac\u2122t");
  CHECK(p.unique_synsets().size() >= 2);
  CHECK(p.unique_synsets() == lab.parse("a dog and a fish").unique_synsets());
}

TEST_CASE("ftfy: fix_encoding undoes Python's own cp1252 and Latin-1 mojibake") {
  if (catlip::test::run_cmd("/usr/bin/python3 -c 'pass' 2>&1").exit_code != 0) {
    catlip::test::skip_test("/usr/bin/python3 is missing");
  }
  catlip::test::TempDir dir;
  const std::vector<std::string> words = {
      "caf\u00e9",         "na\u00efve",          "Z\u00fcrich",      "don\u2019t",          "\u201cFuji\u201d",
      "\U0001f436 dog",    "\u6771\u4eac",        "\u00fanico",        "\u2014 dash",         "\u00c5ngstr\u00f6m",
      "\u0395\u03bb\u03bb\u03ac\u03b4\u03b1", "\u041c\u043e\u0441\u043a\u0432\u0430", "\u2122 \u00ae \u00a9",
      "\u00bd \u00b0C",    "\u20ac5 \u00a31",     "\uc548\ub155",      "\u00e0 la carte",     "fa\u00e7ade",
      "pi\u00f1ata",       "\u00df \u00f8 \u00e5", "\u2026 \u2022 \u2020"};
  {
    std::ofstream f(dir.path() + "/in.txt", std::ios::binary);
    for (auto& w : words) f << w << "\n";
  }
  // sloppy cp1252: the five undefined bytes pass through as C1 controls.
  const std::string py =
      "import sys\n"
      "def sloppy(b):\n"
      "    return ''.join(bytes([x]).decode('cp1252') if x not in (0x81,0x8d,0x8f,0x90,0x9d) else chr(x) for x in b)\n"
      "for line in open(sys.argv[1], encoding='utf-8'):\n"
      "    w = line.rstrip('\\n').encode('utf-8')\n"
      "    print(sloppy(w) + '\\t' + w.decode('latin-1'))\n";
  {
    std::ofstream(dir.path() + "/mk.py") << py;
  }
  auto r = catlip::test::run_cmd("/usr/bin/python3 " + dir.path() + "/mk.py " + dir.path() + "/in.txt 2>&1");
  REQUIRE(r.exit_code == 0);
  auto lines = catlip::test::split(r.out, '\n');
  REQUIRE(lines.size() >= words.size());
  for (size_t i = 0; i < words.size(); ++i) {
    auto cols = catlip::test::split(lines[i], '\t');
    REQUIRE(cols.size() == 2);
    INFO(words[i] << "  cp1252: " << cols[0] << "  latin-1: " << cols[1]);
    CHECK(fix_encoding(cols[0]) == words[i]);
    CHECK(fix_encoding(cols[1]) == words[i]);
    CHECK(fix_encoding(words[i]) == words[i]);
  }
}

// (No CR or U+2028 in the soup: a line break made inside a line can, as in
// ftfy, leave mojibake that a second run, splitting there, sees at a line start.)
TEST_CASE("ftfy: random soup gives valid UTF-8 and a fixed point") {
  const std::vector<std::string> alphabet = {
      "a", "e", "s", "t", " ", " ", "'", "&", ";", "amp", "[", "1", "m", "\n", "\x1b", "\x01",
      "\u00c3", "\u00c2", "\u00e2", "\u00f0", "\u00e9", "\u00a9", "\u00a0", "\u20ac", "\u2122", "\u0178",
      "\u0080", "\u0081", "\u0099", "\u009d", "\u2019", "\u201c", "\ufb01", "\uff44", "\u3000", "\u0301",
      "\u6771", "\U0001f436", "\u0149", "\ufeff", "\xff", "\xc3"};
  std::mt19937 rng(5);
  for (int n = 0; n < 3000; ++n) {
    std::string s;
    size_t len = rng() % 14;
    for (size_t k = 0; k < len; ++k) s += alphabet[rng() % alphabet.size()];
    INFO(s);
    std::string once = fix_text(s);
    REQUIRE(valid_utf8(once));
    CHECK(fix_text(once) == once);
    auto c = clean_caption(s);
    REQUIRE(valid_utf8(c.text));
  }
}

TEST_CASE("clean: non-ASCII letters are lowercased as Python's str.lower() does") {
  CHECK(clean_caption("\u00c9COLE \u00dcber den FLUSS").text == "\u00e9cole \u00fcber den fluss");
  CHECK(clean_caption("\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3").text ==
        "\u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2");  // final sigma, as Python
  CHECK(clean_caption("\uff24\uff2f\uff27 AND A CAT").text == "dog and a cat");  // full width, then lowercased
  // A letter whose lowercase is longer still respects max_bytes.
  CleanOptions o;
  o.max_bytes = 8;
  auto r = clean_caption("\u0130\u0130\u0130\u0130", o);  // 8 bytes; lowercase "i\u0307" x4 is 12
  CHECK(r.text.size() <= 8);
  CHECK(valid_utf8(r.text));
  CHECK(r.truncated);
}
