// Tests of shared-memory payloads on node-local links (catlip/shm.h): large
// fields cross an ipc link as views of the producer's pool, forwarding
// re-sends descriptors, a full pool blocks the producer, bad descriptors are
// refused naming the peer.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>

#include "catlip/shm.h"
#include "catlip/transport.h"
#include "test_util.h"

using namespace catlip;
using catlip::test::TempDir;

namespace {

constexpr size_t kBig = 150 * 1024;

std::string payload(int i) {
  std::string p(kBig, '\0');
  for (size_t k = 0; k < p.size(); ++k) p[k] = char((k * 131 + size_t(i)) & 0xff);
  std::memcpy(p.data(), &i, sizeof i);
  return p;
}

// A sample with one large field (through the pool) and one small (inline).
// (Catch's assertions are for the main thread: threads report through atomics.)
bool send_item(Producer& p, int i) {
  Message m;
  m.kind = MsgKind::Sample;
  Sample s;
  s.key = std::to_string(i);
  s.origin.index = i;
  s.set_bytes("payload", payload(i));
  s.set_bytes("small", std::string(100, 's'));
  m.id.index = i;
  m.body = std::move(s);
  std::string head;
  std::vector<Blob> att;
  encode_parts(std::move(m), head, att);
  return p.send(std::move(head), std::move(att));
}

const shm::View* view_of(const Blob& b) { return dynamic_cast<const shm::View*>(b.holder().get()); }

bool same_pool(const shm::View* v, const shm::Pool& pool) {
  return v && v->map && std::memcmp(v->map->nonce, pool.mapping().nonce, 16) == 0;
}

}  // namespace

TEST_CASE("shm: a large field crosses an ipc link as a view of the producer's pool, not over the socket") {
  TempDir dir("shm");
  std::string ep = "ipc://" + dir.file("p");
  zmq::context_t ctx(1);
  std::atomic<bool> stop{false};
  auto pool = std::make_shared<shm::Pool>(8 << 20, "test");
  Producer p(ctx, ep, {{"c", 1}, {"plain", 1}}, &stop);
  p.enable_shm(pool, 64 << 10);
  std::atomic<int> viewed{0}, intact{0}, plain_intact{0}, plain_viewed{0};
  std::atomic<int64_t> fields{0};
  std::thread mapped([&] {
    Consumer c(ctx, {ep}, "c#0", 4, &stop, kDefaultMaxMessageBytes, nullptr, /*shm=*/true);
    Message m;
    while (c.next(m) == Consumer::Next::Item) {
      auto& s = std::get<Sample>(m.body);
      const Bytes* b = s.bytes("payload");
      // The consumer's view maps the producer's pool (the same memfd).
      if (b && b->data.is_shared() && same_pool(view_of(b->data), *pool)) viewed++;
      if (b && b->data == payload(int(s.origin.index)) && s.bytes("small")->data == std::string(100, 's')) intact++;
    }
    fields = c.shm_fields();
  });
  std::thread plain([&] {  // a consumer that does not map shared memory gets the bytes
    Consumer c(ctx, {ep}, "plain#0", 4, &stop);
    Message m;
    while (c.next(m) == Consumer::Next::Item) {
      auto& s = std::get<Sample>(m.body);
      const Bytes* b = s.bytes("payload");
      if (b && view_of(b->data)) plain_viewed++;
      if (b && b->data == payload(int(s.origin.index))) plain_intact++;
    }
  });
  for (int i = 0; i < 40; ++i) REQUIRE(send_item(p, i));
  REQUIRE(p.finish());
  mapped.join();
  plain.join();
  CHECK(fields == 40);
  CHECK(viewed == 40);
  CHECK(intact == 40);
  CHECK(plain_intact == 40);
  CHECK(plain_viewed == 0);
  // One copy into the pool per item; the shm link carried descriptors only:
  // the payload bytes on the socket are the plain consumer's alone.
  CHECK(p.shm_bytes_copied() == int64_t(40 * kBig));
  CHECK(p.shm_descriptors_sent() == 40);
  CHECK(p.socket_payload_bytes() == int64_t(40 * kBig));
  // Every group acknowledged every item: every extent is free again.
  CHECK(pool->in_use() == 0);
}

