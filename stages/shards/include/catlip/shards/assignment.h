// catlip/shards/assignment.h - which shards a source replica reads, and where
// a run resumes.
//
// For epoch e the shard list (indices 0..n-1 into the expanded URL list) is
// shuffled with a seed derived from (seed, e) when shuffling is on, then dealt
// round-robin to data-parallel ranks (position i goes to rank i % world_size),
// then each rank's part is dealt round-robin to the stage's replicas. The
// parts are disjoint and together cover every shard once per epoch; every
// process computes the same plan from the same parameters, no coordination.
//
// A position "E:S:K" names the last sample a replica delivered: epoch E,
// shard S (index into the expanded URL list, i.e. Origin::shard) and sample K
// (Origin::index, the sample's ordinal in its shard). Resuming from it yields
// exactly the samples after it. "" means "from the start".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "catlip/sample.h"

namespace catlip::shards {

// splitmix64: a small, portable mixing function (std:: distributions differ
// between standard libraries; our orders must not).
uint64_t mix64(uint64_t x);
uint64_t derive_seed(uint64_t seed, std::initializer_list<uint64_t> parts);

// A portable PRNG with an unbiased bounded draw.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() { return mix64(s_ += 0x9E3779B97F4A7C15ull); }
  uint64_t below(uint64_t n);  // uniform in [0, n), n > 0
 private:
  uint64_t s_;
};

struct AssignOptions {
  uint64_t seed = 0;
  bool shuffle = true;
  int rank = 0, world_size = 1;
  int replica = 0, replicas = 1;
};

// Shard indices this replica reads in epoch `epoch`, in reading order.
std::vector<int64_t> assign_shards(int64_t num_shards, int64_t epoch, const AssignOptions& o);

struct Position {
  int64_t epoch = 0, shard = -1, sample = -1;
};
std::string format_position(const Position& p);
std::string format_position(const Origin& o);
// Throws std::invalid_argument on a malformed string. "" -> nullopt.
std::optional<Position> parse_position(const std::string& s);

}  // namespace catlip::shards
