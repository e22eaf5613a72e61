// catlip/image/decode_stage.h - the `image.decode` stage.
//
// Reads the first present of the configured byte fields (jpg, jpeg, png,
// webp), decodes and transforms it (see decode.h, crop.h) into the tensor
// field `image` (uint8 HWC [size, size, 3]) and erases the encoded fields so
// they travel no further. Undecodable samples are counted as
// skipped.<reason> and logged with key and shard url; never fatal.
//
// threads > 1 runs decodes on an internal pool with a bounded number of
// samples in flight; results are emitted from the calling thread in input
// order. The random state of each sample comes from (seed, key, epoch), so
// output pixels do not depend on threads or replicas.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "catlip/image/decode.h"
#include "catlip/stage.h"

namespace catlip::image {

class ImageDecodeStage : public Stage {
 public:
  ImageDecodeStage();
  ~ImageDecodeStage() override;
  static StageSchema schema();
  void configure() override;
  void process(Sample&& in, Emitter& out) override;
  void flush(Emitter& out) override;
  void close() override;

  struct Work;  // one sample being decoded

 private:
  void run(Work& w) const;                 // any thread
  void finish(Work& w, Emitter& out);      // calling thread only
  void drain(Emitter& out, size_t keep);   // emit until <= keep in flight

  struct Pool;
  TransformSpec spec_;
  int64_t seed_ = 0;  // a negative seed keeps its bits
  int threads_ = 1;
  size_t inflight_ = 0;  // 0 = 4 * threads
  std::vector<double> scale_, ratio_;  // RandomResizedCrop [min, max], combined into spec_.rrc
  std::vector<std::string> fields_;
  std::string output_;
  int64_t skips_logged_ = 0, skips_ = 0;
  std::unique_ptr<Pool> pool_;
};

}  // namespace catlip::image
