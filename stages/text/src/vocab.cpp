// The implementation of catlip/text/vocab.h: synset counts, their merge, and the vocabulary TSV.
#include "catlip/text/vocab.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "catlip/model/vocab.h"
#include "catlip/text/wordnet.h"

namespace catlip::text {

void SynsetCounts::add_sample(const std::vector<int64_t>& u) {
  ++samples;
  if (!u.empty()) ++labeled;
  ++hist[std::min<size_t>(u.size(), kHistBins - 1)];
  for (auto o : u) ++counts[o];
}

void SynsetCounts::merge(const SynsetCounts& o) {
  samples += o.samples;
  labeled += o.labeled;
  for (int i = 0; i < kHistBins; ++i) hist[i] += o.hist[i];
  for (auto& [k, v] : o.counts) counts[k] += v;
}

Sample SynsetCounts::to_sample(const std::string& key) const {
  Sample s;
  s.key = key;
  IntList offs, cnts, stats{samples, labeled};
  offs.reserve(counts.size());
  cnts.reserve(counts.size());
  for (auto& [k, v] : counts) {
    offs.push_back(k);
    cnts.push_back(v);
  }
  stats.insert(stats.end(), hist.begin(), hist.end());
  s.set_text("kind", "synset_counts");
  s.set_ints("offsets", std::move(offs));
  s.set_ints("counts", std::move(cnts));
  s.set_ints("stats", std::move(stats));
  return s;
}

SynsetCounts SynsetCounts::from_sample(const Sample& s) {
  const IntList* offs = s.ints("offsets");
  const IntList* cnts = s.ints("counts");
  const IntList* stats = s.ints("stats");
  if (!offs || !cnts || !stats || offs->size() != cnts->size() || stats->size() != 2 + kHistBins)
    throw std::runtime_error("sample '" + s.key + "' is not a synset_counts partial (needs IntList "
                             "offsets, counts of equal length and stats)");
  SynsetCounts c;
  c.samples = (*stats)[0];
  c.labeled = (*stats)[1];
  for (int i = 0; i < kHistBins; ++i) c.hist[i] = (*stats)[2 + i];
  for (size_t i = 0; i < offs->size(); ++i) c.counts[(*offs)[i]] += (*cnts)[i];
  return c;
}

void SynsetCounts::write_file(const std::string& path) const {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    if (!f) throw std::runtime_error("cannot write " + tmp);
    f << "# catlip synset counts v1\n";
    f << "samples\t" << samples << "\nlabeled\t" << labeled << "\nhist";
    for (auto h : hist) f << '\t' << h;
    f << '\n';
    for (auto& [k, v] : counts) f << WordNet::wnid(k) << '\t' << v << '\n';
    if (!f) throw std::runtime_error("write failed: " + tmp);
  }
  std::filesystem::rename(tmp, path);  // readers never see half a file
}

SynsetCounts SynsetCounts::read_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  SynsetCounts c;
  std::string line;
  int lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string k;
    ss >> k;
    auto bad = [&] { return std::runtime_error(path + ":" + std::to_string(lineno) + ": malformed line"); };
    if (k == "samples") {
      if (!(ss >> c.samples)) throw bad();
    } else if (k == "labeled") {
      if (!(ss >> c.labeled)) throw bad();
    } else if (k == "hist") {
      for (auto& h : c.hist)
        if (!(ss >> h)) throw bad();
    } else {
      int64_t off = WordNet::parse_wnid(k), n;
      if (off < 0 || !(ss >> n) || n < 0) throw bad();
      c.counts[off] += n;
    }
  }
  return c;
}

