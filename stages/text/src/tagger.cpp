// The implementation of catlip/text/tagger.h: a bigram HMM part-of-speech tagger (Penn Treebank).
#include "catlip/text/tagger.h"

#include "chars.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <stdexcept>
#include <tuple>

namespace catlip::text {
namespace {

using chars::is_digit;
using chars::is_lower;
using chars::is_upper;
using chars::is_word;

// One line of Lingua's YAML, parsed as its loader does:
//   m/^"?([^\{"]+)"?: \{ (.*) \}/ and split /[:,]\s+/, $data
bool parse_yaml_line(const std::string& line, std::string& key,
                     std::vector<std::pair<std::string, std::string>>& pairs) {
  size_t pos = (!line.empty() && line[0] == '"') ? 1 : 0;
  size_t e = pos;
  while (e < line.size() && line[e] != '{' && line[e] != '"') ++e;
  size_t data_start;
  if (e < line.size() && line[e] == '"' && line.compare(e + 1, 4, ": { ") == 0) {
    key = line.substr(pos, e - pos);
    data_start = e + 5;
  } else if (e < line.size() && line[e] == '{' && e >= pos + 3 && line.compare(e - 2, 4, ": { ") == 0) {
    key = line.substr(pos, e - 2 - pos);
    data_start = e + 2;
  } else {
    return false;
  }
  if (key.empty()) return false;
  size_t close = line.rfind(" }");
  if (close == std::string::npos || close < data_start) return false;
  std::string data = line.substr(data_start, close - data_start);
  std::vector<std::string> parts;
  size_t i = 0, start = 0;
  while (i < data.size()) {
    if ((data[i] == ':' || data[i] == ',') && i + 1 < data.size() &&
        (data[i + 1] == ' ' || data[i + 1] == '\t')) {
      parts.push_back(data.substr(start, i - start));
      i += 1;
      while (i < data.size() && (data[i] == ' ' || data[i] == '\t')) ++i;
      start = i;
    } else {
      ++i;
    }
  }
  parts.push_back(data.substr(start));
  pairs.clear();
  for (size_t k = 0; k + 1 < parts.size(); k += 2) pairs.emplace_back(parts[k], parts[k + 1]);
  return true;
}

std::string penn_of(const std::string& t) {
  static const std::map<std::string, std::string> kMap = {
      {"det", "DT"}, {"pp", "."},     {"ppc", ","},     {"ppd", "$"},    {"ppl", "``"},
      {"ppr", "''"}, {"pps", ":"},    {"prps", "PRP$"}, {"wps", "WP$"},  {"lrb", "-LRB-"},
      {"rrb", "-RRB-"}};
  auto it = kMap.find(t);
  if (it != kMap.end()) return it->second;
  std::string u = t;
  for (char& c : u)
    if (is_lower(c)) c = static_cast<char>(c - 32);
  return u;
}

std::ifstream open_or_throw(const std::string& path) {
  std::ifstream f(path);
  if (!f)
    throw std::runtime_error("tagger: cannot open " + path +
                             " (the POS model comes from Debian's liblingua-en-tagger-perl; "
                             "install it or set the lexicon directory)");
  return f;
}

}  // namespace

int Tagger::intern(const std::string& name) {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return static_cast<int>(i);
  names_.push_back(name);
  penn_.push_back(penn_of(name));
  return static_cast<int>(names_.size() - 1);
}

int Tagger::tag_id(std::string_view n) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == n) return static_cast<int>(i);
  return -1;
}

void Tagger::load_tags(const std::string& path) {
  auto f = open_or_throw(path);
  std::string line, key;
  std::vector<std::pair<std::string, std::string>> pairs;
  std::vector<std::tuple<int, int, double>> entries;
  while (std::getline(f, line)) {
    if (!parse_yaml_line(line, key, pairs)) continue;
    int prev = intern(key);
    for (auto& [t, v] : pairs) entries.emplace_back(prev, intern(t), std::strtod(v.c_str(), nullptr));
  }
  if (entries.empty()) throw std::runtime_error("tagger: no transitions in " + path);
  pending_ = std::move(entries);
}

void Tagger::load_words(const std::string& path) {
  auto f = open_or_throw(path);
  std::string line, key;
  std::vector<std::pair<std::string, std::string>> pairs;
  size_t n = 0;
  while (std::getline(f, line)) {
    if (!parse_yaml_line(line, key, pairs)) continue;
    auto& em = lex_[key];
    for (auto& [t, v] : pairs) {
      int id = intern(t);
      float c = static_cast<float>(std::strtod(v.c_str(), nullptr));
      bool found = false;
      for (auto& e : em)
        if (e.tag == id) {
          e.count = c;  // a later entry overrides, as in Lingua's hash
          found = true;
        }
      if (!found) em.push_back({id, c, 0.0});
    }
    ++n;
  }
  if (n == 0) throw std::runtime_error("tagger: no entries in " + path);
}

