// The CLIP objective: the CatLIP ViT as image tower + CLIP's text
// transformer, symmetric InfoNCE with a learnable logit scale; with data
// parallelism, features gathered across ranks with gradient and a local loss
// (OpenCLIP's --gather-with-grad --local-loss). The class is in
// objective_clip.h, which train.siglip's objective shares.
#include "objective_clip.h"

namespace catlip::train {

std::unique_ptr<Objective> make_clip_objective(const TrainOptions& opt) { return std::make_unique<ClipObjective>(opt); }

}  // namespace catlip::train
