// Decoding, transforms and reference pixel values.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>

#include "catlip/image/decode.h"
#include "catlip/image/resample.h"
#include "image_test_util.h"

using namespace catlip::image;
using catlip::test::encode_jpeg;
using catlip::test::encode_png;
using catlip::test::encode_webp;
using catlip::test::pattern_rgb;

namespace {

TransformSpec eval_spec(int size, int resize) {
  TransformSpec s;
  s.mode = TransformSpec::Eval;
  s.size = size;
  s.resize = resize;
  return s;
}

double mean_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += std::abs(int(a[i]) - int(b[i]));
  return d / a.size();
}

DecodeOutcome decode_eval(const std::string& bytes, int size, int resize, std::vector<uint8_t>& out) {
  catlip::Rng rng(1);
  return decode_transform(bytes.data(), bytes.size(), eval_spec(size, resize), rng, out);
}

}  // namespace

TEST_CASE("format sniffing and header info") {
  auto png = encode_png(pattern_rgb(20, 10), 20, 10, 3);
  auto jpg = encode_jpeg(pattern_rgb(20, 10), 20, 10, 3);
  auto webp = encode_webp(pattern_rgb(20, 10), 20, 10, 3);
  ImageInfo info;
  REQUIRE(read_image_info(png.data(), png.size(), info).ok());
  CHECK(info.format == ImageFormat::Png);
  CHECK(info.width == 20);
  CHECK(info.height == 10);
  REQUIRE(read_image_info(jpg.data(), jpg.size(), info).ok());
  CHECK(info.format == ImageFormat::Jpeg);
  CHECK(info.width == 20);
  REQUIRE(read_image_info(webp.data(), webp.size(), info).ok());
  CHECK(info.format == ImageFormat::Webp);
  CHECK(info.height == 10);
  CHECK(sniff_format("GIF89a", 6) == ImageFormat::Unknown);
}

TEST_CASE("RandomResizedCrop parameters stay in range and follow torchvision") {
  RandomResizedCropParams p;
  catlip::Rng rng(42);
  int fallback = 0;
  for (int i = 0; i < 2000; ++i) {
    CropRect c = random_resized_crop(500, 375, p, rng);
    REQUIRE(c.width > 0);
    REQUIRE(c.height > 0);
    REQUIRE(c.left >= 0);
    REQUIRE(c.top >= 0);
    REQUIRE(c.left + c.width <= 500);
    REQUIRE(c.top + c.height <= 375);
    double area = double(c.width) * c.height / (500.0 * 375.0);
    double ratio = double(c.width) / c.height;
    if (c.width == 500 && c.height == 375) ++fallback;
    else {
      // Rounding w and h to integers moves area and ratio slightly.
      CHECK(area >= 0.08 * 0.9);
      CHECK(area <= 1.0 + 1e-9);
      CHECK(ratio >= 0.75 * 0.95);
      CHECK(ratio <= 4.0 / 3.0 * 1.05);
    }
  }
  CHECK(fallback < 200);
  // Same state, same crop.
  catlip::Rng a(7), b(7);
  CHECK(random_resized_crop(640, 480, p, a) == random_resized_crop(640, 480, p, b));
  // Impossible ratio: 10 attempts fail, central crop with the ratio clamped.
  RandomResizedCropParams wide{0.5, 1.0, 10.0, 20.0};
  catlip::Rng c(3);
  CropRect f = random_resized_crop(100, 100, wide, c);
  CHECK(f.width == 100);
  CHECK(f.height == 10);  // round(100 / 10)
  CHECK(f.left == 0);
  CHECK(f.top == 45);
}

