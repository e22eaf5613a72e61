// train.superclass: the trainer stage with the SuperClass objective, its
// schema (the shared image-tower and loop parameters plus its own).
#include "catlip/train/train_stage.h"

namespace catlip::train {

SuperclassTrainStage::SuperclassTrainStage() : TrainStage("superclass", "tokens") {}

StageSchema SuperclassTrainStage::schema() {
  using C = SuperclassTrainStage;  // opt_ is protected: named through the derived class
  using O = TrainOptions;
  StageSchema s;
  s.type = "train.superclass";
  s.kind = StageKind::Sink;
  s.doc =
      "SuperClass trainer (Huang et al., NeurIPS 2024): the train.catlip ViT with one output per BPE id "
      "of the tokenizer, trained to classify each image's caption tokens (text.bpe_encode's `tokens`, "
      "start/end of text and padding removed): softmax cross-entropy against the L1-normalised "
      "multi-hot target weighted by online IDF (document counts over every sample trained on so far, "
      "summed over ranks each step, kept in checkpoints), or loss = \"bce\": CatLIP's BCE on the plain "
      "multi-hot target. Same loop, checkpoints, resume and exactly-once data position as "
      "train.catlip; the export carries the tokenizer beside timm-named weights.";
  s.reads = {"image", "tokens"};
  s.group = true;  // replicas are data-parallel ranks
  s.params = {
      Param("tokenizer", &C::opt_, &O::tokenizer_path).require().existing_file().describe(
          "BPE tokenizer file written by text.bpe_learn (the one text.bpe_encode uses); its vocabulary size "
          "is the number of outputs (output i = BPE id i)"),
      Param("loss", &C::opt_, &O::superclass, &SuperclassOptions::loss).def("softmax").one_of({"softmax", "bce"})
          .describe("softmax: SuperClass, cross-entropy against the IDF-weighted multi-hot target, "
                    "L1-normalised, idf = log((N+1)/(df+1)); bce: CatLIP's binary cross-entropy on the "
                    "plain multi-hot target (CatLIP on BPE tokens)"),
  };
  for (auto* group : {&image_params, &loop_params})
    for (auto& p : (*group)()) s.params.push_back(std::move(p));
  return s;
}

}  // namespace catlip::train
