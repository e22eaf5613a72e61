// testing.jsonl: a sink that writes chosen fields of every sample as JSON
// lines, to see what a stage emits (its text fields, label ids, tensor shapes).
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include "catlip/stage.h"

namespace catlip::testing {

// One JSON object per sample in <run_dir>/<file> (replica r > 0:
// <file>.<r>): "key", the origin, then each chosen field: text as a string,
// an int list as an array, bytes as {"bytes": size, "fnv1a": hash}, a tensor
// as {"dtype", "shape", "fnv1a"}. A chosen field a sample lacks is null.
class JsonlSink : public Stage {
 public:
  static StageSchema schema();
  void configure() override;
  void process(Sample&& s, Emitter& out) override;
  void close() override { out_.close(); }

 private:
  std::string file_ = "samples.jsonl";
  std::vector<std::string> fields_;  // empty: every field
  int64_t max_items_ = 0;            // 0: all
  int64_t written_ = 0;
  std::string path_;
  std::ofstream out_;
};

}  // namespace catlip::testing
