// catlip/train/schedule.h - learning rate by iteration, as CoreNet's cosine
// scheduler with linear warmup:
//   step < warmup:  warmup_init_lr + step * (lr - warmup_init_lr) / warmup
//   otherwise:      min_lr + (lr - min_lr) * (1 + cos(pi * t)) / 2,
//                   t = (step - warmup) / (total - warmup), clamped to [0, 1]
// `step` is the 0-based index of the iteration about to run. total = 0 means
// the length is unknown (training until the data ends): lr stays at `lr`
// after warmup.
#pragma once

#include <cstdint>

namespace catlip::train {

struct LrSchedule {
  double lr = 1e-3;
  double min_lr = 1e-5;
  double warmup_init_lr = 1e-6;
  int64_t warmup = 0;
  int64_t total = 0;

  double at(int64_t step) const;
  // The same warmup by step, then the cosine at a given fraction of the run
  // (clamped to [0, 1]): for a run bounded by time, fraction = time spent /
  // time budget, so runs of different speed anneal fully in equal time.
  double at_fraction(int64_t step, double fraction) const;
};

}  // namespace catlip::train