TEST_CASE("eval: center crop at identical size returns the source pixels") {
  auto px = pattern_rgb(64, 64, 5);
  std::vector<uint8_t> out;
  auto png = encode_png(px, 64, 64, 3);
  auto o = decode_eval(png, 64, 64, out);
  REQUIRE(o.ok());
  CHECK(out == px);
  auto webp = encode_webp(px, 64, 64, 3);
  REQUIRE(decode_eval(webp, 64, 64, out).ok());
  CHECK(out == px);
  // A wider image: resize keeps the short side (64), the crop takes the
  // middle 64 columns: columns 18..81 of a 100-wide image.
  auto wide = pattern_rgb(100, 64, 9);
  REQUIRE(decode_eval(encode_png(wide, 100, 64, 3), 64, 64, out).ok());
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x)
      for (int c = 0; c < 3; ++c)
        REQUIRE(int(out[(y * 64 + x) * 3 + c]) == int(wide[(y * 100 + x + 18) * 3 + c]));
}

TEST_CASE("bilinear downscale by 2 averages 2x2 blocks (hand-computed)") {
  // v(x, y) = 10x + 40y on R, 200 - v on G, 7 on B; 4x4 -> 2x2.
  std::vector<uint8_t> px(4 * 4 * 3);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) {
      int v = 10 * x + 40 * y;
      px[(y * 4 + x) * 3 + 0] = uint8_t(v);
      px[(y * 4 + x) * 3 + 1] = uint8_t(200 - v);
      px[(y * 4 + x) * 3 + 2] = 7;
    }
  auto png = encode_png(px, 4, 4, 3);
  std::vector<uint8_t> out;
  // Eval with resize 2, size 2: scale factor exactly 2, sample points at
  // 2i + 0.5, i.e. the mean of pixels 2i and 2i+1 on each axis.
  REQUIRE(decode_eval(png, 2, 2, out).ok());
  std::vector<uint8_t> expect = {25, 175, 7, 45, 155, 7, 105, 95, 7, 125, 75, 7};
  CHECK(out == expect);
  // The train path with a full-image crop and flip mirrors the columns.
  ImageInfo info;
  REQUIRE(read_image_info(png.data(), png.size(), info).ok());
  auto m = map_for_crop(CropRect{0, 0, 4, 4}, 2, 2, true);
  REQUIRE(decode_mapped(png.data(), png.size(), info, m, true, out).ok());
  std::vector<uint8_t> flipped = {45, 155, 7, 25, 175, 7, 125, 75, 7, 105, 95, 7};
  CHECK(out == flipped);
}

TEST_CASE("bilinear 3 -> 2 uses half-pixel centres without antialiasing") {
  // torch interpolate(align_corners=False): src = 1.5 (i + 0.5) - 0.5 ->
  // 0.25 and 1.75: out0 = 0.75*0 + 0.25*100 = 25, out1 = 0.25*100 + 0.75*200 = 175.
  // (PIL's antialiased bilinear would give different values here.)
  std::vector<uint8_t> px = {0, 0, 0, 100, 100, 100, 200, 200, 200};
  auto png = encode_png(px, 3, 1, 3);
  ImageInfo info;
  REQUIRE(read_image_info(png.data(), png.size(), info).ok());
  auto m = map_for_crop(CropRect{0, 0, 1, 3}, 2, 1, false);
  std::vector<uint8_t> out;
  REQUIRE(decode_mapped(png.data(), png.size(), info, m, true, out).ok());
  CHECK(out == std::vector<uint8_t>{25, 25, 25, 175, 175, 175});
  // Upscale 2 -> 4: src = 0.5 (i + 0.5) - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
  std::vector<uint8_t> two = {0, 0, 0, 200, 200, 200};
  png = encode_png(two, 2, 1, 3);
  REQUIRE(read_image_info(png.data(), png.size(), info).ok());
  m = map_for_crop(CropRect{0, 0, 1, 2}, 4, 1, false);
  REQUIRE(decode_mapped(png.data(), png.size(), info, m, true, out).ok());
  CHECK(out == std::vector<uint8_t>{0, 0, 0, 50, 50, 50, 150, 150, 150, 200, 200, 200});
}

