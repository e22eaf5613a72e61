// catlip/text/stages.h - the stages of the `text` plugin.
//
//   text.parse         caption -> tokens, tags, nouns (lemmas), synsets
//   text.synset_count  sink: counts synsets per replica; at flush writes
//                      vocab.part-<replica>.tsv and emits its partial counts
//   text.vocab_merge   sink (one replica): sums partials, selects by
//                      min_count/top_k, writes the vocabulary TSV and stats
//   text.labels        nouns/synsets/caption -> `labels` (vocabulary indices)
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "catlip/stage.h"
#include "catlip/text/labeler.h"
#include "catlip/text/vocab.h"

namespace catlip::text {

class ParseStage : public Stage {
 public:
  static StageSchema schema();
  void configure() override;
  void process(Sample&& in, Emitter& out) override;

 private:
  std::string field_;
  bool write_tokens_ = true;
  LabelerOptions lopt_;
  std::unique_ptr<Labeler> labeler_;
  Parse parse_;  // reused between samples
};

class SynsetCountStage : public Stage {
 public:
  static StageSchema schema();
  void configure() override;
  void process(Sample&& in, Emitter& out) override;
  void flush(Emitter& out) override;

 private:
  std::string field_;
  bool write_part_ = true;
  SynsetCounts counts_;
};

class VocabMergeStage : public Stage {
 public:
  static StageSchema schema();
  void configure() override;
  void process(Sample&& in, Emitter& out) override;
  void flush(Emitter& out) override;

 private:
  int64_t min_count_ = 1, top_k_ = 0, expect_parts_ = 0, parts_ = 0;
  std::string output_, stats_, wordnet_dir_;
  SynsetCounts counts_;
};

class LabelsStage : public Stage {
 public:
  static StageSchema schema();
  void configure() override;
  void process(Sample&& in, Emitter& out) override;

 private:
  std::string field_;
  bool drop_unlabeled_ = false;
  std::string vocab_path_;
  SynsetRule rule_ = SynsetRule::HeadLemma;
  Vocab vocab_;
  LabelerOptions lopt_;
  std::shared_ptr<const WordNet> wordnet_;
  std::unique_ptr<Labeler> labeler_;  // created on first caption that needs parsing
};

// Resolves a path param: absolute as given, otherwise relative to run_dir.
std::string in_run_dir(const StageContext& ctx, const std::string& path);

}  // namespace catlip::text
