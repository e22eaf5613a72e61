// The trainer plugin: one of the two plugins that link LibTorch.
#include "catlip/plugin.h"
#include "catlip/train/train_stage.h"

CATLIP_PLUGIN("train", "0.1.0",
              "Trainers: CatLIP (ViT + BCE on multi-hot synset labels), CLIP (same ViT + text transformer + "
              "InfoNCE), SigLIP (CLIP's towers + sigmoid loss) and SuperClass (the ViT classifying caption BPE "
              "tokens) (LibTorch)");
CATLIP_REGISTER_STAGE(catlip::train::TrainStage);
CATLIP_REGISTER_STAGE(catlip::train::ClipTrainStage);
CATLIP_REGISTER_STAGE(catlip::train::SiglipTrainStage);
CATLIP_REGISTER_STAGE(catlip::train::SuperclassTrainStage);
