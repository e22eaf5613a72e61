// The implementation of catlip/text/wordnet.h: the noun part of WordNet 3.0, read from its files.
#include "catlip/text/wordnet.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

namespace catlip::text {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    throw std::runtime_error("wordnet: cannot open " + path +
                             " (install Debian's wordnet-base or set the WordNet directory)");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
    size_t j = i;
    while (j < s.size() && !(s[j] == ' ' || s[j] == '\t' || s[j] == '\r' || s[j] == '\n')) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

int64_t to_int(std::string_view s, int base = 10) {
  if (s.empty()) return -1;
  int64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return -1;
    v = v * base + d;
    if (v > (int64_t{1} << 40)) return -1;
  }
  return v;
}

std::string ascii_lower(std::string_view s) {
  std::string o(s);
  for (char& c : o)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return o;
}


// NLTK's MORPHOLOGICAL_SUBSTITUTIONS[NOUN], in order.
const std::pair<std::string_view, std::string_view> kNounRules[] = {
    {"s", ""},     {"ses", "s"},   {"ves", "f"},   {"xes", "x"}, {"zes", "z"},
    {"ches", "ch"}, {"shes", "sh"}, {"men", "man"}, {"ies", "y"}};

}  // namespace

WordNet::WordNet(const std::string& dir) : dir_(dir) {
  // index.noun: lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt offsets...
  {
    std::string path = dir + "/index.noun";
    std::string idx = read_all(path);
    size_t pos = 0, lineno = 0;
    uint32_t order = 0;
    while (pos < idx.size()) {
      size_t nl = idx.find('\n', pos);
      if (nl == std::string::npos) nl = idx.size();
      std::string_view line(idx.data() + pos, nl - pos);
      pos = nl + 1;
      ++lineno;
      if (line.empty() || line[0] == ' ') continue;  // license header
      auto f = split_ws(line);
      auto bad = [&](const char* what) {
        return std::runtime_error("wordnet: " + path + ":" + std::to_string(lineno) + ": " + what);
      };
      if (f.size() < 6) throw bad("too few fields");
      int64_t n_syn = to_int(f[2]), n_ptr = to_int(f[3]);
      if (n_syn <= 0 || n_ptr < 0) throw bad("bad counts");
      size_t off_i = 4 + static_cast<size_t>(n_ptr) + 2;
      if (off_i + n_syn > f.size()) throw bad("missing offsets");
      Entry e;
      e.first = to_int(f[off_i]);
      if (e.first < 0) throw bad("bad offset");
      e.order = order++;
      index_.emplace(std::string(f[0]), e);
    }
    if (index_.empty()) throw std::runtime_error("wordnet: no lemmas in " + path);
  }
  data_ = read_all(dir + "/data.noun");
  // noun.exc: inflected base...
  {
    std::string exc = read_all(dir + "/noun.exc");
    size_t pos = 0;
    while (pos < exc.size()) {
      size_t nl = exc.find('\n', pos);
      if (nl == std::string::npos) nl = exc.size();
      auto f = split_ws(std::string_view(exc.data() + pos, nl - pos));
      pos = nl + 1;
      if (f.empty()) continue;
      std::vector<std::string> bases(f.begin() + 1, f.end());
      exc_map_[std::string(f[0])] = std::move(bases);  // later lines win, as in NLTK's dict
    }
    for (auto& [k, v] : exc_map_) exc_.emplace(std::string_view(k), &v);
  }
  // Resolve every lemma's first sense once, so that the synset rule is a
  // hash lookup at run time.
  for (auto& [lemma, e] : index_) {
    auto line = line_at(e.first);
    if (line.empty())
      throw std::runtime_error("wordnet: " + dir + "/data.noun: no synset at offset " +
                               std::to_string(e.first) + " (listed for '" + lemma + "' in index.noun)");
    auto f = split_ws(line.substr(0, std::min<size_t>(line.size(), 512)));
    if (f.size() < 5) throw std::runtime_error("wordnet: data.noun: malformed synset at " + std::to_string(e.first));
    std::string head(f[4]);
    if (auto p = head.find('('); p != std::string::npos) head.resize(p);  // syntactic marker
    e.head_is_lemma = ascii_lower(head) == lemma;
  }
}

std::shared_ptr<const WordNet> WordNet::shared(const std::string& dir) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<const WordNet>> cache;
  std::lock_guard<std::mutex> lock(mu);
  if (auto p = cache[dir].lock()) return p;
  auto p = std::make_shared<const WordNet>(dir);
  cache[dir] = p;
  return p;
}

