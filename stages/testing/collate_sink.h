// testing.collate: a sink that does what a trainer does with its input before
// the forward pass (without LibTorch): copies each uint8 [H,W,3] image into a
// contiguous [B,H,W,3] batch buffer and its sparse labels into a dense float
// multi-hot [B,classes] matrix, batch by batch. `catlip bench pipeline` ends
// its graph with it, so the figures are "batches ready for the trainer".
#pragma once

#include <string>
#include <vector>

#include "catlip/stage.h"

namespace catlip::testing {

class CollateSink : public Stage {
 public:
  static StageSchema schema();
  void configure() override;
  void process(Sample&& s, Emitter& out) override;
  void flush(Emitter& out) override;

 private:
  void complete_batch();
  std::string image_field_, labels_field_;
  int64_t batch_ = 64, size_ = 0, classes_ = 0;
  int64_t fill_ = 0, seen_ = 0, h_ = 0, w_ = 0;
  std::vector<uint8_t> images_;  // [batch, h, w, 3]
  std::vector<float> multi_hot_;  // [batch, classes]
  uint64_t checksum_ = 0;
};

}  // namespace catlip::testing
