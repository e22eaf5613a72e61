// catlip shards synth: write the deterministic synthetic image-caption dataset.
#include <chrono>
#include <filesystem>
#include <iostream>

#include "catlip/synth/categories.h"
#include "catlip/synth/generator.h"
#include "cli.h"
#include "synth_writer.h"

using namespace catlip::cli;

namespace {

int cmd_shards_synth(int argc, char** argv) {
  Args a(argc, argv, {"help", "typical-colors"});
  if (a.has("help")) {
    std::cout << "usage: catlip shards synth OUT_PREFIX --samples N [--seed S] [--size 128]\n"
                 "                           [--samples-per-shard K] [--split train|val] [--quality Q]\n"
                 "                           [--max-objects 4] [--min-object 0.1] [--clutter 1]\n"
                 "                           [--typical-colors]\n\n"
                 "Writes a deterministic synthetic image-caption dataset as WebDataset shards\n"
                 "OUT_PREFIX-000000.tar, ...: 1-4 procedurally drawn objects per image from "
              << catlip::synth::kNumCategories
              << " WordNet noun\ncategories on varied backgrounds, JPEG-encoded, with a caption (<key>.txt), the\n"
                 "ground truth (<key>.json: objects, wnids, class) and the class of the largest\n"
                 "object (<key>.cls). Same arguments give byte-identical shards.\n\n"
                 "  --samples N             number of samples (required)\n"
                 "  --seed S                random seed (default 0)\n"
                 "  --size P                image width and height in pixels (default 128)\n"
                 "  --samples-per-shard K   samples per shard (default 1000)\n"
                 "  --split train|val       independent random streams for the two splits (default train)\n"
                 "  --quality Q             JPEG quality 1-100 (default 90)\n"
                 "  --max-objects N         at most N objects per image, 1-4 (default 4)\n"
                 "  --min-object F          smallest object half-side as a fraction of the image (default 0.1)\n"
                 "  --clutter F             0-1: background texture contrast and pixel noise (default 1)\n"
                 "  --typical-colors        each category in at most two typical colours (default: any)\n";
    return kOk;
  }
  if (int rc = check_syntax(a, Syntax{"catlip shards synth", "usage: catlip shards synth OUT_PREFIX --samples N [--seed S] [--size 128]", {"clutter", "min-object", "split", "max-objects", "quality", "samples", "samples-per-shard", "seed", "size", "typical-colors"}, 1, 1})) return rc;
  auto bad = a.unknown({"samples", "seed", "size", "samples-per-shard", "split", "quality", "max-objects", "min-object", "clutter", "typical-colors"});
  if (!a.error().empty() || !bad.empty() || a.positional().size() != 1 || !a.has("samples")) {
    std::cerr << "catlip shards synth: "
              << (!a.error().empty() ? a.error()
                  : !bad.empty()     ? "unknown option " + bad[0]
                  : a.positional().size() != 1 ? std::string("expected one OUT_PREFIX")
                                               : std::string("--samples is required"))
              << " (see --help)\n";
    return kUsage;
  }
  catlip::synth::SynthOptions o;
  long long n = 0, per_shard = 0;
  try {
    n = a.get_int("samples", 0);
    per_shard = a.get_int("samples-per-shard", 1000);
    o.seed = static_cast<uint64_t>(a.get_int("seed", 0));
    o.size = static_cast<int>(a.get_int("size", 128));
    o.quality = static_cast<int>(a.get_int("quality", 90));
    o.max_objects = static_cast<int>(a.get_int("max-objects", 4));
    o.min_object = std::stod(a.get("min-object", "0.1"));
    o.clutter = static_cast<float>(std::stod(a.get("clutter", "1")));
    o.typical_colors = a.has("typical-colors");
  } catch (const std::exception&) {
    std::cerr << "catlip shards synth: numeric option expected (see --help)\n";
    return kUsage;
  }
  std::string split = a.get("split", "train");
  if (split != "train" && split != "val") {
    std::cerr << "catlip shards synth: --split must be train or val\n";
    return kUsage;
  }
  o.val = split == "val";
  if (n < 1 || per_shard < 1 || o.size < 32 || o.size > 4096 || o.quality < 1 || o.quality > 100 ||
      o.max_objects < 1 || o.max_objects > 4 || !(o.min_object >= 0.02 && o.min_object <= 0.4) ||
      !(o.clutter >= 0 && o.clutter <= 1)) {
    std::cerr << "catlip shards synth: need --samples >= 1, --samples-per-shard >= 1, 32 <= --size <= 4096, "
                 "1 <= --quality <= 100, 1 <= --max-objects <= 4, 0.02 <= --min-object <= 0.4, 0 <= --clutter <= 1\n";
    return kUsage;
  }
  std::string prefix = a.positional()[0];
  auto parent = std::filesystem::path(prefix).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  try {
    auto t0 = std::chrono::steady_clock::now();
    auto r = write_synth_shards(prefix, n, per_shard, o);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "wrote " << r.samples << " " << split << " samples into " << r.shards.size() << " shards ("
              << r.shards.front() << " .. " << r.shards.back() << ") in " << s << " s\n";
    return kOk;
  } catch (const std::exception& e) {
    std::cerr << "catlip shards synth: " << e.what() << "\n";
    return kFailed;
  }
}

}  // namespace

CATLIP_COMMAND("shards synth", "Write a deterministic synthetic image-caption dataset as shards", cmd_shards_synth);