Tagger::Tagger(const std::string& dir) {
  load_tags(dir + "/tags.yml");
  load_words(dir + "/words.yml");
  load_words(dir + "/unknown.yml");
  int T = num_tags();
  trans_.assign(static_cast<size_t>(T) * T, 0.0);
  log_trans_.assign(trans_.size(), -std::numeric_limits<double>::infinity());
  for (auto& [p, c, v] : pending_) {
    trans_[static_cast<size_t>(p) * T + c] = v;
    if (v > 0) log_trans_[static_cast<size_t>(p) * T + c] = std::log(v);
  }
  pending_.clear();
  for (auto& [k, em] : lex_)
    for (auto& e : em) e.log_count1 = std::log(static_cast<double>(e.count) + 1.0);
  start_ = tag_id("pp");
  nn_ = tag_id("nn");
  sym_ = tag_id("sym");
  if (start_ < 0 || nn_ < 0) throw std::runtime_error("tagger: " + dir + "/tags.yml lacks 'pp' or 'nn'");
}

std::shared_ptr<const Tagger> Tagger::shared(const std::string& dir) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<const Tagger>> cache;
  std::lock_guard<std::mutex> lock(mu);
  if (auto p = cache[dir].lock()) return p;
  auto p = std::make_shared<const Tagger>(dir);
  cache[dir] = p;
  return p;
}

const std::vector<Tagger::Emission>* Tagger::lookup(std::string_view key) const {
  auto it = lex_.find(key);
  return it == lex_.end() ? nullptr : &it->second;
}

std::string Tagger::lexicon_key(const std::string& w) const {
  if (lookup(w)) return w;
  if (!w.empty() && is_upper(w[0])) {
    std::string lc = w;
    lc[0] = static_cast<char>(lc[0] + 32);
    if (lookup(lc)) return lc;
  }
  return unknown_class(w);
}

const std::vector<Tagger::Emission>* Tagger::emissions_for(const std::string& w, bool* sym) const {
  *sym = false;
  if (auto* e = lookup(w)) return e;
  if (!w.empty() && is_upper(w[0])) {
    std::string lc = w;
    lc[0] = static_cast<char>(lc[0] + 32);
    if (auto* e = lookup(lc)) return e;
  }
  const char* cls = unknown_class(w);
  if (std::strcmp(cls, "-sym-") == 0 && sym_ >= 0) {
    *sym = true;
    return nullptr;
  }
  return lookup(cls);
}

const char* Tagger::unknown_class(const std::string& w) const {
  // Lingua::EN::Tagger::_classify_unknown_word, rule by rule.
  if (w.find_first_of("({[") != std::string::npos) return "*LRB*";
  if (w.find_first_of(")]}") != std::string::npos) return "*RRB*";
  {  // ^-?(?:\d+(?:\.\d*)?|\.\d+)$
    size_t i = (!w.empty() && w[0] == '-') ? 1 : 0;
    size_t j = i;
    while (j < w.size() && is_digit(w[j])) ++j;
    bool ok;
    if (j > i) {
      if (j < w.size() && w[j] == '.') {
        ++j;
        while (j < w.size() && is_digit(w[j])) ++j;
      }
      ok = j == w.size();
    } else {
      ok = j < w.size() && w[j] == '.' && j + 1 < w.size();
      if (ok) {
        ++j;
        while (j < w.size() && is_digit(w[j])) ++j;
        ok = j == w.size();
      }
    }
    if (ok) return "*NUM*";
  }
  {  // ^\d+[\d/:-]+\d$
    size_t j = 0;
    while (j < w.size() && is_digit(w[j])) ++j;
    if (j > 0 && w.size() >= j + 2 && is_digit(w.back())) {
      bool ok = true;
      for (size_t k = j; k + 1 < w.size(); ++k)
        if (!(is_digit(w[k]) || w[k] == '/' || w[k] == ':' || w[k] == '-')) ok = false;
      if (ok) return "*NUM*";
    }
  }
  {  // ^-?\d+\w+$ : a digit, then at least one more word character
    size_t i = (!w.empty() && w[0] == '-') ? 1 : 0;
    bool ok = w.size() >= i + 2 && is_digit(w[i]);
    for (size_t k = i; k < w.size() && ok; ++k)
      if (!is_word(w[k])) ok = false;
    if (ok) return "*ORD*";
  }
  {  // ^\p{IsUpper}[\p{IsUpper}\.-]*$
    bool ok = !w.empty() && is_upper(w[0]);
    for (size_t k = 1; k < w.size() && ok; ++k)
      if (!(is_upper(w[k]) || w[k] == '.' || w[k] == '-')) ok = false;
    if (ok) return "-abr-";
  }
  for (size_t k = 1; k + 1 < w.size(); ++k) {  // \w-\w
    if (w[k] == '-' && is_word(w[k - 1]) && is_word(w[k + 1])) {
      std::string suffix = w.substr(w.rfind('-') + 1);  // m/-([^-]+)$/
      if (!suffix.empty()) {
        if (auto* e = lookup(suffix)) {
          int jj = tag_id("jj");
          for (auto& x : *e)
            if (x.tag == jj) return "-hyp-adj-";
        }
      }
      return "-hyp-";
    }
  }
  {  // ^\W+$
    bool ok = !w.empty();
    for (char c : w)
      if (is_word(c)) ok = false;
    if (ok) return "-sym-";
  }
  // $_ eq ucfirst: the first character has no lowercase-to-uppercase change.
  if (!w.empty() && !is_lower(w[0]) && static_cast<unsigned char>(w[0]) < 0x80) return "-cap-";
  if (std::string_view(w).ends_with("ing")) return "-ing-";
  if (std::string_view(w).ends_with("s")) return "-s-";
  if (std::string_view(w).ends_with("tion")) return "-tion-";
  if (std::string_view(w).ends_with("ly")) return "-ly-";
  if (std::string_view(w).ends_with("ed")) return "-ed-";
  return "-unknown-";
}

