// Shared helpers for the shard tests: writing small shard sets and running
// the source stage in-process.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "catlip/local.h"
#include "catlip/shards/shard_source.h"
#include "catlip/shards/tar_writer.h"

namespace catlip::test {

// Deterministic payload for sample `key`, so content can be checked.
inline std::string payload(const std::string& key, size_t n) {
  std::string s(n, '\0');
  uint64_t h = 1469598103934665603ull;
  for (char c : key) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  for (size_t i = 0; i < n; ++i) {
    h = h * 6364136223846793005ull + 1442695040888963407ull;
    s[i] = static_cast<char>(h >> 56);
  }
  return s;
}

// Writes `shards` shards of `per_shard` samples each as dir/shard-%06d.tar;
// keys are global ordinals "000000123". Returns the brace pattern.
inline std::string make_shards(const std::string& dir, int shards, int per_shard, size_t jpg_bytes = 700) {
  shards::ShardWriter w(dir + "/shard", shards::ShardWriterOptions{static_cast<uint64_t>(per_shard), 0});
  for (int i = 0; i < shards * per_shard; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "%09d", i);
    w.write(key, {{"jpg", payload(key, jpg_bytes + i % 13)}, {"txt", std::string("caption ") + key}});
  }
  w.close();
  char last[16];
  std::snprintf(last, sizeof last, "%06d", shards - 1);
  return dir + "/shard-{000000.." + last + "}.tar";
}

struct SourceRun {
  std::vector<Sample> samples;
  std::map<std::string, int64_t> counters;
  std::vector<std::string> logs;
  int64_t total = -1;
};

inline SourceRun run_shard_source(std::map<std::string, ParamValue> given, int replica = 0, int replicas = 1,
                                  size_t max_samples = SIZE_MAX) {
  shards::ShardSource src;
  LocalContext ctx("src", "shards.source", replica, replicas);
  configure_stage(src, shards::ShardSource::schema(), given, ctx);
  CollectEmitter out;
  while (out.samples.size() < max_samples && src.produce(out)) {
  }
  src.close();
  SourceRun r;
  r.samples = std::move(out.samples);
  if (r.samples.size() > max_samples) r.samples.resize(max_samples);
  r.counters = ctx.counters();
  r.logs = ctx.logs();
  r.total = ctx.total();
  return r;
}

inline std::vector<std::string> keys_of(const std::vector<Sample>& v) {
  std::vector<std::string> k;
  for (auto& s : v) k.push_back(s.key);
  return k;
}

}  // namespace catlip::test
