// catlip/text/bpe_stages.h - the BPE tokenizer stages of the `text` plugin.
//
//   text.bpe_count   sink: counts pre-tokens of captions per replica; at flush
//                    emits its partial counts (at most max_words) as one sample
//   text.bpe_learn   sink (one replica): sums the partials of every
//                    text.bpe_count replica, learns the merges, writes the
//                    tokenizer file and a stats JSON
//   text.bpe_encode  caption -> IntList `tokens` (SOT ... EOT, <= context_length)
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "catlip/stage.h"
#include "catlip/text/bpe.h"

namespace catlip::text {

// A text.bpe_count partial as a sample: Bytes `words` ('\n'-separated, sorted),
// IntList `counts` (one per word) and `stats`, text `kind` = "bpe_counts".
struct BpePartial {
  int64_t replica = 0, replicas = 1;  // of the text.bpe_count stage that sent it
  int64_t captions = 0;               // captions counted
  int64_t no_caption = 0;             // samples without the caption field
  int64_t words_total = 0;            // pre-tokens seen (before any pruning)
  int64_t pruned_words = 0;           // distinct words dropped to stay within max_words
  BpeWordCounts counts;

  Sample to_sample(const std::string& key) const;
  // Throws std::runtime_error if the sample is not a well-formed partial.
  static BpePartial from_sample(const Sample& s);
};

class BpeCountStage : public Stage {
 public:
  static StageSchema schema();
  void configure() override;
  void process(Sample&& in, Emitter& out) override;
  void flush(Emitter& out) override;

 private:
  std::string field_;
  int64_t max_words_ = 0;
  CleanOptions clean_;
  CleanResult cr_;
  std::vector<std::string_view> pre_;
  BpePartial part_;
};

class BpeLearnStage : public Stage {
 public:
  static StageSchema schema();
  void configure() override;
  void process(Sample&& in, Emitter& out) override;
  void flush(Emitter& out) override;

 private:
  int64_t vocab_size_ = 0, max_words_ = 0, expect_parts_ = 0, parts_ = 0;
  int64_t upstream_replicas_ = -1;
  std::set<int64_t> replicas_seen_;
  std::string output_, stats_;
  BpePartial total_;
};

class BpeEncodeStage : public Stage {
 public:
  static StageSchema schema();
  void configure() override;
  void process(Sample&& in, Emitter& out) override;

 private:
  std::string tokenizer_path_, field_, output_field_;
  int64_t context_length_ = 77;
  CleanOptions clean_;
  std::unique_ptr<BpeTokenizer> tok_;
};

}  // namespace catlip::text
