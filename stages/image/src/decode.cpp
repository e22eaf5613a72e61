// The implementation of catlip/image/decode.h: from encoded bytes to a transformed RGB8
// image (format check, JPEG DCT scale, decode, resample), failures as statuses.
#include "catlip/image/decode.h"

#include <algorithm>
#include <cctype>
#include <new>
#include <stdexcept>

#include "catlip/image/resample.h"
#include "codecs.h"

namespace catlip::image {

const char* decode_status_reason(DecodeStatus s) {
  switch (s) {
    case DecodeStatus::Ok: return "ok";
    case DecodeStatus::Empty: return "empty_image";
    case DecodeStatus::UnknownFormat: return "unknown_format";
    case DecodeStatus::TooManyPixels: return "too_many_pixels";
    case DecodeStatus::Corrupt: return "decode_error";
    case DecodeStatus::OutOfMemory: return "decode_oom";
  }
  return "decode_error";
}

namespace {

DecodeOutcome fail(DecodeOutcome o, DecodeStatus s, std::string msg) {
  o.status = s;
  o.message = std::move(msg);
  return o;
}

// Codec libraries report a failed allocation as an error message: libjpeg
// "Insufficient memory (case N)", libpng "... out of memory".
bool is_oom_message(const std::string& m) {
  std::string l;
  for (char c : m) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return l.find("out of memory") != std::string::npos || l.find("insufficient memory") != std::string::npos;
}

// Runs a decode, turning an allocation failure into a skipped image.
template <class F>
DecodeOutcome guarded(DecodeOutcome o, F f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return fail(o, DecodeStatus::OutOfMemory, "out of memory decoding a " + std::to_string(o.info.width) + "x" +
                                                  std::to_string(o.info.height) + " image");
  } catch (const std::length_error&) {
    return fail(o, DecodeStatus::OutOfMemory, "image too large to allocate (" + std::to_string(o.info.width) + "x" +
                                                  std::to_string(o.info.height) + ")");
  }
}

// Header checks shared by all entry points.
bool check_header(const void* data, size_t size, int64_t max_pixels, DecodeOutcome& o) {
  if (size == 0) {
    o = fail(o, DecodeStatus::Empty, "empty (0-byte) image");
    return false;
  }
  Status header = read_image_info(data, size, o.info);
  if (!header.ok()) {
    o = fail(o, o.info.format == ImageFormat::Unknown ? DecodeStatus::UnknownFormat : DecodeStatus::Corrupt,
             header.message());
    return false;
  }
  if (o.info.pixels() > max_pixels) {
    o = fail(o, DecodeStatus::TooManyPixels,
             std::to_string(o.info.width) + "x" + std::to_string(o.info.height) + " exceeds max_pixels " +
                 std::to_string(max_pixels));
    return false;
  }
  return true;
}

// Smallest DCT scale n/8 that keeps at least one source pixel per output
// pixel along both axes (so the bilinear step never upsamples because of us).
int choose_jpeg_scale(const ResampleMap& m) {
  double need = std::max(1.0 / m.x.scale, 1.0 / m.y.scale);  // output px per source px
  for (int n : detail::jpeg_scale_numerators())
    if (n / 8.0 >= need - 1e-9) return n;
  return 8;
}

}  // namespace

