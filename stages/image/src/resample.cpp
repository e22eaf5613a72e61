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

// Separable bilinear, vertical pass first: for each output row the two
// source rows are blended over the needed column span only (contiguous, so
// the compiler vectorises it), then the blended row is sampled horizontally.
// The arithmetic is float like torch's kernel (association differs: vertical
// then horizontal), rounded half up; integer results such as exact averages
// are exact.
void resample_bilinear(const RgbRegion& src, const Taps& xt, const Taps& yt, bool flip, uint8_t* out) {
  const int ow = static_cast<int>(xt.i0.size()), oh = static_cast<int>(yt.i0.size());
  if (ow == 0 || oh == 0) return;
  const int span0 = xt.min - src.x0;                 // first needed column, region-relative
  const int span = (xt.max - xt.min + 1) * 3;        // floats per blended row
  // Column offsets into the blended row and weights, in output order.
  std::vector<int> c0(ow), c1(ow);
  std::vector<float> w1(ow);
  for (int i = 0; i < ow; ++i) {
    int k = flip ? ow - 1 - i : i;
    c0[i] = (xt.i0[k] - xt.min) * 3;
    c1[i] = (xt.i1[k] - xt.min) * 3;
    w1[i] = xt.w1[k];
  }
  std::vector<float> blend(static_cast<size_t>(span) + 1, 0.0f);  // +1: SIMD padding
  float* t = blend.data();
  for (int oy = 0; oy < oh; ++oy) {
    const uint8_t* r0 = src.data + size_t(yt.i0[oy] - src.y0) * src.stride + span0 * 3;
    const uint8_t* r1 = src.data + size_t(yt.i1[oy] - src.y0) * src.stride + span0 * 3;
    const float hb = yt.w1[oy], ha = 1.0f - hb;
    if (hb == 0.0f) {
      for (int j = 0; j < span; ++j) t[j] = r0[j];
    } else {
      for (int j = 0; j < span; ++j) t[j] = ha * r0[j] + hb * r1[j];
    }
    uint8_t* o = out + size_t(oy) * ow * 3;
    int ox = 0;
#ifdef __SSE2__
    // One pixel per step on 4 lanes (RGB + a lane we ignore): the blended row
    // has a float of padding so the 4th lane never reads past it, and the
    // 4-byte store overlaps the next pixel, which is written after; the
    // row's last pixel takes the scalar path.
    const __m128 half = _mm_set1_ps(0.5f);
    for (; ox + 1 < ow; ++ox) {
      const __m128 b = _mm_set1_ps(w1[ox]), a = _mm_set1_ps(1.0f - w1[ox]);
      __m128 v = _mm_add_ps(_mm_add_ps(_mm_mul_ps(a, _mm_loadu_ps(t + c0[ox])), _mm_mul_ps(b, _mm_loadu_ps(t + c1[ox]))),
                            half);
      __m128i i32 = _mm_cvttps_epi32(v);
      __m128i i16 = _mm_packs_epi32(i32, i32);
      int32_t px = _mm_cvtsi128_si32(_mm_packus_epi16(i16, i16));
      std::memcpy(o, &px, 4);
      o += 3;
    }
#endif
    for (; ox < ow; ++ox) {
      const float b = w1[ox], a = 1.0f - b;
      const float *p = t + c0[ox], *q = t + c1[ox];
      o[0] = static_cast<uint8_t>(a * p[0] + b * q[0] + 0.5f);
      o[1] = static_cast<uint8_t>(a * p[1] + b * q[1] + 0.5f);
      o[2] = static_cast<uint8_t>(a * p[2] + b * q[2] + 0.5f);
      o += 3;
    }
  }
}

}  // namespace catlip::image
