// The implementation of catlip/synth/render.h: the colour palette, backgrounds and the
// signed-distance shapes of every object category, rasterised with antialiasing.
#include "catlip/synth/render.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "catlip/synth/categories.h"

namespace catlip::synth {

const std::vector<NamedColor>& palette() {
  static const std::vector<NamedColor> p = {
      {"red", {215, 40, 40}},     {"green", {45, 165, 60}},    {"blue", {40, 80, 215}},
      {"yellow", {240, 210, 40}}, {"orange", {245, 140, 30}},  {"purple", {135, 60, 175}},
      {"pink", {240, 130, 180}},  {"brown", {125, 78, 40}},    {"black", {25, 25, 25}},
      {"white", {245, 245, 245}}, {"gray", {128, 128, 128}},   {"cyan", {40, 195, 210}},
  };
  return p;
}

int color_index(const std::string& name) {
  auto& p = palette();
  for (size_t i = 0; i < p.size(); ++i)
    if (name == p[i].name) return static_cast<int>(i);
  return -1;
}

void Canvas::blend(int x, int y, Rgb c, float a) {
  if (x < 0 || y < 0 || x >= width || y >= height || a <= 0) return;
  uint8_t* p = &px[(size_t(y) * width + x) * 3];
  if (a >= 1) {
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
    return;
  }
  p[0] = static_cast<uint8_t>(p[0] + (c.r - p[0]) * a + 0.5f);
  p[1] = static_cast<uint8_t>(p[1] + (c.g - p[1]) * a + 0.5f);
  p[2] = static_cast<uint8_t>(p[2] + (c.b - p[2]) * a + 0.5f);
}

const char* background_adjective(Background b) {
  switch (b) {
    case Background::Plain: return "plain";
    case Background::Gradient: return "gradient";
    case Background::Stripes: return "striped";
    case Background::Checker: return "checkered";
    case Background::Noise: return "noisy";
  }
  return "plain";
}

namespace {

Rgb mix(Rgb a, Rgb b, float t) {
  return Rgb{static_cast<uint8_t>(a.r + (b.r - a.r) * t), static_cast<uint8_t>(a.g + (b.g - a.g) * t),
             static_cast<uint8_t>(a.b + (b.b - a.b) * t)};
}
Rgb shade(Rgb c, float f) {  // f < 1 darker, f > 1 lighter (towards white)
  if (f <= 1) return mix(Rgb{0, 0, 0}, c, f);
  return mix(c, Rgb{255, 255, 255}, f - 1);
}

struct V2 {
  float x, y;
};
V2 operator-(V2 a, V2 b) { return {a.x - b.x, a.y - b.y}; }
V2 operator*(V2 a, float s) { return {a.x * s, a.y * s}; }
float dot(V2 a, V2 b) { return a.x * b.x + a.y * b.y; }
float len(V2 a) { return std::sqrt(dot(a, a)); }

using Sdf = std::function<float(V2)>;

Sdf circle(V2 c, float r) {
  return [=](V2 p) { return len(p - c) - r; };
}
Sdf ellipse(V2 c, float a, float b) {
  return [=](V2 p) {
    V2 q{(p.x - c.x) / a, (p.y - c.y) / b};
    return (len(q) - 1) * std::min(a, b);
  };
}
Sdf box(V2 c, float hx, float hy) {
  return [=](V2 p) {
    float qx = std::abs(p.x - c.x) - hx, qy = std::abs(p.y - c.y) - hy;
    float ox = std::max(qx, 0.0f), oy = std::max(qy, 0.0f);
    return std::sqrt(ox * ox + oy * oy) + std::min(std::max(qx, qy), 0.0f);
  };
}
Sdf segment(V2 a, V2 b, float r) {
  return [=](V2 p) {
    V2 pa = p - a, ba = b - a;
    float h = std::clamp(dot(pa, ba) / dot(ba, ba), 0.0f, 1.0f);
    return len(pa - ba * h) - r;
  };
}
Sdf ring(V2 c, float r, float th) {
  return [=](V2 p) { return std::abs(len(p - c) - r) - th; };
}
Sdf polygon(std::vector<V2> v) {
  return [v = std::move(v)](V2 p) {
    float d = dot(p - v[0], p - v[0]);
    float s = 1;
    for (size_t i = 0, j = v.size() - 1; i < v.size(); j = i, ++i) {
      V2 e = v[j] - v[i], w = p - v[i];
      V2 b = w - e * std::clamp(dot(w, e) / dot(e, e), 0.0f, 1.0f);
      d = std::min(d, dot(b, b));
      bool c1 = p.y >= v[i].y, c2 = p.y < v[j].y, c3 = e.x * w.y > e.y * w.x;
      if ((c1 && c2 && c3) || (!c1 && !c2 && !c3)) s = -s;
    }
    return s * std::sqrt(d);
  };
}
Sdf intersect(Sdf a, Sdf b) {
  return [=](V2 p) { return std::max(a(p), b(p)); };
}
Sdf subtract(Sdf a, Sdf b) {
  return [=](V2 p) { return std::max(a(p), -b(p)); };
}
Sdf halfplane_below(float y) {  // keeps p.y >= y
  return [=](V2 p) { return y - p.y; };
}
Sdf halfplane_above(float y) {  // keeps p.y <= y
  return [=](V2 p) { return p.y - y; };
}
Sdf regular_polygon(int n, float r, float phase) {
  std::vector<V2> v;
  for (int i = 0; i < n; ++i) {
    float a = phase + 2 * float(M_PI) * i / n;
    v.push_back({r * std::cos(a), r * std::sin(a)});
  }
  return polygon(v);
}

struct Layer {
  Sdf sdf;
  Rgb color;
};

void rasterize(Canvas& c, const Placement& pl, const std::vector<Layer>& layers) {
  const float ext = pl.half * 1.45f;
  int x0 = std::max(0, int(std::floor(pl.cx - ext))), x1 = std::min(c.width - 1, int(std::ceil(pl.cx + ext)));
  int y0 = std::max(0, int(std::floor(pl.cy - ext))), y1 = std::min(c.height - 1, int(std::ceil(pl.cy + ext)));
  const float ca = std::cos(-pl.angle), sa = std::sin(-pl.angle);
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      float dx = (x + 0.5f - pl.cx) / pl.half, dy = (y + 0.5f - pl.cy) / pl.half;
      V2 p{ca * dx - sa * dy, sa * dx + ca * dy};
      if (pl.mirror) p.x = -p.x;
      for (auto& l : layers) {
        float d = l.sdf(p) * pl.half;  // distance in pixels
        float a = std::clamp(0.5f - d, 0.0f, 1.0f);
        if (a > 0) c.blend(x, y, l.color, a);
      }
    }
}

const Rgb kBlack{25, 25, 25}, kWhite{250, 250, 250}, kBrown{120, 75, 35}, kGreen{50, 150, 50},
    kYellow{245, 215, 50}, kOrange{245, 140, 30}, kGray{140, 140, 140}, kTan{225, 190, 140};

std::vector<Layer> object_layers(int cat, Rgb m, Rng& rng) {
  const Rgb dark = shade(m, 0.65f), light = shade(m, 1.35f);
  std::string name = kCategories[cat].name;
  std::vector<Layer> L;
  auto add = [&](Sdf s, Rgb c) { L.push_back({std::move(s), c}); };
  if (name == "ball") {
    add(circle({0, 0}, 0.9f), m);
    add(intersect(circle({0, 0}, 0.9f), ring({0.95f, -0.95f}, 1.15f, 0.12f)), kWhite);
    add(circle({-0.35f, -0.35f}, 0.13f), light);
  } else if (name == "cup") {
    add(ring({0.62f, 0.05f}, 0.3f, 0.09f), dark);
    add(polygon({{-0.6f, -0.6f}, {0.6f, -0.6f}, {0.45f, 0.8f}, {-0.45f, 0.8f}}), m);
    add(box({0, -0.6f}, 0.62f, 0.05f), dark);
  } else if (name == "bottle") {
    add(box({0, 0.3f}, 0.4f, 0.62f), m);
    add(box({0, -0.5f}, 0.15f, 0.32f), m);
    add(box({0, -0.86f}, 0.18f, 0.09f), dark);
    add(box({0, 0.3f}, 0.41f, 0.2f), kWhite);
  } else if (name == "box") {
    add(box({-0.15f, 0.22f}, 0.6f, 0.6f), m);
    add(polygon({{-0.75f, -0.38f}, {0.45f, -0.38f}, {0.85f, -0.78f}, {-0.35f, -0.78f}}), light);
    add(polygon({{0.45f, -0.38f}, {0.85f, -0.78f}, {0.85f, 0.42f}, {0.45f, 0.82f}}), dark);
  } else if (name == "tree") {
    add(box({0, 0.55f}, 0.14f, 0.42f), kBrown);
    add(circle({0, -0.25f}, 0.62f), m);
    add(circle({-0.35f, 0.05f}, 0.38f), m);
    add(circle({0.35f, 0.05f}, 0.38f), m);
  } else if (name == "house") {
    add(box({0, 0.35f}, 0.65f, 0.55f), m);
    add(polygon({{-0.88f, -0.18f}, {0.88f, -0.18f}, {0, -0.95f}}), dark);
    add(box({0.1f, 0.62f}, 0.15f, 0.27f), kBrown);
    add(box({-0.35f, 0.25f}, 0.14f, 0.14f), kWhite);
  } else if (name == "car") {
    add(polygon({{-0.5f, -0.1f}, {0.45f, -0.1f}, {0.3f, -0.55f}, {-0.35f, -0.55f}}), m);
    add(polygon({{-0.4f, -0.15f}, {0.35f, -0.15f}, {0.24f, -0.47f}, {-0.29f, -0.47f}}), shade(kWhite, 0.85f));
    add(box({0, 0.12f}, 0.95f, 0.26f), m);
    add(circle({-0.55f, 0.42f}, 0.23f), kBlack);
    add(circle({0.55f, 0.42f}, 0.23f), kBlack);
    add(circle({-0.55f, 0.42f}, 0.09f), kGray);
    add(circle({0.55f, 0.42f}, 0.09f), kGray);
  } else if (name == "moon") {
    add(subtract(circle({0, 0}, 0.85f), circle({0.38f, -0.22f}, 0.7f)), m);
  } else if (name == "sun") {
    add(circle({0, 0}, 0.5f), m);
    for (int i = 0; i < 8; ++i) {
      float a = float(M_PI) * i / 4;
      add(segment({0.64f * std::cos(a), 0.64f * std::sin(a)}, {0.93f * std::cos(a), 0.93f * std::sin(a)}, 0.06f), m);
    }
  } else if (name == "flower") {
    add(segment({0, 0.3f}, {0, 0.98f}, 0.05f), kGreen);
    for (int i = 0; i < 6; ++i) {
      float a = float(M_PI) * i / 3;
      add(circle({0.4f * std::cos(a), -0.2f + 0.4f * std::sin(a)}, 0.27f), m);
    }
    add(circle({0, -0.2f}, 0.22f), m.r > 200 && m.g > 180 ? kBrown : kYellow);
  } else if (name == "fish") {
    add(polygon({{0.4f, 0}, {0.95f, -0.45f}, {0.95f, 0.45f}}), dark);
    add(ellipse({-0.12f, 0}, 0.65f, 0.4f), m);
    add(circle({-0.5f, -0.08f}, 0.07f), kBlack);
  } else if (name == "bird") {
    add(polygon({{0.4f, 0.05f}, {0.95f, -0.15f}, {0.9f, 0.3f}}), dark);
    add(ellipse({0.05f, 0.1f}, 0.55f, 0.35f), m);
    add(circle({-0.5f, -0.25f}, 0.26f), m);
    add(polygon({{-0.72f, -0.32f}, {-0.97f, -0.2f}, {-0.72f, -0.14f}}), kOrange);
    add(ellipse({0.12f, 0.05f}, 0.3f, 0.16f), dark);
    add(circle({-0.55f, -0.3f}, 0.05f), kBlack);
  } else if (name == "cat") {
    add(polygon({{-0.62f, -0.1f}, {-0.52f, -0.92f}, {-0.08f, -0.45f}}), m);
    add(polygon({{0.62f, -0.1f}, {0.52f, -0.92f}, {0.08f, -0.45f}}), m);
    add(circle({0, 0.15f}, 0.6f), m);
    add(circle({-0.23f, 0}, 0.09f), kBlack);
    add(circle({0.23f, 0}, 0.09f), kBlack);
    add(polygon({{-0.08f, 0.2f}, {0.08f, 0.2f}, {0, 0.3f}}), Rgb{230, 120, 140});
    for (float s : {-1.0f, 1.0f}) {
      add(segment({0.15f * s, 0.3f}, {0.85f * s, 0.22f}, 0.018f), kBlack);
      add(segment({0.15f * s, 0.35f}, {0.85f * s, 0.42f}, 0.018f), kBlack);
    }
  } else if (name == "key") {
    add(ring({-0.55f, 0}, 0.3f, 0.11f), m);
    add(box({0.2f, 0}, 0.55f, 0.08f), m);
    add(box({0.62f, 0.17f}, 0.06f, 0.12f), m);
    add(box({0.4f, 0.15f}, 0.05f, 0.09f), m);
  } else if (name == "umbrella") {
    add(segment({0, 0}, {0, 0.72f}, 0.05f), kBlack);
    add(intersect(ring({0.16f, 0.72f}, 0.16f, 0.05f), halfplane_below(0.72f)), kBlack);
    add(intersect(circle({0, 0.05f}, 0.92f), halfplane_above(0.05f)), m);
    add(segment({0, -0.87f}, {0, -0.97f}, 0.04f), kBlack);
  } else if (name == "chair") {
    add(box({-0.42f, -0.45f}, 0.08f, 0.55f), dark);
    add(box({-0.42f, 0.58f}, 0.06f, 0.42f), dark);
    add(box({0.42f, 0.58f}, 0.06f, 0.42f), dark);
    add(box({0, 0.13f}, 0.52f, 0.09f), m);
  } else if (name == "ladder") {
    add(box({-0.4f, 0}, 0.07f, 0.95f), m);
    add(box({0.4f, 0}, 0.07f, 0.95f), m);
    for (float y : {-0.65f, -0.22f, 0.22f, 0.65f}) add(box({0, y}, 0.4f, 0.05f), m);
  } else if (name == "clock") {
    add(circle({0, 0}, 0.9f), m);
    add(circle({0, 0}, 0.74f), kWhite);
    for (int i = 0; i < 12; ++i) {
      float a = float(M_PI) * i / 6;
      add(segment({0.6f * std::cos(a), 0.6f * std::sin(a)}, {0.68f * std::cos(a), 0.68f * std::sin(a)}, 0.025f),
          kBlack);
    }
    float h = float(rng.uniform(0, 2 * M_PI)), mi = float(rng.uniform(0, 2 * M_PI));
    add(segment({0, 0}, {0.35f * std::cos(h), 0.35f * std::sin(h)}, 0.05f), kBlack);
    add(segment({0, 0}, {0.58f * std::cos(mi), 0.58f * std::sin(mi)}, 0.03f), kBlack);
  } else if (name == "apple") {
    add(segment({0, -0.4f}, {0.1f, -0.82f}, 0.05f), kBrown);
    add(ellipse({0.28f, -0.68f}, 0.22f, 0.1f), kGreen);
    add(circle({-0.22f, 0.12f}, 0.62f), m);
    add(circle({0.22f, 0.12f}, 0.62f), m);
    add(circle({-0.3f, -0.1f}, 0.1f), light);
  } else if (name == "boat") {
    add(segment({0, 0.2f}, {0, -0.92f}, 0.04f), kBrown);
    add(polygon({{0.08f, -0.85f}, {0.08f, 0.1f}, {0.75f, 0.1f}}), kWhite);
    add(polygon({{-0.08f, -0.6f}, {-0.08f, 0.1f}, {-0.55f, 0.1f}}), light);
    add(polygon({{-0.95f, 0.2f}, {0.95f, 0.2f}, {0.62f, 0.62f}, {-0.62f, 0.62f}}), m);
  } else if (name == "bell") {
    add(circle({0, -0.85f}, 0.1f), dark);
    add(circle({0, 0.68f}, 0.16f), dark);
    add(circle({0, -0.32f}, 0.45f), m);
    add(polygon({{-0.45f, -0.32f}, {0.45f, -0.32f}, {0.75f, 0.55f}, {-0.75f, 0.55f}}), m);
    add(box({0, 0.52f}, 0.76f, 0.05f), dark);
  } else if (name == "candle") {
    add(box({0, 0.28f}, 0.25f, 0.65f), m);
    add(segment({0, -0.37f}, {0, -0.5f}, 0.03f), kBlack);
    add(ellipse({0, -0.7f}, 0.15f, 0.26f), kOrange);
    add(ellipse({0, -0.64f}, 0.07f, 0.13f), kYellow);
  } else if (name == "envelope") {
    add(box({0, 0}, 0.9f, 0.6f), m);
    add(segment({-0.88f, -0.58f}, {0, 0.08f}, 0.04f), dark);
    add(segment({0.88f, -0.58f}, {0, 0.08f}, 0.04f), dark);
  } else if (name == "flag") {
    add(segment({-0.8f, -0.95f}, {-0.8f, 0.95f}, 0.05f), kGray);
    add(box({-0.03f, -0.5f}, 0.75f, 0.42f), m);
    add(box({-0.03f, -0.5f}, 0.75f, 0.1f), kWhite);
  } else if (name == "hat") {
    add(box({0, 0}, 0.52f, 0.45f), m);
    add(ellipse({0, 0.45f}, 0.95f, 0.18f), m);
    add(box({0, 0.3f}, 0.53f, 0.08f), dark);
  } else if (name == "snowman") {
    add(circle({0, 0.5f}, 0.45f), m);
    add(circle({0, -0.05f}, 0.33f), m);
    add(circle({0, -0.52f}, 0.24f), m);
    add(circle({-0.09f, -0.57f}, 0.04f), kBlack);
    add(circle({0.09f, -0.57f}, 0.04f), kBlack);
    add(polygon({{0, -0.52f}, {0, -0.45f}, {0.3f, -0.48f}}), kOrange);
    add(box({0, -0.27f}, 0.3f, 0.06f), Rgb{200, 40, 40});
    for (float y : {-0.1f, 0.05f, 0.4f}) add(circle({0, y}, 0.04f), kBlack);
  } else if (name == "pencil") {
    add(polygon({{0.7f, -0.15f}, {0.7f, 0.15f}, {0.98f, 0}}), kTan);
    add(polygon({{0.89f, -0.05f}, {0.89f, 0.05f}, {0.98f, 0}}), kBlack);
    add(box({0, 0}, 0.7f, 0.15f), m);
    add(box({-0.8f, 0}, 0.1f, 0.15f), Rgb{240, 150, 170});
  } else if (name == "wheel") {
    add(ring({0, 0}, 0.8f, 0.13f), kBlack);
    for (int i = 0; i < 6; ++i) {
      float a = float(M_PI) * i / 3;
      add(segment({0, 0}, {0.72f * std::cos(a), 0.72f * std::sin(a)}, 0.045f), m);
    }
    add(ring({0, 0}, 0.69f, 0.04f), m);
    add(circle({0, 0}, 0.14f), dark);
  } else if (name == "leaf") {
    add(segment({0.7f, 0}, {1.0f, 0.12f}, 0.04f), dark);
    add(intersect(circle({0, 0.6f}, 1.0f), circle({0, -0.6f}, 1.0f)), m);
    add(segment({-0.75f, 0}, {0.75f, 0}, 0.025f), dark);
  } else if (name == "balloon") {
    add(segment({0, 0.5f}, {0.1f, 0.72f}, 0.015f), kBlack);
    add(segment({0.1f, 0.72f}, {-0.05f, 0.97f}, 0.015f), kBlack);
    add(polygon({{0, 0.42f}, {-0.1f, 0.56f}, {0.1f, 0.56f}}), dark);
    add(ellipse({0, -0.22f}, 0.55f, 0.66f), m);
    add(ellipse({-0.2f, -0.45f}, 0.08f, 0.14f), light);
  } else if (name == "arrow") {
    add(box({-0.25f, 0}, 0.6f, 0.11f), m);
    add(polygon({{0.28f, -0.45f}, {0.28f, 0.45f}, {0.95f, 0}}), m);
  } else if (name == "triangle") {
    add(polygon({{0, -0.9f}, {0.88f, 0.72f}, {-0.88f, 0.72f}}), m);
  } else if (name == "square") {
    add(box({0, 0}, 0.78f, 0.78f), m);
  } else if (name == "circle") {
    add(circle({0, 0}, 0.88f), m);
  } else if (name == "butterfly") {
    for (float s : {-1.0f, 1.0f}) {
      add(ellipse({0.45f * s, -0.3f}, 0.45f, 0.38f), m);
      add(ellipse({0.35f * s, 0.35f}, 0.3f, 0.28f), dark);
      add(circle({0.45f * s, -0.3f}, 0.12f), light);
      add(segment({0.04f * s, -0.5f}, {0.3f * s, -0.9f}, 0.02f), kBlack);
    }
    add(ellipse({0, 0}, 0.08f, 0.55f), kBlack);
  } else if (name == "hexagon") {
    add(regular_polygon(6, 0.9f, 0), m);
  } else if (name == "bucket") {
    add(intersect(ring({0, -0.45f}, 0.62f, 0.045f), halfplane_above(-0.45f)), kGray);
    add(polygon({{-0.65f, -0.45f}, {0.65f, -0.45f}, {0.5f, 0.8f}, {-0.5f, 0.8f}}), m);
    add(box({0, -0.45f}, 0.68f, 0.06f), dark);
  } else if (name == "mushroom") {
    add(box({0, 0.42f}, 0.22f, 0.48f), Rgb{235, 225, 200});
    add(intersect(ellipse({0, 0}, 0.88f, 0.65f), halfplane_above(0.02f)), m);
    for (V2 d : {V2{-0.4f, -0.25f}, V2{0.1f, -0.45f}, V2{0.45f, -0.15f}}) add(circle(d, 0.1f), kWhite);
  } else if (name == "vase") {
    add(box({0, -0.8f}, 0.3f, 0.07f), dark);
    add(box({0, -0.42f}, 0.18f, 0.38f), m);
    add(circle({0, 0.32f}, 0.58f), m);
    add(box({0, 0.32f}, 0.58f, 0.06f), light);
  }
  return L;
}

}  // namespace

