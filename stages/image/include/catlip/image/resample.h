// catlip/image/resample.h - bilinear resampling of an RGB region.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "catlip/image/crop.h"

namespace catlip::image {

// Two taps per output pixel along one axis, in source coordinates.
struct Taps {
  std::vector<int> i0, i1;
  std::vector<float> w1;  // weight of i1; i0 gets 1 - w1
  int min = 0, max = 0;   // smallest and largest index read
};

// Taps for `out` outputs along an axis of `in_size` source pixels (the map is
// additionally clamped to [0, in_size - 1]).
Taps axis_taps(const AxisMap& m, int out, int in_size);

// An RGB8 region of a larger image: pixel (x, y) of the full image lives at
// data + (y - y0) * stride + (x - x0) * 3.
struct RgbRegion {
  const uint8_t* data = nullptr;
  size_t stride = 0;
  int x0 = 0, y0 = 0;
};

// out: xt.size() * yt.size() * 3 bytes, HWC. Rounds to nearest (half to even)
// as torch does when casting back to uint8.
void resample_bilinear(const RgbRegion& src, const Taps& xt, const Taps& yt, bool flip, uint8_t* out);

}  // namespace catlip::image
