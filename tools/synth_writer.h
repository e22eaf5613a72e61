// tools/synth_writer.h - the synthetic dataset (stages/synth) written as
// WebDataset shards with the shards area's ShardWriter.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "catlip/synth/generator.h"

namespace catlip::cli {

struct SynthShardsResult {
  std::vector<std::string> shards;
  int64_t samples = 0;
};

// Writes samples [0, n) to `<prefix>-000000.tar`, ... with `per_shard`
// samples each; members <key>.jpg/.txt/.json/.cls. Byte-identical for
// identical arguments. Used by `catlip shards synth` and the quickstart.
SynthShardsResult write_synth_shards(const std::string& prefix, int64_t n, int64_t per_shard,
                                     const synth::SynthOptions& opt);

}  // namespace catlip::cli
