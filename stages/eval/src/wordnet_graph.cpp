// The implementation of catlip/eval/wordnet_graph.h: WordNet's noun hypernym/hyponym
// pointers read from data.noun.
#include "catlip/eval/wordnet_graph.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace catlip::eval {

int64_t WordNetGraph::parse_wnid(const std::string& w) {
  if (w.size() != 9 || w[0] != 'n') return -1;
  int64_t v = 0;
  for (size_t i = 1; i < w.size(); ++i) {
    if (w[i] < '0' || w[i] > '9') return -1;
    v = v * 10 + (w[i] - '0');
  }
  return v;
}

std::string WordNetGraph::wnid(int64_t offset) {
  char b[16];
  std::snprintf(b, sizeof b, "n%08lld", static_cast<long long>(offset));
  return b;
}

WordNetGraph::WordNetGraph(const std::string& dir) {
  const std::string path = dir + "/data.noun";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path + " (install Debian package wordnet-base)");
  std::string line;
  int64_t lineno = 0;
  auto fail = [&](const std::string& why) {
    throw std::runtime_error(path + ":" + std::to_string(lineno) + ": " + why);
  };
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == ' ') continue;  // licence header
    auto bar = line.find(" | ");
    std::istringstream f(line.substr(0, bar));
    int64_t offset = -1;
    std::string lex, type, wcnt_hex;
    if (!(f >> offset >> lex >> type >> wcnt_hex)) fail("malformed synset line");
    int wcnt = 0;
    try {
      wcnt = std::stoi(wcnt_hex, nullptr, 16);
    } catch (const std::exception&) {
      fail("bad word count '" + wcnt_hex + "'");
    }
    SynsetNode node;
    for (int i = 0; i < wcnt; ++i) {
      std::string word, lex_id;
      if (!(f >> word >> lex_id)) fail("truncated word list");
      if (i == 0) node.lemma = word;
    }
    int pcnt = 0;
    if (!(f >> pcnt)) fail("missing pointer count");
    for (int i = 0; i < pcnt; ++i) {
      std::string sym, pos, st;
      int64_t target = -1;
      if (!(f >> sym >> target >> pos >> st)) fail("truncated pointer list");
      if (pos != "n") continue;
      if (sym == "@" || sym == "@i") node.up.push_back(target);
      else if (sym == "~" || sym == "~i") node.down.push_back(target);
    }
    nodes_.emplace(offset, std::move(node));
  }
  if (nodes_.empty()) throw std::runtime_error(path + ": no synsets read");
}

}  // namespace catlip::eval
