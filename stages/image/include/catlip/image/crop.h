// catlip/image/crop.h - the geometry of the train and eval transforms.
//
// Both transforms reduce to "which source coordinate does output pixel i
// read", one AxisMap per axis. This lets the decoder know, before decoding,
// which rows and columns it needs and how far it may shrink the image in the
// DCT domain.
//
// Semantics follow torchvision 0.14 (what CoreNet uses):
//   train: RandomResizedCrop(size, scale, ratio) + RandomHorizontalFlip(p)
//          get_params: 10 attempts of area*U(scale) and exp(U(log ratio)),
//          w = round(sqrt(a*r)), h = round(sqrt(a/r)) (round half to even),
//          then the central-crop fallback clamped to the ratio range.
//   eval:  Resize(resize) on the shorter side (long side truncated as
//          torchvision does) + CenterCrop(size) (offsets rounded).
//   Resampling is bilinear with half-pixel centres and no antialiasing, i.e.
//   torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
//   antialias=False), which is what torchvision applies to tensors.
#pragma once

#include "catlip/rng.h"

namespace catlip::image {

// A crop in source pixels, torchvision's (i, j, h, w).
struct CropRect {
  int top = 0, left = 0, height = 0, width = 0;
  bool operator==(const CropRect& o) const {
    return top == o.top && left == o.left && height == o.height && width == o.width;
  }
};

struct RandomResizedCropParams {
  double scale_min = 0.08, scale_max = 1.0;
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
};

// torchvision.transforms.RandomResizedCrop.get_params with our Rng.
CropRect random_resized_crop(int width, int height, const RandomResizedCropParams& p, Rng& rng);

// Output pixel i reads source coordinate offset + (i + 0.5) * scale - 0.5,
// clamped to [lo, hi] (pixel centres at integer coordinates).
struct AxisMap {
  double offset = 0, scale = 1, lo = 0, hi = 0;
  double at(int i) const {
    double s = offset + (i + 0.5) * scale - 0.5;
    return s < lo ? lo : (s > hi ? hi : s);
  }
  // The same map in an image shrunk by factor f (DCT-scaled decode).
  AxisMap scaled(double f) const {
    return AxisMap{offset * f, scale * f, (lo + 0.5) * f - 0.5, (hi + 0.5) * f - 0.5};
  }
};

struct ResampleMap {
  int out_width = 0, out_height = 0;
  AxisMap x, y;
  bool flip = false;  // mirror horizontally
};

// Crop `c` resized to out_width x out_height.
ResampleMap map_for_crop(const CropRect& c, int out_width, int out_height, bool flip);
// Resize(shorter side = resize) then CenterCrop(size) of a width x height image.
ResampleMap map_for_eval(int width, int height, int resize, int size);

}  // namespace catlip::image