TEST_CASE("shm: a field written in place (Producer::allocate) reaches the consumer with no copy at all") {
  TempDir dir("shm-alloc");
  std::string ep = "ipc://" + dir.file("p");
  zmq::context_t ctx(1);
  std::atomic<bool> stop{false};
  auto pool = std::make_shared<shm::Pool>(8 << 20, "alloc");
  Producer p(ctx, ep, {{"c", 1}}, &stop);
  // No pool yet: nothing to allocate from (the stage gets owned bytes).
  Blob none;
  CHECK_FALSE(p.allocate(kBig, none));
  p.enable_shm(pool, 64 << 10);
  CHECK_FALSE(p.allocate(1000, none));  // below the threshold: owned bytes
  std::atomic<int> viewed{0}, intact{0};
  std::thread consumer([&] {
    Consumer c(ctx, {ep}, "c#0", 4, &stop, kDefaultMaxMessageBytes, nullptr, true);
    Message m;
    while (c.next(m) == Consumer::Next::Item) {
      auto& s = std::get<Sample>(m.body);
      const Bytes* b = s.bytes("payload");
      if (b && same_pool(view_of(b->data), *pool)) viewed++;
      if (b && b->data == payload(int(s.origin.index))) intact++;
    }
  });
  for (int i = 0; i < 20; ++i) {
    Blob buf;
    REQUIRE(p.allocate(kBig, buf));
    REQUIRE(buf.is_writable());
    REQUIRE(buf.size() == kBig);
    char* at = buf.data();  // in place: the pool's bytes, not a copy
    CHECK(same_pool(view_of(buf), *pool));
    std::string want = payload(i);
    std::memcpy(at, want.data(), want.size());
    CHECK(std::as_const(buf).data() == at);
    Message m;
    m.kind = MsgKind::Sample;
    Sample s;
    s.key = std::to_string(i);
    s.origin.index = i;
    s.set_bytes("payload", std::move(buf));
    m.body = std::move(s);
    std::string head;
    std::vector<Blob> att;
    encode_parts(std::move(m), head, att);
    REQUIRE(p.send(std::move(head), std::move(att)));
  }
  REQUIRE(p.finish());
  consumer.join();
  CHECK(viewed == 20);
  CHECK(intact == 20);
  CHECK(p.shm_bytes_copied() == 0);  // never copied into the pool: written there
  CHECK(p.shm_descriptors_sent() == 20);
  CHECK(p.socket_payload_bytes() == 0);
  CHECK(pool->in_use() == 0);
}

TEST_CASE("shm: a writable Blob is written in place, its copies are read-only and a write to them copies") {
  auto pool = std::make_shared<shm::Pool>(1 << 20, "blob");
  Blob w;
  REQUIRE(pool->reserve(1000, w));
  REQUIRE(w.is_writable());
  char* at = w.data();
  at[0] = 'x';
  Blob copy = w;  // shares the extent, read-only
  CHECK(copy.is_shared());
  CHECK_FALSE(copy.is_writable());
  CHECK(std::as_const(copy).data() == at);
  copy[0] = 'y';  // copy-on-write: the pool's byte is untouched
  CHECK_FALSE(copy.is_shared());
  CHECK(at[0] == 'x');
  Blob moved = std::move(w);  // moving keeps it writable; the source is empty
  CHECK(moved.is_writable());
  CHECK(moved.data() == at);
  CHECK(w.empty());            // NOLINT(bugprone-use-after-move): checked on purpose
  CHECK_FALSE(w.is_shared());  // NOLINT(bugprone-use-after-move)
  CHECK(pool->in_use() > 0);
  moved = Blob();
  CHECK(pool->in_use() == 0);  // the last view gone: the extent is free
}

TEST_CASE("shm: a stage forwarding a field unchanged forwards the descriptor, and the extent lives until the end") {
  TempDir dir("shm-fwd");
  std::string a_ep = "ipc://" + dir.file("a"), b_ep = "ipc://" + dir.file("b");
  zmq::context_t ctx(1);
  std::atomic<bool> stop{false};
  auto pool_a = std::make_shared<shm::Pool>(8 << 20, "a");
  auto pool_b = std::make_shared<shm::Pool>(8 << 20, "b");
  Producer a(ctx, a_ep, {{"b", 1}}, &stop);
  a.enable_shm(pool_a, 64 << 10);
  std::atomic<int> from_a{0}, intact{0}, a_busy{0};
  std::atomic<bool> mid_ok{true};
  std::atomic<int64_t> b_copied{-1}, b_descriptors{-1};
  std::thread mid([&] {  // consumes a, forwards every sample unchanged to c
    Producer b(ctx, b_ep, {{"c", 1}}, &stop);
    b.enable_shm(pool_b, 64 << 10);
    Consumer in(ctx, {a_ep}, "b#0", 4, &stop, kDefaultMaxMessageBytes, nullptr, true);
    in.set_ack_gate(&b);
    Message m;
    while (in.next(m) == Consumer::Next::Item) {
      std::string head;
      std::vector<Blob> att;
      encode_parts(std::move(m), head, att);
      if (!b.send(std::move(head), std::move(att))) mid_ok = false;
    }
    if (!b.finish()) mid_ok = false;
    in.flush_acks();
    b_copied = b.shm_bytes_copied();
    b_descriptors = b.shm_descriptors_sent();
  });
  std::thread sink([&] {
    Consumer c(ctx, {b_ep}, "c#0", 4, &stop, kDefaultMaxMessageBytes, nullptr, true);
    Message m;
    while (c.next(m) == Consumer::Next::Item) {
      auto& s = std::get<Sample>(m.body);
      const Bytes* b = s.bytes("payload");
      if (b && same_pool(view_of(b->data), *pool_a)) from_a++;  // a's pool, through b's descriptor
      if (b && b->data == payload(int(s.origin.index))) intact++;
      // a's extents are still taken: c has not acknowledged yet.
      if (pool_a->in_use() > 0) a_busy++;
    }
  });
  for (int i = 0; i < 30; ++i) REQUIRE(send_item(a, i));
  REQUIRE(a.finish());
  mid.join();
  sink.join();
  CHECK(mid_ok);
  CHECK(a_busy == 30);
  CHECK(from_a == 30);
  CHECK(intact == 30);
  CHECK(b_copied == 0);  // no byte of the payloads copied by the forwarding stage
  CHECK(b_descriptors == 30);
  CHECK(pool_b->in_use() == 0);
  CHECK(pool_a->in_use() == 0);
}

