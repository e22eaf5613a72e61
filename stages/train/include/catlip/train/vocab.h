// catlip/train/vocab.h - the synset vocabulary the labels index into.
//
// A TSV file whose first line is exactly the header
//   index<TAB>wnid<TAB>lemma<TAB>count<TAB>gloss
// (optionally written as a comment, "#index<TAB>...", as text.vocab_merge
// does) followed by one row per class, index 0..N-1 in order; other lines
// starting with '#' are comments. N is the model's
// number of outputs. The checksum (CRC-32 of the file bytes) goes into
// checkpoints so a run cannot silently resume against another vocabulary.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace catlip::train {

struct Vocab {
  std::string path;
  std::vector<std::string> wnids, lemmas;
  std::vector<int64_t> counts;  // the count column (training samples per synset); 0 where absent
  std::string checksum;  // "crc32:xxxxxxxx"
  int64_t size() const { return int64_t(wnids.size()); }
};

// Throws std::runtime_error naming file and line on any malformed row. The
// one reader of this format: the evaluator and Transfer Init build on it.
Vocab load_vocab(const std::string& path);

// Splits one TSV line at tabs (empty fields kept); shared by the TSV readers.
std::vector<std::string> split_tabs(const std::string& s);

}  // namespace catlip::train
