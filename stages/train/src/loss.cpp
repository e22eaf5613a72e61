// The implementation of catlip/train/loss.h: CatLIP's BCE over multi-hot synset targets
// and CLIP's contrastive loss.
#include "catlip/train/loss.h"

namespace catlip::train {

torch::Tensor catlip_bce_loss(const torch::Tensor& logits, const torch::Tensor& targets) {
  auto l = torch::binary_cross_entropy_with_logits(logits.to(torch::kFloat32),
                                                   targets.to(torch::kFloat32), {}, {},
                                                   at::Reduction::Sum);
  return l / double(logits.size(0));
}

torch::Tensor multi_hot(const std::vector<std::vector<int64_t>>& labels, int64_t vocab_size,
                        const torch::Device& device) {
  const int64_t B = int64_t(labels.size());
  // Flat indices row * V + label, scattered on the device: sending a dense
  // [B, V] float matrix would cost B*V*4 bytes per step.
  std::vector<int64_t> flat;
  for (int64_t r = 0; r < B; ++r)
    for (int64_t l : labels[size_t(r)]) flat.push_back(r * vocab_size + l);
  auto target = torch::zeros({B * vocab_size}, torch::TensorOptions().dtype(torch::kFloat32).device(device));
  if (!flat.empty()) {
    auto idx = torch::from_blob(flat.data(), {int64_t(flat.size())}, torch::kInt64).to(device);
    target.index_fill_(0, idx, 1.0);
  }
  return target.view({B, vocab_size});
}

torch::Tensor clip_loss(const torch::Tensor& image, const torch::Tensor& text, const torch::Tensor& logit_scale,
                        const torch::Tensor& all_image, const torch::Tensor& all_text, int64_t offset) {
  const auto f = torch::kFloat32;
  auto scale = logit_scale.to(f).exp();
  auto li = scale * image.to(f).matmul(all_text.to(f).t());  // [B, W*B]
  auto lt = scale * text.to(f).matmul(all_image.to(f).t());
  auto labels = torch::arange(offset, offset + image.size(0), torch::TensorOptions().dtype(torch::kInt64).device(image.device()));
  return (torch::nn::functional::cross_entropy(li, labels) + torch::nn::functional::cross_entropy(lt, labels)) / 2.0;
}

}  // namespace catlip::train
