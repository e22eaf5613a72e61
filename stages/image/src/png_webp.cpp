// PNG (libpng simplified API: it does its own setjmp internally and reports
// failure by return value) and WebP decoding to RGB8, alpha over white.
#include <png.h>
#include <webp/decode.h>

#include <cstring>

#include "codecs.h"

namespace catlip::image::detail {

std::string png_decode(const uint8_t* data, size_t size, DecodedRegion& out) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, data, size)) {
    std::string msg = std::string("corrupt PNG: ") + img.message;
    png_image_free(&img);
    return msg;
  }
  img.format = PNG_FORMAT_RGB;
  out.x0 = out.y0 = 0;
  out.width = static_cast<int>(img.width);
  out.height = static_cast<int>(img.height);
  out.stride = PNG_IMAGE_ROW_STRIDE(img);
  if (out.buf.size() < PNG_IMAGE_SIZE(img)) out.buf.resize(PNG_IMAGE_SIZE(img));  // grow only
  png_color white{255, 255, 255};
  if (!png_image_finish_read(&img, &white, out.buf.data(), 0, nullptr)) {
    std::string msg = std::string("corrupt PNG: ") + img.message;
    png_image_free(&img);
    return msg;
  }
  return "";
}

std::string webp_decode(const uint8_t* data, size_t size, DecodedRegion& out) {
  WebPBitstreamFeatures f;
  if (WebPGetFeatures(data, size, &f) != VP8_STATUS_OK) return "corrupt WebP: bad header";
  out.x0 = out.y0 = 0;
  out.width = f.width;
  out.height = f.height;
  out.stride = size_t(f.width) * 3;
  if (out.buf.size() < out.stride * f.height) out.buf.resize(out.stride * f.height);  // grow only
  if (!f.has_alpha) {
    if (!WebPDecodeRGBInto(data, size, out.buf.data(), out.buf.size(), static_cast<int>(out.stride)))
      return "corrupt WebP: decoding failed";
    return "";
  }
  std::vector<uint8_t> rgba(size_t(f.width) * f.height * 4);
  if (!WebPDecodeRGBAInto(data, size, rgba.data(), rgba.size(), f.width * 4))
    return "corrupt WebP: decoding failed";
  const uint8_t* s = rgba.data();
  uint8_t* d = out.buf.data();
  for (size_t i = 0, npx = size_t(f.width) * f.height; i < npx; ++i, s += 4, d += 3) {
    int a = s[3];
    for (int c = 0; c < 3; ++c) d[c] = static_cast<uint8_t>((s[c] * a + 255 * (255 - a) + 127) / 255);
  }
  return "";
}

}  // namespace catlip::image::detail