TEST_CASE("shm: a full pool blocks the producer, which resumes without loss once items are acknowledged") {
  TempDir dir("shm-full");
  std::string ep = "ipc://" + dir.file("p");
  zmq::context_t ctx(1);
  std::atomic<bool> stop{false};
  // Room for 6 items of 150 KB; the consumer's credit would allow 64.
  auto pool = std::make_shared<shm::Pool>(6 * (kBig + 64) + 4096, "full");
  Producer p(ctx, ep, {{"c", 1}}, &stop);
  p.enable_shm(pool, 64 << 10);
  Consumer c(ctx, {ep}, "c#0", 64, &stop, kDefaultMaxMessageBytes, nullptr, true);
  std::atomic<int> sent{0};
  std::atomic<bool> finished{false};
  std::thread t([&] {
    for (int i = 0; i < 50; ++i) {
      if (!send_item(p, i)) return;
      sent++;
    }
    finished = p.finish();
  });
  auto wait_for = [&](int n) {
    auto t0 = std::chrono::steady_clock::now();
    while (sent.load() < n && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
      std::this_thread::yield();
    return sent.load();
  };
  REQUIRE(wait_for(6) == 6);
  auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(250)) std::this_thread::yield();
  CHECK(sent.load() == 6);  // the observation window is the assertion: the pool is full
  CHECK(pool->in_use() <= pool->capacity());
  Message m;
  std::vector<int> got;
  while (c.next(m) == Consumer::Next::Item) {
    auto& s = std::get<Sample>(m.body);
    const Bytes* b = s.bytes("payload");
    REQUIRE(b);
    CHECK(b->data == payload(int(s.origin.index)));
    got.push_back(int(s.origin.index));
  }
  c.flush_acks();
  t.join();
  CHECK(finished);
  REQUIRE(got.size() == 50);
  for (int i = 0; i < 50; ++i) CHECK(got[size_t(i)] == i);
  CHECK(p.blocked_seconds() > 0.2);
  CHECK(pool->in_use() == 0);
}

TEST_CASE("shm: a stale, out-of-bounds or foreign descriptor is refused, never read") {
  shm::Pool pool(1 << 20, "desc");
  Blob b;
  REQUIRE(pool.put(payload(7).data(), kBig, b));
  shm::Descriptor d;
  REQUIRE(shm::describe(b, d));
  std::string err;
  Blob v;
  REQUIRE(shm::open_view(d, nullptr, v, err));
  CHECK(v == payload(7));
  CHECK(v.data() != b.data());  // its own read-only mapping of the same memfd

  shm::Descriptor bad = d;
  bad.generation++;
  CHECK_FALSE(shm::open_view(bad, nullptr, v, err));
  CHECK_THAT(err, Catch::Contains("stale descriptor"));
  bad = d;
  bad.offset = pool.capacity() - 64;
  CHECK_FALSE(shm::open_view(bad, nullptr, v, err));
  CHECK_THAT(err, Catch::Contains("out of bounds"));
  bad = d;
  bad.length = ~uint64_t{0} - 10;
  CHECK_FALSE(shm::open_view(bad, nullptr, v, err));
  CHECK_THAT(err, Catch::Contains("out of bounds"));
  bad = d;
  bad.nonce[0] ^= 1;  // another pool's name: the fd is not it
  CHECK_FALSE(shm::open_view(bad, nullptr, v, err));
  CHECK_THAT(err, Catch::Contains("not the pool"));
  bad = d;
  bad.fd = 0;  // stdin: not a catlip pool
  bad.nonce[1] ^= 1;
  CHECK_FALSE(shm::open_view(bad, nullptr, v, err));
  // Freed and reused: the old descriptor is stale.
  b = Blob();
  Blob b2;
  REQUIRE(pool.put(payload(8).data(), kBig, b2));
  CHECK_FALSE(shm::open_view(d, nullptr, v, err));
  CHECK_THAT(err, Catch::Contains("stale"));
}

