// catlip/transfer/transfer.h - Transfer Init experiments on a class-labeled set.
//
// Given a CatLIP model, its vocabulary and a class list (wnids), maps classes
// to vocabulary rows (transfer_map.h) and measures, on held-out samples
// (a train.superclass model: classes map to their names' BPE ids instead,
// superclass_eval.h, and zero-shot takes the mean of those logits):
//   zero-shot    accuracy of argmax over classes of max(mapped row logits),
//                no training at all; against chance (1/classes) and the
//                majority class;
//   fine-tune    the whole network with a new C-class head, softmax cross
//                entropy, AdamW, `steps` steps, head initialised from the
//                mapped rows (init_head = "synsets": mean of rows' weights and
//                biases; unmapped classes random) or at random (timm init:
//                trunc-normal 0.02, zero bias); test accuracy recorded along
//                the way (the curves in the report);
//   linear probe a linear classifier on frozen CLS features (the standard
//                comparison), trained full-batch with Adam to convergence.
// Samples come from WebDataset shards (.jpg/.png/.webp + .cls or a class in
// .json), decoded with the evaluation transform at the model's input size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "catlip/eval/transfer_map.h"

namespace catlip::transfer {

struct TransferOptions {
  std::string checkpoint;  // see checkpoint_path.h
  bool ema = true;
  std::string vocab, classes;  // vocab: CatLIP models only
  std::string tokenizer;       // train.superclass models: "" = tokenizer.txt beside the export
  std::string wordnet_dir = "/usr/share/wordnet";
  int max_distance = 4;
  std::vector<std::string> train_urls, test_urls;  // brace patterns allowed
  int64_t train_samples = 2000, test_samples = 1000;  // 0 = all
  std::vector<std::string> init_heads = {"synsets", "random"};
  int64_t steps = 30, batch_size = 32, eval_every = 5;
  double lr = 3e-4, weight_decay = 0.05;
  int64_t probe_steps = 300;
  double probe_lr = 1e-2;
  int threads = 0;
  int64_t seed = 0;
  std::string device = "cpu";
  std::vector<double> mean, std;
  std::string out_dir = ".";  // transfer.json, transfer_mapping.tsv
};

struct CurvePoint {
  int64_t step = 0;
  double accuracy = 0, loss = 0;
};

struct TransferResult {
  eval::MappingReport mapping;
  int64_t classes = 0, train_n = 0, test_n = 0;
  double chance = 0, majority = 0, zero_shot = 0, linear_probe = 0;
  // "synsets" (CatLIP: max over mapped synset rows) or "superclass_tokens"
  // (train.superclass: mean over the class name's BPE ids, superclass_eval.h).
  std::string zero_shot_mode = "synsets";
  std::vector<std::string> heads;                 // init_heads run
  std::vector<std::vector<CurvePoint>> curves;    // one per head
  std::vector<double> final_accuracy;             // one per head
  double seconds = 0;
};

// Runs everything and writes <out_dir>/transfer.json and
// <out_dir>/transfer_mapping.tsv. `log` receives progress lines.
TransferResult run_transfer(const TransferOptions& opt, void (*log)(const std::string&));

}  // namespace catlip::transfer
