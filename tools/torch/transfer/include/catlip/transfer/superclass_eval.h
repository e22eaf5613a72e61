// catlip/transfer/superclass_eval.h - zero-shot and Transfer Init for
// train.superclass models, whose outputs are BPE ids, not synsets.
//
// A class's rows are the distinct BPE ids of its name (the class file's
// name, else the WordNet lemma with '_' as spaces, else the wnid), encoded
// with the model's own tokenizer without start/end of text. Zero-shot score
// of a class = the MEAN of its rows' logits: a name is all of its tokens, so
// every token must score (Transfer Init's synset rows take the max, since
// any hyponym present means the class is present). As log-softmax only
// shifts a row by a constant, the mean logit ranks classes like the mean
// log-probability, i.e. the geometric mean of the tokens' probabilities.
// Head initialisation (init_head = synsets) is the mean of the same rows'
// weights and biases, as for synsets. A name with no token is unmapped.
//
// Include only from translation units that already pay for <torch/torch.h>.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "catlip/eval/transfer_map.h"
#include "catlip/text/bpe.h"
#include "catlip/transfer/transfer_ops.h"

namespace catlip::model {
struct LoadedModel;
}

namespace catlip::transfer {

// The model's tokenizer: `given` if not empty, else tokenizer.txt beside the
// weights (for a checkpoint: the run's export/tokenizer.txt). Throws if none
// is found or its file checksum differs from `recorded` (when not empty).
text::BpeTokenizer load_superclass_tokenizer(const std::string& model_path, const std::string& recorded,
                                             const std::string& given = "");

// Each class's rows: the sorted distinct ids of tok.encode(name). kind is
// Exact (distance 0) when the name has tokens, else Unmapped.
eval::MappingReport superclass_token_mapping(const eval::ClassList& classes, const text::BpeTokenizer& tok,
                                             const eval::WordNetGraph* wn = nullptr);

// TSV: class_index wnid name kind distance rows (the tokens, space-separated).
std::string superclass_mapping_tsv(const eval::MappingReport& r, const text::BpeTokenizer& tok);

// [N, C] class scores from logits [N, V]: the mean of each class's rows;
// -1e30 for an unmapped class (it never wins).
torch::Tensor superclass_class_scores(const torch::Tensor& logits, const eval::MappingReport& mapping);

// Top-1 zero-shot accuracy of the model on `test`.
double superclass_zero_shot(model::LoadedModel& m, const LabeledSet& test, const eval::MappingReport& mapping,
                            const std::vector<double>& mean, const std::vector<double>& stdv);

}  // namespace catlip::transfer
