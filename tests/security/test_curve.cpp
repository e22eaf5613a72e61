// CURVE on tcp links, the ZAP handler and the producer's Hello rules, in one
// process over real tcp sockets on loopback.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "catlip/security.h"
#include "catlip/transport.h"
#include "test_util.h"

using namespace catlip;
using Clock = std::chrono::steady_clock;

namespace {

std::string item(int i) {
  Sample s;
  s.key = std::to_string(i);
  s.origin.index = i;
  s.set_ints("n", {i});
  return encode_sample(s);
}

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A watchdog: sets `stop` after `limit_s` unless disarmed, so a broken
// handshake fails the test instead of hanging it.
struct Watchdog {
  std::atomic<bool>& stop;
  std::atomic<bool> done{false};
  std::thread t;
  Watchdog(std::atomic<bool>& s, double limit_s) : stop(s) {
    t = std::thread([this, limit_s] {
      auto t0 = Clock::now();
      while (!done && since(t0) < limit_s) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (!done) stop = true;
    });
  }
  ~Watchdog() {
    done = true;
    t.join();
  }
};

}  // namespace

TEST_CASE("curve: keys are z85, distinct per call, and derived keys depend on secret and role") {
  auto a = curve_keypair(), b = curve_keypair();
  CHECK(a.public_z85.size() == 40);
  CHECK(a.secret_z85.size() == 40);
  CHECK(a.public_z85 != b.public_z85);
  auto c1 = curve_keypair_from_secret("a long shared cluster secret", "coordinator");
  auto c2 = curve_keypair_from_secret("a long shared cluster secret", "coordinator");
  auto n1 = curve_keypair_from_secret("a long shared cluster secret", "node");
  auto o1 = curve_keypair_from_secret("another long cluster secret", "coordinator");
  CHECK(c1.public_z85 == c2.public_z85);
  CHECK(c1.public_z85 != n1.public_z85);
  CHECK(c1.public_z85 != o1.public_z85);
  // The public key is the one libzmq derives from the secret.
  char pub[41];
  REQUIRE(zmq_curve_public(pub, c1.secret_z85.c_str()) == 0);
  CHECK(std::string(pub) == c1.public_z85);
}