TEST_CASE("train crops have the requested shape for every format") {
  auto px = pattern_rgb(500, 375, 1);
  std::vector<std::string> images = {encode_jpeg(px, 500, 375, 3), encode_png(px, 500, 375, 3),
                                     encode_webp(px, 500, 375, 3)};
  TransformSpec spec;
  spec.size = 224;
  for (auto& img : images)
    for (int i = 0; i < 10; ++i) {
      catlip::Rng rng(i);
      std::vector<uint8_t> out;
      auto o = decode_transform(img.data(), img.size(), spec, rng, out);
      REQUIRE(o.ok());
      CHECK(out.size() == size_t(224) * 224 * 3);
    }
  // Eval of a small image upsamples to the requested size.
  std::vector<uint8_t> out;
  REQUIRE(decode_eval(images[0], 300, 343, out).ok());
  CHECK(out.size() == size_t(300) * 300 * 3);
}

TEST_CASE("JPEG region decode equals full decode followed by the same resampling") {
  auto px = pattern_rgb(333, 250, 4);
  auto jpg = encode_jpeg(px, 333, 250, 3, 90);
  std::vector<uint8_t> full;
  REQUIRE(decode_full(jpg.data(), jpg.size(), kDefaultMaxPixels, full).ok());
  ImageInfo info;
  REQUIRE(read_image_info(jpg.data(), jpg.size(), info).ok());
  for (auto crop : {CropRect{17, 41, 120, 150}, CropRect{0, 0, 250, 333}, CropRect{130, 200, 120, 133}}) {
    auto m = map_for_crop(crop, 96, 96, false);
    std::vector<uint8_t> region, ref(96 * 96 * 3);
    auto o = decode_mapped(jpg.data(), jpg.size(), info, m, false, region);
    REQUIRE(o.ok());
    CHECK(o.scale_num == 8);
    Taps xt = axis_taps(m.x, 96, 333), yt = axis_taps(m.y, 96, 250);
    resample_bilinear(RgbRegion{full.data(), 333 * 3, 0, 0}, xt, yt, false, ref.data());
    int maxdiff = 0, ndiff = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      int d = std::abs(int(region[i]) - int(ref[i]));
      maxdiff = std::max(maxdiff, d);
      ndiff += d != 0;
    }
    INFO("crop " << crop.top << "," << crop.left << " " << crop.height << "x" << crop.width << ": " << ndiff
                 << " bytes differ, max " << maxdiff);
    CHECK(ndiff == 0);
  }
}

TEST_CASE("JPEG DCT-scaled decode is used for small outputs and stays close") {
  auto px = pattern_rgb(800, 600, 2);
  auto jpg = encode_jpeg(px, 800, 600, 3, 95);
  ImageInfo info;
  REQUIRE(read_image_info(jpg.data(), jpg.size(), info).ok());
  auto m = map_for_crop(CropRect{0, 0, 600, 800}, 100, 100, false);
  std::vector<uint8_t> scaled, exact;
  auto a = decode_mapped(jpg.data(), jpg.size(), info, m, true, scaled);
  auto b = decode_mapped(jpg.data(), jpg.size(), info, m, false, exact);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a.scale_num == 2);  // 600 * 2/8 = 150 >= 100, 1/8 would give 75
  CHECK(b.scale_num == 8);
  CHECK(mean_abs_diff(scaled, exact) < 4.0);
}