std::string_view WordNet::line_at(int64_t offset) const {
  if (offset < 0 || static_cast<size_t>(offset) >= data_.size()) return {};
  // A synset line starts at the offset and with the offset itself.
  if (offset > 0 && data_[offset - 1] != '\n') return {};
  size_t nl = data_.find('\n', offset);
  if (nl == std::string::npos) nl = data_.size();
  std::string_view line(data_.data() + offset, nl - offset);
  if (line.size() < 9 || to_int(line.substr(0, 8)) != offset) return {};
  return line;
}

std::vector<std::string> WordNet::morphy(std::string_view form) const {
  auto filter = [&](const std::vector<std::string>& forms) {
    std::vector<std::string> out;
    std::unordered_set<std::string> seen;
    for (auto& f : forms)
      if (index_.find(f) != index_.end() && seen.insert(f).second) out.push_back(f);
    return out;
  };
  auto apply_rules = [](const std::vector<std::string>& forms) {
    std::vector<std::string> out;
    for (auto& f : forms)
      for (auto& [old, neu] : kNounRules)
        if (std::string_view(f).ends_with(old)) out.push_back(f.substr(0, f.size() - old.size()) + std::string(neu));
    return out;
  };
  std::string w(form);
  if (auto it = exc_.find(std::string_view(w)); it != exc_.end()) {
    std::vector<std::string> c{w};
    c.insert(c.end(), it->second->begin(), it->second->end());
    return filter(c);
  }
  std::vector<std::string> forms = apply_rules({w});
  std::vector<std::string> first{w};
  first.insert(first.end(), forms.begin(), forms.end());
  auto results = filter(first);
  if (!results.empty()) return results;
  while (!forms.empty()) {
    forms = apply_rules(forms);
    results = filter(forms);
    if (!results.empty()) return results;
  }
  return {};
}

std::string WordNet::lemmatize(std::string_view form) const {
  auto c = morphy(form);
  if (c.empty()) return std::string(form);
  size_t best = 0;
  for (size_t i = 1; i < c.size(); ++i)
    if (c[i].size() < c[best].size()) best = i;
  return c[best];
}

int64_t WordNet::synset_offset(std::string_view lemma, SynsetRule rule) const {
  // wn.synset() lowercases the name it is given.
  auto it = index_.find(lemma);
  if (it == index_.end()) {
    bool has_upper = false;
    for (char c : lemma)
      if (c >= 'A' && c <= 'Z') has_upper = true;
    if (!has_upper) return -1;
    it = index_.find(ascii_lower(lemma));
    if (it == index_.end()) return -1;
    // The synset's name is lowercase, so it never equals a mixed-case lemma.
    return rule == SynsetRule::FirstSense ? it->second.first : -1;
  }
  if (rule == SynsetRule::HeadLemma && !it->second.head_is_lemma) return -1;
  return it->second.first;
}

std::optional<Synset> WordNet::synset(int64_t offset) const {
  auto line = line_at(offset);
  if (line.empty()) return std::nullopt;
  Synset s;
  s.offset = offset;
  std::string_view cols = line, gloss;
  if (auto bar = line.find(" | "); bar != std::string_view::npos) {
    cols = line.substr(0, bar);
    gloss = line.substr(bar + 3);
  }
  while (!gloss.empty() && (gloss.back() == ' ' || gloss.back() == '\r')) gloss.remove_suffix(1);
  s.gloss = std::string(gloss);
  auto f = split_ws(cols);
  if (f.size() < 4) return std::nullopt;
  s.lexfile = static_cast<int>(to_int(f[1]));
  int64_t n = to_int(f[3], 16);
  if (n <= 0 || f.size() < static_cast<size_t>(4 + 2 * n)) return std::nullopt;
  for (int64_t i = 0; i < n; ++i) {
    std::string w(f[4 + 2 * i]);
    if (auto p = w.find('('); p != std::string::npos) w.resize(p);
    s.lemmas.push_back(std::move(w));
  }
  return s;
}

std::vector<std::string> WordNet::lemmas() const {
  std::vector<std::pair<uint32_t, std::string>> v;
  v.reserve(index_.size());
  for (auto& [k, e] : index_) v.emplace_back(e.order, k);
  std::sort(v.begin(), v.end());
  std::vector<std::string> out;
  out.reserve(v.size());
  for (auto& p : v) out.push_back(std::move(p.second));
  return out;
}

std::string WordNet::wnid(int64_t offset) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "n%08lld", static_cast<long long>(offset));
  return buf;
}

int64_t WordNet::parse_wnid(std::string_view s) {
  if (s.size() != 9 || s[0] != 'n') return -1;
  return to_int(s.substr(1));
}

}  // namespace catlip::text
