// The implementation of catlip/shards/assignment.h: the per-epoch shard shuffle, dealing
// shards to ranks and replicas, and "E:S:K" resume positions.
#include "catlip/shards/assignment.h"

#include <stdexcept>

namespace catlip::shards {

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t derive_seed(uint64_t seed, std::initializer_list<uint64_t> parts) {
  uint64_t h = mix64(seed);
  for (uint64_t p : parts) h = mix64(h ^ mix64(p + 0x632BE59BD9B4E019ull));
  return h;
}

uint64_t Rng::below(uint64_t n) {
  // Rejection sampling removes the modulo bias.
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = next();
  while (x >= limit);
  return x % n;
}

std::vector<int64_t> assign_shards(int64_t num_shards, int64_t epoch, const AssignOptions& o) {
  std::vector<int64_t> order(num_shards);
  for (int64_t i = 0; i < num_shards; ++i) order[i] = i;
  if (o.shuffle) {
    Rng rng(derive_seed(o.seed, {0x5348415244ull /* "SHARD" */, static_cast<uint64_t>(epoch)}));
    for (int64_t i = num_shards - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  }
  std::vector<int64_t> mine;
  int64_t r = 0;  // position within this rank's part
  for (int64_t i = 0; i < num_shards; ++i) {
    if (i % o.world_size != o.rank) continue;
    if (r++ % o.replicas == o.replica) mine.push_back(order[i]);
  }
  return mine;
}

std::string format_position(const Position& p) {
  return std::to_string(p.epoch) + ":" + std::to_string(p.shard) + ":" + std::to_string(p.sample);
}
std::string format_position(const Origin& o) { return format_position(Position{o.epoch, o.shard, o.index}); }

std::optional<Position> parse_position(const std::string& s) {
  if (s.empty()) return std::nullopt;
  Position p;
  int64_t* dst[3] = {&p.epoch, &p.shard, &p.sample};
  size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    size_t colon = s.find(':', start);
    if ((i < 2) != (colon != std::string::npos))
      throw std::invalid_argument("bad position '" + s + "': expected EPOCH:SHARD:SAMPLE");
    std::string part = s.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (part.empty() || part.size() > 18 || part.find_first_not_of("0123456789") != std::string::npos)
      throw std::invalid_argument("bad position '" + s + "': expected EPOCH:SHARD:SAMPLE (non-negative integers)");
    *dst[i] = std::stoll(part);
    start = colon + 1;
  }
  return p;
}

}  // namespace catlip::shards
