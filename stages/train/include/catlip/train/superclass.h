// catlip/train/superclass.h - SuperClass (Huang et al., NeurIPS 2024,
// "Classification Done Right for Vision-Language Pre-Training"): the pieces
// of train.superclass's objective, callable on their own (tests, tools).
//
// The image tower is the CatLIP ViT with one output per BPE id of the
// tokenizer (all vocab_size rows kept: SOT/EOT and ids never seen are never
// a target; softmax pushes them down). A caption's target is the set of its
// distinct token ids, SOT, EOT and whatever follows the first EOT (padding)
// removed. IDF weights are online: per id the number of documents (captions)
// that held it among all samples trained on so far, over every rank, and N
// the number of those documents; idf = log((N + 1) / (df + 1)) (SuperClass's
// ClsLoss: never negative, 0 for an id in every document). The target row is
// multi-hot x idf, L1-normalised; the loss is the softmax cross-entropy
// against it, averaged over the batch. loss = "bce" uses the plain multi-hot
// target with CatLIP's BCE instead ("CatLIP on BPE tokens").
//
// Include only from translation units that already pay for <torch/torch.h>.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace catlip::train {

class DataParallel;

// A caption's target ids: the distinct ids of `row` (text.bpe_encode's
// `tokens`), sorted, without `sot`, `eot` and anything after the first `eot`.
std::vector<int64_t> superclass_target_ids(const std::vector<int64_t>& row, int64_t sot, int64_t eot);

// Online document frequencies of the ids, summed over ranks. Counts of the
// micro-batches of the optimizer step in progress are pending until
// commit() (after the step): a checkpoint holds exactly the documents whose
// training is in the weights, also with gradient accumulation.
class TokenIdf {
 public:
  TokenIdf(int64_t vocab_size, torch::Device device);
  // Counts the documents of one batch (rows of distinct ids, as
  // superclass_target_ids gives): with dp an allreduce of the batch's counts,
  // so every rank counts every rank's documents. Collective: every rank calls
  // it at the same point.
  void add(const std::vector<std::vector<int64_t>>& rows, DataParallel* dp);
  // The pending counts become committed.
  void commit();
  // float32 [V] on the counts' device, over committed and pending counts:
  // log((N + 1) / (df + 1)), computed in double.
  torch::Tensor idf() const;
  int64_t documents() const;  // N, committed and pending
  // int64 [V + 1], committed: df per id, then N last (the checkpointed state).
  torch::Tensor& counts() { return counts_; }
  const torch::Tensor& counts() const { return counts_; }
  // Moves the counts (committed and pending) to `device`.
  void to(const torch::Device& device);
  int64_t vocab_size() const { return vocab_; }

 private:
  int64_t vocab_;
  torch::Tensor counts_, pending_;
};

// [B, V] float32 on `device`: row r is the multi-hot of rows[r] times `idf`,
// divided by its sum (an all-zero row, a caption without tokens, stays zero).
torch::Tensor superclass_targets(const std::vector<std::vector<int64_t>>& rows, const torch::Tensor& idf,
                                 int64_t vocab_size, const torch::Device& device);

// -(targets * log_softmax(logits)).sum(1).mean(), in fp32.
torch::Tensor superclass_softmax_loss(const torch::Tensor& logits, const torch::Tensor& targets);

// Token recall at k of logits [B, V] against captions' target ids: per
// image, of its distinct ids T, the fraction ranked within its top k, out of
// min(|T|, k) (so a caption longer than k can still score 1); averaged over
// the images with at least one id.
double token_recall_at_k(const torch::Tensor& logits, const std::vector<std::vector<int64_t>>& ids, int64_t k);

}  // namespace catlip::train