TEST_CASE("shm: a consumer refuses a forged descriptor naming the upstream, and goes on") {
  TempDir dir("shm-forged");
  std::string ep = "ipc://" + dir.file("p");
  zmq::context_t ctx(1);
  std::atomic<bool> stop{false};
  auto pool = std::make_shared<shm::Pool>(4 << 20, "forged");
  // A raw ROUTER that speaks the producer's protocol with a forged descriptor.
  zmq::socket_t r(ctx, zmq::socket_type::router);
  r.bind(ep);
  Consumer c(ctx, {ep}, "c#0", 4, &stop, kDefaultMaxMessageBytes, nullptr, true);
  zmq::message_t id, hello;
  REQUIRE(r.recv(id));
  REQUIRE(r.recv(hello));
  Message h;
  REQUIRE(decode(hello.data(), hello.size(), h).ok);
  CHECK(h.id.index == 1);  // says it maps shared memory
  Message m;
  m.kind = MsgKind::Sample;
  Sample s;
  s.key = "x";
  s.set_bytes("payload", payload(1));
  m.body = std::move(s);
  std::string head;
  std::vector<Blob> att;
  encode_parts(std::move(m), head, att);
  Blob good;
  REQUIRE(pool->put(att[0].data(), att[0].size(), good));
  shm::Descriptor d;
  REQUIRE(shm::describe(good, d));
  d.length += 4096;  // beyond what the extent holds
  uint64_t seq = 1;
  r.send(zmq::buffer(id.to_string()), zmq::send_flags::sndmore);
  r.send(zmq::buffer(&seq, 8), zmq::send_flags::sndmore);
  r.send(zmq::buffer(head), zmq::send_flags::sndmore);
  r.send(zmq::buffer(shm::encode_descriptor(d)), zmq::send_flags::none);
  std::string eos = encode(Message{MsgKind::EndOfStream});
  uint64_t zero = 0;
  r.send(zmq::buffer(id.to_string()), zmq::send_flags::sndmore);
  r.send(zmq::buffer(&zero, 8), zmq::send_flags::sndmore);
  r.send(zmq::buffer(eos), zmq::send_flags::none);
  Message out;
  CHECK(c.next(out) == Consumer::Next::End);
  CHECK(c.bad_messages() == 1);
  CHECK_THAT(c.last_error(), Catch::Contains(ep));
  CHECK_THAT(c.last_error(), Catch::Contains("stale descriptor"));
}

TEST_CASE("shm: a link carrying descriptors grants shm_prefetch credits, a link carrying bytes prefetch") {
  // The consumer takes nothing: the producer sends what the link's window
  // allows, then blocks. prefetch 2, shm_prefetch 6.
  for (bool shm : {true, false}) {
    DYNAMIC_SECTION((shm ? "descriptors" : "bytes")) {
      TempDir dir("shm-window");
      std::string ep = "ipc://" + dir.file("p");
      zmq::context_t ctx(1);
      std::atomic<bool> stop{false};
      auto pool = std::make_shared<shm::Pool>(16 << 20, "window");
      ConsumerGroup g{"c", 1, {}, 2};
      g.shm_prefetch = 6;
      Producer p(ctx, ep, {g}, &stop);
      p.enable_shm(pool, 64 << 10);
      Consumer c(ctx, {ep}, "c#0", 2, &stop, kDefaultMaxMessageBytes, nullptr, shm, /*shm_prefetch=*/6);
      std::atomic<int> sent{0};
      std::thread t([&] {
        for (int i = 0; i < 20; ++i) {
          if (!send_item(p, i)) return;
          sent++;
        }
      });
      const int window = shm ? 6 : 2;
      auto t0 = std::chrono::steady_clock::now();
      while (sent.load() < window && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
        std::this_thread::yield();
      REQUIRE(sent.load() == window);
      t0 = std::chrono::steady_clock::now();
      while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(250)) std::this_thread::yield();
      CHECK(sent.load() == window);  // the observation window is the assertion: no credit left
      stop = true;
      t.join();
    }
  }
}
