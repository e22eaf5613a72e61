// catlip/text/bpe.h - CLIP's byte-level BPE tokenizer, learned from captions.
//
// The tokenizer of OpenAI CLIP (simple_tokenizer.py, "SimpleTokenizer"):
//   - text is cleaned by clean_caption (CoreNet's cleaning + ftfy fixes,
//     lowercased) and its whitespace collapsed (CLIP's whitespace_clean);
//   - pre-tokenized by CLIP's pattern (case-insensitive)
//       <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//     (letters by Unicode general category L, numbers N: ICU);
//   - each pre-token's UTF-8 bytes become symbols by bytes_to_unicode, the
//     last symbol marked with "</w>"; merges apply by rank (lowest first,
//     every occurrence left to right) as CLIP's bpe() does.
// Vocabulary, in id order as CLIP: the 256 byte symbols (in bytes_to_unicode
// order), the same 256 with "</w>", one token per merge, then <|startoftext|>
// and <|endoftext|>. vocab_size = 514 + merges (CLIP: 49408 = 514 + 48894).
//
// The merges are learned here (learn()) from pre-token counts: standard BPE,
// most frequent adjacent pair first (ties: the lexicographically smallest
// pair of token strings), with incremental pair counts. A pair whose merged
// token already exists is skipped (never merged), so every id is a distinct
// token and CLIP's Python tokenizer reads the file to the same ids.
//
// File: a text file like CLIP's bpe_simple_vocab_16e6.txt, UTF-8:
//   #version: catlip-bpe/1 vocab_size=N merges=M
//   a b            (M lines, one merge each, in rank order; tokens written
//   ...             in bytes_to_unicode symbols, "</w>" marking a word end)
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "catlip/text/clean.h"
#include "catlip/text/hash.h"

namespace catlip::text {

// Pre-token -> number of occurrences.
using BpeWordCounts = std::unordered_map<std::string, int64_t, WordHash, std::equal_to<>>;

// CLIP's bytes_to_unicode(): the UTF-8 symbol of each byte value.
const std::array<std::string, 256>& bpe_byte_symbols();

// Cleans `raw` (clean_caption: lowercased, HTML/URL fixes, invalid UTF-8
// repaired) and collapses every run of Unicode whitespace to one space,
// stripped at both ends. `clean` (optional) receives what cleaning reported.
std::string bpe_normalize(std::string_view raw, const CleanOptions& opt = {}, CleanResult* clean = nullptr);

// CLIP's pre-tokenizer on normalized text: the pattern's matches, in order
// (whitespace separates and is never part of a pre-token). Views into `text`.
void bpe_pretokenize(std::string_view text, std::vector<std::string_view>& out);
std::vector<std::string> bpe_pretokenize(std::string_view text);

// Keeps the `n` most frequent words (ties: the lexicographically smallest).
// Returns the number of words removed.
size_t bpe_keep_most_frequent(BpeWordCounts& counts, size_t n);

struct BpeLearnStats {
  int64_t distinct_words = 0;   // in the input
  int64_t kept_words = 0;       // after the max_words cap
  int64_t total_words = 0;      // sum of the kept words' counts
  int64_t merges = 0;           // learned (< requested if the pairs ran out)
  int64_t skipped_pairs = 0;    // pairs whose merged token already existed
  int64_t symbols_before = 0;   // sum over kept words of count * symbols, before merging
  int64_t symbols_after = 0;    // ... after all merges (tokens the words encode to)
};

class BpeTokenizer {
 public:
  static constexpr int64_t kByteTokens = 256;      // ids 0..255: byte symbols; 256..511: with </w>
  static constexpr int64_t kBaseTokens = 512;
  static constexpr int64_t kMinVocabSize = 515;    // base + SOT/EOT + at least one merge
  static constexpr size_t kDefaultMaxWords = 1'000'000;
  static constexpr size_t kDefaultCacheWords = 100'000;

  // No merges: vocab_size() == 514.
  BpeTokenizer();
  // From merges in rank order, each a pair of tokens in symbol form
  // ("th", "e</w>"). Throws std::invalid_argument naming the merge index if a
  // token is not made of byte symbols (with an optional final "</w>").
  explicit BpeTokenizer(std::vector<std::pair<std::string, std::string>> merges);

  // Learns vocab_size - 514 merges from pre-token counts (keys are
  // pre-tokens as bpe_pretokenize returns them). Only the max_words most
  // frequent words are used (bounded memory). Deterministic: the result
  // depends only on the multiset of (word, count). Throws
  // std::invalid_argument if vocab_size < kMinVocabSize.
  static BpeTokenizer learn(const BpeWordCounts& word_counts, int64_t vocab_size,
                            size_t max_words = kDefaultMaxWords, BpeLearnStats* stats = nullptr);

  // Reads a file written by save(). Throws std::runtime_error naming the
  // file and line of anything malformed.
  static BpeTokenizer load(const std::string& path);
  // Writes atomically (a temporary file renamed into place).
  void save(const std::string& path) const;
  // The file's content.
  std::string serialize() const;
  // FNV-1a 64 of the merge lines (hex, 16 digits): names the tokenizer a
  // checkpoint used. Equal merges <=> equal checksum (up to collisions).
  std::string checksum() const;

  // Normalizes (bpe_normalize), pre-tokenizes and encodes; no SOT/EOT.
  std::vector<int64_t> encode(std::string_view text) const;
  // Appends the ids of already normalized text.
  void encode_normalized(std::string_view text, std::vector<int64_t>& out) const;
  // [SOT] + encode(text) + [EOT], cut to context_length (>= 2) keeping EOT
  // last, as open_clip's tokenize(truncate=True); not padded. `truncated`
  // (optional) tells whether ids were cut.
  std::vector<int64_t> encode_context(std::string_view text, int64_t context_length,
                                      bool* truncated = nullptr) const;
  // The text of ids: SOT/EOT skipped, "</w>" becomes a space, bytes decoded
  // (invalid UTF-8 replaced by U+FFFD), ends trimmed. Throws
  // std::out_of_range for an id outside the vocabulary.
  std::string decode(const std::vector<int64_t>& ids) const;

  int64_t vocab_size() const { return static_cast<int64_t>(tokens_.size()); }
  int64_t num_merges() const { return static_cast<int64_t>(merges_.size()); }
  int64_t sot_id() const { return vocab_size() - 2; }
  int64_t eot_id() const { return vocab_size() - 1; }
  // A token in symbol form ("the</w>", "<|endoftext|>"); throws std::out_of_range.
  const std::string& token(int64_t id) const { return tokens_.at(static_cast<size_t>(id)); }
  // The id of a token in symbol form, or -1.
  int64_t token_id(std::string_view token) const;
  const std::vector<std::pair<std::string, std::string>>& merges() const { return merges_; }
  // Words cached by encode (per tokenizer and its copies); 0 disables it.
  void set_cache_words(size_t n);

 private:
  struct Cache;
  void build();
  void encode_word(std::string_view word, std::vector<int64_t>& out) const;

  std::vector<std::pair<std::string, std::string>> merges_;  // symbol form
  std::vector<std::string> tokens_;                          // id -> symbol form
  std::vector<std::string> bytes_;                           // id -> raw bytes (no </w>)
  std::vector<uint8_t> eow_;                                 // id -> ends a word
  std::unordered_map<std::string, int64_t, WordHash, std::equal_to<>> encoder_;  // last id wins (as CLIP)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> ranks_;  // (a, b) -> (rank, merged id)
  std::shared_ptr<Cache> cache_;
};

}  // namespace catlip::text
