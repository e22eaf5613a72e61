// The implementation of catlip/text/captions.h: deterministic, realistic-looking alt-text captions.
#include "catlip/text/captions.h"

#include <random>

namespace catlip::text {
namespace {

const std::vector<std::string> kSubjects = {
    "a man", "a woman", "two children", "a young girl", "an old man", "a dog", "three dogs", "a cat",
    "a group of people", "the players", "a brown horse", "two women", "a little boy", "some sheep",
    "a herd of cattle", "a flock of geese", "a couple", "the chef", "a teenager", "a police officer",
    "a baby", "two puppies", "a bird", "several students", "a fisherman", "the team", "a tourist",
    "many mice", "a goldfish", "an elephant", "a pair of oxen", "the firefighters", "a skateboarder"};
const std::vector<std::string> kVerbs = {
    "riding", "holding", "walking along", "sitting on", "standing next to", "looking at", "playing with",
    "eating", "carrying", "running through", "jumping over", "lying on", "waiting for", "cooking",
    "painting", "reading", "throwing", "watching", "climbing", "driving", "feeding", "pulling"};
const std::vector<std::string> kObjects = {
    "a horse", "a bicycle", "the beach", "a red car", "a wooden bench", "a tennis racket", "a frisbee",
    "a plate of food", "the street", "a snowy mountain", "a large tree", "an umbrella", "a book",
    "the ball", "a kite", "some boxes", "the bus", "a laptop", "two glasses of wine", "a sandwich",
    "the fence", "a slice of pizza", "a guitar", "fresh vegetables", "the stairs", "a boat",
    "an old building", "the leaves", "a cup of coffee", "the knives", "a suitcase", "the train"};
const std::vector<std::string> kPlaces = {
    "on a sandy beach", "in the park", "at night", "in a kitchen", "near the river", "in the snow",
    "on a busy street", "in front of a house", "at the zoo", "under a bridge", "in a field of flowers",
    "on the table", "at the market", "in a forest", "by the lake", "inside a restaurant", "at sunset",
    "in the city", "on a farm", "in an office", "during the festival", "at the airport"};
const std::vector<std::string> kAdjs = {"beautiful", "black", "white", "small", "big", "happy",
                                        "colorful", "vintage", "modern", "cute", "wooden", "sunny"};
const std::vector<std::string> kThings = {
    "house", "landscape", "wedding dress", "kitchen", "garden", "portrait", "sunset", "car",
    "living room", "mountains", "flowers", "shoes", "jacket", "watch", "necklace", "table", "chairs",
    "bedroom", "castle", "bridge", "city skyline", "waterfall", "cathedral", "lighthouse", "teapot"};

template <class V>
const std::string& pick(std::mt19937_64& r, const V& v) {
  return v[r() % v.size()];
}

}  // namespace

std::vector<std::string> generate_captions(size_t n, uint64_t seed) {
  std::mt19937_64 r(seed);
  std::vector<std::string> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string c;
    // Roughly the mix of web alt-text: mostly noun phrases, some clauses.
    switch (r() % 16) {
      case 0:
        c = pick(r, kSubjects) + " " + pick(r, kVerbs) + " " + pick(r, kObjects) + " " + pick(r, kPlaces);
        break;
      case 1:
        c = pick(r, kSubjects) + " " + pick(r, kVerbs) + " " + pick(r, kObjects) + ".";
        break;
      case 2:
        c = pick(r, kAdjs) + " " + pick(r, kThings) + " " + pick(r, kPlaces) + " - stock photo";
        break;
      case 3:
        c = pick(r, kAdjs) + " " + pick(r, kAdjs) + " " + pick(r, kThings) + " with " + pick(r, kObjects) +
            ", " + std::to_string(1 + r() % 20) + " pieces";
        break;
      case 4:
        c = "Photo of " + pick(r, kSubjects) + " " + pick(r, kVerbs) + " " + pick(r, kObjects) +
            " (" + std::to_string(2000 + r() % 24) + ")";
        break;
      case 5:
        c = "\"" + pick(r, kAdjs) + " " + pick(r, kThings) + "\" isn't " + pick(r, kObjects) +
            "; it's " + pick(r, kSubjects) + "'s favorite " + pick(r, kThings) + "!";
        break;
      case 6:
        c = pick(r, kSubjects) + " and " + pick(r, kSubjects) + " " + pick(r, kVerbs) + " " +
            pick(r, kObjects) + " " + pick(r, kPlaces) + ", with " + pick(r, kThings) + " in the background";
        break;
      case 7:
        c = "<b>" + pick(r, kAdjs) + "</b> " + pick(r, kThings) + "%20for%20sale &amp; " + pick(r, kThings) +
            " near " + pick(r, kObjects);
        break;
      case 8:
        c = "close-up of " + pick(r, kObjects) + " " + pick(r, kPlaces);
        break;
      case 9:
        c = "Vector illustration of " + pick(r, kSubjects) + " with " + pick(r, kObjects);
        break;
      case 10:
        c = "the " + pick(r, kThings) + " of " + pick(r, kObjects) + " " + pick(r, kPlaces);
        break;
      case 11:
        c = pick(r, kObjects) + " and " + pick(r, kObjects) + " " + pick(r, kPlaces);
        break;
      case 12:
        c = "view of the " + pick(r, kThings) + " from " + pick(r, kObjects);
        break;
      case 13:
        c = pick(r, kSubjects) + " in a " + pick(r, kAdjs) + " " + pick(r, kThings) + " " + pick(r, kPlaces);
        break;
      case 14:
        c = pick(r, kSubjects) + " with " + pick(r, kObjects) + " " + pick(r, kPlaces);
        break;
      default:
        c = pick(r, kAdjs) + " " + pick(r, kThings) + " for sale, " + std::to_string(1 + r() % 5) +
            " bedrooms";
        break;
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace catlip::text