void draw_background(Canvas& c, Background kind, Rgb a, Rgb b, Rng& rng) {
  const int W = c.width, H = c.height;
  switch (kind) {
    case Background::Plain:
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) c.blend(x, y, a, 1);
      break;
    case Background::Gradient: {
      float ang = float(rng.uniform(0, 2 * M_PI)), ca = std::cos(ang), sa = std::sin(ang);
      float norm = (std::abs(ca) * W + std::abs(sa) * H);
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
          float t = ((x - W / 2.0f) * ca + (y - H / 2.0f) * sa) / norm + 0.5f;
          c.blend(x, y, mix(a, b, std::clamp(t, 0.0f, 1.0f)), 1);
        }
      break;
    }
    case Background::Stripes: {
      int period = int(rng.randint(6, 20));
      int dir = int(rng.randint(0, 2));  // horizontal, vertical, diagonal
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
          int v = dir == 0 ? y : dir == 1 ? x : x + y;
          c.blend(x, y, (v / period) % 2 ? a : b, 1);
        }
      break;
    }
    case Background::Checker: {
      int cell = int(rng.randint(8, 24));
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) c.blend(x, y, ((x / cell) + (y / cell)) % 2 ? a : b, 1);
      break;
    }
    case Background::Noise: {
      // Blocky value noise between the two colours.
      int cell = int(rng.randint(3, 8));
      int gw = W / cell + 2, gh = H / cell + 2;
      std::vector<float> g(size_t(gw) * gh);
      for (auto& v : g) v = float(rng.uniform());
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) c.blend(x, y, mix(a, b, g[size_t(y / cell) * gw + x / cell]), 1);
      break;
    }
  }
}

void draw_object(Canvas& c, int category, const Placement& p, Rgb main, Rng& rng) {
  rasterize(c, p, object_layers(category, main, rng));
}

void add_noise(Canvas& c, int amp, Rng& rng) {
  if (amp <= 0) return;
  for (auto& v : c.px) {
    int n = int(rng.randint(-amp, amp));
    v = static_cast<uint8_t>(std::clamp(int(v) + n, 0, 255));
  }
}

}  // namespace catlip::synth