std::vector<int> Tagger::tag_greedy(const std::vector<std::string>& tokens) const {
  std::vector<int> out;
  out.reserve(tokens.size());
  const int T = num_tags();
  int cur = start_;
  for (auto& tok : tokens) {
    bool sym = false;
    auto* em = emissions_for(tok, &sym);
    int best = -1;
    if (sym) {
      best = sym_;
    } else if (em) {
      double bs = 0;
      for (auto& e : *em) {
        double p = trans_[static_cast<size_t>(cur) * T + e.tag] * (e.count + 1.0);
        if (p > bs) {
          bs = p;
          best = e.tag;
        }
      }
    }
    if (best < 0) best = nn_;
    out.push_back(best);
    cur = best;
  }
  return out;
}

std::vector<int> Tagger::tag(const std::vector<std::string>& tokens) const {
  std::vector<int> out;
  tag(tokens, out);
  return out;
}

Tagger::Word Tagger::resolve(const std::string& token) const {
  Word w;
  w.emissions = emissions_for(token, &w.sym);
  return w;
}

void Tagger::tag(const std::vector<std::string>& tokens, std::vector<int>& out) const {
  static thread_local std::vector<Word> words;
  words.clear();
  for (auto& t : tokens) words.push_back(resolve(t));
  tag_words(words.data(), words.size(), out);
}

void Tagger::tag_words(const Word* words, size_t n_words, std::vector<int>& out) const {
  const int T = num_tags();
  const double kNegInf = -std::numeric_limits<double>::infinity();
  struct State {
    int tag;
    double score;
    int back;  // index into `states` of the best predecessor
  };
  // All columns in one array: column i is states[begin[i], begin[i + 1]).
  // Scratch space kept per thread: no allocation per caption.
  static thread_local std::vector<State> states;
  static thread_local std::vector<int> begin;
  states.clear();
  begin.clear();
  states.reserve(n_words * 3 + 1);
  begin.reserve(n_words + 2);
  states.push_back({start_, 0.0, -1});
  begin.push_back(0);
  for (size_t wi = 0; wi < n_words; ++wi) {
    const int pb = begin.back(), pe = static_cast<int>(states.size());
    begin.push_back(pe);
    int argmax = pb;
    for (int j = pb + 1; j < pe; ++j)
      if (states[j].score > states[argmax].score) argmax = j;
    const bool sym = words[wi].sym;
    auto* em = static_cast<const std::vector<Emission>*>(words[wi].emissions);
    if (sym) {
      // Lingua tags symbols unconditionally, whatever precedes them.
      states.push_back({sym_, states[argmax].score, argmax});
    } else if (em) {
      for (auto& e : *em) {
        double best = kNegInf;
        int bj = -1;
        for (int j = pb; j < pe; ++j) {
          // A forbidden transition is -inf and never wins.
          double sc = states[j].score + log_trans_[static_cast<size_t>(states[j].tag) * T + e.tag];
          if (sc > best) {
            best = sc;
            bj = j;
          }
        }
        if (bj >= 0) states.push_back({e.tag, best + e.log_count1, bj});
      }
    }
    // No tag reachable: Lingua falls back to 'nn'.
    if (static_cast<int>(states.size()) == pe) states.push_back({nn_, states[argmax].score, argmax});
  }
  out.assign(n_words, 0);
  if (n_words == 0) return;
  const int lb = begin.back();
  int k = lb;
  for (int j = lb + 1; j < static_cast<int>(states.size()); ++j)
    if (states[j].score > states[k].score) k = j;
  for (size_t i = n_words; i-- > 0;) {
    out[i] = states[k].tag;
    k = states[k].back;
  }
}

}  // namespace catlip::text
