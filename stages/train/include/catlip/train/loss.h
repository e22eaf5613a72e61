// catlip/train/loss.h - the CatLIP objective, and CLIP's for comparison.
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

// CLIP's symmetric InfoNCE (OpenCLIP's ClipLoss with local_loss): image and
// text are this rank's L2-normalised features [B,E]; all_image and all_text
// every rank's [W*B,E] (gathered with gradient), or image and text themselves
// on one rank; offset is this rank's first row in them (rank * B). With
// s = exp(logit_scale):
//   (CE(s * image @ all_text^T, offset + i) + CE(s * text @ all_image^T, offset + i)) / 2,
// each CE averaged over the B rows. Computed in fp32.
torch::Tensor clip_loss(const torch::Tensor& image, const torch::Tensor& text, const torch::Tensor& logit_scale,
                        const torch::Tensor& all_image, const torch::Tensor& all_text, int64_t offset);

}  // namespace catlip::train
