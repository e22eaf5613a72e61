// The implementation of catlip/image/crop.h: torchvision's RandomResizedCrop, flip and
// eval resize + centre crop, as per-axis source coordinate maps.
#include "catlip/image/crop.h"

#include <algorithm>
#include <cmath>

namespace catlip::image {

namespace {
// Python's round(): half to even (the default FP rounding mode).
int pyround(double v) { return static_cast<int>(std::nearbyint(v)); }
}  // namespace

CropRect random_resized_crop(int width, int height, const RandomResizedCropParams& p, Rng& rng) {
  const double area = double(width) * double(height);
  const double log_lo = std::log(p.ratio_min), log_hi = std::log(p.ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    double target_area = area * rng.uniform(p.scale_min, p.scale_max);
    double aspect = std::exp(rng.uniform(log_lo, log_hi));
    int w = pyround(std::sqrt(target_area * aspect));
    int h = pyround(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      int top = static_cast<int>(rng.randint(0, height - h));
      int left = static_cast<int>(rng.randint(0, width - w));
      return CropRect{top, left, h, w};
    }
  }
  // Fallback: central crop with the ratio clamped into range.
  double in_ratio = double(width) / double(height);
  int w, h;
  if (in_ratio < std::min(p.ratio_min, p.ratio_max)) {
    w = width;
    h = pyround(w / std::min(p.ratio_min, p.ratio_max));
  } else if (in_ratio > std::max(p.ratio_min, p.ratio_max)) {
    h = height;
    w = pyround(h * std::max(p.ratio_min, p.ratio_max));
  } else {
    w = width;
    h = height;
  }
  w = std::clamp(w, 1, width);
  h = std::clamp(h, 1, height);
  return CropRect{(height - h) / 2, (width - w) / 2, h, w};
}

ResampleMap map_for_crop(const CropRect& c, int out_width, int out_height, bool flip) {
  ResampleMap m;
  m.out_width = out_width;
  m.out_height = out_height;
  m.flip = flip;
  m.x = AxisMap{double(c.left), double(c.width) / out_width, double(c.left), double(c.left + c.width - 1)};
  m.y = AxisMap{double(c.top), double(c.height) / out_height, double(c.top), double(c.top + c.height - 1)};
  return m;
}

ResampleMap map_for_eval(int width, int height, int resize, int size) {
  // torchvision Resize(int): the shorter side becomes `resize`, the longer
  // one int(resize * long / short).
  int rw, rh;
  if (width <= height) {
    rw = resize;
    rh = static_cast<int>(int64_t{resize} * height / width);
  } else {
    rh = resize;
    rw = static_cast<int>(int64_t{resize} * width / height);
  }
  // CenterCrop: offsets int(round((resized - size) / 2)).
  int top = pyround((rh - size) / 2.0), left = pyround((rw - size) / 2.0);
  ResampleMap m;
  m.out_width = m.out_height = size;
  double sx = double(width) / rw, sy = double(height) / rh;
  m.x = AxisMap{left * sx, sx, 0.0, double(width - 1)};
  m.y = AxisMap{top * sy, sy, 0.0, double(height - 1)};
  return m;
}

}  // namespace catlip::image
