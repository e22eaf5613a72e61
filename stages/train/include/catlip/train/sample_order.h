// catlip/train/sample_order.h - the trainer's reorder buffer for
// order = "deterministic".
//
// The source numbers every sample (kSeqField, catlip/sample.h) and the
// runtime routes sample g to rank g % W. Decode replicas deliver a rank's
// samples out of order; SampleOrder hands them back in order: rank r of W
// takes r, r+W, r+2W, ... from the first such number at or after `start`
// (the global position a resumed checkpoint reached; a multiple of W when
// the global batch is). Samples below the next number were consumed before
// a resume (or are copies); a number of another rank is a routing error;
// more than `window` samples held while one is missing is an error naming
// the missing number (it was dropped without a marker, or is late by more
// than the window), so memory stays bounded and the run never hangs on it.
// Torch-free, so it is tested without LibTorch.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "catlip/sample.h"

namespace catlip::train {

class SampleOrder {
 public:
  SampleOrder(int rank, int world_size, int64_t start, size_t window);
  enum class Put { Held, Consumed };
  // Takes a numbered sample. Consumed: its number is below next() (trained
  // before a resume, or a copy): dropped. Throws std::runtime_error for a
  // number that is not this rank's or a full window.
  Put put(int64_t seq, Sample&& s);
  // The next sample in order, if it has arrived.
  std::optional<Sample> pop();
  int64_t next() const { return next_; }
  size_t held() const { return held_.size(); }
  // The lowest number held (-1: none), for the end-of-input message.
  int64_t first_held() const { return held_.empty() ? -1 : held_.begin()->first; }

 private:
  int rank_, world_;
  int64_t next_;
  size_t window_;
  std::map<int64_t, Sample> held_;
};

}  // namespace catlip::train
