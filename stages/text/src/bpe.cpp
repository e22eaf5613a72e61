// catlip/text bpe.cpp: CLIP's byte-level BPE (see bpe.h).
#include "catlip/text/bpe.h"

#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

namespace catlip::text {
namespace {

constexpr std::string_view kEow = "</w>";
constexpr std::string_view kSot = "<|startoftext|>";
constexpr std::string_view kEot = "<|endoftext|>";
constexpr std::string_view kHeader = "#version: catlip-bpe/1";

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// bytes_to_unicode(): `order` is CLIP's bs list (byte of id i), `cp` the
// code point of each byte, `from_cp` its inverse (-1: not a byte symbol).
struct ByteTable {
  std::array<uint8_t, 256> order{};
  std::array<int, 256> id_of{};  // byte -> position in order (its token id)
  std::array<uint32_t, 256> cp{};
  std::array<std::string, 256> symbol;
  std::vector<int> from_cp;

  ByteTable() {
    std::vector<int> bs;
    for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
    for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
    for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
    std::vector<uint32_t> cs(bs.begin(), bs.end());
    std::vector<bool> in(256, false);
    for (int b : bs) in[b] = true;
    uint32_t n = 0;
    for (int b = 0; b < 256; ++b)
      if (!in[b]) {
        bs.push_back(b);
        cs.push_back(256 + n++);
      }
    from_cp.assign(256 + n, -1);
    for (int i = 0; i < 256; ++i) {
      order[i] = static_cast<uint8_t>(bs[i]);
      id_of[bs[i]] = i;
      cp[bs[i]] = cs[i];
      from_cp[cs[i]] = bs[i];
      append_utf8(symbol[bs[i]], cs[i]);
    }
  }
};

const ByteTable& table() {
  static const ByteTable t;
  return t;
}

// A token in symbol form -> raw bytes and end-of-word flag; false if it is
// not made of byte symbols (with an optional final "</w>").
bool parse_symbols(std::string_view tok, std::string& bytes, bool& eow) {
  eow = tok.size() >= kEow.size() && tok.substr(tok.size() - kEow.size()) == kEow;
  if (eow) tok.remove_suffix(kEow.size());
  bytes.clear();
  if (tok.empty()) return false;
  const auto& t = table();
  int32_t i = 0, n = static_cast<int32_t>(tok.size());
  while (i < n) {
    UChar32 c;
    U8_NEXT(tok.data(), i, n, c);
    if (c < 0 || static_cast<size_t>(c) >= t.from_cp.size() || t.from_cp[c] < 0) return false;
    bytes += static_cast<char>(t.from_cp[c]);
  }
  return true;
}

std::string to_symbols(std::string_view bytes, bool eow) {
  const auto& t = table();
  std::string s;
  for (unsigned char b : bytes) s += t.symbol[b];
  if (eow) s += kEow;
  return s;
}

// Python's str.isspace (what \s matches): Unicode White_Space plus the
// information separators U+001C..U+001F.
bool is_space(UChar32 c) { return (c >= 0x1C && c <= 0x1F) || u_isUWhiteSpace(c); }

bool is_number(UChar32 c) {
  int8_t t = u_charType(c);
  return t == U_DECIMAL_DIGIT_NUMBER || t == U_LETTER_NUMBER || t == U_OTHER_NUMBER;
}

bool iequal_prefix(std::string_view s, size_t at, std::string_view p) {
  if (s.size() - at < p.size()) return false;
  for (size_t k = 0; k < p.size(); ++k) {
    char c = s[at + k];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    if (c != p[k]) return false;
  }
  return true;
}

uint64_t pair_key(int64_t a, int64_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }
int32_t pair_first(uint64_t k) { return static_cast<int32_t>(k >> 32); }
int32_t pair_second(uint64_t k) { return static_cast<int32_t>(k & 0xFFFFFFFFu); }

std::string hex64(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

const std::array<std::string, 256>& bpe_byte_symbols() { return table().symbol; }

std::string bpe_normalize(std::string_view raw, const CleanOptions& opt, CleanResult* clean) {
  CleanResult local;
  CleanResult& r = clean ? *clean : local;
  clean_caption(raw, opt, r);
  const std::string& s = r.text;
  std::string out;
  out.reserve(s.size());
  int32_t i = 0, n = static_cast<int32_t>(s.size());
  bool pending_space = false;
  while (i < n) {
    int32_t start = i;
    UChar32 c;
    U8_NEXT(s.data(), i, n, c);
    if (c >= 0 && is_space(c)) {
      pending_space = true;
      continue;
    }
    if (pending_space && !out.empty()) out += ' ';
    pending_space = false;
    out.append(s, static_cast<size_t>(start), static_cast<size_t>(i - start));
  }
  return out;
}

void bpe_pretokenize(std::string_view text, std::vector<std::string_view>& out) {
  out.clear();
  const char* d = text.data();
  int32_t i = 0, n = static_cast<int32_t>(text.size());
  enum Class { Space, Letter, Number, Other };
  auto class_at = [&](int32_t at, int32_t& next) {
    UChar32 c;
    next = at;
    U8_NEXT(d, next, n, c);
    if (c < 0) return Other;
    if (is_space(c)) return Space;
    if (u_isalpha(c)) return Letter;  // general category L
    if (is_number(c)) return Number;
    return Other;
  };
  static constexpr std::string_view kContractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
  while (i < n) {
    size_t at = static_cast<size_t>(i);
    if (d[i] == '<') {
      std::string_view sp = iequal_prefix(text, at, kSot) ? kSot : iequal_prefix(text, at, kEot) ? kEot : "";
      if (!sp.empty()) {
        out.push_back(text.substr(at, sp.size()));
        i += static_cast<int32_t>(sp.size());
        continue;
      }
    }
    if (d[i] == '\'') {
      bool hit = false;
      for (auto c : kContractions)
        if (iequal_prefix(text, at, c)) {
          out.push_back(text.substr(at, c.size()));
          i += static_cast<int32_t>(c.size());
          hit = true;
          break;
        }
      if (hit) continue;
    }
    int32_t next;
    Class cls = class_at(i, next);
    if (cls == Space) {
      i = next;
      continue;
    }
    int32_t end = next;
    if (cls == Letter || cls == Other) {
      while (end < n) {
        int32_t nn;
        if (class_at(end, nn) != cls) break;
        end = nn;
      }
    }
    out.push_back(text.substr(at, static_cast<size_t>(end - i)));
    i = end;
  }
}

std::vector<std::string> bpe_pretokenize(std::string_view text) {
  std::vector<std::string_view> v;
  bpe_pretokenize(text, v);
  return std::vector<std::string>(v.begin(), v.end());
}

size_t bpe_keep_most_frequent(BpeWordCounts& counts, size_t n) {
  if (counts.size() <= n) return 0;
  using It = BpeWordCounts::const_iterator;
  std::vector<It> v;
  v.reserve(counts.size());
  for (auto it = counts.cbegin(); it != counts.cend(); ++it) v.push_back(it);
  auto better = [](const It& a, const It& b) {
    if (a->second != b->second) return a->second > b->second;
    return a->first < b->first;
  };
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n), v.end(), better);
  std::vector<std::string> drop;
  drop.reserve(v.size() - n);
  for (size_t k = n; k < v.size(); ++k) drop.push_back(v[k]->first);
  v.clear();
  for (auto& w : drop) counts.erase(w);
  return drop.size();
}

// ------------------------------------------------------------ BpeTokenizer

struct BpeTokenizer::Cache {
  std::mutex mu;
  size_t limit = kDefaultCacheWords;
  std::unordered_map<std::string, std::vector<int32_t>, WordHash, std::equal_to<>> words;
};

BpeTokenizer::BpeTokenizer() : BpeTokenizer(std::vector<std::pair<std::string, std::string>>{}) {}

BpeTokenizer::BpeTokenizer(std::vector<std::pair<std::string, std::string>> merges)
    : merges_(std::move(merges)), cache_(std::make_shared<Cache>()) {
  build();
}

void BpeTokenizer::build() {
  const auto& t = table();
  size_t total = kBaseTokens + merges_.size() + 2;
  if (total > static_cast<size_t>(INT32_MAX)) throw std::invalid_argument("too many merges");
  tokens_.clear();
  bytes_.clear();
  eow_.clear();
  tokens_.reserve(total);
  bytes_.reserve(total);
  eow_.reserve(total);
  for (int e = 0; e < 2; ++e)
    for (int i = 0; i < 256; ++i) {
      uint8_t b = t.order[i];
      bytes_.emplace_back(1, static_cast<char>(b));
      eow_.push_back(static_cast<uint8_t>(e));
      tokens_.push_back(to_symbols(bytes_.back(), e));
    }
  encoder_.clear();
  for (size_t i = 0; i < tokens_.size(); ++i) encoder_[tokens_[i]] = static_cast<int64_t>(i);
  std::string ab, bb;
  for (size_t m = 0; m < merges_.size(); ++m) {
    // Not a structured binding: clang (the fuzz build) cannot capture those in a lambda.
    const std::string& a = merges_[m].first;
    const std::string& b = merges_[m].second;
    bool ea, eb;
    auto bad = [&](const std::string& why) {
      return std::invalid_argument("merge " + std::to_string(m + 1) + " (\"" + a + " " + b + "\"): " + why);
    };
    if (!parse_symbols(a, ab, ea) || !parse_symbols(b, bb, eb))
      throw bad("a token is not made of byte symbols (with an optional final </w>)");
    if (ea) throw bad("the first token ends a word (</w>)");
    if (!encoder_.count(a) || !encoder_.count(b)) throw bad("a token is neither a byte nor an earlier merge");
    bytes_.push_back(ab + bb);
    eow_.push_back(static_cast<uint8_t>(eb));
    tokens_.push_back(a + b);
    encoder_[tokens_.back()] = static_cast<int64_t>(tokens_.size() - 1);  // last wins, as CLIP's dict
  }
  for (auto sp : {kSot, kEot}) {
    bytes_.emplace_back(sp);
    eow_.push_back(0);
    tokens_.emplace_back(sp);
    encoder_[tokens_.back()] = static_cast<int64_t>(tokens_.size() - 1);
  }
  ranks_.clear();
  ranks_.reserve(merges_.size());
  for (size_t m = 0; m < merges_.size(); ++m) {
    auto& [a, b] = merges_[m];
    ranks_[pair_key(encoder_.at(a), encoder_.at(b))] = {static_cast<int32_t>(m),
                                                         static_cast<int32_t>(encoder_.at(a + b))};
  }
  {
    std::lock_guard<std::mutex> lk(cache_->mu);
    cache_->words.clear();
  }
}

int64_t BpeTokenizer::token_id(std::string_view tok) const {
  auto it = encoder_.find(tok);
  return it == encoder_.end() ? -1 : it->second;
}

void BpeTokenizer::set_cache_words(size_t n) {
  std::lock_guard<std::mutex> lk(cache_->mu);
  cache_->limit = n;
  if (cache_->words.size() > n) cache_->words.clear();
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<int64_t>& out) const {
  if (word.empty()) return;
  if (word == kSot) return out.push_back(sot_id());
  if (word == kEot) return out.push_back(eot_id());
  {
    std::lock_guard<std::mutex> lk(cache_->mu);
    auto it = cache_->words.find(word);
    if (it != cache_->words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const auto& t = table();
  std::vector<int32_t> w;
  w.reserve(word.size());
  for (unsigned char c : word) w.push_back(t.id_of[c]);
  w.back() += static_cast<int32_t>(kByteTokens);
  // CLIP's bpe(): merge the lowest-ranked adjacent pair, every occurrence
  // left to right, until no pair has a rank.
  while (w.size() > 1) {
    int32_t best = INT32_MAX, merged = -1;
    uint64_t best_key = 0;
    for (size_t k = 0; k + 1 < w.size(); ++k) {
      auto it = ranks_.find(pair_key(w[k], w[k + 1]));
      if (it != ranks_.end() && it->second.first < best) {
        best = it->second.first;
        merged = it->second.second;
        best_key = it->first;
      }
    }
    if (merged < 0) break;
    int32_t a = pair_first(best_key), b = pair_second(best_key);
    size_t o = 0;
    for (size_t k = 0; k < w.size();) {
      if (k + 1 < w.size() && w[k] == a && w[k + 1] == b) {
        w[o++] = merged;
        k += 2;
      } else {
        w[o++] = w[k++];
      }
    }
    w.resize(o);
  }
  out.insert(out.end(), w.begin(), w.end());
  std::lock_guard<std::mutex> lk(cache_->mu);
  if (cache_->limit == 0) return;
  if (cache_->words.size() >= cache_->limit) cache_->words.clear();
  cache_->words.emplace(std::string(word), std::move(w));
}

void BpeTokenizer::encode_normalized(std::string_view text, std::vector<int64_t>& out) const {
  std::vector<std::string_view> words;
  bpe_pretokenize(text, words);
  for (auto w : words) encode_word(w, out);
}

std::vector<int64_t> BpeTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> out;
  encode_normalized(bpe_normalize(text), out);
  return out;
}

std::vector<int64_t> BpeTokenizer::encode_context(std::string_view text, int64_t context_length,
                                                  bool* truncated) const {
  if (context_length < 2) throw std::invalid_argument("context_length must be at least 2 (SOT and EOT)");
  std::vector<int64_t> out{sot_id()};
  encode_normalized(bpe_normalize(text), out);
  out.push_back(eot_id());
  bool cut = static_cast<int64_t>(out.size()) > context_length;
  if (cut) {
    out.resize(static_cast<size_t>(context_length));
    out.back() = eot_id();
  }
  if (truncated) *truncated = cut;
  return out;
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string s;
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size())
      throw std::out_of_range("token id " + std::to_string(id) + " outside the vocabulary (size " +
                              std::to_string(vocab_size()) + ")");
    if (id == sot_id() || id == eot_id()) continue;
    s += bytes_[static_cast<size_t>(id)];
    if (eow_[static_cast<size_t>(id)]) s += ' ';
  }
  repair_utf8(s);
  size_t b = s.find_first_not_of(' ');
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(' ');
  return s.substr(b, e - b + 1);
}

