// Fuzzes image format sniffing, header parsing and the JPEG/PNG/WebP decode
// paths (stages/image: format.cpp, decode.cpp, jpeg.cpp, png_webp.cpp) with
// a small pixel limit, so a header that lies about its size is refused
// before decoding and a fuzzed image stays cheap.
//
// Input: byte 0 holds option bits, the rest is the encoded image.
//   bit 0: eval transform (else train)   bit 1: no DCT-domain scaling
//   bit 2: also decode_full              bits 3-4: output size 8/16/24/32
//
// Properties: no crash; header parsing agrees with the decoders (a decoded
// image has the header's size, within max_pixels); outputs have exactly
// size*size*3 (transform) or width*height*3 (full) bytes.
#include <cstdint>
#include <vector>

#include "catlip/image/decode.h"
#include "catlip/image/format.h"
#include "fuzz_common.h"

using namespace catlip::image;

constexpr int64_t kMaxPixels = 512 * 512;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t flags = data[0];
  // The image in its own allocation, so ASan sees reads past its end.
  std::vector<uint8_t> img(data + 1, data + size);

  ImageFormat f = sniff_format(img.data(), img.size());
  ImageInfo info;
  catlip::Status header = read_image_info(img.data(), img.size(), info);
  FUZZ_CHECK(info.format == f, "read_image_info and sniff_format disagree");
  if (header.ok()) FUZZ_CHECK(info.width > 0 && info.height > 0, "accepted header of zero size");
  if (f == ImageFormat::Unknown) FUZZ_CHECK(!header.ok(), "unknown format without an error");

  TransformSpec spec;
  spec.mode = (flags & 1) ? TransformSpec::Eval : TransformSpec::Train;
  spec.scaled_decode = !(flags & 2);
  spec.size = 8 * (1 + ((flags >> 3) & 3));
  spec.resize = spec.size + spec.size / 7;
  spec.max_pixels = kMaxPixels;
  catlip::Rng rng(flags);
  std::vector<uint8_t> out;
  DecodeOutcome o = decode_transform(img.data(), img.size(), spec, rng, out);
  if (o.ok()) {
    FUZZ_CHECK(header.ok(), "decoded an image whose header was refused: %s", header.message().c_str());
    FUZZ_CHECK(o.info.pixels() <= kMaxPixels, "decoded %dx%d over max_pixels", o.info.width, o.info.height);
    FUZZ_CHECK(out.size() == size_t(spec.size) * spec.size * 3, "transform output of %zu bytes", out.size());
  } else {
    FUZZ_CHECK(!o.message.empty(), "failure without a message");
  }

  if (flags & 4) {
    std::vector<uint8_t> full;
    DecodeOutcome of = decode_full(img.data(), img.size(), kMaxPixels, full);
    if (of.ok()) {
      FUZZ_CHECK(of.info.width == info.width && of.info.height == info.height, "size differs from header");
      FUZZ_CHECK(full.size() == size_t(of.info.width) * of.info.height * 3, "full output of %zu bytes for %dx%d",
                 full.size(), of.info.width, of.info.height);
    }
  }
  return 0;
}
