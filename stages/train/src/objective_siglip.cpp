// The SigLIP objective (train.siglip): CLIP's towers and everything else of
// the CLIP objective, with SigLIP's pairwise sigmoid loss, a learnable
// logit bias beside the logit scale, and the ring exchange across ranks.
#include "objective_clip.h"

namespace catlip::train {

namespace {

class SiglipObjective : public ClipObjective {
 public:
  explicit SiglipObjective(const TrainOptions& opt) : ClipObjective(opt, "siglip", opt.clip.init_logit_bias) {}

  // Every rank's texts reach every rank round the ring (loss.h); nothing is
  // gathered, so memory does not grow with the number of ranks.
  torch::Tensor loss(const torch::Tensor& x, const std::vector<std::vector<int64_t>>& tokens,
                     const ObjectiveEnv& env) override {
    auto [img, txt] = features(x, tokens, env);
    return siglip_ring_loss(img, txt, model_->logit_scale, model_->logit_bias, env.dp);
  }

  void report(StageContext& ctx) override {
    ClipObjective::report(ctx);
    ctx.gauge("train.logit_bias", model_->logit_bias.detach().item<double>());
  }

  std::string describe() const override {
    return "SigLIP: image ViT " + vision_.to_string() + "; text " + text_.to_string() + "; tokenizer " + tok_.path +
           " (" + tok_.checksum + "); sigmoid loss, texts exchanged round the ring of ranks";
  }
};

}  // namespace

std::unique_ptr<Objective> make_siglip_objective(const TrainOptions& opt) {
  return std::make_unique<SiglipObjective>(opt);
}

}  // namespace catlip::train
