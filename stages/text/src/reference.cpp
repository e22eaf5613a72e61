// The implementation of catlip/text/reference.h: helpers to run the reference implementations.
#include "catlip/text/reference.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace catlip::text {

namespace fs = std::filesystem;

std::string make_nltk_data_dir(const std::string& dir, const std::string& wordnet_dir) {
  std::string root = dir + "/nltk_data";
  std::string wn = root + "/corpora/wordnet";
  if (fs::exists(wn + "/lexnames")) return root;
  fs::create_directories(wn);
  for (auto& e : fs::directory_iterator(wordnet_dir)) {
    fs::path link = fs::path(wn) / e.path().filename();
    if (!fs::exists(link)) fs::create_symlink(fs::absolute(e.path()), link);
  }
  // lexnames(5WN): WordNet 3.0's 45 lexicographer files in number order, with
  // their syntactic category (1 noun, 2 verb, 3 adjective, 4 adverb). NLTK
  // only uses the names for Synset.lexname().
  static const char* kLex[] = {
      "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
      "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
      "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
      "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
      "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
      "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
      "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
      "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl"};
  std::ofstream f(wn + "/lexnames");
  int i = 0;
  for (const char* n : kLex) {
    std::string s = n;
    int cat = s.rfind("noun", 0) == 0 ? 1 : s.rfind("verb", 0) == 0 ? 2 : s.rfind("adj", 0) == 0 ? 3 : 4;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%02d\t%s\t%d\n", i++, n, cat);
    f << buf;
  }
  if (!f) throw std::runtime_error("cannot write " + wn + "/lexnames");
  return root;
}

}  // namespace catlip::text
