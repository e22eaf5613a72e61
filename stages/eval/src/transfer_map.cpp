// The implementation of catlip/eval/transfer_map.h: the class list file and Transfer
// Init's class -> vocabulary mapping through WordNet pointers.
#include "catlip/eval/transfer_map.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

namespace catlip::eval {

const char* map_kind_name(MapKind k) {
  switch (k) {
    case MapKind::Exact: return "exact";
    case MapKind::Hyponym: return "hyponym";
    case MapKind::Hypernym: return "hypernym";
    default: return "unmapped";
  }
}

ClassList load_class_list(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open class list " + path);
  ClassList c;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    line = line.substr(start);
    auto sp = line.find_first_of(" \t");
    std::string w = line.substr(0, sp), name;
    if (sp != std::string::npos) {
      auto ns = line.find_first_not_of(" \t", sp);
      if (ns != std::string::npos) name = line.substr(ns);
    }
    if (WordNetGraph::parse_wnid(w) < 0)
      throw std::runtime_error(path + ":" + std::to_string(lineno) + ": '" + w +
                               "' is not a noun wnid (n + 8 digits)");
    c.wnids.push_back(w);
    c.names.push_back(name);
  }
  if (c.wnids.empty()) throw std::runtime_error(path + ": no classes");
  return c;
}

namespace {
// Vocabulary rows first reached at the smallest distance going one way
// (up or down); returns that distance, or -1.
int nearest(int64_t start, bool up, const EvalVocab& vocab, const WordNetGraph& wn, int max_distance,
            std::vector<int64_t>& rows) {
  std::vector<int64_t> frontier{start};
  std::unordered_set<int64_t> seen{start};
  for (int d = 1; d <= max_distance && !frontier.empty(); ++d) {
    std::vector<int64_t> next;
    for (int64_t o : frontier) {
      const SynsetNode* n = wn.find(o);
      if (!n) continue;
      for (int64_t t : up ? n->up : n->down)
        if (seen.insert(t).second) next.push_back(t);
    }
    for (int64_t t : next) {
      int64_t r = vocab.index_of_wnid(WordNetGraph::wnid(t));
      if (r >= 0) rows.push_back(r);
    }
    if (!rows.empty()) {
      std::sort(rows.begin(), rows.end());
      rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
      return d;
    }
    frontier = std::move(next);
  }
  return -1;
}
}  // namespace

ClassMapping map_class(const std::string& wnid, const EvalVocab& vocab, const WordNetGraph& wn, int max_distance) {
  ClassMapping m;
  m.wnid = wnid;
  int64_t off = WordNetGraph::parse_wnid(wnid);
  if (const SynsetNode* n = off >= 0 ? wn.find(off) : nullptr) m.name = n->lemma;
  if (int64_t r = vocab.index_of_wnid(wnid); r >= 0) {
    m.kind = MapKind::Exact;
    m.distance = 0;
    m.rows = {r};
    return m;
  }
  if (off < 0) return m;
  std::vector<int64_t> down, up;
  int dd = nearest(off, false, vocab, wn, max_distance, down);
  int du = nearest(off, true, vocab, wn, max_distance, up);
  if (dd > 0 && (du < 0 || dd <= du)) {
    m.kind = MapKind::Hyponym;
    m.distance = dd;
    m.rows = std::move(down);
  } else if (du > 0) {
    m.kind = MapKind::Hypernym;
    m.distance = du;
    m.rows = std::move(up);
  }
  return m;
}

MappingReport map_classes(const ClassList& classes, const EvalVocab& vocab, const WordNetGraph& wn,
                          int max_distance) {
  MappingReport r;
  for (size_t i = 0; i < classes.wnids.size(); ++i) {
    ClassMapping m = map_class(classes.wnids[i], vocab, wn, max_distance);
    if (i < classes.names.size() && !classes.names[i].empty()) m.name = classes.names[i];
    switch (m.kind) {
      case MapKind::Exact: ++r.exact; break;
      case MapKind::Hyponym: ++r.hyponym; break;
      case MapKind::Hypernym: ++r.hypernym; break;
      default: ++r.unmapped;
    }
    r.classes.push_back(std::move(m));
  }
  return r;
}

std::string mapping_tsv(const MappingReport& r, const EvalVocab& vocab) {
  std::ostringstream o;
  o << "#class\twnid\tname\tkind\tdistance\trows\n";
  for (size_t i = 0; i < r.classes.size(); ++i) {
    auto& c = r.classes[i];
    o << i << "\t" << c.wnid << "\t" << c.name << "\t" << map_kind_name(c.kind) << "\t" << c.distance << "\t";
    for (size_t j = 0; j < c.rows.size(); ++j)
      o << (j ? "," : "") << c.rows[j] << ":" << vocab.lemmas[size_t(c.rows[j])];
    o << "\n";
  }
  o << "# " << r.classes.size() << " classes: " << r.exact << " exact, " << r.hyponym << " hyponym, " << r.hypernym
    << " hypernym, " << r.unmapped << " unmapped; coverage " << r.coverage() << "\n";
  return o.str();
}

}  // namespace catlip::eval
