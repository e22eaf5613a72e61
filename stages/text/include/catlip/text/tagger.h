// catlip/text/tagger.h - a bigram HMM part-of-speech tagger (Penn Treebank).
//
// The model is the one liblingua-en-tagger-perl ships, read at run time from
// its YAML files (never copied into this repository): tags.yml holds tag
// transition probabilities P(tag | previous tag), words.yml per-word tag
// counts from the Penn Treebank, unknown.yml tag counts for classes of
// unknown words (by suffix, shape, capitalization). Lingua decodes greedily,
// one word at a time, scoring P(t | prev) * (count(w, t) + 1); catlip decodes
// the same scores with Viterbi over the whole caption, in log space so that
// long captions cannot underflow. Unknown words are classified exactly as
// Lingua::EN::Tagger::_classify_unknown_word does.
//
// A Tagger is immutable once loaded and safe to share between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "catlip/text/hash.h"

namespace catlip::text {

inline constexpr const char* kDefaultLexiconDir = "/usr/share/perl5/Lingua/EN/Tagger";

class Tagger {
 public:
  // Loads tags.yml, words.yml and unknown.yml from `dir`. Throws
  // std::runtime_error naming the missing file (and the Debian package).
  explicit Tagger(const std::string& dir = kDefaultLexiconDir);
  // One loaded model per directory per process.
  static std::shared_ptr<const Tagger> shared(const std::string& dir = kDefaultLexiconDir);

  // Tags tokens; returns tag ids (see tag_name/penn_tag).
  std::vector<int> tag(const std::vector<std::string>& tokens) const;
  void tag(const std::vector<std::string>& tokens, std::vector<int>& out) const;
  // A token resolved against the lexicon once (callers may cache it per
  // word type: the lexicon is a large table, a cache of seen words is hot).
  struct Word {
    const void* emissions = nullptr;  // opaque; null: no tag applies ('nn')
    bool sym = false;                 // Lingua's "-sym-" class
  };
  Word resolve(const std::string& token) const;
  void tag_words(const Word* words, size_t n, std::vector<int>& out) const;

  // Lingua's own greedy decoder, for comparison.
  std::vector<int> tag_greedy(const std::vector<std::string>& tokens) const;

  int num_tags() const { return static_cast<int>(names_.size()); }
  const std::string& tag_name(int id) const { return names_[id]; }  // Lingua's name ("nn", "det")
  const std::string& penn_tag(int id) const { return penn_[id]; }   // Penn Treebank ("NN", "DT")
  int tag_id(std::string_view lingua_name) const;                   // -1 if unknown

  // The lexicon key a token is looked up under: itself, its lcfirst form, or
  // an unknown-word class such as "-ing-" or "*NUM*".
  std::string lexicon_key(const std::string& word) const;

 private:
  struct Emission {
    int tag;
    float count;
    double log_count1;  // log(count + 1), Lingua's emission score
  };
  using Lexicon = std::unordered_map<std::string, std::vector<Emission>, WordHash, std::equal_to<>>;

  int intern(const std::string& name);
  void load_tags(const std::string& path);
  void load_words(const std::string& path);
  const std::vector<Emission>* lookup(std::string_view key) const;
  // Lingua's unknown-word class of a word absent from the lexicon.
  const char* unknown_class(const std::string& word) const;
  // The emissions a token is scored with; *sym set for Lingua's "-sym-" class.
  const std::vector<Emission>* emissions_for(const std::string& word, bool* sym) const;

  std::vector<std::string> names_, penn_;
  std::vector<double> trans_;     // [prev * T + cur]: P(cur | prev), 0 = not allowed
  std::vector<double> log_trans_;
  Lexicon lex_;
  std::vector<std::tuple<int, int, double>> pending_;  // transitions while loading
  int start_ = -1, nn_ = -1, sym_ = -1;
};

}  // namespace catlip::text
