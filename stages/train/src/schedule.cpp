// The implementation of catlip/train/schedule.h: the learning rate at a step (linear
// warmup, then cosine).
#include "catlip/train/schedule.h"

#include <algorithm>
#include <cmath>

namespace catlip::train {

double LrSchedule::at(int64_t step) const {
  if (step < 0) step = 0;
  if (step < warmup) return warmup_init_lr + double(step) * (lr - warmup_init_lr) / double(warmup);
  if (total <= warmup) return lr;
  double t = std::clamp(double(step - warmup) / double(total - warmup), 0.0, 1.0);
  return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * t));
}

double LrSchedule::at_fraction(int64_t step, double fraction) const {
  if (step < 0) step = 0;
  if (step < warmup) return warmup_init_lr + double(step) * (lr - warmup_init_lr) / double(warmup);
  double t = std::clamp(fraction, 0.0, 1.0);
  return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * t));
}

}  // namespace catlip::train
