// Encoders for test images (image_test_util.h): TurboJPEG, libpng, libwebp.
#include "image_test_util.h"

#include <png.h>
#include <turbojpeg.h>
#include <webp/encode.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace catlip::test {

std::string encode_jpeg(const std::vector<uint8_t>& px, int w, int h, int channels, int quality, bool subsample) {
  tjhandle t = tjInitCompress();
  int pf = channels == 1 ? TJPF_GRAY : channels == 4 ? TJPF_CMYK : TJPF_RGB;
  int ss = channels == 1 ? TJSAMP_GRAY : subsample ? TJSAMP_420 : TJSAMP_444;
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  if (tjCompress2(t, px.data(), w, 0, h, pf, &buf, &size, ss, quality, TJFLAG_ACCURATEDCT) != 0) {
    std::string err = tjGetErrorStr2(t);
    tjDestroy(t);
    throw std::runtime_error("tjCompress2: " + err);
  }
  std::string out(reinterpret_cast<char*>(buf), size);
  tjFree(buf);
  tjDestroy(t);
  return out;
}

std::string encode_png(const std::vector<uint8_t>& px, int w, int h, int channels) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = w;
  img.height = h;
  img.format = channels == 1 ? PNG_FORMAT_GRAY
               : channels == 2 ? PNG_FORMAT_GA
               : channels == 3 ? PNG_FORMAT_RGB
                               : PNG_FORMAT_RGBA;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&img, nullptr, &size, 0, px.data(), 0, nullptr))
    throw std::runtime_error(std::string("png size: ") + img.message);
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&img, out.data(), &size, 0, px.data(), 0, nullptr))
    throw std::runtime_error(std::string("png write: ") + img.message);
  out.resize(size);
  return out;
}

std::string encode_webp(const std::vector<uint8_t>& px, int w, int h, int channels) {
  uint8_t* buf = nullptr;
  size_t n = channels == 4 ? WebPEncodeLosslessRGBA(px.data(), w, h, w * 4, &buf)
                           : WebPEncodeLosslessRGB(px.data(), w, h, w * 3, &buf);
  if (!n) throw std::runtime_error("webp encode failed");
  std::string out(reinterpret_cast<char*>(buf), n);
  WebPFree(buf);
  return out;
}

std::vector<uint8_t> pattern_rgb(int w, int h, int seed) {
  std::vector<uint8_t> v(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &v[(size_t(y) * w + x) * 3];
      p[0] = static_cast<uint8_t>(128 + 100 * std::sin((x + seed) * 0.05));
      p[1] = static_cast<uint8_t>(128 + 100 * std::cos((y - seed) * 0.07));
      p[2] = static_cast<uint8_t>((x * 3 + y * 5 + seed) % 256);
    }
  return v;
}

std::string jpeg_with_size(std::string j, int w, int h) {
  for (size_t i = 2; i + 9 < j.size(); ++i)
    if (uint8_t(j[i]) == 0xFF && (uint8_t(j[i + 1]) == 0xC0 || uint8_t(j[i + 1]) == 0xC2)) {
      j[i + 5] = char(h >> 8), j[i + 6] = char(h & 255);
      j[i + 7] = char(w >> 8), j[i + 8] = char(w & 255);
      return j;
    }
  throw std::runtime_error("no SOF marker");
}

std::string png_with_size(std::string p, int w, int h) {
  auto put = [&](size_t at, uint32_t v) {
    for (int k = 0; k < 4; ++k) p[at + k] = char((v >> (24 - 8 * k)) & 255);
  };
  put(16, uint32_t(w));
  put(20, uint32_t(h));
  uint32_t crc = crc32(0, reinterpret_cast<const Bytef*>(p.data() + 12), 17);
  put(29, crc);
  return p;
}

}  // namespace catlip::test
