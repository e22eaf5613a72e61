// catlip/text/labeler.h - caption -> tokens, tags, noun lemmas, synsets.
//
// The whole per-caption path of CatLIP in one object: clean (CoreNet),
// Treebank tokenize, HMM POS tag, keep nouns (or every token, which is what
// CoreNet actually does), lemmatize with morphy, map lemmas to synsets.
// A Labeler holds shared read-only models and a small private cache, so use
// one per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "catlip/text/clean.h"
#include "catlip/text/hash.h"
#include "catlip/text/tagger.h"
#include "catlip/text/wordnet.h"

namespace catlip::text {

enum class PosMode {
  Nouns,  // NN and NNS only (the paper)
  All,    // every token (CoreNet's behaviour: it computes tags, then ignores them)
};

struct LabelerOptions {
  std::string wordnet_dir = kDefaultWordNetDir;
  std::string lexicon_dir = kDefaultLexiconDir;
  PosMode pos = PosMode::Nouns;
  SynsetRule rule = SynsetRule::HeadLemma;
  CleanOptions clean;
};

struct Parse {
  CleanResult clean;
  std::vector<std::string> tokens;
  std::vector<int> tags;            // tagger ids; Labeler::tagger().penn_tag(id)
  std::vector<size_t> kept;         // indices of tokens that may become labels
  std::vector<std::string> lemmas;  // per kept token
  std::vector<int64_t> synsets;     // per kept token, -1 if none
  // Sorted unique synset offsets: the sample's labels before vocabulary selection.
  std::vector<int64_t> unique_synsets() const;
};

class Labeler {
 public:
  explicit Labeler(const LabelerOptions& opt = {});
  Parse parse(std::string_view caption);
  // Same, reusing `out`'s storage (for loops over many captions).
  void parse(std::string_view caption, Parse& out);
  // Lemma and synset of one word (cached; valid until the next call).
  const std::pair<std::string, int64_t>& lemma_synset(const std::string& word);
  bool keep_tag(int tag) const;

  const Tagger& tagger() const { return *tagger_; }
  const WordNet& wordnet() const { return *wordnet_; }
  const LabelerOptions& options() const { return opt_; }

 private:
  LabelerOptions opt_;
  std::shared_ptr<const Tagger> tagger_;
  std::shared_ptr<const WordNet> wordnet_;
  // What is known about a word type: its lexicon entry, and (once the word
  // has been kept) its lemma and synset. Small and hot, unlike the tables.
  struct WordInfo {
    Tagger::Word word;
    bool lemmatized = false;
    std::pair<std::string, int64_t> lemma_synset;
  };
  WordInfo& info(const std::string& token);

  std::vector<bool> keep_;  // per tag id
  std::unordered_map<std::string, WordInfo, WordHash, std::equal_to<>> cache_;
  std::vector<WordInfo*> infos_;      // per token of the caption being parsed
  std::vector<Tagger::Word> words_;
};

PosMode parse_pos_mode(const std::string& s);      // "nouns" | "all"
SynsetRule parse_synset_rule(const std::string& s);  // "head_lemma" | "first_sense"

}  // namespace catlip::text
