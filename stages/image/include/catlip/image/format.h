// catlip/image/format.h - recognising an encoded image and reading its header.
//
// The format is sniffed from the magic bytes, not taken from the tar member's
// extension: web shards contain PNGs named .jpg and worse. Only the header is
// read here, so the pixel-count limit can be checked before any decoding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "catlip/status.h"

namespace catlip::image {

enum class ImageFormat { Unknown, Jpeg, Png, Webp };
const char* format_name(ImageFormat f);

// Looks at the first bytes only; Unknown if nothing matches.
ImageFormat sniff_format(const void* data, size_t size);

struct ImageInfo {
  ImageFormat format = ImageFormat::Unknown;
  int width = 0, height = 0;
  bool gray = false;   // single channel source
  bool cmyk = false;   // JPEG CMYK or YCCK
  bool alpha = false;  // PNG/WebP with an alpha channel (or tRNS)
  int64_t pixels() const { return int64_t{width} * int64_t{height}; }
};

// Reads the header (JPEG: tjDecompressHeader3; PNG: IHDR; WebP: WebPGetFeatures)
// into `info`; info.format is set even when the header is bad. Returns
// Invalid saying what is wrong (unknown format, bad header, zero size).
Status read_image_info(const void* data, size_t size, ImageInfo& info);

}  // namespace catlip::image
