// catlip shards pack: a folder of image + caption files -> WebDataset shards.
#include <filesystem>
#include <iostream>

#include "catlip/shards/pack.h"
#include "cli.h"

using namespace catlip::cli;

namespace {

int cmd_shards_pack(int argc, char** argv) {
  Args a(argc, argv, {"help"});
  if (a.has("help")) {
    std::cout << "usage: catlip shards pack SRC_DIR OUT_PREFIX [--samples-per-shard N] [--max-shard-bytes B]\n\n"
                 "Packs every image (jpg, jpeg, png, webp) under SRC_DIR, searched recursively in sorted\n"
                 "path order, that has a caption file with the same stem (cat.png + cat.txt) into\n"
                 "WebDataset shards OUT_PREFIX-000000.tar, OUT_PREFIX-000001.tar, ... Each sample holds\n"
                 "<key>.<jpg|png|webp>, <key>.txt and, when present, <key>.json; keys are img2dataset\n"
                 "style ordinals (000000042). Images without a caption are counted and skipped.\n\n"
                 "  --samples-per-shard N   samples per shard (default 10000)\n"
                 "  --max-shard-bytes B     start a new shard before one would exceed B bytes (default 1 GiB)\n"
                 "  --max-file-bytes B      skip images larger than B (default 64 MiB)\n";
    return kOk;
  }
  if (int rc = check_syntax(a, Syntax{"catlip shards pack", "usage: catlip shards pack SRC_DIR OUT_PREFIX [--samples-per-shard N] [--max-shard-bytes B] [--max-file-bytes B]", {"max-file-bytes", "max-shard-bytes", "samples-per-shard"}, 2, 2})) return rc;
  auto bad = a.unknown({"samples-per-shard", "max-shard-bytes", "max-file-bytes"});
  if (!a.error().empty() || !bad.empty() || a.positional().size() != 2) {
    std::cerr << "catlip shards pack: " << (!a.error().empty() ? a.error() : !bad.empty() ? "unknown option " + bad[0]
                                                                           : "expected SRC_DIR OUT_PREFIX")
              << " (see --help)\n";
    return kUsage;
  }
  catlip::shards::PackOptions o;
  try {
    o.samples_per_shard = static_cast<uint64_t>(a.get_int("samples-per-shard", 10000));
    o.max_shard_bytes = static_cast<uint64_t>(a.get_int("max-shard-bytes", 1ll << 30));
    o.max_file_bytes = static_cast<uint64_t>(a.get_int("max-file-bytes", 64ll << 20));
  } catch (const std::exception&) {
    std::cerr << "catlip shards pack: numeric option expected (see --help)\n";
    return kUsage;
  }
  if (o.samples_per_shard < 1 || o.max_shard_bytes < 4096) {
    std::cerr << "catlip shards pack: --samples-per-shard must be >= 1 and --max-shard-bytes >= 4096\n";
    return kUsage;
  }
  std::string prefix = a.positional()[1];
  auto parent = std::filesystem::path(prefix).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  try {
    auto r = catlip::shards::pack_directory(a.positional()[0], prefix, o);
    for (auto& p : r.problems) std::cerr << "skipped: " << p << "\n";
    std::cout << "packed " << r.samples << " samples into " << r.shards.size() << " shards";
    if (!r.shards.empty()) std::cout << " (" << r.shards.front() << " .. " << r.shards.back() << ")";
    std::cout << "\nskipped: " << r.skipped_no_caption << " without caption, " << r.skipped_too_large
              << " too large, " << r.skipped_unreadable << " unreadable\n";
    return r.samples > 0 ? kOk : kFailed;
  } catch (const std::exception& e) {
    std::cerr << "catlip shards pack: " << e.what() << "\n";
    return kFailed;
  }
}

}  // namespace

CATLIP_COMMAND("shards pack", "Pack a folder of image + caption files into WebDataset shards", cmd_shards_pack);
