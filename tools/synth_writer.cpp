// tools/synth_writer.cpp - write_synth_shards: synth's samples into shards
// through shards::ShardWriter (tools may join areas; the areas do not).
#include "synth_writer.h"

#include "catlip/shards/tar_writer.h"

namespace catlip::cli {

SynthShardsResult write_synth_shards(const std::string& prefix, int64_t n, int64_t per_shard,
                                     const synth::SynthOptions& opt) {
  shards::ShardWriterOptions wo;
  wo.max_samples = per_shard > 0 ? static_cast<uint64_t>(per_shard) : 0;
  wo.max_bytes = 0;
  shards::ShardWriter w(prefix, wo);
  for (int64_t i = 0; i < n; ++i) {
    synth::SynthSample s = synth::generate_sample(opt, i);
    w.write(s.key, synth::webdataset_fields(s));
  }
  w.close();
  return SynthShardsResult{w.shard_paths(), n};
}

}  // namespace catlip::cli
