// catlip/model/clip_config.h - the shape of CLIP's text tower and joint
// embedding, without LibTorch.
//
// The image tower is the same ViT train.catlip trains (ViTConfig); its head
// is CLIP's image projection (num_classes = embed_dim). The text tower is
// CLIP's: token + learned position embeddings, pre-norm transformer blocks
// under a causal mask, a final LayerNorm, the features at the end-of-text
// token, and a projection to embed_dim. Saved in checkpoints and exports as
// one "key=value ..." line ("catlip.text_model"), like ViTConfig.
#pragma once

#include <cstdint>
#include <string>

namespace catlip::model {

struct TextConfig {
  int64_t vocab_size = 49408;    // the tokenizer's (bytes, merges, <|startoftext|>, <|endoftext|>)
  int64_t context_length = 77;   // tokens per caption, SOT and EOT included
  int64_t width = 512, depth = 12, heads = 8, mlp_ratio = 4;
  int64_t embed_dim = 512;       // joint image-text embedding
  double ln_eps = 1e-5;          // CLIP's LayerNorm eps

  std::string check() const;     // "" if consistent
  std::string to_string() const;
  static TextConfig parse(const std::string& s);  // throws std::runtime_error
  // Approximate multiply-adds x2 of one forward pass for one caption of
  // `tokens` tokens (0 = context_length).
  double forward_flops(int64_t tokens = 0) const;
  bool operator==(const TextConfig& o) const { return to_string() == o.to_string(); }
};

// What the trainer needs to know of a BPE tokenizer file (text.bpe_learn
// writes it; catlip/text/bpe.h reads it): its vocabulary size, from the
// header line "#version: catlip-bpe/1 vocab_size=N ...", and a checksum of
// its bytes ("crc32:xxxxxxxx") recorded in checkpoints and exports. Ids
// vocab_size-2 and vocab_size-1 are <|startoftext|> and <|endoftext|>.
struct TokenizerInfo {
  std::string path;
  int64_t vocab_size = 0;
  std::string checksum;
};
// Throws std::runtime_error naming the file (and line 1 for a bad header).
TokenizerInfo read_tokenizer_info(const std::string& path);

}  // namespace catlip::model
