// catlip/image/decode.h - encoded bytes to a transformed RGB8 image.
//
// Output is always RGB uint8 HWC:
//   grayscale  -> replicated to R=G=B
//   CMYK/YCCK  -> RGB with the Adobe (inverted) convention that Photoshop and
//                 libjpeg-turbo use: R = C*K/255 (no colour management)
//   alpha      -> composited on white (PNG via libpng's simplified API, WebP
//                 by us), so transparent logos do not turn black
// JPEG is decoded with libjpeg-turbo, shrunk in the DCT domain to the
// smallest scale (n/8, from tjGetScalingFactors) that still has at least as
// many pixels as the output needs, and only the rows/columns the resampler
// reads are decoded (jpeg_crop_scanline / jpeg_skip_scanlines; decoding stops
// after the last needed row). TurboJPEG 2.1 has no cropped decode, hence the
// libjpeg API there; its errors longjmp only back into our decode function.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "catlip/image/crop.h"
#include "catlip/image/format.h"
#include "catlip/rng.h"

namespace catlip::image {

enum class DecodeStatus { Ok, Empty, UnknownFormat, TooManyPixels, Corrupt, OutOfMemory };
// Counter suffix for a failure: "empty_image", "unknown_format",
// "too_many_pixels", "decode_error", "decode_oom" (an allocation failed:
// std::bad_alloc, or the codec library's own out-of-memory error, e.g. for
// a header declaring a huge image with max_pixels raised; the image is
// skipped, the process goes on).
const char* decode_status_reason(DecodeStatus s);

// PIL's default Image.MAX_IMAGE_PIXELS: above this we refuse to decode.
constexpr int64_t kDefaultMaxPixels = 89478485;

struct TransformSpec {
  enum Mode { Train, Eval } mode = Train;
  int size = 224;     // output is size x size
  int resize = 256;   // eval: shorter side before the center crop
  RandomResizedCropParams rrc;
  double flip_prob = 0.5;
  bool scaled_decode = true;  // allow DCT-domain downscaling of JPEGs
  int64_t max_pixels = kDefaultMaxPixels;
};

struct DecodeOutcome {
  DecodeStatus status = DecodeStatus::Ok;
  std::string message;  // why, when not Ok
  ImageInfo info;
  int scale_num = 8;    // JPEG: decoded at scale_num/8
  CropRect crop;        // train: the crop taken (source pixels)
  bool flipped = false;
  bool ok() const { return status == DecodeStatus::Ok; }
};

// Decodes and applies the transform; `out` becomes size*size*3 bytes.
// Random draws (crop, then flip) come from `rng`.
DecodeOutcome decode_transform(const void* data, size_t size, const TransformSpec& spec, Rng& rng,
                               std::vector<uint8_t>& out);
// The same into a buffer of the caller's (out_size = size*size*3 bytes,
// e.g. a Blob from Emitter::allocate in the shared-memory pool): no copy.
DecodeOutcome decode_transform(const void* data, size_t size, const TransformSpec& spec, Rng& rng, uint8_t* out,
                               size_t out_size);

// Decodes the full image to RGB8 (width*height*3 bytes), no transform.
DecodeOutcome decode_full(const void* data, size_t size, int64_t max_pixels, std::vector<uint8_t>& out);

// Decodes with an explicit resample map (what decode_transform does after
// choosing the map); exposed for tests.
DecodeOutcome decode_mapped(const void* data, size_t size, const ImageInfo& info, const ResampleMap& map,
                            bool scaled_decode, std::vector<uint8_t>& out);

}  // namespace catlip::image
