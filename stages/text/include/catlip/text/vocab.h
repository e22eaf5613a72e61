// catlip/text/vocab.h - synset counts, their merge, and the vocabulary TSV.
//
// Counting is split so that replicas can work independently: each replica
// keeps SynsetCounts for the samples it saw; partial counts are summed (an
// exact, order-independent merge); selection (min_count / top_k) happens once,
// after the merge. A synset counts once per sample (the multi-hot target).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "catlip/sample.h"

namespace catlip::text {

class WordNet;

inline constexpr int kHistBins = 17;  // samples with 0..15 synsets, then 16 or more

struct SynsetCounts {
  int64_t samples = 0;   // samples seen
  int64_t labeled = 0;   // samples with at least one synset
  std::vector<int64_t> hist = std::vector<int64_t>(kHistBins, 0);
  std::map<int64_t, int64_t> counts;  // synset offset -> samples containing it

  // `unique_offsets`: one sample's sorted unique synsets.
  void add_sample(const std::vector<int64_t>& unique_offsets);
  void merge(const SynsetCounts& o);
  bool operator==(const SynsetCounts& o) const {
    return samples == o.samples && labeled == o.labeled && hist == o.hist && counts == o.counts;
  }

  // As a message between stages: IntList fields offsets, counts, stats.
  Sample to_sample(const std::string& key) const;
  // Throws std::runtime_error if the sample is not a well-formed partial.
  static SynsetCounts from_sample(const Sample& s);
  // As a partial counts file (vocab.part-<replica>.tsv).
  void write_file(const std::string& path) const;
  static SynsetCounts read_file(const std::string& path);  // throws naming file:line
};

struct VocabEntry {
  int64_t index = 0;
  int64_t offset = -1;
  std::string lemma;  // head lemma of the synset
  int64_t count = 0;
  std::string gloss;
};

// Sorted by count descending, ties by wnid; kept if count >= min_count, then
// the first top_k (0 = all).
std::vector<VocabEntry> select_vocab(const SynsetCounts& c, int64_t min_count, int64_t top_k,
                                     const WordNet& wn);
// Columns: index, wnid, lemma, count, gloss; a header line starting with '#'.
void write_vocab_tsv(const std::string& path, const std::vector<VocabEntry>& v);
// Samples seen, fraction with a synset, labels-per-sample histogram, top synsets.
void write_vocab_stats(const std::string& path, const SynsetCounts& c,
                       const std::vector<VocabEntry>& v, int64_t min_count, int64_t top_k);

class Vocab {
 public:
  // Read by model::load_vocab (catlip/model/vocab.h: the one reader of the
  // format, with its rules); every wnid must be a WordNet noun id. Throws
  // std::runtime_error naming the file (and line or row) on malformed input.
  static Vocab load(const std::string& path);
  int64_t index_of(int64_t offset) const {  // -1 if not in the vocabulary
    auto it = index_.find(offset);
    return it == index_.end() ? -1 : it->second;
  }
  size_t size() const { return entries_.size(); }
  const std::vector<VocabEntry>& entries() const { return entries_; }

 private:
  std::vector<VocabEntry> entries_;
  std::unordered_map<int64_t, int64_t> index_;
};

// Merges every vocab.part-*.tsv in `dir`; returns the number of files read.
int merge_part_files(const std::string& dir, SynsetCounts& out);

}  // namespace catlip::text
