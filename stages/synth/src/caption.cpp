// Captions for the synthetic set (make_caption, object_categories in generator.h): one of
// many templates naming every drawn object with counts, colours and sizes.
#include <algorithm>
#include <cctype>
#include <map>

#include "catlip/synth/categories.h"
#include "catlip/synth/generator.h"

namespace catlip::synth {

namespace {

template <size_t N>
const char* pick(const char* const (&v)[N], Rng& rng) {
  return v[rng.randint(0, N - 1)];
}

std::string with_article(const std::string& phrase) {
  char c = phrase.empty() ? 'x' : phrase[0];
  bool vowel = c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
  return (vowel ? "an " : "a ") + phrase;
}

struct Group {
  int category, color, count;
  std::string size_word;  // shared by all members, else ""
};

std::string group_phrase(const Group& g, Rng& rng) {
  static const char* const kNumbers[] = {"zero", "one", "two", "three", "four", "five", "six"};
  std::string words;
  if (!g.size_word.empty() && rng.bernoulli(0.55)) words += g.size_word + " ";
  if (rng.bernoulli(0.75)) words += std::string(palette()[g.color].name) + " ";
  const Category& c = kCategories[g.category];
  if (g.count == 1) {
    words += c.name;
    return rng.bernoulli(0.08) ? "one " + words : with_article(words);
  }
  words += c.plural;
  if (g.count == 2 && rng.bernoulli(0.15)) return "a pair of " + words;
  return std::string(kNumbers[std::min(g.count, 6)]) + " " + words;
}

std::string join_list(const std::vector<std::string>& items, Rng& rng) {
  if (items.size() == 1) return items[0];
  std::string s;
  for (size_t i = 0; i + 1 < items.size(); ++i) s += (i ? ", " : "") + items[i];
  bool oxford = items.size() > 2 && rng.bernoulli(0.3);
  return s + (oxford ? ", and " : " and ") + items.back();
}

std::string capitalize(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

}  // namespace

std::vector<int> object_categories(const std::vector<SynthObject>& objects) {
  std::vector<int> v;
  for (auto& o : objects) v.push_back(o.category);
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

std::string make_caption(const std::vector<SynthObject>& objects, Background bg, Rng& rng) {
  // Group identical (category, colour) objects so counts can be said.
  std::vector<Group> groups;
  for (auto& o : objects) {
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const Group& g) { return g.category == o.category && g.color == o.color; });
    if (it == groups.end()) groups.push_back(Group{o.category, o.color, 1, o.size_word});
    else {
      ++it->count;
      if (it->size_word != o.size_word) it->size_word.clear();
    }
  }
  std::vector<std::string> phrases;
  for (auto& g : groups) phrases.push_back(group_phrase(g, rng));
  if (rng.bernoulli(0.3)) {  // word order in the list varies too
    for (size_t i = phrases.size(); i > 1; --i) std::swap(phrases[i - 1], phrases[rng.randint(0, i - 1)]);
  }
  const std::string list = join_list(phrases, rng);
  const std::string bgw = background_adjective(bg);
  const bool plural = groups[0].count > 1 || groups.size() > 1;

  static const char* const kScenes[] = {"a photo",  "a picture",      "an image",   "a drawing",
                                        "a close-up photo", "a cartoon", "an illustration", "a snapshot",
                                        "a rendering", "a simple sketch"};
  static const char* const kVerbs[] = {"sitting on a table", "floating in the air",  "lying on the floor",
                                       "placed near a window", "standing next to a wall", "seen from above",
                                       "in a small room",     "resting on a shelf",   "shown on a carpet",
                                       "arranged in a corner"};
  static const char* const kPreps[] = {"near", "by", "in front of", "beside", "under", "next to"};
  static const char* const kQuality[] = {"high quality", "stock photo", "hd wallpaper", "simple art",
                                         "clip art", "flat design"};
  static const char* const kBackdrop[] = {"background", "backdrop", "pattern"};

  std::string s;
  switch (rng.randint(0, 10)) {
    case 0: s = std::string(pick(kScenes, rng)) + " of " + list; break;
    case 1: s = capitalize(list) + " on " + with_article(bgw) + " " + pick(kBackdrop, rng); break;
    case 2: s = capitalize(list) + " " + pick(kVerbs, rng); break;
    case 3: s = std::string(plural ? "there are " : "there is ") + list + " in this picture"; break;
    case 4:
      s = std::string(pick(kScenes, rng)) + " showing " + list + " against " + with_article(bgw) + " " +
          pick(kBackdrop, rng);
      break;
    case 5:
      s = capitalize(list) + ", " + pick(kPreps, rng) + " the " + pick(kDistractorNouns, rng);
      break;
    case 6:
      if (phrases.size() >= 2) {
        std::vector<std::string> rest(phrases.begin() + 1, phrases.end());
        s = capitalize(phrases[0]) + " " + pick(kPreps, rng) + " " + join_list(rest, rng);
      } else {
        s = capitalize(list) + " near the " + pick(kDistractorNouns, rng);
      }
      break;
    case 7: s = capitalize(list) + ", " + bgw + " background, " + pick(kQuality, rng); break;
    case 8: s = "look at " + list + "!"; break;
    case 9: s = with_article(bgw) + " scene with " + list; break;
    default: s = "view of " + list + " " + pick(kPreps, rng) + " the " + pick(kDistractorNouns, rng); break;
  }
  if (rng.bernoulli(0.2)) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  } else {
    s = capitalize(s);
  }
  if (s.back() != '!' && rng.bernoulli(0.6)) s += ".";
  return s;
}

}  // namespace catlip::synth
