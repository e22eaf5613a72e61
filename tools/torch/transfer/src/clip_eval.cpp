// The implementation of catlip/transfer/clip_eval.h: CLIP (and SigLIP)
// zero-shot with prompts.
#include "catlip/transfer/clip_eval.h"

#include <torch/torch.h>

#include <stdexcept>

#include "catlip/model/model_io.h"

namespace catlip::transfer {

// ---------------------------------------------------------------- zero-shot

std::vector<std::string> clip_prompts(const std::vector<std::string>& names, const std::string& templ) {
  std::vector<std::string> out;
  for (auto& n : names) {
    std::string p = templ;
    if (auto at = p.find("{}"); at != std::string::npos) p.replace(at, 2, n);
    else p += " " + n;
    out.push_back(p);
  }
  return out;
}

text::BpeTokenizer load_clip_tokenizer(const model::LoadedClip& m, const std::string& path) {
  const std::string p = path.empty() ? m.tokenizer_path : path;
  if (p.empty())
    throw std::runtime_error("no tokenizer.txt beside the CLIP weights (nor in the run's export/); pass the tokenizer");
  // The weights record the file's checksum as train.clip computes it.
  const auto info = model::read_tokenizer_info(p);
  if (!m.tokenizer_checksum.empty() && info.checksum != m.tokenizer_checksum)
    throw std::runtime_error("tokenizer " + p + " has checksum " + info.checksum + " but the model was trained with " +
                             m.tokenizer_checksum);
  auto tok = text::BpeTokenizer::load(p);
  if (tok.vocab_size() > m.text.vocab_size)
    throw std::runtime_error("tokenizer " + p + " has " + std::to_string(tok.vocab_size()) +
                             " tokens but the text tower only " + std::to_string(m.text.vocab_size));
  return tok;
}

torch::Tensor clip_text_classifier(model::LoadedClip& m, const text::BpeTokenizer& tok,
                                   const std::vector<std::string>& prompts) {
  std::vector<std::vector<int64_t>> rows;
  for (auto& p : prompts) rows.push_back(tok.encode_context(p, m.text.context_length));
  torch::NoGradGuard ng;
  auto f = m.model->encode_text(model::pad_tokens(rows, m.device));
  return torch::nn::functional::normalize(f, torch::nn::functional::NormalizeFuncOptions().dim(1));
}

torch::Tensor clip_zero_shot_scores(model::LoadedClip& m, const torch::Tensor& images, const torch::Tensor& classifier) {
  torch::NoGradGuard ng;
  return map_batches(images, 128, [&](torch::Tensor x) {
    auto f = m.model->encode_image(model::preprocess_images(x, m.device, m.vision.mean, m.vision.std));
    f = torch::nn::functional::normalize(f, torch::nn::functional::NormalizeFuncOptions().dim(1));
    return f.matmul(classifier.t()).cpu();
  });
}

std::vector<std::string> class_names(const eval::ClassList& classes) {
  std::vector<std::string> names;
  for (size_t c = 0; c < classes.wnids.size(); ++c)
    names.push_back(c < classes.names.size() && !classes.names[c].empty() ? classes.names[c] : classes.wnids[c]);
  return names;
}

double clip_zero_shot(model::LoadedClip& m, const text::BpeTokenizer& tok, const eval::ClassList& classes,
                      const LabeledSet& test, const std::string& templ) {
  auto cls = clip_text_classifier(m, tok, clip_prompts(class_names(classes), templ));
  return top1_accuracy(clip_zero_shot_scores(m, test.images, cls), test.labels);
}

}  // namespace catlip::transfer
