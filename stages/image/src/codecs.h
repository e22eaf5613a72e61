// Private: per-format decoders into an RGB8 region.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace catlip::image::detail {

// Decoded pixels: rows y0..y0+height-1 and columns x0..x0+width-1 of the
// (possibly scaled) image, RGB8, `stride` bytes per row.
struct DecodedRegion {
  std::vector<uint8_t> buf;
  size_t stride = 0;
  int x0 = 0, y0 = 0, width = 0, height = 0;
};

// JPEG scale numerators n (image decoded at n/8) that libjpeg-turbo offers
// and that do not enlarge, from tjGetScalingFactors, ascending.
const std::vector<int>& jpeg_scale_numerators();
// Scaled size of a dimension, as libjpeg computes it: ceil(dim * n / 8).
inline int jpeg_scaled_dim(int dim, int n) { return static_cast<int>((int64_t{dim} * n + 7) / 8); }

// Decodes at scale n/8 at least columns [x_lo, x_hi] and exactly rows
// [y_lo, y_hi] (scaled coordinates). Returns "" or an error message.
std::string jpeg_decode_region(const uint8_t* data, size_t size, int n, int x_lo, int x_hi, int y_lo, int y_hi,
                               DecodedRegion& out);
// Full decodes; alpha composited on white.
std::string png_decode(const uint8_t* data, size_t size, DecodedRegion& out);
std::string webp_decode(const uint8_t* data, size_t size, DecodedRegion& out);

}  // namespace catlip::image::detail
