// The implementation of catlip/model/vocab.h: reading and checking the synset
// vocabulary TSV.
#include "catlip/model/vocab.h"

#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

#include <zlib.h>

#include "catlip/model/safetensors.h"

namespace catlip::model {

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

Vocab load_vocab(const std::string& path, const VocabRowCheck& check) {
  Vocab v;
  v.path = path;
  std::string bytes = read_whole_file(path);
  char buf[32];
  std::snprintf(buf, sizeof buf, "crc32:%08x",
                unsigned(crc32_z(0, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size())));
  v.checksum = buf;
  std::istringstream in(bytes);
  std::string line;
  int64_t lineno = 0;
  std::unordered_set<std::string> seen;
  auto fail = [&](const std::string& m) {
    throw std::runtime_error(path + ":" + std::to_string(lineno) + ": " + m);
  };
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (lineno == 1) {
      // text.vocab_merge writes the header as a comment ("#index\t..."); accept both.
      if (line != "index\twnid\tlemma\tcount\tgloss" && line != "#index\twnid\tlemma\tcount\tgloss")
        fail("expected header 'index<TAB>wnid<TAB>lemma<TAB>count<TAB>gloss'");
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    const std::vector<std::string> cols = split_tabs(line);
    if (cols.size() < 3) fail("expected at least index, wnid, lemma columns");
    int64_t idx = -1;
    try {
      size_t used = 0;
      idx = std::stoll(cols[0], &used);
      if (used != cols[0].size()) idx = -1;
    } catch (const std::exception&) {
      // not a number: idx stays -1 and fails the order check below, naming the line
    }
    if (idx != v.size())
      fail("index '" + cols[0] + "' out of order, expected " + std::to_string(v.size()));
    // The count column may be absent or empty (0); anything else must be a
    // whole non-negative number ("12x" or "-3" is a damaged file, not 12).
    int64_t count = 0;
    if (cols.size() > 3 && !cols[3].empty()) {
      size_t used = 0;
      try {
        count = std::stoll(cols[3], &used);
      } catch (const std::exception&) {
        used = 0;  // not a number (or out of range): refused just below, naming the line
      }
      if (used != cols[3].size() || count < 0) fail("count '" + cols[3] + "' is not a non-negative whole number");
    }
    if (!seen.insert(cols[1]).second) fail("duplicate wnid '" + cols[1] + "'");
    if (check)
      if (std::string why = check(cols); !why.empty()) fail(why);
    v.wnids.push_back(cols[1]);
    v.lemmas.push_back(cols[2]);
    v.counts.push_back(count);
    v.glosses.push_back(cols.size() > 4 ? cols[4] : std::string());
  }
  if (lineno == 0) fail("empty vocabulary file");
  if (v.wnids.empty()) fail("vocabulary has no rows");
  return v;
}

}  // namespace catlip::model
