// SigLIP's pairwise sigmoid loss (catlip/train/loss.h), on one rank and
// round the ring of data-parallel ranks (OpenCLIP's SigLipLoss, bidir).
#include "catlip/train/data_parallel.h"
#include "catlip/train/loss.h"

namespace catlip::train {

torch::Tensor siglip_loss(const torch::Tensor& image, const torch::Tensor& text, const torch::Tensor& logit_scale,
                          const torch::Tensor& logit_bias, bool positives) {
  const auto f = torch::kFloat32;
  auto logits = logit_scale.to(f).exp() * image.to(f).matmul(text.to(f).t()) + logit_bias.to(f);  // [B, N]
  // label * logit: -logit everywhere, +logit on the diagonal of a rank's own pairs.
  auto signed_logits = -logits;
  if (positives) {
    auto labels = 2.0 * torch::eye(image.size(0), text.size(0), logits.options()) - 1.0;
    signed_logits = labels * logits;
  }
  return -torch::log_sigmoid(signed_logits).sum() / double(image.size(0));
}

torch::Tensor siglip_ring_loss(const torch::Tensor& image, const torch::Tensor& text, const torch::Tensor& logit_scale,
                               const torch::Tensor& logit_bias, DataParallel* dp) {
  auto loss = siglip_loss(image, text, logit_scale, logit_bias, true);
  if (!dp || dp->world() < 2) return loss;
  // Round k brings the texts of ranks r - k and r + k (bidir); with an even
  // world size the opposite rank's come last, one way round.
  const int rounds = (dp->world() - 1) / 2, one_way = (dp->world() - 1) % 2;
  torch::Tensor to_left = text, to_right = text;
  for (int k = 0; k < rounds; ++k) {
    auto [from_right, from_left] = dp->exchange_bidir_with_grad(to_left, to_right);
    loss = loss + siglip_loss(image, from_right, logit_scale, logit_bias, false) +
           siglip_loss(image, from_left, logit_scale, logit_bias, false);
    to_left = from_right;  // each keeps travelling the way it came
    to_right = from_left;
  }
  if (one_way) loss = loss + siglip_loss(image, dp->exchange_with_grad(to_right), logit_scale, logit_bias, false);
  return loss;
}

}  // namespace catlip::train
