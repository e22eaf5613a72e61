#include "catlip/eval/eval_vocab.h"

#include <fstream>
#include <stdexcept>

namespace catlip::eval {

std::vector<std::string> split_tabs(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t t = s.find('\t', start);
    out.push_back(s.substr(start, t - start));
    if (t == std::string::npos) break;
    start = t + 1;
  }
  return out;
}

int64_t EvalVocab::index_of_lemma(const std::string& l) const {
  std::string u = l;
  for (auto& ch : u)
    if (ch == ' ') ch = '_';
  auto it = by_lemma.find(u);
  return it == by_lemma.end() ? -1 : it->second;
}

EvalVocab load_eval_vocab(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open vocabulary " + path);
  EvalVocab v;
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line[0] == '#' || line.rfind("index\t", 0) == 0) continue;  // header
    auto c = split_tabs(line);
    if (c.size() < 3)
      throw std::runtime_error(path + ":" + std::to_string(lineno) + ": expected index, wnid, lemma columns");
    int64_t idx = -1;
    try {
      idx = std::stoll(c[0]);
    } catch (const std::exception&) {
    }
    if (idx != v.size())
      throw std::runtime_error(path + ":" + std::to_string(lineno) + ": index '" + c[0] + "' out of order, expected " +
                               std::to_string(v.size()));
    int64_t count = 0;
    if (c.size() > 3) {
      try {
        count = std::stoll(c[3]);
      } catch (const std::exception&) {
      }
    }
    std::string lemma = c[2];
    for (auto& ch : lemma)
      if (ch == ' ') ch = '_';
    v.by_wnid.emplace(c[1], idx);
    v.by_lemma.emplace(lemma, idx);
    v.wnids.push_back(c[1]);
    v.lemmas.push_back(c[2]);
    v.counts.push_back(count);
  }
  if (v.wnids.empty()) throw std::runtime_error(path + ": vocabulary has no rows");
  return v;
}

}  // namespace catlip::eval
