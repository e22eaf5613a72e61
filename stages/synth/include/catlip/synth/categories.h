// catlip/synth/categories.h - the object categories of the synthetic dataset.
//
// Each is a concrete noun whose FIRST WordNet 3.0 noun sense (the one a
// first-sense labeler picks) is the object we draw; wnid is "n" + that
// synset's data.noun offset. tests/synth checks every entry against
// /usr/share/wordnet/index.noun. Nouns whose first sense is something else
// (table = data table, star = celestial body, heart = feelings, ring =
// sound, kite = bank check) are deliberately absent.
#pragma once

#include <cstddef>

namespace catlip::synth {

struct Category {
  const char* name;    // WordNet lemma, as written in captions (singular)
  const char* plural;  // caption form for counts > 1 (irregulars included)
  const char* wnid;    // first noun sense
  const char* colors;  // space-separated allowed colour names; "" = any
};

inline constexpr Category kCategories[] = {
    {"ball", "balls", "n02778669", ""},
    {"cup", "cups", "n03147509", ""},
    {"bottle", "bottles", "n02876657", ""},
    {"box", "boxes", "n02883344", ""},
    {"tree", "trees", "n13104059", "green orange yellow red"},
    {"house", "houses", "n03544360", ""},
    {"car", "cars", "n02958343", ""},
    {"moon", "moons", "n09358358", "yellow white gray"},
    {"sun", "suns", "n09450163", "yellow orange red"},
    {"flower", "flowers", "n11669921", "red pink purple yellow orange white blue"},
    {"fish", "fish", "n02512053", ""},
    {"bird", "birds", "n01503061", ""},
    {"cat", "cats", "n02121620", "orange gray black white brown"},
    {"key", "keys", "n03613294", "yellow gray orange brown"},
    {"umbrella", "umbrellas", "n04507155", ""},
    {"chair", "chairs", "n03001627", ""},
    {"ladder", "ladders", "n03632277", "brown gray orange yellow red"},
    {"clock", "clocks", "n03046257", ""},
    {"apple", "apples", "n07739125", "red green yellow"},
    {"boat", "boats", "n02858304", ""},
    {"bell", "bells", "n02824448", "yellow orange gray brown"},
    {"candle", "candles", "n02948072", ""},
    {"envelope", "envelopes", "n03291819", ""},
    {"flag", "flags", "n03354903", ""},
    {"hat", "hats", "n03497657", ""},
    {"snowman", "snowmen", "n04251983", "white"},
    {"pencil", "pencils", "n03908204", ""},
    {"wheel", "wheels", "n04574999", ""},
    {"leaf", "leaves", "n13152742", "green yellow orange red brown"},
    {"balloon", "balloons", "n02782093", ""},
    {"arrow", "arrows", "n06818121", ""},
    {"triangle", "triangles", "n13879320", ""},
    {"square", "squares", "n13878634", ""},
    {"circle", "circles", "n13873502", ""},
    {"butterfly", "butterflies", "n02274259", ""},
    {"hexagon", "hexagons", "n13882276", ""},
    {"bucket", "buckets", "n02909870", ""},
    {"mushroom", "mushrooms", "n13001041", "red brown orange white"},
    {"vase", "vases", "n04522168", ""},
};
inline constexpr size_t kNumCategories = sizeof(kCategories) / sizeof(kCategories[0]);

// Nouns that appear in captions but are never drawn (scene words and
// distractors); none of them is a category.
inline constexpr const char* kDistractorNouns[] = {
    "window", "wall", "floor", "table", "shelf", "room", "garden", "street", "field", "sky",
    "grass", "kitchen", "beach", "park", "desk", "sofa", "corner", "carpet", "door", "lake",
};

}  // namespace catlip::synth
