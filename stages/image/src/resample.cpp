#include "catlip/image/resample.h"

#include <algorithm>
#include <cmath>

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

void resample_bilinear(const RgbRegion& src, const Taps& xt, const Taps& yt, bool flip, uint8_t* out) {
  const int ow = static_cast<int>(xt.i0.size()), oh = static_cast<int>(yt.i0.size());
  // Column offsets in bytes relative to the region, in output order.
  std::vector<int> c0(ow), c1(ow);
  std::vector<float> wx(ow);
  for (int i = 0; i < ow; ++i) {
    int k = flip ? ow - 1 - i : i;
    c0[i] = (xt.i0[k] - src.x0) * 3;
    c1[i] = (xt.i1[k] - src.x0) * 3;
    wx[i] = xt.w1[k];
  }
  for (int oy = 0; oy < oh; ++oy) {
    const uint8_t* r0 = src.data + size_t(yt.i0[oy] - src.y0) * src.stride;
    const uint8_t* r1 = src.data + size_t(yt.i1[oy] - src.y0) * src.stride;
    const float h1 = yt.w1[oy], h0 = 1.0f - h1;
    uint8_t* o = out + size_t(oy) * ow * 3;
    for (int ox = 0; ox < ow; ++ox) {
      const float w1 = wx[ox], w0 = 1.0f - w1;
      const uint8_t *a = r0 + c0[ox], *b = r0 + c1[ox], *c = r1 + c0[ox], *d = r1 + c1[ox];
      for (int ch = 0; ch < 3; ++ch) {
        // Same association as torch's CPU upsample_bilinear2d kernel.
        float v = h0 * (w0 * a[ch] + w1 * b[ch]) + h1 * (w0 * c[ch] + w1 * d[ch]);
        long r = std::lrint(v);
        o[ox * 3 + ch] = static_cast<uint8_t>(r < 0 ? 0 : (r > 255 ? 255 : r));
      }
    }
  }
}

}  // namespace catlip::image
