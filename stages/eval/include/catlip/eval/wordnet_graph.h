// catlip/eval/wordnet_graph.h - the hypernym/hyponym pointers of WordNet's
// nouns, for Transfer Init's class -> vocabulary mapping.
//
// catlip::text::WordNet (stages/text) reads lemmas and glosses but not the
// pointer fields, so this reads data.noun itself. A data.noun line is
//   offset lex_filenum ss_type w_cnt(hex) {word lex_id}*w_cnt p_cnt
//   {pointer_symbol offset pos source/target}*p_cnt [frames] | gloss
// We keep, per synset, its first lemma and its noun pointers
//   @  hypernym, @i instance hypernym  -> up
//   ~  hyponym,  ~i instance hyponym   -> down
// Lines starting with two spaces are the licence header.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace catlip::eval {

struct SynsetNode {
  std::string lemma;  // first lemma ("domestic_dog" style, underscores kept)
  std::vector<int64_t> up, down;
};

class WordNetGraph {
 public:
  // Reads <dir>/data.noun. Throws std::runtime_error naming the file and line.
  explicit WordNetGraph(const std::string& dir = "/usr/share/wordnet");
  const SynsetNode* find(int64_t offset) const {
    auto it = nodes_.find(offset);
    return it == nodes_.end() ? nullptr : &it->second;
  }
  size_t size() const { return nodes_.size(); }

  static int64_t parse_wnid(const std::string& wnid);  // "n02084071" -> 2084071; -1 if malformed
  static std::string wnid(int64_t offset);

 private:
  std::unordered_map<int64_t, SynsetNode> nodes_;
};

}  // namespace catlip::eval
