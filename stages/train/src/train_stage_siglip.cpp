// train.siglip: the train stage with the SigLIP objective, and its
// parameters (CLIP's text tower, the sigmoid loss's scale and bias).
#include "catlip/train/train_stage.h"

namespace catlip::train {

SiglipTrainStage::SiglipTrainStage() : TrainStage("siglip", "tokens") {}

namespace {
std::vector<ParamSpec> siglip_concat(std::vector<ParamSpec> a, const std::vector<ParamSpec>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
}  // namespace

StageSchema SiglipTrainStage::schema() {
  using C = SiglipTrainStage;  // opt_ is protected: named through the derived class
  using O = TrainOptions;
  StageSchema s;
  s.type = "train.siglip";
  s.kind = StageKind::Sink;
  s.doc =
      "SigLIP trainer (Zhai et al. 2023), for comparing with CatLIP and CLIP: train.clip's towers (the "
      "train.catlip ViT with the image projection as its head, CLIP's text transformer on BPE tokens "
      "from text.bpe_encode) trained with the pairwise sigmoid loss: logits t * img.txt + b, +1 for a "
      "matching pair and -1 for every other, summed over texts and averaged over images; learnable "
      "t = exp(t') (init 10, clamped at max_logit_scale) and bias b (init -10). With replicas > 1 each "
      "rank's text features travel round the ring of ranks (OpenCLIP's bidirectional neighbour exchange, "
      "gradients returned to their owner), so every image meets every text of the global batch and "
      "memory does not grow with it. Same loop, checkpoints, resume, export and zero-shot evaluation "
      "as train.clip; t' and b are in its checkpoints and export.";
  s.reads = {"image", "tokens"};
  s.group = true;  // replicas are data-parallel ranks
  s.params = siglip_concat(siglip_concat(siglip_concat(text_params(), {
      Param("init_logit_scale", &C::opt_, &O::clip, &ClipOptions::init_logit_scale).def(10.0).range(1, 1000).describe(
          "Initial t = exp(logit_scale), the sigmoid's inverse temperature (SigLIP: 10)"),
      Param("init_logit_bias", &C::opt_, &O::clip, &ClipOptions::init_logit_bias).def(-10.0).range(-1000, 1000).describe(
          "Initial logit bias b (SigLIP: -10, so that the many negative pairs start with a small loss)"),
      Param("max_logit_scale", &C::opt_, &O::clip, &ClipOptions::max_logit_scale).def(100.0).range(1, 1000).describe(
          "exp(logit_scale) is clamped to this after every optimizer step (as OpenCLIP does)"),
  }), image_params()), loop_params());
  return s;
}

}  // namespace catlip::train
