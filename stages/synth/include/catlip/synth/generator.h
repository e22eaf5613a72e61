// catlip/synth/generator.h - a deterministic synthetic image-caption dataset.
//
// Sample i of (seed, split) is a pure function of those three values: 1-4
// objects from kCategories with varied colours, sizes, positions and
// rotations on a plain/gradient/striped/checkered/noisy background plus pixel
// noise, JPEG-encoded; a caption from many templates that mentions every drawn
// object (with counts, colour and size adjectives, verbs, prepositions) and
// also scene words and distractor nouns that are NOT drawn; and a JSON ground
// truth so evaluation never depends on parsing captions.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "catlip/synth/render.h"

namespace catlip::synth {

struct SynthObject {
  int category = 0;
  int color = 0;  // index into palette()
  Placement place;
  std::string size_word;  // "", "small", "tiny", "large", "big"
};

struct SynthOptions {
  uint64_t seed = 0;
  int size = 128;     // image width and height
  int quality = 90;   // JPEG quality
  bool val = false;   // validation split: an independent random stream
  // Difficulty. The defaults are the full-variety set; the quickstart uses an
  // easier setting so a tiny model learns it in minutes on a CPU.
  int max_objects = 4;        // 1..4 objects per image
  double min_object = 0.10;   // smallest object half-side, as a fraction of size
  float clutter = 1.0f;       // 0..1: background texture contrast and pixel noise
  bool typical_colors = false;  // each category in (at most) two typical colours, not any
};

struct SynthSample {
  std::string key;  // img2dataset style: 9-digit index
  std::vector<SynthObject> objects;
  Background background = Background::Plain;
  std::string caption;
  std::string json;  // {"key", "caption", "objects", "wnids", "class", "class_index", "instances", "background"}
  std::string jpg;
  int cls = 0;  // category of the largest object
  std::vector<uint8_t> rgb;  // the rendered pixels before JPEG (size*size*3)
};

SynthSample generate_sample(const SynthOptions& opt, int64_t index);

// Caption for objects on a background; deterministic in rng.
std::string make_caption(const std::vector<SynthObject>& objects, Background bg, Rng& rng);

// Sorted unique category indices of the drawn objects.
std::vector<int> object_categories(const std::vector<SynthObject>& objects);

// The sample's WebDataset fields, in member order: jpg, txt (the caption),
// json (the ground truth), cls (the class of the largest object). Writing
// them into shards is the tools' job (`catlip shards synth`).
std::vector<std::pair<std::string, std::string>> webdataset_fields(const SynthSample& s);

}  // namespace catlip::synth
