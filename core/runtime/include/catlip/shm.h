// catlip/shm.h - shared-memory payloads for node-local links.
//
// A producer that feeds consumers on its own host owns one bounded pool: a
// memfd (memfd_create, close-on-exec, sealed against resizing; no name in
// /dev/shm) of `shm_mb`, mapped read-write by it alone. A large field is
// copied into an extent of the pool once, and the link carries a
// 64-byte descriptor instead of the bytes: pool nonce, pid and fd to open it
// by, offset, length and generation. A stage can also write a field into
// the pool in place (Emitter::allocate -> Producer::allocate -> reserve), so
// it is never copied at all. A consumer on the same host opens the
// pool through /proc/<pid>/fd/<fd> (same user: the kernel's ptrace read
// check), checks the link names the expected memfd (its nonce) and maps it
// read-only, once per pool; a field is then a Blob viewing the mapping, with
// no copy. A stage that forwards such a field unchanged forwards a
// descriptor naming its own open fd of the same pool (the origin may have
// died by then), so the bytes are never copied on one host.
//
// Lifetime: an extent is freed when the last Blob viewing it in the producer
// goes, which is when every consumer group has acknowledged the item
// (acknowledgements wait for the consumer to drop its views, and for a
// transform until what it emitted is acknowledged). A memfd disappears when
// the last process holding it (an fd or a mapping) exits, so nothing outlives
// the processes of a run, whatever kills them.
//
// Every extent starts with a 64-byte header (magic, generation, length); a
// consumer refuses a descriptor whose bounds, header or generation do not
// match: a stale or forged descriptor is an error naming the peer, never an
// out-of-bounds read.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "catlip/blob.h"

namespace catlip::shm {

constexpr size_t kDescriptorBytes = 64;
constexpr size_t kExtentHeader = 64;
constexpr size_t kDefaultThreshold = 64 << 10;
constexpr size_t kDefaultPoolBytes = size_t{64} << 20;

struct Descriptor {
  uint64_t nonce[2] = {0, 0};  // the pool (random, in the memfd's name)
  int32_t pid = 0, fd = -1;    // a process holding the pool open, and its fd
  uint64_t offset = 0, length = 0, generation = 0;
};
std::string encode_descriptor(const Descriptor& d);
// A frame of kDescriptorBytes starting with the descriptor magic.
bool is_descriptor(const void* data, size_t size);
bool decode_descriptor(const void* data, size_t size, Descriptor& d);

// One pool mapped in this process: its own (read-write) or a peer's (read-only).
struct Mapping {
  uint64_t nonce[2] = {0, 0};
  int fd = -1;
  char* base = nullptr;
  size_t size = 0;
  int owner_pid = 0;  // the pid it was opened through (a peer's pool)
  ~Mapping();
};

struct PoolState;

// The bytes a shared-memory Blob views: an extent of this process's pool
// (freed when the last view goes), or of a peer's pool, held by `lease` (the
// consumer's: its item is acknowledged once every lease holder is gone).
struct View : BlobHolder {
  std::shared_ptr<const Mapping> map;
  std::shared_ptr<PoolState> pool;  // own pool: the extent goes back to it
  std::shared_ptr<const void> lease;
  uint64_t offset = 0, length = 0, generation = 0, extent = 0;
  ~View() override;
};

// The producer's pool. Thread-safe.
class Pool {
 public:
  // Creates the memfd of `bytes` (rounded up to pages); `tag` goes into its
  // name (visible in /proc/<pid>/fd) after the nonce. Throws std::runtime_error.
  Pool(size_t bytes, const std::string& tag);
  // Copies n bytes into a free extent: a Blob viewing it. False when no free
  // extent is large enough now (the caller waits for acknowledgements).
  bool put(const char* data, size_t n, Blob& out);
  // A free extent of n bytes as a writable Blob (Blob::writable) to fill in
  // place; false when none is free now.
  bool reserve(size_t n, Blob& out);
  // Whether n bytes can ever fit.
  bool fits(size_t n) const;
  size_t capacity() const;
  size_t in_use() const;  // bytes of extents not yet freed, headers included
  const Mapping& mapping() const;
  std::string name() const;  // the memfd's name

 private:
  std::shared_ptr<PoolState> st_;
};

// The descriptor that lets a peer on this host map the bytes of `b`: true
// when b is a shared-memory view (of this process's pool or a peer's).
bool describe(const Blob& b, Descriptor& d);

// Maps the bytes a peer's descriptor names (pools are opened once and
// cached). The Blob holds `lease`. False with `error` set for a descriptor
// that does not name a live catlip pool, or bounds or a generation that do
// not match.
bool open_view(const Descriptor& d, std::shared_ptr<const void> lease, Blob& out, std::string& error);

// Closes cached peer pools that no view uses and whose process is gone.
void sweep_peer_pools();
// Peer pools mapped by this process now (tests).
size_t peer_pools();

}  // namespace catlip::shm
