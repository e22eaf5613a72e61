// Encoders for test images (TurboJPEG, libpng simplified API, libwebp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace catlip::test {

// pixels: width*height*channels bytes. JPEG pixel formats: 3 = RGB, 1 = gray,
// 4 = CMYK (Adobe-inverted, as libjpeg-turbo stores it).
std::string encode_jpeg(const std::vector<uint8_t>& px, int width, int height, int channels, int quality = 95,
                        bool subsample = true);
// channels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
std::string encode_png(const std::vector<uint8_t>& px, int width, int height, int channels);
// channels 3 or 4; lossless.
std::string encode_webp(const std::vector<uint8_t>& px, int width, int height, int channels);

// A smooth colourful RGB test pattern.
std::vector<uint8_t> pattern_rgb(int width, int height, int seed = 0);

// Headers rewritten to claim width x height (CRC fixed for PNG).
std::string jpeg_with_size(std::string jpeg, int width, int height);
std::string png_with_size(std::string png, int width, int height);

}  // namespace catlip::test
