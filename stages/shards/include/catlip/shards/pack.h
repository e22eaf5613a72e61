// catlip/shards/pack.h - packing a folder of image + caption files into shards.
//
// Every image (jpg, jpeg, png, webp; any case) under the source folder,
// searched recursively in sorted path order, becomes one sample when a
// caption file with the same stem exists (`cat.png` + `cat.txt`); a `.json`
// with the same stem is added when present. Keys are img2dataset style: the
// sample's ordinal, 9-digit zero-padded ("000000042"). Shards are
// `<prefix>-000000.tar`, ... (see ShardWriter).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "catlip/shards/tar_writer.h"

namespace catlip::shards {

struct PackOptions {
  uint64_t samples_per_shard = 10000;
  uint64_t max_shard_bytes = 1ull << 30;
  uint64_t max_file_bytes = 64ull << 20;  // larger images are skipped
};

struct PackReport {
  uint64_t samples = 0;
  uint64_t skipped_no_caption = 0;
  uint64_t skipped_too_large = 0;
  uint64_t skipped_unreadable = 0;
  std::vector<std::string> shards;
  std::vector<std::string> problems;  // first few, for display
};

// Throws std::runtime_error if the source folder cannot be listed or a shard
// cannot be written.
PackReport pack_directory(const std::string& src_dir, const std::string& out_prefix, const PackOptions& opts);

}  // namespace catlip::shards
