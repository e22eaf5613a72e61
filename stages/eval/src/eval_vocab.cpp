// The implementation of catlip/eval/eval_vocab.h: the vocabulary with lookups by wnid
// and lemma.
#include "catlip/eval/eval_vocab.h"

namespace catlip::eval {

int64_t EvalVocab::index_of_lemma(const std::string& l) const {
  std::string u = l;
  for (auto& ch : u)
    if (ch == ' ') ch = '_';
  auto it = by_lemma.find(u);
  return it == by_lemma.end() ? -1 : it->second;
}

EvalVocab load_eval_vocab(const std::string& path) {
  model::Vocab t = model::load_vocab(path);
  EvalVocab v;
  v.wnids = std::move(t.wnids);
  v.lemmas = std::move(t.lemmas);
  v.counts = std::move(t.counts);
  for (int64_t i = 0; i < v.size(); ++i) {
    std::string lemma = v.lemmas[size_t(i)];
    for (auto& ch : lemma)
      if (ch == ' ') ch = '_';
    v.by_wnid.emplace(v.wnids[size_t(i)], i);  // first row wins
    v.by_lemma.emplace(lemma, i);
  }
  return v;
}

}  // namespace catlip::eval
