// catlip/eval/eval_vocab.h - the vocabulary TSV with the lookups evaluation
// needs (by wnid, by lemma). Parsed by model::load_vocab, the one reader of
// the format (see catlip/model/vocab.h); the count column gives the
// label-frequency prior.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "catlip/model/vocab.h"

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

}  // namespace catlip::eval
