// catlip/rng.h - per-sample random state (image augmentation, synthetic data,
// Transfer Init's crops): a small generator knowing nothing of what it draws.
//
// The state for a sample is derived from (seed, sample key, epoch) only, so a
// sample gets the same crop whichever thread, replica or process decodes it,
// and a different one in each epoch.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

namespace catlip {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

// A small counter-based generator (splitmix64 stream): cheap to create per sample.
class Rng {
 public:
  explicit Rng(uint64_t state = 0) : s_(state) {}
  static Rng for_sample(uint64_t seed, std::string_view key, int64_t epoch) {
    return Rng(splitmix64(seed ^ splitmix64(fnv1a64(key) ^ splitmix64(static_cast<uint64_t>(epoch)))));
  }
  uint64_t next() {
    s_ += 0x9E3779B97F4A7C15ull;
    uint64_t x = s_;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Integer in [lo, hi] inclusive.
  int64_t randint(int64_t lo, int64_t hi) {
    if (hi <= lo) return lo;
    uint64_t range = static_cast<uint64_t>(hi - lo) + 1;
    return lo + static_cast<int64_t>(next() % range);
  }
  bool bernoulli(double p) { return uniform() < p; }

 private:
  uint64_t s_;
};

}  // namespace catlip
