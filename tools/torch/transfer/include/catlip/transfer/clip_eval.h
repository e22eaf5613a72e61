// catlip/transfer/clip_eval.h - CLIP (and SigLIP) zero-shot with prompts;
// `catlip compare` (compare.h) uses it for train.clip and train.siglip runs.
//
// CLIP zero-shot (as CLIP's paper): one prompt per class ("a photo of a
// {name}."), encoded with the model's own BPE tokenizer (the tokenizer.txt
// beside its export, or one given, checked against the checksum the weights
// record), text features L2-normalised; image features L2-normalised; the
// class is the argmax of the cosine similarities. SigLIP's scale t and bias b
// are monotone in the cosine, so they do not change the ranking.
//
// Include only from translation units that already pay for <torch/torch.h>.
#pragma once

#include <string>
#include <vector>

#include "catlip/model/clip_model.h"
#include "catlip/text/bpe.h"
#include "catlip/transfer/transfer_ops.h"

namespace catlip::transfer {

// ---- CLIP zero-shot.

// "{}" in `templ` replaced by each name (the names as given).
std::vector<std::string> clip_prompts(const std::vector<std::string>& names,
                                      const std::string& templ = "a photo of a {}.");

// The tokenizer of a loaded CLIP model: `path` if given, else the one
// load_clip found beside the weights. Throws if none is found or its
// checksum differs from the one the weights record.
text::BpeTokenizer load_clip_tokenizer(const model::LoadedClip& m, const std::string& path = "");

// Normalised text features of the prompts, [C, embed_dim] on the model's
// device (the zero-shot classifier).
torch::Tensor clip_text_classifier(model::LoadedClip& m, const text::BpeTokenizer& tok,
                                   const std::vector<std::string>& prompts);

// Cosine similarities [N, C] of the images (uint8 [N,S,S,3]) to the
// classifier rows, on the CPU.
torch::Tensor clip_zero_shot_scores(model::LoadedClip& m, const torch::Tensor& images, const torch::Tensor& classifier);

// classes.names[c], or the wnid when a class has no name.
std::vector<std::string> class_names(const eval::ClassList& classes);

// Top-1 accuracy of CLIP zero-shot on `test`, class c's prompt made from
// classes.names[c] (the wnid when a class has no name).
double clip_zero_shot(model::LoadedClip& m, const text::BpeTokenizer& tok, const eval::ClassList& classes,
                      const LabeledSet& test, const std::string& templ = "a photo of a {}.");

}  // namespace catlip::transfer
