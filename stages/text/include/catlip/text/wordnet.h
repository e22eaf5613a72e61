// catlip/text/wordnet.h - the noun part of WordNet 3.0, read from its files.
//
// Reads index.noun, noun.exc and data.noun (synsets fetched by byte offset)
// from Debian's wordnet-base (/usr/share/wordnet) or another directory. No
// libwordnet: morphy is reimplemented to match NLTK 3.8's
// WordNetCorpusReader._morphy(form, 'n') result for result, and the synset
// rule is CoreNet's: a lemma maps to its first noun sense, kept only when
// that synset's head lemma is the lemma itself
// (wn.synset(lemma + ".n.01").name() == lemma + ".n.01").
//
// A WordNet is immutable after construction; share one per process
// (WordNet::shared) between threads and stages.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "catlip/text/hash.h"

namespace catlip::text {

inline constexpr const char* kDefaultWordNetDir = "/usr/share/wordnet";

enum class SynsetRule {
  HeadLemma,   // CoreNet: first sense, only if its head lemma is the lemma
  FirstSense,  // the first noun sense, whatever its head lemma
};

struct Synset {
  int64_t offset = -1;
  int lexfile = 0;                  // lexicographer file number (05 = noun.animal)
  std::vector<std::string> lemmas;  // as in data.noun ("great_white_shark")
  std::string gloss;
  const std::string& head() const { return lemmas.front(); }
};

class WordNet {
 public:
  // Throws std::runtime_error naming the file (and line) that is missing or
  // malformed.
  explicit WordNet(const std::string& dir = kDefaultWordNetDir);
  static std::shared_ptr<const WordNet> shared(const std::string& dir = kDefaultWordNetDir);

  const std::string& dir() const { return dir_; }
  size_t num_lemmas() const { return index_.size(); }
  bool is_noun(std::string_view lemma) const { return index_.find(lemma) != index_.end(); }

  // NLTK's wn._morphy(form, 'n'): candidate lemmas in NLTK's order.
  std::vector<std::string> morphy(std::string_view form) const;
  // NLTK's WordNetLemmatizer().lemmatize(form, 'n'): the first shortest
  // morphy candidate, or `form` itself.
  std::string lemmatize(std::string_view form) const;

  // Offset of the lemma's synset under `rule`, or -1 (lemma not a noun, or
  // the head-lemma test failed).
  int64_t synset_offset(std::string_view lemma, SynsetRule rule = SynsetRule::HeadLemma) const;
  // Reads the synset at `offset` in data.noun; nullopt if there is none.
  std::optional<Synset> synset(int64_t offset) const;
  // All noun lemmas (index.noun order), for tests and tools.
  std::vector<std::string> lemmas() const;
  // noun.exc entries: inflected form -> base forms.
  const std::unordered_map<std::string, std::vector<std::string>>& exceptions() const { return exc_map_; }

  static std::string wnid(int64_t offset);           // 1440764 -> "n01440764"
  static int64_t parse_wnid(std::string_view wnid);  // "n01440764" -> 1440764, -1 if malformed

 private:
  struct Entry {
    int64_t first = -1;     // offset of the first noun sense
    bool head_is_lemma = false;
    uint32_t order = 0;     // line order in index.noun
  };
  std::string_view line_at(int64_t offset) const;

  std::string dir_;
  std::string data_;  // data.noun, whole (synsets are found by offset)
  std::unordered_map<std::string, Entry, WordHash, std::equal_to<>> index_;
  std::unordered_map<std::string, std::vector<std::string>> exc_map_;
  std::unordered_map<std::string_view, const std::vector<std::string>*, WordHash> exc_;
};

}  // namespace catlip::text
