// catlip/train/loss.h - the CatLIP objective, and CLIP's and SigLIP's for comparison.
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

class DataParallel;

// SigLIP's pairwise sigmoid loss (Zhai et al. 2023, arXiv 2303.15343;
// OpenCLIP's SigLipLoss._loss; loss_siglip.cpp): image [B,E] and text [N,E]
// L2-normalised; with t = exp(logit_scale), b = logit_bias,
//   logits = t * image @ text^T + b,
// labels +1 at (i, i) when `positives` (text is this rank's own, N == B)
// and -1 everywhere else (texts of another rank: negatives only):
//   -sum_ij log sigmoid(label_ij * logit_ij) / B.
// Computed in fp32.
torch::Tensor siglip_loss(const torch::Tensor& image, const torch::Tensor& text, const torch::Tensor& logit_scale,
                          const torch::Tensor& logit_bias, bool positives);

// SigLIP against every rank's texts without gathering them (OpenCLIP's
// SigLipLoss, dist_impl "bidir"): siglip_loss with this rank's own texts,
// plus the negatives-only loss with each other rank's texts as they travel
// round the ring (DataParallel::exchange_bidir_with_grad, and one
// exchange_with_grad for an even world size), their gradients returned to
// their owners. One B x B logits matrix at a time, whatever the world
// size. dp null: the local loss. The ranks' losses (and gradients) average
// to siglip_loss of the whole global batch on one process.
torch::Tensor siglip_ring_loss(const torch::Tensor& image, const torch::Tensor& text, const torch::Tensor& logit_scale,
                               const torch::Tensor& logit_bias, DataParallel* dp);

}  // namespace catlip::train
