// The implementation of catlip/image/format.h: sniffing JPEG, PNG and WebP from magic
// bytes and reading their headers without decoding.
#include "catlip/image/format.h"

#include <turbojpeg.h>
#include <webp/decode.h>

#include <cstring>
#include <memory>

namespace catlip::image {

const char* format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::Jpeg: return "jpeg";
    case ImageFormat::Png: return "png";
    case ImageFormat::Webp: return "webp";
    default: return "unknown";
  }
}

ImageFormat sniff_format(const void* data, size_t n) {
  auto* p = static_cast<const unsigned char*>(data);
  if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return ImageFormat::Jpeg;
  if (n >= 8 && !std::memcmp(p, "\x89PNG\r\n\x1a\n", 8)) return ImageFormat::Png;
  if (n >= 12 && !std::memcmp(p, "RIFF", 4) && !std::memcmp(p + 8, "WEBP", 4)) return ImageFormat::Webp;
  return ImageFormat::Unknown;
}

namespace {

struct TjDeleter {
  void operator()(void* h) const { if (h) tjDestroy(h); }
};

// One TurboJPEG handle per thread: creating one allocates libjpeg state.
std::unique_ptr<void, TjDeleter>& thread_tj_slot() {
  thread_local std::unique_ptr<void, TjDeleter> h(tjInitDecompress());
  return h;
}
tjhandle thread_tj() { return thread_tj_slot().get(); }

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

Status jpeg_info(const void* data, size_t n, ImageInfo& info) {
  tjhandle h = thread_tj();
  if (!h) return Status::Internal("cannot create TurboJPEG handle");
  int w = 0, hgt = 0, subsamp = 0, cs = 0;
  if (tjDecompressHeader3(h, static_cast<const unsigned char*>(data), static_cast<unsigned long>(n), &w, &hgt,
                          &subsamp, &cs) != 0) {
    std::string err = std::string("bad JPEG header: ") + tjGetErrorStr2(h);
    // TurboJPEG 2.1 leaves the handle mid-header after an error, and every
    // later header read on it fails: replace it.
    thread_tj_slot().reset(tjInitDecompress());
    return Status::Invalid(err);
  }
  info.width = w;
  info.height = hgt;
  info.gray = cs == TJCS_GRAY;
  info.cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
  return Status::Ok();
}

Status png_info(const void* data, size_t n, ImageInfo& info) {
  auto* p = static_cast<const unsigned char*>(data);
  // signature(8) + length(4) + "IHDR"(4) + width(4) + height(4) + depth(1) + colour type(1)
  if (n < 26 || std::memcmp(p + 12, "IHDR", 4)) return Status::Invalid("bad PNG header: no IHDR chunk");
  uint32_t w = be32(p + 16), h = be32(p + 20);
  if (w == 0 || h == 0 || w > 0x7FFFFFFF || h > 0x7FFFFFFF) return Status::Invalid("bad PNG header: invalid size");
  info.width = static_cast<int>(w);
  info.height = static_cast<int>(h);
  int ct = p[25];
  info.gray = ct == 0 || ct == 4;
  info.alpha = ct == 4 || ct == 6;
  return Status::Ok();
}

Status webp_info(const void* data, size_t n, ImageInfo& info) {
  WebPBitstreamFeatures f;
  if (WebPGetFeatures(static_cast<const uint8_t*>(data), n, &f) != VP8_STATUS_OK) return Status::Invalid("bad WebP header");
  info.width = f.width;
  info.height = f.height;
  info.alpha = f.has_alpha;
  return Status::Ok();
}

}  // namespace

Status read_image_info(const void* data, size_t n, ImageInfo& info) {
  info = ImageInfo{};
  info.format = sniff_format(data, n);
  Status st;
  switch (info.format) {
    case ImageFormat::Jpeg: st = jpeg_info(data, n, info); break;
    case ImageFormat::Png: st = png_info(data, n, info); break;
    case ImageFormat::Webp: st = webp_info(data, n, info); break;
    default: return Status::Invalid("not a JPEG, PNG or WebP image");
  }
  if (st.ok() && (info.width <= 0 || info.height <= 0)) return Status::Invalid("image has zero size");
  return st;
}

}  // namespace catlip::image
