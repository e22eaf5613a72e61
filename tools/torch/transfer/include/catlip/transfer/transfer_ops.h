// catlip/transfer/transfer_ops.h - the pieces of Transfer Init (transfer.h),
// callable on their own, per checkpoint, without fine-tuning: reading a
// class-labeled held-out set, CatLIP's zero-shot from mapped synset rows, and
// the linear probe on frozen features (any model's: `catlip compare` probes
// CatLIP's and CLIP's image features with the same code).
//
// Include only from translation units that already pay for <torch/torch.h>.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "catlip/eval/transfer_map.h"

namespace catlip::model {
struct LoadedModel;
}

namespace catlip::transfer {

// Class-labeled images, decoded with the evaluation transform (resize, centre
// crop) at one size.
struct LabeledSet {
  torch::Tensor images;  // uint8 [N,S,S,3]
  torch::Tensor labels;  // int64 [N]
  int64_t skipped = 0;   // samples without a usable class or image
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

// Reads up to `limit` samples (0 = all) with a class label (.cls, or a class
// in .json; see ground_truth.h) from WebDataset shards, in shard order.
// `what` names the set in log lines ("transfer: <what> set: ...") and errors.
// Throws std::runtime_error if no sample has a class.
LabeledSet load_labeled_set(const std::vector<std::string>& urls, int64_t limit, int size, const eval::ClassList& classes,
                            const std::string& what, void (*log)(const std::string&));

// f over `images` in batches of `bs` (rows in order), outputs concatenated.
torch::Tensor map_batches(const torch::Tensor& images, int64_t bs, const std::function<torch::Tensor(torch::Tensor)>& f);

// Fraction of rows whose argmax is the label.
double top1_accuracy(const torch::Tensor& scores, const torch::Tensor& labels);

// Synset logits [N, vocabulary] -> class scores [N, C]: the max of each
// class's mapped rows; a class without rows scores -1e30 (never wins).
torch::Tensor synset_class_scores(const torch::Tensor& logits, const eval::MappingReport& mapping);

// CatLIP zero-shot accuracy of a loaded model on `test` (argmax over classes
// of synset_class_scores). mean/std: normalisation (empty = none).
double synset_zero_shot(model::LoadedModel& m, const LabeledSet& test, const eval::MappingReport& mapping,
                        const std::vector<double>& mean, const std::vector<double>& std);

struct ProbeOptions {
  int64_t steps = 300;  // full-batch Adam steps
  double lr = 1e-2;
  int64_t seed = 0;     // the classifier's initialisation
};

// A linear classifier [D -> classes] on frozen features (float [N,D], any
// device; labels int64 [N]), trained full-batch with Adam; returns its top-1
// accuracy on the test features.
double linear_probe(const torch::Tensor& train_features, const torch::Tensor& train_labels,
                    const torch::Tensor& test_features, const torch::Tensor& test_labels, int64_t classes,
                    const ProbeOptions& opt);

}  // namespace catlip::transfer
