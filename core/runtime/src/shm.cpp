// The implementation of catlip/shm.h: memfd pools, descriptors and the
// cache of peer pools mapped read-only.
#include "catlip/shm.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>

namespace catlip::shm {

namespace {

constexpr char kDescMagic[8] = {'C', 'T', 'L', 'P', 'S', 'H', 'M', '1'};
constexpr uint64_t kExtentMagic = 0x5458454d48534c43ull;  // "CLSHMEXT"
constexpr char kNamePrefix[] = "catlip-shm-";

struct ExtentHeader {
  uint64_t magic, generation, length;
};

std::string hex_nonce(const uint64_t n[2]) {
  char b[33];
  std::snprintf(b, sizeof b, "%016llx%016llx", (unsigned long long)n[0], (unsigned long long)n[1]);
  return b;
}

size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

std::string errno_text() { return std::strerror(errno); }

// This process's pid, asked once (getpid is a system call, and every
// descriptor names it); a forked child asks again.
std::atomic<int> g_pid{0};
int self_pid() {
  int p = g_pid.load(std::memory_order_relaxed);
  if (p == 0) {
    static std::once_flag once;
    std::call_once(once, [] { ::pthread_atfork(nullptr, nullptr, [] { g_pid.store(0); }); });
    p = int(::getpid());
    g_pid.store(p, std::memory_order_relaxed);
  }
  return p;
}

}  // namespace

std::string encode_descriptor(const Descriptor& d) {
  std::string s(kDescriptorBytes, '\0');
  char* p = s.data();
  std::memcpy(p, kDescMagic, 8);
  std::memcpy(p + 8, d.nonce, 16);
  std::memcpy(p + 24, &d.pid, 4);
  std::memcpy(p + 28, &d.fd, 4);
  std::memcpy(p + 32, &d.offset, 8);
  std::memcpy(p + 40, &d.length, 8);
  std::memcpy(p + 48, &d.generation, 8);
  return s;
}

bool is_descriptor(const void* data, size_t size) {
  return size == kDescriptorBytes && std::memcmp(data, kDescMagic, 8) == 0;
}

bool decode_descriptor(const void* data, size_t size, Descriptor& d) {
  if (!is_descriptor(data, size)) return false;
  auto* p = static_cast<const char*>(data);
  std::memcpy(d.nonce, p + 8, 16);
  std::memcpy(&d.pid, p + 24, 4);
  std::memcpy(&d.fd, p + 28, 4);
  std::memcpy(&d.offset, p + 32, 8);
  std::memcpy(&d.length, p + 40, 8);
  std::memcpy(&d.generation, p + 48, 8);
  return true;
}

Mapping::~Mapping() {
  if (base) ::munmap(base, size);
  if (fd >= 0) ::close(fd);
}

// ---- the producer's pool ----

struct PoolState {
  std::shared_ptr<Mapping> map;
  std::string name;
  mutable std::mutex mu;
  std::map<uint64_t, uint64_t> free;  // offset -> size of free runs, coalesced
  uint64_t generation = 0;
  size_t in_use = 0;

  void release(uint64_t off, uint64_t size) {
    std::lock_guard<std::mutex> l(mu);
    in_use -= size;
    auto next = free.lower_bound(off);
    if (next != free.end() && off + size == next->first) {
      size += next->second;
      next = free.erase(next);
    }
    if (next != free.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second == off) {
        prev->second += size;
        return;
      }
    }
    free.emplace(off, size);
  }
};

View::~View() {
  if (pool) pool->release(offset - kExtentHeader, extent);
}

