// The implementation of catlip/image/resample.h: two-tap bilinear resampling of an RGB
// region, with optional horizontal flip.
#include "catlip/image/resample.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace catlip::image {

Taps axis_taps(const AxisMap& m, int out, int in_size) {
  Taps t;
  t.i0.resize(out);
  t.i1.resize(out);
  t.w1.resize(out);
  t.min = in_size;
  t.max = 0;
  const double hi = std::min(m.hi, double(in_size - 1));
  const double lo = std::max(0.0, std::min(m.lo, hi));
  for (int i = 0; i < out; ++i) {
    double s = m.offset + (i + 0.5) * m.scale - 0.5;
    s = std::clamp(s, lo, hi);
    int i0 = static_cast<int>(std::floor(s));
    float w = static_cast<float>(s - i0);
    int i1 = std::min(i0 + 1, in_size - 1);
    if (w == 0.0f) i1 = i0;  // exact hit: do not read past the region
    t.i0[i] = i0;
    t.i1[i] = i1;
    t.w1[i] = w;
    t.min = std::min(t.min, i0);
    t.max = std::max(t.max, i1);
  }
  return t;
}

// Separable bilinear in 16-bit fixed point, vertical pass first: for each
// output row the two source rows are blended over the needed column span
// only (contiguous; the compiler vectorises it), then the blended row is
// sampled horizontally (SSE2 multiply-add per pixel). Vertical weights have
// 7 bits, horizontal ones 8, so results are within about one level of the
// float formula and exact when weights are multiples of 1/128 (identity,
// halves, quarters: what the tests check by hand). Rounds half up.
void resample_bilinear(const RgbRegion& src, const Taps& xt, const Taps& yt, bool flip, uint8_t* out) {
  constexpr int kVBits = 7, kHBits = 8, kShift = kVBits + kHBits;
  const int ow = static_cast<int>(xt.i0.size()), oh = static_cast<int>(yt.i0.size());
  if (ow == 0 || oh == 0) return;
  const int span0 = xt.min - src.x0;           // first needed column, region-relative
  const int span = (xt.max - xt.min + 1) * 3;  // values per blended row
  // Column offsets into the blended row and 8-bit weights, in output order.
  std::vector<int> c0(ow), c1(ow);
  std::vector<int16_t> wpair(size_t(ow) * 8);  // [wa, wb] x 4 lanes per column
  for (int i = 0; i < ow; ++i) {
    int k = flip ? ow - 1 - i : i;
    c0[i] = (xt.i0[k] - xt.min) * 3;
    c1[i] = (xt.i1[k] - xt.min) * 3;
    int wb = static_cast<int>(xt.w1[k] * (1 << kHBits) + 0.5f);
    for (int l = 0; l < 4; ++l) {
      wpair[size_t(i) * 8 + 2 * l] = static_cast<int16_t>((1 << kHBits) - wb);
      wpair[size_t(i) * 8 + 2 * l + 1] = static_cast<int16_t>(wb);
    }
  }
  std::vector<int16_t> blend(static_cast<size_t>(span) + 4, 0);  // padding: 4-lane loads
  int16_t* t = blend.data();
  const int32_t round = 1 << (kShift - 1);
  for (int oy = 0; oy < oh; ++oy) {
    const uint8_t* r0 = src.data + size_t(yt.i0[oy] - src.y0) * src.stride + span0 * 3;
    const uint8_t* r1 = src.data + size_t(yt.i1[oy] - src.y0) * src.stride + span0 * 3;
    const int16_t hb = static_cast<int16_t>(yt.w1[oy] * (1 << kVBits) + 0.5f),
                  ha = static_cast<int16_t>((1 << kVBits) - hb);
    for (int j = 0; j < span; ++j) t[j] = static_cast<int16_t>(r0[j] * ha + r1[j] * hb);  // <= 32640
    uint8_t* o = out + size_t(oy) * ow * 3;
    int ox = 0;
#ifdef __SSE2__
    // One pixel per step (RGB + an ignored lane); the 4-byte store overlaps
    // the next pixel, which is written after; the last pixel goes scalar.
    const __m128i rnd = _mm_set1_epi32(round);
    for (; ox + 1 < ow; ++ox) {
      __m128i p = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(t + c0[ox]));
      __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(t + c1[ox]));
      __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&wpair[size_t(ox) * 8]));
      __m128i v = _mm_srai_epi32(_mm_add_epi32(_mm_madd_epi16(_mm_unpacklo_epi16(p, q), w), rnd), kShift);
      __m128i v16 = _mm_packs_epi32(v, v);
      int32_t px = _mm_cvtsi128_si32(_mm_packus_epi16(v16, v16));
      std::memcpy(o, &px, 4);
      o += 3;
    }
#endif
    for (; ox < ow; ++ox) {
      const int32_t wa = wpair[size_t(ox) * 8], wb = wpair[size_t(ox) * 8 + 1];
      const int16_t *p = t + c0[ox], *q = t + c1[ox];
      for (int ch = 0; ch < 3; ++ch) o[ch] = static_cast<uint8_t>((p[ch] * wa + q[ch] * wb + round) >> kShift);
      o += 3;
    }
  }
}

}  // namespace catlip::image
