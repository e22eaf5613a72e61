// The implementation of catlip/transfer/superclass_eval.h: SuperClass
// zero-shot from the mean logit of a class name's BPE ids.
#include "catlip/transfer/superclass_eval.h"

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "catlip/model/clip_config.h"
#include "catlip/model/model_io.h"

namespace fs = std::filesystem;

namespace catlip::transfer {

text::BpeTokenizer load_superclass_tokenizer(const std::string& model_path, const std::string& recorded,
                                             const std::string& given) {
  std::string p = given;
  if (p.empty()) {
    const fs::path m(model_path);
    for (auto cand : {m.parent_path() / "tokenizer.txt", m.parent_path().parent_path() / "export" / "tokenizer.txt"})
      if (fs::is_regular_file(cand)) {
        p = cand.string();
        break;
      }
  }
  if (p.empty())
    throw std::runtime_error("no tokenizer.txt beside the SuperClass weights " + model_path +
                             " (nor in the run's export/); pass the tokenizer");
  const auto info = model::read_tokenizer_info(p);
  if (!recorded.empty() && info.checksum != recorded)
    throw std::runtime_error("tokenizer " + p + " has checksum " + info.checksum + " but the model was trained with " +
                             recorded);
  return text::BpeTokenizer::load(p);
}

eval::MappingReport superclass_token_mapping(const eval::ClassList& classes, const text::BpeTokenizer& tok,
                                             const eval::WordNetGraph* wn) {
  eval::MappingReport r;
  for (size_t c = 0; c < classes.wnids.size(); ++c) {
    eval::ClassMapping m;
    m.wnid = classes.wnids[c];
    if (c < classes.names.size() && !classes.names[c].empty()) {
      m.name = classes.names[c];
    } else if (int64_t off = eval::WordNetGraph::parse_wnid(m.wnid); wn && off >= 0 && wn->find(off)) {
      m.name = wn->find(off)->lemma;
      std::replace(m.name.begin(), m.name.end(), '_', ' ');
    } else {
      m.name = m.wnid;
    }
    m.rows = tok.encode(m.name);
    std::sort(m.rows.begin(), m.rows.end());
    m.rows.erase(std::unique(m.rows.begin(), m.rows.end()), m.rows.end());
    if (m.rows.empty()) {
      ++r.unmapped;
    } else {
      m.kind = eval::MapKind::Exact;
      m.distance = 0;
      ++r.exact;
    }
    r.classes.push_back(std::move(m));
  }
  return r;
}

std::string superclass_mapping_tsv(const eval::MappingReport& r, const text::BpeTokenizer& tok) {
  std::ostringstream o;
  o << "#class\twnid\tname\tkind\tdistance\trows\n";
  for (size_t c = 0; c < r.classes.size(); ++c) {
    const auto& m = r.classes[c];
    o << c << "\t" << m.wnid << "\t" << m.name << "\t" << (m.rows.empty() ? "unmapped" : "tokens") << "\t"
      << m.distance << "\t";
    for (size_t k = 0; k < m.rows.size(); ++k) o << (k ? " " : "") << tok.token(m.rows[k]);
    o << "\n";
  }
  o << "# " << r.exact << " classes with tokens, " << r.unmapped << " without\n";
  return o.str();
}

torch::Tensor superclass_class_scores(const torch::Tensor& logits, const eval::MappingReport& mapping) {
  const int64_t C = int64_t(mapping.classes.size());
  auto cls = torch::full({logits.size(0), C}, -1e30f, logits.options().dtype(torch::kFloat32));
  for (int64_t c = 0; c < C; ++c) {
    auto& rows = mapping.classes[size_t(c)].rows;
    if (rows.empty()) continue;
    auto idx = torch::tensor(rows, torch::kInt64).to(logits.device());
    cls.select(1, c).copy_(logits.index_select(1, idx).to(torch::kFloat32).mean(1));
  }
  return cls;
}

double superclass_zero_shot(model::LoadedModel& m, const LabeledSet& test, const eval::MappingReport& mapping,
                            const std::vector<double>& mean, const std::vector<double>& stdv) {
  torch::NoGradGuard ng;
  auto logits = map_batches(test.images, 128, [&](torch::Tensor x) {
    return m.model->forward(model::preprocess_images(x, m.device, mean, stdv)).cpu();
  });
  return top1_accuracy(superclass_class_scores(logits, mapping), test.labels);
}

}  // namespace catlip::transfer