TEST_CASE("grayscale and CMYK JPEG, RGBA and gray PNG, RGBA WebP decode to RGB") {
  std::vector<uint8_t> out;
  SECTION("grayscale JPEG") {
    std::vector<uint8_t> g(32 * 32);
    for (int i = 0; i < 32 * 32; ++i) g[i] = uint8_t(i % 32 * 8);
    auto jpg = encode_jpeg(g, 32, 32, 1, 100);
    ImageInfo info;
    REQUIRE(read_image_info(jpg.data(), jpg.size(), info).ok());
    CHECK(info.gray);
    REQUIRE(decode_eval(jpg, 32, 32, out).ok());
    REQUIRE(out.size() == 32 * 32 * 3);
    for (int i = 0; i < 32 * 32; ++i) {
      CHECK(out[i * 3] == out[i * 3 + 1]);
      CHECK(out[i * 3] == out[i * 3 + 2]);
      CHECK(std::abs(int(out[i * 3]) - int(g[i])) <= 3);
    }
    TransformSpec spec;
    spec.size = 20;
    catlip::Rng rng(3);
    REQUIRE(decode_transform(jpg.data(), jpg.size(), spec, rng, out).ok());
    for (int i = 0; i < 20 * 20; ++i) CHECK(out[i * 3] == out[i * 3 + 1]);
  }
  SECTION("CMYK JPEG") {
    // Inverted (Adobe) CMYK: R = C*K/255. Left half K=255, right half K=128.
    std::vector<uint8_t> cmyk(32 * 32 * 4);
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        uint8_t* p = &cmyk[(y * 32 + x) * 4];
        p[0] = 200, p[1] = 100, p[2] = 50, p[3] = x < 16 ? 255 : 128;
      }
    auto jpg = encode_jpeg(cmyk, 32, 32, 4, 100, false);
    ImageInfo info;
    REQUIRE(read_image_info(jpg.data(), jpg.size(), info).ok());
    CHECK(info.cmyk);
    REQUIRE(decode_eval(jpg, 32, 32, out).ok());
    auto at = [&](int x, int y, int c) { return int(out[(y * 32 + x) * 3 + c]); };
    CHECK(std::abs(at(4, 10, 0) - 200) <= 4);
    CHECK(std::abs(at(4, 10, 1) - 100) <= 4);
    CHECK(std::abs(at(4, 10, 2) - 50) <= 4);
    CHECK(std::abs(at(28, 10, 0) - 100) <= 4);
    CHECK(std::abs(at(28, 10, 1) - 50) <= 4);
    CHECK(std::abs(at(28, 10, 2) - 25) <= 4);
    // Train crops go through the cropped-scanline path too.
    TransformSpec spec;
    spec.size = 24;
    for (int i = 0; i < 20; ++i) {
      catlip::Rng rng(i);
      REQUIRE(decode_transform(jpg.data(), jpg.size(), spec, rng, out).ok());
      CHECK(out.size() == 24 * 24 * 3);
    }
  }
  SECTION("RGBA PNG and WebP: alpha composited on white") {
    std::vector<uint8_t> rgba(8 * 8 * 4);
    for (int i = 0; i < 64; ++i) {
      uint8_t* p = &rgba[i * 4];
      p[0] = 10, p[1] = 120, p[2] = 230;
      p[3] = i < 32 ? 255 : (i < 48 ? 0 : 128);
    }
    for (auto& img : {encode_png(rgba, 8, 8, 4), encode_webp(rgba, 8, 8, 4)}) {
      REQUIRE(decode_eval(img, 8, 8, out).ok());
      CHECK(out[0] == 10);
      CHECK(out[1] == 120);
      CHECK(out[2] == 230);
      CHECK(out[40 * 3] == 255);  // transparent -> white
      CHECK(out[40 * 3 + 1] == 255);
      CHECK(out[40 * 3 + 2] == 255);
      // Half transparent: between colour and white (libpng blends in linear light).
      CHECK(out[56 * 3] > 10);
      CHECK(out[56 * 3] < 255);
      CHECK(out[56 * 3 + 2] >= 230);
    }
  }
  SECTION("gray PNG") {
    std::vector<uint8_t> g(16 * 16);
    for (int i = 0; i < 256; ++i) g[i] = uint8_t(i);
    REQUIRE(decode_eval(encode_png(g, 16, 16, 1), 16, 16, out).ok());
    for (int i = 0; i < 256; ++i) {
      CHECK(out[i * 3] == i);
      CHECK(out[i * 3 + 2] == i);
    }
  }
}

