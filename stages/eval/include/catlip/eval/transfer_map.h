// catlip/eval/transfer_map.h - Transfer Init's class -> vocabulary mapping.
//
// CatLIP's classifier rows are WordNet synsets, so a downstream class given
// by its wnid can start from the rows of the same or related synsets:
//   1. exact:    the class synset is in the vocabulary -> that row;
//   2. else the nearest vocabulary synsets through WordNet pointers, searched
//      breadth-first in pure directions only: DOWN through hyponyms (~, ~i)
//      and UP through hypernyms (@, @i), never mixing the two (up-then-down
//      would reach siblings: "cat" must not become "dog" via "carnivore").
//      Distance is the number of pointer hops (<= max_distance).
//   Tie-breaking: the smaller distance wins; at equal distance hyponyms win
//   (a hyponym's detector fires only on images of the class, a hypernym's
//   also on other classes); all vocabulary synsets at the chosen distance are
//   kept, rows sorted by vocabulary index (most frequent first).
//   3. else unmapped (the class gets a random row when fine-tuning and never
//      wins zero-shot).
// Zero-shot score of a class: the max of its rows' logits (any of its
// hyponyms present means the class is present). Head initialisation: the
// mean of its rows' weights and biases.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "catlip/eval/eval_vocab.h"
#include "catlip/eval/wordnet_graph.h"

namespace catlip::eval {

enum class MapKind { Exact, Hyponym, Hypernym, Unmapped };
const char* map_kind_name(MapKind k);  // "exact", "hyponym", "hypernym", "unmapped"

struct ClassMapping {
  std::string wnid, name;  // name: from the class file, else the WordNet lemma
  MapKind kind = MapKind::Unmapped;
  int distance = -1;            // 0 for exact, -1 when unmapped
  std::vector<int64_t> rows;    // vocabulary indices
};

struct MappingReport {
  std::vector<ClassMapping> classes;
  int64_t exact = 0, hyponym = 0, hypernym = 0, unmapped = 0;
  double coverage() const {  // fraction of classes with at least one row
    return classes.empty() ? 0.0 : double(exact + hyponym + hypernym) / double(classes.size());
  }
};

// One class per line: "wnid" or "wnid<TAB or space>name..." ('#' comments).
struct ClassList {
  std::vector<std::string> wnids, names;
};
ClassList load_class_list(const std::string& path);  // throws naming file:line

ClassMapping map_class(const std::string& wnid, const EvalVocab& vocab, const WordNetGraph& wn,
                       int max_distance = 4);
MappingReport map_classes(const ClassList& classes, const EvalVocab& vocab, const WordNetGraph& wn,
                          int max_distance = 4);

// TSV: class_index wnid name kind distance rows(lemmas) ; plus a summary line.
std::string mapping_tsv(const MappingReport& r, const EvalVocab& vocab);

}  // namespace catlip::eval