std::string BpeTokenizer::serialize() const {
  std::string s = std::string(kHeader) + " vocab_size=" + std::to_string(vocab_size()) +
                  " merges=" + std::to_string(num_merges()) + "\n";
  for (auto& [a, b] : merges_) {
    s += a;
    s += ' ';
    s += b;
    s += '\n';
  }
  return s;
}

std::string BpeTokenizer::checksum() const {
  uint64_t h = 1469598103934665603ull;
  auto add = [&](std::string_view x) {
    for (unsigned char c : x) h = (h ^ c) * 1099511628211ull;
  };
  for (auto& [a, b] : merges_) {
    add(a);
    add(" ");
    add(b);
    add("\n");
  }
  return hex64(h);
}

void BpeTokenizer::save(const std::string& path) const {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("cannot write " + tmp);
    std::string s = serialize();
    f.write(s.data(), static_cast<std::streamsize>(s.size()));
    f.flush();
    if (!f) throw std::runtime_error("write failed: " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);  // readers never see half a file
  if (ec) throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " + ec.message());
}

BpeTokenizer BpeTokenizer::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read BPE tokenizer " + path);
  auto fail = [&](size_t line, const std::string& why) {
    return std::runtime_error(path + ":" + std::to_string(line) + ": " + why);
  };
  std::string line;
  if (!std::getline(f, line)) throw fail(1, "empty file (expected a '" + std::string(kHeader) + "' header)");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.rfind(kHeader, 0) != 0)
    throw fail(1, "not a catlip BPE file: the first line must start with '" + std::string(kHeader) + "'");
  int64_t vocab = -1, nmerges = -1;
  {
    std::istringstream hs(line.substr(kHeader.size()));
    std::string kv;
    while (hs >> kv) {
      auto eq = kv.find('=');
      std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
      int64_t x = -1;
      try {
        size_t used = 0;
        x = std::stoll(v, &used);
        if (used != v.size() || x < 0) x = -1;
      } catch (const std::exception&) {
        x = -1;
      }
      if (k == "vocab_size") vocab = x;
      else if (k == "merges") nmerges = x;
      else throw fail(1, "unknown header field '" + kv + "'");
      if (x < 0) throw fail(1, "bad header value '" + kv + "'");
    }
  }
  if (vocab < 0 || nmerges < 0) throw fail(1, "the header needs vocab_size=N and merges=M");
  if (vocab != kBaseTokens + 2 + nmerges)
    throw fail(1, "vocab_size=" + std::to_string(vocab) + " does not match merges=" + std::to_string(nmerges) +
                      " (expected " + std::to_string(kBaseTokens + 2 + nmerges) + ")");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(static_cast<size_t>(std::min<int64_t>(nmerges, 1 << 22)));
  std::unordered_set<std::string> known;
  for (auto& s : bpe_byte_symbols()) {
    known.insert(s);
    known.insert(s + std::string(kEow));
  }
  size_t lineno = 1;
  std::string bytes;
  while (std::getline(f, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (static_cast<int64_t>(merges.size()) == nmerges) {
      if (line.empty()) continue;  // trailing blank lines
      throw fail(lineno, "more merges than the header's merges=" + std::to_string(nmerges));
    }
    auto sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string::npos)
      throw fail(lineno, "expected two tokens separated by one space, got '" + line + "'");
    std::string a = line.substr(0, sp), b = line.substr(sp + 1);
    bool eow;
    if (!parse_symbols(a, bytes, eow) || eow)
      throw fail(lineno, "'" + a + "' is not a token of byte symbols that can start a merge");
    if (!parse_symbols(b, bytes, eow)) throw fail(lineno, "'" + b + "' is not a token of byte symbols");
    if (!known.count(a) || !known.count(b))
      throw fail(lineno, "'" + (known.count(a) ? b : a) + "' is neither a byte symbol nor an earlier merge");
    known.insert(a + b);
    merges.emplace_back(std::move(a), std::move(b));
  }
  if (static_cast<int64_t>(merges.size()) != nmerges)
    throw fail(lineno + 1, "file ends after " + std::to_string(merges.size()) + " merges, the header says " +
                               std::to_string(nmerges));
  try {
    return BpeTokenizer(std::move(merges));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

// ------------------------------------------------------------------ learn

BpeTokenizer BpeTokenizer::learn(const BpeWordCounts& word_counts, int64_t vocab_size, size_t max_words,
                                 BpeLearnStats* stats) {
  if (vocab_size < kMinVocabSize)
    throw std::invalid_argument("vocab_size " + std::to_string(vocab_size) + " is below the minimum " +
                                std::to_string(kMinVocabSize) + " (256 bytes, 256 with </w>, SOT, EOT, one merge)");
  BpeLearnStats st;
  st.distinct_words = static_cast<int64_t>(word_counts.size());
  const int64_t target = vocab_size - kBaseTokens - 2;

  // The words: the max_words most frequent (ties: smallest), in word order.
  using Entry = std::pair<std::string_view, int64_t>;
  std::vector<Entry> ws;
  ws.reserve(word_counts.size());
  for (auto& [w, c] : word_counts)
    if (c > 0 && !w.empty() && w != kSot && w != kEot) ws.emplace_back(w, c);
  if (ws.size() > max_words) {
    std::nth_element(ws.begin(), ws.begin() + static_cast<std::ptrdiff_t>(max_words), ws.end(),
                     [](const Entry& a, const Entry& b) {
                       return a.second != b.second ? a.second > b.second : a.first < b.first;
                     });
    ws.resize(max_words);
  }
  std::sort(ws.begin(), ws.end());
  st.kept_words = static_cast<int64_t>(ws.size());

  const auto& t = table();
  std::vector<std::string> tok;  // id -> symbol form (learning ids: 0..511 base, then merges)
  tok.reserve(kBaseTokens + static_cast<size_t>(target));
  std::unordered_set<std::string, WordHash, std::equal_to<>> existing;
  for (int e = 0; e < 2; ++e)
    for (int i = 0; i < 256; ++i) tok.push_back(to_symbols(std::string(1, static_cast<char>(t.order[i])), e));
  for (auto& s : tok) existing.insert(s);
  existing.insert(std::string(kSot));
  existing.insert(std::string(kEot));

  std::vector<std::vector<int32_t>> words(ws.size());
  std::vector<int64_t> counts(ws.size());
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;  // pair -> words that had it (may be stale)
  for (size_t i = 0; i < ws.size(); ++i) {
    auto& w = words[i];
    w.reserve(ws[i].first.size());
    for (unsigned char c : ws[i].first) w.push_back(t.id_of[c]);
    w.back() += static_cast<int32_t>(kByteTokens);
    counts[i] = ws[i].second;
    st.total_words += counts[i];
    st.symbols_before += counts[i] * static_cast<int64_t>(w.size());
    for (size_t k = 0; k + 1 < w.size(); ++k) {
      uint64_t p = pair_key(w[k], w[k + 1]);
      pair_count[p] += counts[i];
      auto& v = where[p];
      if (v.empty() || v.back() != static_cast<int32_t>(i)) v.push_back(static_cast<int32_t>(i));
    }
  }
  ws.clear();
  ws.shrink_to_fit();

  // Max-heap of (count, pair): larger count first, then the smaller pair of
  // token strings. Entries go stale as counts drop; a popped entry whose
  // count is out of date is pushed again with the current count.
  struct HeapItem {
    int64_t count;
    uint64_t pair;
  };
  auto pair_less = [&](uint64_t x, uint64_t y) {  // lexicographic on (string a, string b)
    int c = tok[pair_first(x)].compare(tok[pair_first(y)]);
    if (c) return c < 0;
    return tok[pair_second(x)] < tok[pair_second(y)];
  };
  auto heap_cmp = [&](const HeapItem& x, const HeapItem& y) {  // "x below y"
    if (x.count != y.count) return x.count < y.count;
    return pair_less(y.pair, x.pair);
  };
  std::vector<HeapItem> heap;
  heap.reserve(pair_count.size());
  for (auto& [p, c] : pair_count) heap.push_back({c, p});
  std::make_heap(heap.begin(), heap.end(), heap_cmp);

  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(static_cast<size_t>(target));
  std::unordered_set<uint64_t> skipped;
  std::vector<int32_t> nw;
  std::vector<uint64_t> fresh;  // pairs with the new token whose counts grew
  while (static_cast<int64_t>(merges.size()) < target && !heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), heap_cmp);
    HeapItem top = heap.back();
    heap.pop_back();
    auto pc = pair_count.find(top.pair);
    int64_t cur = pc == pair_count.end() ? 0 : pc->second;
    if (cur <= 0 || skipped.count(top.pair)) continue;
    if (cur != top.count) {
      heap.push_back({cur, top.pair});
      std::push_heap(heap.begin(), heap.end(), heap_cmp);
      continue;
    }
    const int32_t a = pair_first(top.pair), b = pair_second(top.pair);
    std::string merged = tok[a] + tok[b];
    if (existing.count(merged)) {  // the same token by another split: never merged
      skipped.insert(top.pair);
      ++st.skipped_pairs;
      continue;
    }
    const int32_t id = static_cast<int32_t>(tok.size());
    merges.emplace_back(tok[a], tok[b]);
    existing.insert(merged);
    tok.push_back(std::move(merged));

    std::vector<int32_t> list = std::move(where[top.pair]);
    where.erase(top.pair);
    fresh.clear();
    for (int32_t wi : list) {
      auto& w = words[static_cast<size_t>(wi)];
      const int64_t c = counts[static_cast<size_t>(wi)];
      nw.clear();
      bool hit = false;
      for (size_t k = 0; k < w.size();) {
        if (k + 1 < w.size() && w[k] == a && w[k + 1] == b) {
          nw.push_back(id);
          k += 2;
          hit = true;
        } else {
          nw.push_back(w[k++]);
        }
      }
      if (!hit) continue;  // stale: an earlier merge already took these symbols
      // The word's pairs change only around the merged occurrences; the
      // whole word is short, so take all its pairs out and the new ones in.
      for (size_t k = 0; k + 1 < w.size(); ++k) {
        auto it = pair_count.find(pair_key(w[k], w[k + 1]));
        if (it != pair_count.end() && (it->second -= c) <= 0) pair_count.erase(it);
      }
      for (size_t k = 0; k + 1 < nw.size(); ++k) {
        uint64_t p = pair_key(nw[k], nw[k + 1]);
        pair_count[p] += c;
        if (nw[k] == id || nw[k + 1] == id) {
          auto& v = where[p];
          if (v.empty()) fresh.push_back(p);
          if (v.empty() || v.back() != wi) v.push_back(wi);
        }
      }
      w.swap(nw);
    }
    pair_count.erase(top.pair);
    for (uint64_t p : fresh) {
      auto it = pair_count.find(p);
      if (it != pair_count.end() && it->second > 0) {
        heap.push_back({it->second, p});
        std::push_heap(heap.begin(), heap.end(), heap_cmp);
      }
    }
  }
  st.merges = static_cast<int64_t>(merges.size());
  for (size_t i = 0; i < words.size(); ++i) st.symbols_after += counts[i] * static_cast<int64_t>(words[i].size());
  if (stats) *stats = st;
  return BpeTokenizer(std::move(merges));
}

}  // namespace catlip::text
