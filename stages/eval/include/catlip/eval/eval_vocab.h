// catlip/eval/eval_vocab.h - reading the vocabulary TSV for evaluation.
//
// Accepts both header spellings in use ("index\twnid..." as the trainer
// expects and "#index\twnid..." as text.vocab_merge writes); rows are
// index, wnid, lemma, count, gloss with index 0..N-1 in order. The count
// column gives the label-frequency prior.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace catlip::eval {

struct EvalVocab {
  std::vector<std::string> wnids, lemmas;
  std::vector<int64_t> counts;
  std::unordered_map<std::string, int64_t> by_wnid, by_lemma;  // first row wins
  int64_t size() const { return int64_t(wnids.size()); }
  int64_t index_of_wnid(const std::string& w) const {
    auto it = by_wnid.find(w);
    return it == by_wnid.end() ? -1 : it->second;
  }
  // Lemma lookup accepts "ice cream" and "ice_cream".
  int64_t index_of_lemma(const std::string& l) const;
};

// Throws std::runtime_error naming file and line.
EvalVocab load_eval_vocab(const std::string& path);

// Splits one TSV line at tabs (empty fields kept); shared by the TSV readers.
std::vector<std::string> split_tabs(const std::string& s);

}  // namespace catlip::eval
