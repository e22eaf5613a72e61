// catlip/model/vocab.h - the synset vocabulary the labels index into.
//
// A TSV file whose first line is exactly the header
//   index<TAB>wnid<TAB>lemma<TAB>count<TAB>gloss
// (optionally written as a comment, "#index<TAB>...", as text.vocab_merge
// does) followed by one row per class, index 0..N-1 in order; other lines
// starting with '#' are comments; every wnid appears once. N is the model's
// number of outputs. The checksum (CRC-32 of the file bytes) goes into
// checkpoints so a run cannot silently resume against another vocabulary.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace catlip::model {

struct Vocab {
  std::string path;
  std::vector<std::string> wnids, lemmas;
  std::vector<int64_t> counts;  // the count column (training samples per synset); 0 where absent
  std::vector<std::string> glosses;  // the gloss column; "" where absent
  std::string checksum;  // "crc32:xxxxxxxx"
  int64_t size() const { return int64_t(wnids.size()); }
};

// A reader's own demand on a row (columns as split_tabs gives them, after the
// format's checks): "" if fine, else why not (reported at the row's line).
using VocabRowCheck = std::function<std::string(const std::vector<std::string>& cols)>;

// Throws std::runtime_error naming file and line on any malformed row. The
// one reader of this format: the trainer, the evaluator, Transfer Init and
// text.labels (text::Vocab, which checks that wnids are WordNet noun ids)
// build on it.
Vocab load_vocab(const std::string& path, const VocabRowCheck& check = {});

// Splits one TSV line at tabs (empty fields kept); shared by the TSV readers.
std::vector<std::string> split_tabs(const std::string& s);

}  // namespace catlip::model
