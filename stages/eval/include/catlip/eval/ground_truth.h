// catlip/eval/ground_truth.h - ground-truth objects from a sample's `.json`.
//
// The synthetic set (stages/synth) writes {"objects": [lemmas], "wnids":
// [wnids], "class": lemma, "class_index": i, ...}. Objects are mapped to
// vocabulary rows by wnid when "wnids" is present, else by lemma
// ("objects"). Objects outside the vocabulary cannot be scored and are
// reported in `outside`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "catlip/eval/eval_vocab.h"

namespace catlip::eval {

struct GroundTruth {
  bool present = false;           // the json had an object list
  std::vector<int64_t> rows;      // sorted unique vocabulary indices
  std::vector<std::string> names; // object names as written (lemmas or wnids)
  int64_t outside = 0;            // objects not in the vocabulary
  std::string error;              // set when the json could not be parsed
};

GroundTruth parse_ground_truth(const std::string& json, const EvalVocab& vocab);

// The class of a class-labeled sample: `.cls` (an integer index into the
// class list) if given, else json "class_wnid"/"wnid" (looked up in
// `class_wnids`), else json "class" (a lemma looked up in `class_names`).
// -1 when none applies.
int64_t parse_class_label(const std::string* cls, const std::string* json,
                          const std::vector<std::string>& class_wnids,
                          const std::vector<std::string>& class_names);

}  // namespace catlip::eval