std::vector<VocabEntry> select_vocab(const SynsetCounts& c, int64_t min_count, int64_t top_k,
                                     const WordNet& wn) {
  std::vector<std::pair<int64_t, int64_t>> v;  // (count, offset)
  for (auto& [off, n] : c.counts)
    if (n >= min_count) v.emplace_back(n, off);
  // Count descending; ties by wnid ascending (same order as offset ascending).
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  if (top_k > 0 && static_cast<int64_t>(v.size()) > top_k) v.resize(top_k);
  std::vector<VocabEntry> out;
  out.reserve(v.size());
  for (auto& [n, off] : v) {
    VocabEntry e;
    e.index = static_cast<int64_t>(out.size());
    e.offset = off;
    e.count = n;
    if (auto s = wn.synset(off)) {
      e.lemma = s->head();
      e.gloss = s->gloss;
    } else {
      e.lemma = "?";
    }
    for (char& ch : e.gloss)
      if (ch == '\t' || ch == '\n') ch = ' ';
    out.push_back(std::move(e));
  }
  return out;
}

void write_vocab_tsv(const std::string& path, const std::vector<VocabEntry>& v) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    if (!f) throw std::runtime_error("cannot write " + tmp);
    f << "#index\twnid\tlemma\tcount\tgloss\n";
    for (auto& e : v)
      f << e.index << '\t' << WordNet::wnid(e.offset) << '\t' << e.lemma << '\t' << e.count << '\t'
        << e.gloss << '\n';
    if (!f) throw std::runtime_error("write failed: " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

void write_vocab_stats(const std::string& path, const SynsetCounts& c,
                       const std::vector<VocabEntry>& v, int64_t min_count, int64_t top_k) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error("cannot write " + path);
  double frac = c.samples ? static_cast<double>(c.labeled) / c.samples : 0.0;
  f << "samples_seen\t" << c.samples << "\n";
  f << "samples_with_synset\t" << c.labeled << "\n";
  f << "fraction_with_synset\t" << frac << "\n";
  f << "distinct_synsets\t" << c.counts.size() << "\n";
  f << "min_count\t" << min_count << "\ntop_k\t" << top_k << "\n";
  f << "vocab_size\t" << v.size() << "\n";
  f << "# synsets per sample (before selection): count\tsamples\n";
  for (int i = 0; i < kHistBins; ++i)
    f << "hist\t" << i << (i == kHistBins - 1 ? "+" : "") << '\t' << c.hist[i] << '\n';
  f << "# top synsets: index\twnid\tlemma\tcount\n";
  for (size_t i = 0; i < v.size() && i < 50; ++i)
    f << "top\t" << v[i].index << '\t' << WordNet::wnid(v[i].offset) << '\t' << v[i].lemma << '\t'
      << v[i].count << '\n';
}

Vocab Vocab::load(const std::string& path) {
  // The file's rules are model::load_vocab's, the one reader of the format
  // (header line, rows 0..N-1 in order, unique wnids); text.labels adds only
  // that every wnid is a WordNet noun id, to map synset offsets to rows.
  model::Vocab m;
  try {
    m = model::load_vocab(path, [](const std::vector<std::string>& cols) -> std::string {
      if (WordNet::parse_wnid(cols[1]) < 0) return "bad wnid '" + cols[1] + "' (expected a WordNet noun id, n + 8 digits)";
      return "";
    });
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("vocab: ") + e.what());
  }
  Vocab v;
  for (int64_t i = 0; i < m.size(); ++i) {
    const auto row = static_cast<size_t>(i);
    VocabEntry e;
    e.index = i;
    e.offset = WordNet::parse_wnid(m.wnids[row]);
    e.lemma = m.lemmas[row];
    e.count = m.counts[row];
    e.gloss = m.glosses[row];
    v.index_.emplace(e.offset, e.index);
    v.entries_.push_back(std::move(e));
  }
  return v;
}

int merge_part_files(const std::string& dir, SynsetCounts& out) {
  int n = 0;
  std::vector<std::string> files;
  for (auto& de : std::filesystem::directory_iterator(dir)) {
    auto name = de.path().filename().string();
    if (name.rfind("vocab.part-", 0) == 0 && name.size() > 4 && name.compare(name.size() - 4, 4, ".tsv") == 0)
      files.push_back(de.path().string());
  }
  std::sort(files.begin(), files.end());
  for (auto& p : files) {
    out.merge(SynsetCounts::read_file(p));
    ++n;
  }
  return n;
}

}  // namespace catlip::text
