// catlip/synth/render.h - procedural drawing of backgrounds and objects.
//
// Objects are unions of signed-distance primitives in a local [-1, 1] box,
// placed by centre, half-size, rotation and mirroring, and rasterised with a
// one-pixel antialiased edge. Everything is driven by an explicit Rng, so an
// image is a pure function of its seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "catlip/rng.h"

namespace catlip::synth {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

struct NamedColor {
  const char* name;
  Rgb rgb;
};
const std::vector<NamedColor>& palette();
int color_index(const std::string& name);  // -1 if unknown

struct Canvas {
  int width = 0, height = 0;
  std::vector<uint8_t> px;  // RGB8 HWC
  Canvas(int w, int h) : width(w), height(h), px(size_t(w) * h * 3, 0) {}
  void blend(int x, int y, Rgb c, float alpha);
};

enum class Background { Plain, Gradient, Stripes, Checker, Noise };
inline constexpr int kNumBackgrounds = 5;
// Caption adjective: "plain", "gradient", "striped", "checkered", "noisy".
const char* background_adjective(Background b);
void draw_background(Canvas& c, Background kind, Rgb a, Rgb b, Rng& rng);

struct Placement {
  float cx = 0, cy = 0;  // centre in pixels
  float half = 10;       // half the object's extent in pixels
  float angle = 0;       // radians
  bool mirror = false;
};
void draw_object(Canvas& c, int category, const Placement& p, Rgb main, Rng& rng);

// Adds uniform per-channel noise in [-amplitude, amplitude].
void add_noise(Canvas& c, int amplitude, Rng& rng);

}  // namespace catlip::synth
