// The implementation of catlip/text/labeler.h: caption -> tokens, tags, noun lemmas, synsets.
#include "catlip/text/labeler.h"

#include <algorithm>
#include <stdexcept>

#include "catlip/text/tokenize.h"

namespace catlip::text {

std::vector<int64_t> Parse::unique_synsets() const {
  std::vector<int64_t> v;
  for (auto s : synsets)
    if (s >= 0) v.push_back(s);
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

PosMode parse_pos_mode(const std::string& s) {
  if (s == "nouns") return PosMode::Nouns;
  if (s == "all") return PosMode::All;
  throw std::invalid_argument("pos must be \"nouns\" or \"all\", got \"" + s + "\"");
}

SynsetRule parse_synset_rule(const std::string& s) {
  if (s == "head_lemma") return SynsetRule::HeadLemma;
  if (s == "first_sense") return SynsetRule::FirstSense;
  throw std::invalid_argument("synset_rule must be \"head_lemma\" or \"first_sense\", got \"" + s + "\"");
}

Labeler::Labeler(const LabelerOptions& opt)
    : opt_(opt), tagger_(Tagger::shared(opt.lexicon_dir)), wordnet_(WordNet::shared(opt.wordnet_dir)) {
  keep_.assign(tagger_->num_tags(), opt.pos == PosMode::All);
  for (const char* t : {"nn", "nns"})
    if (int id = tagger_->tag_id(t); id >= 0) keep_[id] = true;
}

bool Labeler::keep_tag(int tag) const { return tag >= 0 && tag < static_cast<int>(keep_.size()) && keep_[tag]; }

Labeler::WordInfo& Labeler::info(const std::string& token) {
  if (auto it = cache_.find(token); it != cache_.end()) return it->second;
  auto& wi = cache_[token];
  wi.word = tagger_->resolve(token);
  return wi;
}

const std::pair<std::string, int64_t>& Labeler::lemma_synset(const std::string& word) {
  WordInfo& wi = info(word);
  if (!wi.lemmatized) {
    std::string lemma = wordnet_->lemmatize(word);
    int64_t off = wordnet_->synset_offset(lemma, opt_.rule);
    wi.lemma_synset = {std::move(lemma), off};
    wi.lemmatized = true;
  }
  return wi.lemma_synset;
}

Parse Labeler::parse(std::string_view caption) {
  Parse p;
  parse(caption, p);
  return p;
}

void Labeler::parse(std::string_view caption, Parse& p) {
  p.kept.clear();
  p.lemmas.clear();
  p.synsets.clear();
  clean_caption(caption, opt_.clean, p.clean);
  if (p.clean.rejected || p.clean.text.empty()) {
    p.tokens.clear();
    p.tags.clear();
    return;
  }
  treebank_tokenize(p.clean.text, p.tokens);
  if (cache_.size() > 1000000) cache_.clear();  // bound memory on endless novel tokens
  infos_.clear();
  words_.clear();
  for (auto& t : p.tokens) {
    WordInfo& wi = info(t);  // references into an unordered_map stay valid
    infos_.push_back(&wi);
    words_.push_back(wi.word);
  }
  tagger_->tag_words(words_.data(), words_.size(), p.tags);
  for (size_t i = 0; i < p.tokens.size(); ++i) {
    if (!keep_tag(p.tags[i])) continue;
    WordInfo& wi = *infos_[i];
    if (!wi.lemmatized) {
      std::string lemma = wordnet_->lemmatize(p.tokens[i]);
      int64_t off = wordnet_->synset_offset(lemma, opt_.rule);
      wi.lemma_synset = {std::move(lemma), off};
      wi.lemmatized = true;
    }
    const auto& [lemma, off] = wi.lemma_synset;
    p.kept.push_back(i);
    p.lemmas.push_back(lemma);
    p.synsets.push_back(off);
  }
}

}  // namespace catlip::text
