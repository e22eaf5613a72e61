// The implementation of catlip/synth/generator.h: sample i of (seed, split) as a JPEG, a
// caption and JSON ground truth, and its WebDataset fields.
#include "catlip/synth/generator.h"

#include <turbojpeg.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "catlip/synth/categories.h"

namespace catlip::synth {

namespace {

int pick_color(int category, bool typical, Rng& rng) {
  std::string allowed = kCategories[category].colors;
  const int64_t P = static_cast<int64_t>(palette().size());
  if (allowed.empty()) {
    int64_t u = rng.randint(0, P - 1);
    // Typical colours: two per category, spread over the palette (category c
    // gets palette entries 5c and 5c+7, mod 12), like a bus that is usually
    // yellow or red.
    if (typical) return static_cast<int>((category * 5 + (u % 2 ? 7 : 0)) % P);
    return static_cast<int>(u);
  }
  std::vector<std::string> names;
  std::istringstream in(allowed);
  for (std::string w; in >> w;) names.push_back(w);
  int64_t k = rng.randint(0, static_cast<int64_t>(names.size()) - 1);
  if (typical) k %= std::min<int64_t>(2, static_cast<int64_t>(names.size()));  // its first two
  return color_index(names[size_t(k)]);
}

double color_dist(Rgb a, Rgb b) {
  double dr = a.r - b.r, dg = a.g - b.g, db = a.b - b.b;
  return std::sqrt(dr * dr + dg * dg + db * db);
}

Rgb mix_rounded(Rgb a, Rgb b, float t) {
  auto m = [t](uint8_t x, uint8_t y) { return static_cast<uint8_t>(std::lround(x + (y - x) * t)); };
  return Rgb{m(a.r, b.r), m(a.g, b.g), m(a.b, b.b)};
}

Rgb random_rgb(Rng& rng) {
  return Rgb{static_cast<uint8_t>(rng.randint(0, 255)), static_cast<uint8_t>(rng.randint(0, 255)),
             static_cast<uint8_t>(rng.randint(0, 255))};
}

// A background colour far enough from every object colour to keep objects visible.
Rgb background_color(const std::vector<SynthObject>& objs, Rng& rng) {
  Rgb best{};
  double best_d = -1;
  for (int t = 0; t < 40; ++t) {
    Rgb c = random_rgb(rng);
    double d = 1e9;
    for (auto& o : objs) d = std::min(d, color_dist(c, palette()[o.color].rgb));
    if (d > 110) return c;
    if (d > best_d) best_d = d, best = c;
  }
  return best;
}

std::string size_word(float half, int size, Rng& rng) {
  float r = half / size;
  if (r < 0.11f) return rng.bernoulli(0.5) ? "tiny" : "small";
  if (r < 0.15f) return "small";
  if (r > 0.3f) return rng.bernoulli(0.5) ? "big" : "large";
  return "";
}

std::string encode_jpeg(const std::vector<uint8_t>& rgb, int size, int quality) {
  tjhandle h = tjInitCompress();
  if (!h) throw std::runtime_error("synth: tjInitCompress failed");
  unsigned char* buf = nullptr;
  unsigned long n = 0;
  int rc = tjCompress2(h, rgb.data(), size, 0, size, TJPF_RGB, &buf, &n, TJSAMP_420, quality, 0);
  if (rc != 0) {
    std::string err = tjGetErrorStr2(h);
    tjDestroy(h);
    throw std::runtime_error("synth: JPEG encoding failed: " + err);
  }
  std::string out(reinterpret_cast<char*>(buf), n);
  tjFree(buf);
  tjDestroy(h);
  return out;
}

// The sample's ground truth, on one line: {"key": ..., "caption": ..., "objects": [...], ...}.
std::string make_json(const SynthSample& s, int size) {
  auto cats = object_categories(s.objects);
  json::Ordered objects = json::Ordered::array(), wnids = json::Ordered::array(), instances = json::Ordered::array();
  for (int c : cats) {
    objects.push_back(kCategories[c].name);
    wnids.push_back(kCategories[c].wnid);
  }
  for (auto& o : s.objects) {
    json::Ordered bbox = {int(std::max(0.0f, o.place.cx - o.place.half)), int(std::max(0.0f, o.place.cy - o.place.half)),
                          int(std::min<float>(size, o.place.cx + o.place.half)),
                          int(std::min<float>(size, o.place.cy + o.place.half))};
    instances.push_back({{"name", kCategories[o.category].name}, {"color", palette()[o.color].name}, {"bbox", bbox}});
  }
  json::Ordered j = {{"key", s.key},
                     {"caption", s.caption},
                     {"objects", std::move(objects)},
                     {"wnids", std::move(wnids)},
                     {"class", kCategories[s.cls].name},
                     {"class_index", s.cls},
                     {"background", background_adjective(s.background)},
                     {"instances", std::move(instances)}};
  return json::dump(j, 0);
}

}  // namespace

SynthSample generate_sample(const SynthOptions& opt, int64_t index) {
  SynthSample s;
  char key[32];
  std::snprintf(key, sizeof key, "%09lld", static_cast<long long>(index));
  s.key = key;
  const int S = opt.size;
  // Independent stream per (seed, split, index).
  Rng rng = Rng::for_sample(opt.seed ^ (opt.val ? 0x7661'6C00'0000'0001ull : 0), s.key, 0);

  static const double kCountWeights[] = {0.35, 0.30, 0.20, 0.15};
  const int max_n = std::clamp(opt.max_objects, 1, 4);
  double total = 0;  // the weights of the allowed counts, renormalised
  for (int i = 0; i < max_n; ++i) total += kCountWeights[i];
  double u = rng.uniform();
  if (max_n < 4) u *= total;  // (not for 4: the default stays bit-identical)
  int n = 1;
  for (double acc = kCountWeights[0]; n < max_n && u > acc; acc += kCountWeights[n], ++n) {}
  static const float kMaxHalf[] = {0.40f, 0.30f, 0.25f, 0.21f};
  for (int i = 0; i < n; ++i) {
    SynthObject o;
    if (i > 0 && rng.bernoulli(0.3)) {  // repeat an earlier object: "two red balls"
      const SynthObject& prev = s.objects[rng.randint(0, i - 1)];
      o.category = prev.category;
      o.color = prev.color;
    } else {
      o.category = static_cast<int>(rng.randint(0, kNumCategories - 1));
      o.color = pick_color(o.category, opt.typical_colors, rng);
    }
    const double lo = std::clamp(opt.min_object, 0.02, 0.4);
    float half = float(rng.uniform(lo, std::max<double>(lo, kMaxHalf[n - 1]))) * S;
    // Place away from earlier objects when possible.
    float cx = 0, cy = 0;
    for (int t = 0; t < 30; ++t) {
      cx = float(rng.uniform(half * 0.8, S - half * 0.8));
      cy = float(rng.uniform(half * 0.8, S - half * 0.8));
      bool ok = true;
      for (auto& q : s.objects)
        if (std::hypot(cx - q.place.cx, cy - q.place.cy) < 0.8f * (half + q.place.half)) ok = false;
      if (ok) break;
    }
    std::string name = kCategories[o.category].name;
    bool spin = name == "arrow" || name == "pencil" || name == "key" || name == "leaf";
    o.place = Placement{cx, cy, half, float(spin ? rng.uniform(-M_PI, M_PI) : rng.uniform(-0.3, 0.3)),
                        rng.bernoulli(0.5)};
    o.size_word = size_word(half, S, rng);
    s.objects.push_back(std::move(o));
  }
  // Largest first, so small objects are drawn on top and stay visible.
  std::stable_sort(s.objects.begin(), s.objects.end(),
                   [](const SynthObject& a, const SynthObject& b) { return a.place.half > b.place.half; });
  s.cls = s.objects[0].category;

  s.background = static_cast<Background>(rng.randint(0, kNumBackgrounds - 1));
  Rgb a = background_color(s.objects, rng);
  Rgb b = background_color(s.objects, rng);
  const float clutter = std::clamp(opt.clutter, 0.0f, 1.0f);
  b = mix_rounded(a, b, clutter);  // less clutter: the second background colour moves towards the first
  Canvas canvas(S, S);
  draw_background(canvas, s.background, a, b, rng);
  for (auto& o : s.objects) draw_object(canvas, o.category, o.place, palette()[o.color].rgb, rng);
  add_noise(canvas, static_cast<int>(std::lround(rng.randint(0, 12) * clutter)), rng);
  s.rgb = std::move(canvas.px);
  s.caption = make_caption(s.objects, s.background, rng);
  s.json = make_json(s, S);
  s.jpg = encode_jpeg(s.rgb, S, opt.quality);
  return s;
}

std::vector<std::pair<std::string, std::string>> webdataset_fields(const SynthSample& s) {
  return {{"jpg", s.jpg}, {"txt", s.caption}, {"json", s.json}, {"cls", std::to_string(s.cls)}};
}

}  // namespace catlip::synth
