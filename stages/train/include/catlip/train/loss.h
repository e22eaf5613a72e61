// catlip/train/loss.h - the CatLIP objective.
//
// Binary cross-entropy with logits over the multi-hot synset target, reduced
// as CoreNet does: summed over classes and over the batch, divided by the
// batch size (so the loss is "per image", and grows with the vocabulary).
// Computed in fp32 even when the forward pass ran under bf16 autocast.
#pragma once

#include <torch/torch.h>

namespace catlip::train {

// logits, targets: [B, V]; targets in {0,1} (any float values are accepted).
torch::Tensor catlip_bce_loss(const torch::Tensor& logits, const torch::Tensor& targets);

// Multi-hot targets [B, V] built on `device` from per-row sorted label indices.
torch::Tensor multi_hot(const std::vector<std::vector<int64_t>>& labels, int64_t vocab_size,
                        const torch::Device& device);

}  // namespace catlip::train
