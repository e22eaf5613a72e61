// tests/train/token_pairs.h - fixtures of the text-reading trainers' tests
// (train.clip, train.siglip, train.superclass): a tokenizer file as
// text.bpe_learn writes it, and noise images paired with token rows.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "catlip/sample.h"
#include "test_util.h"

namespace catlip::test {

constexpr int64_t kVocab = 600;  // 512 byte symbols + 86 merges + SOT + EOT
constexpr int64_t kSot = kVocab - 2, kEot = kVocab - 1;

// <dir>/tokenizer.txt with kVocab ids (86 merges), `extra` appended.
inline std::string write_tokenizer(const std::string& dir, const std::string& extra = "") {
  std::string s = "#version: catlip-bpe/1 vocab_size=" + std::to_string(kVocab) + " merges=86\n";
  for (int i = 0; i < 86; ++i) s += std::string(1, char('a' + i % 26)) + " " + std::string(1, char('a' + (i / 26) % 26)) + "\n";
  s += extra;
  std::string p = dir + "/tokenizer.txt";
  write_file(p, s);
  return p;
}

struct Pair {
  Tensor image;
  IntList tokens;  // SOT ids EOT, as text.bpe_encode writes them
  Origin origin;
};

// A size x size RGB uint8 image of noise.
inline Tensor noise_image(int size, std::mt19937& rng) {
  Tensor t;
  t.dtype = DType::U8;
  t.shape = {size, size, 3};
  t.data.resize(size_t(size * size * 3));
  for (auto& c : t.data) c = char(rng() & 0xFF);
  return t;
}

// n image/caption pairs: noise images, distinct token rows SOT ... EOT.
inline std::vector<Pair> make_pairs(int n, int size = 32, uint32_t seed = 3) {
  std::mt19937 rng(seed);
  std::vector<Pair> out;
  for (int i = 0; i < n; ++i) {
    Pair p;
    p.image = noise_image(size, rng);
    p.tokens.push_back(kSot);
    int len = 4 + int(rng() % 6);
    for (int k = 0; k < len; ++k) p.tokens.push_back(int64_t(rng() % 500));
    p.tokens.push_back(kEot);
    p.origin = Origin{"shard-000.tar", 0, i, 0};
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace catlip::test
