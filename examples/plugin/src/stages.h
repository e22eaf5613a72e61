// The stages of the example plugin `myplugin`: a source that emits one sample
// per word of a text, a transform that upper-cases a text field, and a sink
// that writes the text to a file in the run directory.
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include "catlip/stage.h"

namespace myplugin {

// Emits one sample per word of `text` (split on spaces), `repeat` times over,
// with the word in the text field `field`. Replica r of n emits every n-th.
class Words : public catlip::SourceStage {
 public:
  static catlip::StageSchema schema();
  void configure() override;
  bool produce(catlip::Emitter& out) override;

 private:
  std::string text_, field_;  // parameters
  int64_t repeat_ = 1;
  std::vector<std::string> words_;
  int64_t next_ = 0, end_ = 0, step_ = 1;
};

// Upper-cases the ASCII letters of the text field `field`; a sample without
// that field is counted as skipped.no_text and dropped.
class Upper : public catlip::Stage {
 public:
  static catlip::StageSchema schema();
  void process(catlip::Sample&& s, catlip::Emitter& out) override;

 private:
  std::string field_;  // parameter
};

// Writes "<key> <text>" per sample to <run_dir>/<file>.<replica>.
class Save : public catlip::Stage {
 public:
  static catlip::StageSchema schema();
  void configure() override;
  void process(catlip::Sample&& s, catlip::Emitter& out) override;
  void close() override { out_.close(); }

 private:
  std::string file_, field_;  // parameters
  std::ofstream out_;
};

}  // namespace myplugin