Pool::Pool(size_t bytes, const std::string& tag) : st_(std::make_shared<PoolState>()) {
  std::random_device rd;
  auto map = std::make_shared<Mapping>();
  map->nonce[0] = (uint64_t(rd()) << 32) ^ rd();
  map->nonce[1] = (uint64_t(rd()) << 32) ^ rd();
  map->owner_pid = int(::getpid());
  std::string name = kNamePrefix + hex_nonce(map->nonce) + (tag.empty() ? "" : "-" + tag);
  if (name.size() > 240) name.resize(240);
  size_t page = size_t(::sysconf(_SC_PAGESIZE));
  map->size = round_up(std::max<size_t>(bytes, page), page);
  map->fd = ::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (map->fd < 0) throw std::runtime_error("memfd_create: " + errno_text());
  // Mode 0600 (memfds are owner-only already); sealed so that no one can
  // shrink it under a reader's mapping (a SIGBUS) or grow it.
  ::fchmod(map->fd, 0600);
  if (::ftruncate(map->fd, off_t(map->size)) != 0) throw std::runtime_error("sizing the pool: " + errno_text());
  if (::fcntl(map->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
    throw std::runtime_error("sealing the pool: " + errno_text());
  void* p = ::mmap(nullptr, map->size, PROT_READ | PROT_WRITE, MAP_SHARED, map->fd, 0);
  if (p == MAP_FAILED) throw std::runtime_error("mapping the pool: " + errno_text());
  map->base = static_cast<char*>(p);
  st_->map = std::move(map);
  st_->name = name;
  st_->free.emplace(0, st_->map->size);
}

bool Pool::fits(size_t n) const { return round_up(n + kExtentHeader, kExtentHeader) <= st_->map->size; }
size_t Pool::capacity() const { return st_->map->size; }
size_t Pool::in_use() const {
  std::lock_guard<std::mutex> l(st_->mu);
  return st_->in_use;
}
const Mapping& Pool::mapping() const { return *st_->map; }
std::string Pool::name() const { return st_->name; }

bool Pool::put(const char* data, size_t n, Blob& out) {
  Blob w;
  if (!reserve(n, w)) return false;
  std::memcpy(w.data(), data, n);
  out = w;  // a copy: read-only
  return true;
}

bool Pool::reserve(size_t n, Blob& out) {
  uint64_t need = round_up(n + kExtentHeader, kExtentHeader), off = 0, gen = 0;
  {
    std::lock_guard<std::mutex> l(st_->mu);
    auto it = st_->free.begin();
    while (it != st_->free.end() && it->second < need) ++it;
    if (it == st_->free.end()) return false;
    off = it->first;
    uint64_t left = it->second - need;
    st_->free.erase(it);
    if (left) st_->free.emplace(off + need, left);
    st_->in_use += need;
    gen = ++st_->generation;
  }
  char* base = st_->map->base;
  ExtentHeader h{kExtentMagic, gen, n};
  std::memcpy(base + off, &h, sizeof h);
  auto v = std::make_shared<View>();
  v->map = st_->map;
  v->pool = st_;
  v->offset = off + kExtentHeader;
  v->length = n;
  v->generation = gen;
  v->extent = need;
  char* at = base + v->offset;  // before v is moved into the argument
  out = Blob::writable(at, n, std::move(v));
  return true;
}

bool describe(const Blob& b, Descriptor& d) {
  auto* v = dynamic_cast<const View*>(b.holder().get());
  if (!v || !v->map || b.data() != v->map->base + v->offset || b.size() != v->length) return false;
  std::memcpy(d.nonce, v->map->nonce, 16);
  d.pid = int32_t(self_pid());
  d.fd = v->map->fd;
  d.offset = v->offset;
  d.length = v->length;
  d.generation = v->generation;
  return true;
}

// ---- peer pools ----

namespace {

struct Registry {
  std::mutex mu;
  std::map<std::pair<uint64_t, uint64_t>, std::shared_ptr<Mapping>> pools;
};
Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: views may outlive static destruction
  return *r;
}

void sweep_locked(Registry& r, bool all_unused) {
  for (auto it = r.pools.begin(); it != r.pools.end();) {
    bool unused = it->second.use_count() == 1;
    bool dead = ::kill(it->second->owner_pid, 0) != 0 && errno == ESRCH;
    if (unused && (dead || all_unused)) it = r.pools.erase(it);
    else ++it;
  }
}

bool open_pool(const Descriptor& d, std::shared_ptr<Mapping>& out, std::string& error) {
  if (d.pid <= 0 || d.fd < 0) {
    error = "descriptor names no process";
    return false;
  }
  std::string path = "/proc/" + std::to_string(d.pid) + "/fd/" + std::to_string(d.fd);
  auto m = std::make_shared<Mapping>();
  std::memcpy(m->nonce, d.nonce, 16);
  m->owner_pid = d.pid;
  m->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (m->fd < 0) {
    error = "cannot open its pool " + path + ": " + errno_text();
    return false;
  }
  // What we opened must be the pool the descriptor names (fds are reused).
  char link[512];
  std::string self = "/proc/self/fd/" + std::to_string(m->fd);
  ssize_t n = ::readlink(self.c_str(), link, sizeof link - 1);
  std::string want = std::string("/memfd:") + kNamePrefix + hex_nonce(d.nonce);
  if (n <= 0 || std::string(link, size_t(n)).rfind(want, 0) != 0) {
    error = path + " is not the pool the descriptor names (" + want + ")";
    return false;
  }
  struct stat st;
  int seals = ::fcntl(m->fd, F_GET_SEALS);
  if (::fstat(m->fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || seals < 0 ||
      !(seals & F_SEAL_SHRINK)) {
    error = path + ": not a sealed pool";
    return false;
  }
  m->size = size_t(st.st_size);
  void* p = ::mmap(nullptr, m->size, PROT_READ, MAP_SHARED, m->fd, 0);
  if (p == MAP_FAILED) {
    error = "cannot map its pool " + path + ": " + errno_text();
    return false;
  }
  m->base = static_cast<char*>(p);
  out = std::move(m);
  return true;
}

}  // namespace

bool open_view(const Descriptor& d, std::shared_ptr<const void> lease, Blob& out, std::string& error) {
  std::shared_ptr<Mapping> m;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> l(r.mu);
    auto key = std::make_pair(d.nonce[0], d.nonce[1]);
    auto it = r.pools.find(key);
    if (it == r.pools.end()) {
      sweep_locked(r, r.pools.size() >= 64);
      if (!open_pool(d, m, error)) return false;
      r.pools.emplace(key, m);
    } else {
      m = it->second;
    }
  }
  if (d.offset < kExtentHeader || d.offset % kExtentHeader != 0 || d.length > m->size ||
      d.offset > m->size - d.length) {
    error = "descriptor out of bounds (offset " + std::to_string(d.offset) + ", length " + std::to_string(d.length) +
            ", pool of " + std::to_string(m->size) + " bytes)";
    return false;
  }
  ExtentHeader h;
  std::memcpy(&h, m->base + d.offset - kExtentHeader, sizeof h);
  if (h.magic != kExtentMagic || h.generation != d.generation || h.length != d.length) {
    error = "stale descriptor (generation " + std::to_string(d.generation) + ", the extent holds " +
            std::to_string(h.generation) + "): its extent was freed or reused";
    return false;
  }
  auto v = std::make_shared<View>();
  v->map = m;
  v->lease = std::move(lease);
  v->offset = d.offset;
  v->length = d.length;
  v->generation = d.generation;
  const char* at = m->base + d.offset;
  out = Blob::shared(at, d.length, std::move(v));
  return true;
}

void sweep_peer_pools() {
  Registry& r = registry();
  std::lock_guard<std::mutex> l(r.mu);
  sweep_locked(r, false);
}

size_t peer_pools() {
  Registry& r = registry();
  std::lock_guard<std::mutex> l(r.mu);
  return r.pools.size();
}

}  // namespace catlip::shm