TEST_CASE("corrupt, empty, unknown and huge inputs fail cleanly with a reason") {
  auto px = pattern_rgb(200, 150, 3);
  auto jpg = encode_jpeg(px, 200, 150, 3);
  auto png = encode_png(px, 200, 150, 3);
  auto webp = encode_webp(px, 200, 150, 3);
  std::vector<uint8_t> out;
  auto status = [&](const std::string& b) { return decode_eval(b, 150, 150, out).status; };

  CHECK(status("") == DecodeStatus::Empty);
  CHECK(status("hello, not an image") == DecodeStatus::UnknownFormat);
  CHECK(status(jpg.substr(0, 3)) == DecodeStatus::Corrupt);
  CHECK(status(jpg.substr(0, jpg.size() / 2)) == DecodeStatus::Corrupt);  // premature end
  std::string garbled = jpg;
  for (size_t i = garbled.size() / 3; i < garbled.size() - 2; i += 7) garbled[i] = char(0xFF);
  CHECK(status(garbled) == DecodeStatus::Corrupt);
  std::string random_after_soi = jpg.substr(0, 3);
  for (int i = 0; i < 5000; ++i) random_after_soi += char((i * 7919) % 251);
  CHECK(status(random_after_soi) == DecodeStatus::Corrupt);

  // A bad header must not poison later decodes on the same thread.
  REQUIRE(decode_eval(jpg, 150, 150, out).ok());

  CHECK(status(png.substr(0, png.size() / 2)) == DecodeStatus::Corrupt);
  std::string bad_crc = png;
  bad_crc[png.size() / 2] ^= 0x55;
  CHECK(status(bad_crc) == DecodeStatus::Corrupt);
  CHECK(status(png.substr(0, 20)) == DecodeStatus::Corrupt);

  CHECK(status(webp.substr(0, webp.size() / 2)) == DecodeStatus::Corrupt);
  std::string bad_webp = webp;
  for (size_t i = 40; i < bad_webp.size(); i += 3) bad_webp[i] = char(i * 31);
  CHECK(status(bad_webp) == DecodeStatus::Corrupt);

  auto huge_jpg = catlip::test::jpeg_with_size(jpg, 60000, 60000);
  auto huge_png = catlip::test::png_with_size(png, 60000, 60000);
  auto o = decode_eval(huge_jpg, 150, 150, out);
  CHECK(o.status == DecodeStatus::TooManyPixels);
  CHECK(o.info.width == 60000);
  CHECK(o.message.find("60000x60000") != std::string::npos);
  CHECK(status(huge_png) == DecodeStatus::TooManyPixels);
  // A header that claims more pixels than the data holds (within the limit):
  // found while decoding, still no crash.
  CHECK(status(catlip::test::png_with_size(png, 400, 300)) == DecodeStatus::Corrupt);
  CHECK(status(catlip::test::jpeg_with_size(jpg, 400, 300)) == DecodeStatus::Corrupt);
}

TEST_CASE("randomly damaged images never crash and mostly fail cleanly") {
  auto px = pattern_rgb(160, 120, 7);
  std::vector<std::string> originals = {encode_jpeg(px, 160, 120, 3), encode_png(px, 160, 120, 3),
                                        encode_webp(px, 160, 120, 3)};
  std::vector<uint8_t> g(160 * 120);
  for (size_t i = 0; i < g.size(); ++i) g[i] = uint8_t(i * 7);
  originals.push_back(encode_jpeg(g, 160, 120, 1));
  catlip::Rng rng(99);
  TransformSpec spec;
  spec.size = 32;
  int ok = 0, failed = 0;
  for (int iter = 0; iter < 600; ++iter) {
    std::string b = originals[iter % originals.size()];
    int kind = int(rng.randint(0, 2));
    if (kind == 0) b.resize(size_t(rng.randint(0, int64_t(b.size()) - 1)));  // truncate
    else if (kind == 1)
      for (int k = 0; k < 1 + iter % 8; ++k) b[size_t(rng.randint(0, int64_t(b.size()) - 1))] ^= char(1 + rng.randint(0, 254));
    else b.insert(size_t(rng.randint(0, int64_t(b.size()))), std::string(size_t(rng.randint(1, 64)), char(rng.randint(0, 255))));
    std::vector<uint8_t> out;
    catlip::Rng r2(iter);
    auto o = decode_transform(b.data(), b.size(), spec, r2, out);
    if (o.ok()) {
      ++ok;
      CHECK(out.size() == 32 * 32 * 3);
    } else {
      ++failed;
      CHECK(!o.message.empty());
    }
  }
  CHECK(ok + failed == 600);
  CHECK(failed > 200);
}