namespace {

// decode_mapped with the output buffer asked for once its size is known:
// `out(n)` returns where to write n bytes (nullptr: the caller's buffer is
// too small, a Corrupt outcome).
template <class Out>
DecodeOutcome decode_mapped_to(const void* data, size_t size, const ImageInfo& info, const ResampleMap& map,
                               bool scaled_decode, Out&& out) {
  DecodeOutcome o;
  o.info = info;
  auto* bytes = static_cast<const uint8_t*>(data);
  // Reused per thread: a fresh 0.5 MB buffer per image costs a zero-fill
  // (and page faults) comparable to the resize itself.
  thread_local detail::DecodedRegion reg;
  Taps xt, yt;
  std::string err;
  if (info.format == ImageFormat::Jpeg) {
    int n = scaled_decode ? choose_jpeg_scale(map) : 8;
    int sw = detail::jpeg_scaled_dim(info.width, n), sh = detail::jpeg_scaled_dim(info.height, n);
    const double f = n / 8.0;  // DCT scaling maps each 8x8 block to n x n
    xt = axis_taps(map.x.scaled(f), map.out_width, sw);
    yt = axis_taps(map.y.scaled(f), map.out_height, sh);
    o.scale_num = n;
    // One spare column each side: with fancy chroma upsampling libjpeg-turbo
    // treats the edge columns of a cropped scanline as image edges, so they
    // differ from a full decode; the spare columns absorb that.
    err = detail::jpeg_decode_region(bytes, size, n, std::max(0, xt.min - 1), std::min(sw - 1, xt.max + 1), yt.min,
                                     yt.max, reg);
  } else {
    err = info.format == ImageFormat::Png ? detail::png_decode(bytes, size, reg)
                                          : detail::webp_decode(bytes, size, reg);
    if (err.empty() && (reg.width != info.width || reg.height != info.height))
      err = "decoded size differs from header";
    if (err.empty()) {
      xt = axis_taps(map.x, map.out_width, reg.width);
      yt = axis_taps(map.y, map.out_height, reg.height);
    }
  }
  if (!err.empty()) return fail(o, is_oom_message(err) ? DecodeStatus::OutOfMemory : DecodeStatus::Corrupt, err);
  uint8_t* dst = out(size_t(map.out_width) * map.out_height * 3);
  if (!dst) return fail(o, DecodeStatus::Corrupt, "output larger than its buffer");
  resample_bilinear(RgbRegion{reg.buf.data(), reg.stride, reg.x0, reg.y0}, xt, yt, map.flip, dst);
  // Do not let one huge image pin its buffer in every decode thread.
  if (reg.buf.size() > (size_t{64} << 20)) std::vector<uint8_t>().swap(reg.buf);
  o.flipped = map.flip;
  return o;
}

}  // namespace

DecodeOutcome decode_mapped(const void* data, size_t size, const ImageInfo& info, const ResampleMap& map,
                            bool scaled_decode, std::vector<uint8_t>& out) {
  return decode_mapped_to(data, size, info, map, scaled_decode, [&](size_t n) {
    out.resize(n);
    return out.data();
  });
}

namespace {

template <class Out>
DecodeOutcome decode_transform_to(const void* data, size_t size, const TransformSpec& spec, Rng& rng, Out&& out) {
  DecodeOutcome o;
  if (!check_header(data, size, spec.max_pixels, o)) return o;
  ResampleMap map;
  CropRect crop{0, 0, o.info.height, o.info.width};
  if (spec.mode == TransformSpec::Train) {
    crop = random_resized_crop(o.info.width, o.info.height, spec.rrc, rng);
    bool flip = rng.uniform() < spec.flip_prob;  // always drawn: keeps streams aligned
    map = map_for_crop(crop, spec.size, spec.size, flip);
  } else {
    map = map_for_eval(o.info.width, o.info.height, spec.resize, spec.size);
  }
  DecodeOutcome r = guarded(o, [&] { return decode_mapped_to(data, size, o.info, map, spec.scaled_decode, out); });
  r.crop = crop;
  return r;
}

}  // namespace

DecodeOutcome decode_transform(const void* data, size_t size, const TransformSpec& spec, Rng& rng,
                               std::vector<uint8_t>& out) {
  return decode_transform_to(data, size, spec, rng, [&](size_t n) {
    out.resize(n);
    return out.data();
  });
}

DecodeOutcome decode_transform(const void* data, size_t size, const TransformSpec& spec, Rng& rng, uint8_t* out,
                               size_t out_size) {
  return decode_transform_to(data, size, spec, rng, [&](size_t n) { return n == out_size ? out : nullptr; });
}

DecodeOutcome decode_full(const void* data, size_t size, int64_t max_pixels, std::vector<uint8_t>& out) {
  DecodeOutcome o;
  if (!check_header(data, size, max_pixels, o)) return o;
  ResampleMap m = map_for_crop(CropRect{0, 0, o.info.height, o.info.width}, o.info.width, o.info.height, false);
  return guarded(o, [&] { return decode_mapped(data, size, o.info, m, false, out); });
}

}  // namespace catlip::image