TEST_CASE("curve: a key table withholds other stages' secrets and names a bad line") {
  RunKeys k;
  k.stages["decode"] = curve_keypair();
  k.stages["train"] = curve_keypair();
  RunKeys back = run_keys_from_text(run_keys_to_text(k, {"decode"}));
  REQUIRE(back.find("decode"));
  CHECK(back.find("decode")->secret_z85 == k.stages["decode"].secret_z85);
  CHECK(back.find("train")->public_z85 == k.stages["train"].public_z85);
  CHECK(back.find("train")->secret_z85.empty());
  CHECK_THROWS_WITH(run_keys_from_text("# c\ndecode short -\n"), Catch::Contains("line 2"));
  catlip::test::TempDir dir("keys");
  std::string f = dir.file("keys.decode");
  write_key_file(f, run_keys_to_text(k, {"decode"}));
  struct stat st {};
  REQUIRE(::stat(f.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(read_private_file(f).find(k.stages["decode"].secret_z85) != std::string::npos);
  ::chmod(f.c_str(), 0644);
  CHECK_THROWS_WITH(read_private_file(f), Catch::Contains("readable by others"));
}

TEST_CASE("curve: an authenticated link delivers every item, the ZAP handler admitting the stage") {
  zmq::context_t ctx(1);
  std::atomic<bool> stop{false};
  auto server = curve_keypair(), client = curve_keypair();
  ZapHandler zap(ctx);
  zap.allow(client.public_z85, "c");
  Producer p(ctx, std::vector<std::string>{"tcp://127.0.0.1:0"}, {{"c", 1}}, &stop, -1, server.secret_z85);
  CurveClientOptions co{client, {server.public_z85}};
  std::atomic<int> got{0};
  Watchdog wd(stop, 20);
  std::thread t([&] {
    Consumer c(ctx, {p.endpoint()}, "c#0", 4, &stop, kDefaultMaxMessageBytes, &co);
    Message m;
    while (c.next(m) == Consumer::Next::Item) got++;
  });
  for (int i = 0; i < 200; ++i) p.send(item(i));
  CHECK(p.finish());
  t.join();
  CHECK(got == 200);
  CHECK(zap.admitted() >= 1);
  CHECK(zap.refused() == 0);
}

TEST_CASE("curve: a consumer whose key is not admitted fails within seconds, named") {
  zmq::context_t ctx(1);
  std::atomic<bool> stop{false};
  auto server = curve_keypair(), member = curve_keypair(), stranger = curve_keypair();
  ZapHandler zap(ctx);
  zap.allow(member.public_z85, "c");
  std::atomic<int> told{0};
  zap.on_refused = [&](const std::string& addr, const std::string&) {
    if (addr == "127.0.0.1") told++;
  };
  Producer p(ctx, std::vector<std::string>{"tcp://127.0.0.1:0"}, {{"c", 1}}, &stop, -1, server.secret_z85);
  CurveClientOptions co{stranger, {server.public_z85}};
  Watchdog wd(stop, 20);
  Consumer c(ctx, {p.endpoint()}, "c#0", 4, &stop, kDefaultMaxMessageBytes, &co);
  Message m;
  auto t0 = Clock::now();
  CHECK_THROWS_WITH(c.next(m), Catch::Contains(p.endpoint()) && Catch::Contains("refused this replica's key"));
  CHECK(since(t0) < 10);
  CHECK(zap.refused() >= 1);
  CHECK(told == 1);  // once per address, however often it retries
}

TEST_CASE("curve: a consumer with the wrong server key fails within seconds, named") {
  zmq::context_t ctx(1);
  std::atomic<bool> stop{false};
  auto server = curve_keypair(), other = curve_keypair(), member = curve_keypair();
  ZapHandler zap(ctx);
  zap.allow(member.public_z85, "c");
  Producer p(ctx, std::vector<std::string>{"tcp://127.0.0.1:0"}, {{"c", 1}}, &stop, -1, server.secret_z85);
  CurveClientOptions co{member, {other.public_z85}};
  Watchdog wd(stop, 20);
  Consumer c(ctx, {p.endpoint()}, "c#0", 4, &stop, kDefaultMaxMessageBytes, &co);
  Message m;
  auto t0 = Clock::now();
  CHECK_THROWS_WITH(c.next(m), Catch::Contains(p.endpoint()) && Catch::Contains("handshake"));
  CHECK(since(t0) < 10);
}

TEST_CASE("curve: a plain consumer against a CURVE producer fails with a mechanism mismatch") {
  zmq::context_t ctx(1);
  std::atomic<bool> stop{false};
  auto server = curve_keypair();
  ZapHandler zap(ctx);
  Producer p(ctx, std::vector<std::string>{"tcp://127.0.0.1:0"}, {{"c", 1}}, &stop, -1, server.secret_z85);
  Watchdog wd(stop, 20);
  Consumer c(ctx, {p.endpoint()}, "c#0", 4, &stop);
  Message m;
  CHECK_THROWS_WITH(c.next(m), Catch::Contains("mechanism mismatch"));
}

TEST_CASE("transport: Hello is taken only from the plan's identities, once, and credit is capped") {
  zmq::context_t ctx(1);
  std::atomic<bool> stop{false};
  // Consumer replicas 2 and 3 of stage c read this producer (node-local
  // routing); prefetch 4.
  Producer p(ctx, std::vector<std::string>{"tcp://127.0.0.1:0"}, {ConsumerGroup{"c", 2, {2, 3}, 4}}, &stop);
  auto rogue = [&](const std::string& id, const std::string& claim, int64_t credit) {
    auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    s->set(zmq::sockopt::routing_id, id);
    s->set(zmq::sockopt::linger, 0);
    s->connect(p.endpoint());
    Message h;
    h.kind = MsgKind::Hello;
    h.value = credit;
    h.text = claim;
    s->send(zmq::buffer(encode(h)), zmq::send_flags::none);
    return s;
  };
  // Outside the plan: another stage, a replica index not routed here, an
  // identity that differs from the routing id, garbage.
  auto r1 = rogue("thief#0", "thief#0", 1000000);
  auto r2 = rogue("c#0", "c#0", 1000000);
  auto r3 = rogue("x", "c#2", 1000000);
  auto r4 = rogue("c#99999999999", "c#99999999999", 5);
  // A member, claiming a million credits: it gets the cap (4).
  auto member = rogue("c#2", "c#2", 1000000);
  std::atomic<int> got{0};
  Watchdog wd(stop, 20);
  std::thread t([&] {
    Consumer c(ctx, {p.endpoint()}, "c#3", 4, &stop);
    Message m;
    while (c.next(m) == Consumer::Next::Item) got++;
  });
  // 40 items: the silent member takes at most its 4 credits; the rest go to
  // the real consumer c#3; no rogue gets any.
  for (int i = 0; i < 40; ++i) REQUIRE(p.send(item(i)));
  auto drain = [](zmq::socket_t& s) {
    int n = 0;
    zmq::message_t m;
    while (s.recv(m, zmq::recv_flags::dontwait)) n += !m.more();
    return n;
  };
  // Let the member's share arrive: it was sent before the last item.
  int member_got = 0;
  for (auto t0 = Clock::now(); since(t0) < 5 && got + member_got < 40;) {
    member_got += drain(*member);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(member_got <= 4);
  CHECK(got + member_got == 40);
  CHECK(drain(*r1) == 0);
  CHECK(drain(*r2) == 0);
  CHECK(drain(*r3) == 0);
  CHECK(drain(*r4) == 0);
  CHECK(p.rejected_hellos() == 4);
  stop = true;
  t.join();
}

namespace {
// What a HandshakeWatch or a producer told: (address, reason) pairs.
struct Told {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> lines;
  void add(const std::string& a, const std::string& r) {
    std::lock_guard<std::mutex> l(mu);
    lines.emplace_back(a, r);
  }
  int count(const std::string& addr_prefix, const std::string& reason_part) {
    std::lock_guard<std::mutex> l(mu);
    int n = 0;
    for (auto& [a, r] : lines) n += a.rfind(addr_prefix, 0) == 0 && r.find(reason_part) != std::string::npos;
    return n;
  }
};
bool wait_for(const std::function<bool()>& cond, double limit_s) {
  for (auto t0 = Clock::now(); since(t0) < limit_s; std::this_thread::sleep_for(std::chrono::milliseconds(10)))
    if (cond()) return true;
  return cond();
}
}  // namespace

TEST_CASE("curve: plain ZeroMQ peers at a CURVE port are refused at the greeting, counted and named") {
  zmq::context_t ctx(1);
  std::atomic<bool> stop{false};
  auto server = curve_keypair();
  ZapHandler zap(ctx);
  Producer p(ctx, std::vector<std::string>{"tcp://127.0.0.1:0"}, {{"c", 1}}, &stop, -1, server.secret_z85);
  Told told;
  HandshakeWatch w(ctx, p.socket(), [&](const std::string& a, const std::string& r) { told.add(a, r); });
  // Twenty plain DEALERs, each saying Hello as the consumer would.
  for (int i = 0; i < 20; ++i) {
    zmq::socket_t d(ctx, zmq::socket_type::dealer);
    d.set(zmq::sockopt::linger, 0);
    d.set(zmq::sockopt::routing_id, "c#0");
    d.connect(p.endpoint());
    Message h;
    h.kind = MsgKind::Hello;
    h.value = 1000000;
    h.text = "c#0";
    d.send(zmq::buffer(encode(h)), zmq::send_flags::dontwait);
    REQUIRE(wait_for([&] { return w.failed() >= i + 1; }, 10));
  }
  CHECK(w.failed() >= 20);  // (a DEALER may retry once before it is closed)
  CHECK(zap.refused() == 0);  // refused before ZAP: the watch is what sees them
  // Named: the peer's address (when it was still there to be asked; a
  // refusal this fast can beat the lookup) and the reason.
  CHECK(told.count("127.0.0.1:", "mechanism mismatch") >= 1);
  CHECK(told.count("", "mechanism mismatch") == int(told.lines.size()));
  CHECK(told.lines.size() <= 10);  // rate-limited: at most 10 lines a minute
}

TEST_CASE("transport: rejected Hellos are told with the peer and why, and an impersonator of a live identity is noticed") {
  zmq::context_t ctx(1);
  std::atomic<bool> stop{false};
  Producer p(ctx, std::vector<std::string>{"tcp://127.0.0.1:0"}, {ConsumerGroup{"c", 1, {0}, 4}}, &stop);
  Told rejected, watched;
  p.on_rejected = [&](const std::string& a, const std::string& r) { rejected.add(a, r); };
  HandshakeWatch w(ctx, p.socket(), [&](const std::string& a, const std::string& r) { watched.add(a, r); }, 0.5);
  p.on_heard = [&](int fd) { w.heard_from(fd); };
  auto dealer = [&](const std::string& id, const std::string& claim) {
    auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    s->set(zmq::sockopt::routing_id, id);
    s->set(zmq::sockopt::linger, 0);
    s->connect(p.endpoint());
    Message h;
    h.kind = MsgKind::Hello;
    h.value = 4;
    h.text = claim;
    s->send(zmq::buffer(encode(h)), zmq::send_flags::none);
    return s;
  };
  Watchdog wd(stop, 20);
  auto member = dealer("c#0", "c#0");
  REQUIRE(p.send(item(0)));  // blocks until the member's Hello is taken
  auto thief = dealer("thief#0", "thief#0");
  auto liar = dealer("x", "c#0");
  REQUIRE(wait_for([&] { p.service(); return p.rejected_hellos() == 2; }, 10));
  CHECK(rejected.count("127.0.0.1", "'thief#0', not a consumer of this producer") == 1);
  CHECK(rejected.count("127.0.0.1", "another routing id (impersonation)") == 1);
  // The live member's routing id, claimed again: ZeroMQ ignores the second
  // connection without a word; the watch notices it never speaks.
  auto impostor = dealer("c#0", "c#0");
  REQUIRE(wait_for([&] { p.service(); return w.silent() >= 1; }, 10));
  CHECK(watched.count("127.0.0.1:", "impersonated identity") == 1);
  CHECK(w.silent() == 1);  // the member, which spoke, is not reported
  p.on_heard = nullptr;
}
