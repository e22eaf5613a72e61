// tests/train/token_pairs.h - fixtures of the text-reading trainers' tests
// (train.clip, train.siglip, train.superclass): a tokenizer file as
// text.bpe_learn writes it, and noise images paired with token rows.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "catlip/sample.h"
#include "catlip/train/trainer.h"
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

// The trainer on a tiny ViT (dim 64, depth 2, heads 2, 32 px, patch 8) on
// the CPU with 2 threads: batch 8, constant lr 1e-3, no weight decay, no
// logging or checkpoints, writing into `dir` with its tokenizer there. The
// CLIP-style objectives ("clip", "siglip") also get a tiny text tower
// (width 64, depth 2, 4 heads, context 16, embedding 32).
inline train::TrainOptions tiny_text_options(const std::string& dir, const std::string& objective) {
  train::TrainOptions o;
  o.objective = objective;
  o.tokenizer_path = write_tokenizer(dir);
  o.model.dim = 64;
  o.model.depth = 2;
  o.model.heads = 2;
  o.model.image_size = 32;
  o.model.patch_size = 8;
  if (objective == "clip" || objective == "siglip") {
    o.clip.text.width = 64;
    o.clip.text.depth = 2;
    o.clip.text.heads = 4;
    o.clip.text.context_length = 16;
    o.clip.text.embed_dim = 32;
  }
  o.batch_size = 8;
  o.lr = 1e-3;
  o.warmup_steps = 0;
  o.min_lr = 1e-3;
  o.weight_decay = 0;
  o.device = "cpu";
  o.threads = 2;
  o.log_every = 0;
  o.checkpoint_every = 0;
  o.keep_checkpoints = 0;
  o.run_dir = dir;
  return o;
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
