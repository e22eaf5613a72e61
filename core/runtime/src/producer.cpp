// Producer: binds one ROUTER, balances items over the consumers that hold
// credit, keeps each item until it is acknowledged, and re-sends the items
// of a consumer that is gone or restarted.
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "catlip/transport.h"
#include "transport_internal.h"

namespace catlip {

using namespace transport_detail;

namespace {
// A routing id for a log line: printable ASCII, at most 40 characters.
std::string printable(const std::string& id) {
  std::string out;
  for (char c : id.substr(0, 40)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return id.size() > 40 ? out + "..." : out;
}
}  // namespace

Producer::Producer(zmq::context_t& ctx, const std::vector<std::string>& endpoints, std::vector<ConsumerGroup> groups,
                   const std::atomic<bool>* stop, int listen_fd, const std::string& curve_secret)
    : sock_(ctx, zmq::socket_type::router), groups_(std::move(groups)), stop_(stop) {
  // Unknown/disconnected peers are an error we see (the item goes back to
  // the group), not a silent drop.
  sock_.set(zmq::sockopt::router_mandatory, 1);
  // No ROUTER_HANDOVER: a restarted consumer replica reconnects with the
  // same identity after its predecessor's connection closed with its
  // process, and a stranger cannot take over a live consumer's identity.
  sock_.set(zmq::sockopt::linger, 10000);
  // Credits are the real bound; the HWM only guards against a buggy peer.
  sock_.set(zmq::sockopt::sndhwm, 100000);
  sock_.set(zmq::sockopt::rcvhwm, 1000);
  // Consumers send only control messages: a larger frame is hostile.
  sock_.set(zmq::sockopt::maxmsgsize, kMaxControlBytes);
  // Options are copied at bind time: plain local endpoints first, then the
  // tcp ones as CURVE servers.
  std::vector<std::string> ordered;
  for (auto& e : endpoints)
    if (e.rfind("tcp://", 0) != 0) ordered.push_back(e);
  for (auto& e : endpoints)
    if (e.rfind("tcp://", 0) == 0) ordered.push_back(e);
  bool curve_on = false;
  for (auto& endpoint : ordered) {
    bool tcp = endpoint.rfind("tcp://", 0) == 0;
    bool use_fd = listen_fd >= 0 && tcp;
    try {
      if (tcp && !curve_secret.empty() && !curve_on) {
        sock_.set(zmq::sockopt::curve_server, 1);
        sock_.set(zmq::sockopt::curve_secretkey, curve_secret);
        sock_.set(zmq::sockopt::zap_domain, "catlip");
        curve_on = true;
      }
      if (use_fd) sock_.set(zmq::sockopt::use_fd, listen_fd);
      sock_.bind(endpoint);
      if (use_fd) sock_.set(zmq::sockopt::use_fd, -1);
    } catch (const zmq::error_t& e) {
      throw TransportError("cannot bind " + endpoint + ": " + e.what());
    }
  }
  for (auto& g : groups_)
    if (g.members.empty())
      for (int r = 0; r < g.replicas; ++r) g.members.push_back(r);
  by_group_.resize(groups_.size());
  rr_.assign(groups_.size(), 0);
  redeliver_.resize(groups_.size());
  parked_.resize(groups_.size());
  parked_for_.resize(groups_.size());
  member_.resize(groups_.size());
  for (size_t g = 0; g < groups_.size(); ++g) {
    if (groups_[g].keyed_replicas <= 0) continue;
    parked_for_[g].assign(size_t(groups_[g].keyed_replicas), 0);
    member_[g].assign(size_t(groups_[g].keyed_replicas), 0);
    for (int r : groups_[g].members)
      if (r >= 0 && r < groups_[g].keyed_replicas) member_[g][size_t(r)] = 1;
  }
}

Producer::~Producer() = default;

// A Hello is taken only from an identity of the plan ("<stage>#<i>" with i a
// member of a consumer group), sent from the routing id it names, and over
// CURVE only by the stage the ZAP handler authenticated.
std::string Producer::accept_hello(const std::string& pid, const Message& m, const char* user_id, int& group) {
  group = -1;
  auto hash = m.text.rfind('#');
  if (hash == std::string::npos || m.value < 0) return "a malformed Hello";
  if (m.text != pid) return "a Hello claiming '" + m.text + "' from another routing id (impersonation)";
  std::string stage = m.text.substr(0, hash), idx = m.text.substr(hash + 1);
  if (idx.empty() || idx.size() > 9 || idx.find_first_not_of("0123456789") != std::string::npos)
    return "a Hello with a malformed identity";
  int replica = std::stoi(idx);
  if (user_id && stage != user_id)
    return "a Hello claiming '" + m.text + "' from a peer authenticated as stage '" + user_id + "' (impersonation)";
  for (size_t i = 0; i < groups_.size(); ++i)
    if (groups_[i].stage == stage &&
        std::find(groups_[i].members.begin(), groups_[i].members.end(), replica) != groups_[i].members.end())
      group = static_cast<int>(i);
  return group >= 0 ? "" : "a Hello from '" + m.text + "', not a consumer of this producer in the plan";
}

// Counts a rejected Hello or message and tells on_rejected, naming the peer.
void Producer::reject(const zmq::message_t& body, int64_t& counter, const std::string& why) {
  counter++;
  if (!on_rejected) return;
  const char* addr = zmq_msg_gets(body.handle(), "Peer-Address");
  on_rejected(addr ? addr : "", why);
}

int64_t Producer::window_for(int group, int64_t hello_credit, bool shm) const {
  const ConsumerGroup& g = groups_[size_t(group)];
  int cap = shm && g.shm_prefetch > 0 ? g.shm_prefetch : g.prefetch;
  int64_t limit = cap > 0 ? cap : kDefaultCreditCap;
  return std::max<int64_t>(1, std::min(hello_credit, limit));
}

// The items a consumer held go back to its group, oldest first, to be sent
// before anything new.
void Producer::requeue(Peer& p) {
  auto& q = redeliver_[size_t(p.group)];
  for (auto it = p.unacked.rbegin(); it != p.unacked.rend(); ++it) q.push_front(std::move(it->second));
  redelivered_ += static_cast<int64_t>(p.unacked.size());
  p.unacked.clear();
  p.credit = 0;
}

void Producer::on_hello(const std::string& pid, int group, int64_t credit, bool shm) {
  auto& p = peers_[pid];
  if (!p) {
    p = std::make_unique<Peer>();
    p->id = pid;
    p->group = group;
    p->replica = std::stoi(pid.substr(pid.rfind('#') + 1));  // accept_hello checked the form
    by_group_[size_t(group)].push_back(p.get());
  } else {
    // The same identity again: a restarted replica (a live one says Hello
    // once). What its predecessor held was not acknowledged: send it again.
    restarts_seen_++;
    requeue(*p);
    if (p->eos_acked) acks_--;
    p->eos_sent = p->eos_acked = false;
  }
  p->gone = false;
  p->shm = shm && pool_ != nullptr;
  p->window = window_for(group, credit, p->shm);
  p->credit = p->window;
}

void Producer::on_credit(Peer& p, int64_t n, const std::string& acks) {
  if (p.gone) return;
  // Flow control: credit back for processed items, never above the window.
  if (n > 0) p.credit = std::min(p.window, p.credit + std::min(n, p.window));
  // Acknowledgements: 8-byte sequence numbers of items whose effects are safe.
  for (size_t off = 0; off + 8 <= acks.size(); off += 8) {
    uint64_t seq;
    std::memcpy(&seq, acks.data() + off, 8);
    auto u = p.unacked.find(seq);
    if (u == p.unacked.end()) continue;  // unknown or already acknowledged
    auto it = pending_.find(u->second.ordinal);
    if (it != pending_.end() && --it->second <= 0) pending_.erase(it);
    p.unacked.erase(u);
  }
}

namespace {
// Whether a message came over a unix-domain (ipc) connection.
bool over_unix_socket(const zmq::message_t& m) {
  int fd = zmq_msg_get(m.handle(), ZMQ_SRCFD);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  return fd >= 0 && ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 && ss.ss_family == AF_UNIX;
}
}  // namespace

void Producer::poll_control(int timeout_ms) {
  zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
  if (poll_items(&item, 1, timeout_ms) > 0) {
    for (;;) {
      zmq::message_t id, body;
      auto r = no_eintr([&] { return sock_.recv(id, zmq::recv_flags::dontwait); });
      if (!r) break;
      if (!id.more()) continue;
      recv_part(sock_, body);
      while (body.more()) {  // ignore extra frames
        zmq::message_t extra;
        recv_part(sock_, extra);
        body = std::move(extra);
      }
      if (on_heard) on_heard(zmq_msg_get(body.handle(), ZMQ_SRCFD));
      Message m;
      if (!decode(body.data(), body.size(), m, 1 << 16).ok) continue;
      std::string pid = id.to_string();
      if (m.kind == MsgKind::Hello) {
        // text = "<stage>#<replica>", value = initial credit
        int g = -1;
        const char* user_id = zmq_msg_gets(body.handle(), "User-Id");
        if (auto why = accept_hello(pid, m, user_id, g); !why.empty()) {
          reject(body, rejected_, why);
          continue;
        }
        // id.index 1: a consumer on an ipc link (this host) that maps
        // shared-memory payloads; taken only from a connection over a unix
        // socket, never over tcp (another host, CURVE or not).
        on_hello(pid, g, m.value, m.id.index == 1 && user_id == nullptr && over_unix_socket(body));
      } else if (auto it = peers_.find(pid); it == peers_.end()) {
        reject(body, stray_, std::string("a ") + msg_kind_name(m.kind) + " message from routing id '" + printable(pid) +
                                 "', which said no accepted Hello (an identity another connection holds?)");
      } else if (m.kind == MsgKind::Credit) {
        on_credit(*it->second, m.value, m.text);
      } else if (m.kind == MsgKind::EndOfStream) {
        // The consumer has everything we sent, end of stream included.
        if (it->second->eos_sent && !it->second->eos_acked) {
          it->second->eos_acked = true;
          acks_++;
        }
      } else {
        reject(body, stray_, std::string("a ") + msg_kind_name(m.kind) + " message from consumer " + pid +
                                 ", which consumers never send");
      }
    }
  }
  pump_redeliveries();
}

void Producer::service() { poll_control(0); }

// Sends one item to one peer; false (and the item back to the group) when
// the peer is gone.
bool Producer::send_to(Peer& p, Outstanding&& item) {
  uint64_t seq = p.next_seq++;
  const Payload& pl = *item.payload;
  try {
    no_eintr([&] { return sock_.send(zmq::buffer(p.id), zmq::send_flags::sndmore); });
    no_eintr([&] { return sock_.send(zmq::buffer(&seq, sizeof seq), zmq::send_flags::sndmore); });  // the link's sequence number
    const size_t n = pl.attachments.size();
    zmq::message_t head = shared_frame(item.payload, pl.head.data(), pl.head.size());
    no_eintr([&] { return sock_.send(head, n == 0 ? zmq::send_flags::none : zmq::send_flags::sndmore); });
    for (size_t i = 0; i < n; ++i) {
      auto flags = i + 1 == n ? zmq::send_flags::none : zmq::send_flags::sndmore;
      if (p.shm && !pl.descriptors[i].empty()) {
        no_eintr([&] { return sock_.send(zmq::buffer(pl.descriptors[i]), flags); });  // copied: 64 bytes
        shm_sent_++;
      } else {
        const Blob& a = pl.attachments[i];
        zmq::message_t f = shared_frame(item.payload, a.data(), a.size());
        no_eintr([&] { return sock_.send(f, flags); });
        socket_bytes_ += static_cast<int64_t>(a.size());
      }
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != EHOSTUNREACH) throw TransportError("sending to consumer " + p.id + ": " + e.what());
    // Its process is gone: it holds nothing any more. Its items (this one
    // included) go to the others, or to its successor when it says Hello.
    p.gone = true;
    p.unacked.emplace(seq, std::move(item));
    requeue(p);
    return false;
  }
  p.credit--;
  p.unacked.emplace(seq, std::move(item));
  return true;
}

Producer::Peer* Producer::pick(size_t g) {
  Peer* best = nullptr;
  auto& peers = by_group_[g];
  // Most credit wins (least busy); rotate the start for ties.
  for (size_t k = 0; k < peers.size(); ++k) {
    Peer* p = peers[(rr_[g] + k) % peers.size()];
    if (!p->gone && !p->eos_sent && p->credit > 0 && (!best || p->credit > best->credit)) best = p;
  }
  if (best) rr_[g]++;
  return best;
}

int Producer::target(size_t g, int64_t key) const {
  int r = static_cast<int>(key % groups_[g].keyed_replicas);
  if (!member_[g][size_t(r)])
    throw TransportError("deterministic order: item " + std::to_string(key) + " belongs to " + groups_[g].stage + "#" +
                         std::to_string(r) + ", which does not read this producer (a node-local link); keyed "
                         "routing needs every replica of '" + groups_[g].stage + "' to read every upstream replica");
  return r;
}

Producer::Peer* Producer::pick_replica(size_t g, int replica) {
  for (Peer* p : by_group_[g])
    if (p->replica == replica) return !p->gone && !p->eos_sent && p->credit > 0 ? p : nullptr;
  return nullptr;  // not connected yet
}

size_t Producer::park_cap(size_t g) const {
  int64_t window = groups_[g].prefetch > 0 ? groups_[g].prefetch : 8;
  return static_cast<size_t>(kParkPerLink * window * std::max(1, groups_[g].keyed_replicas));
}

void Producer::pump_keyed(size_t g, std::deque<Outstanding>& q, std::vector<bool>& blocked) {
  for (auto it = q.begin(); it != q.end();) {
    if (it->key < 0) {  // unkeyed (re-delivered) item: any replica
      Peer* p = pick(g);
      if (!p) {
        ++it;
        continue;
      }
      Outstanding o = std::move(*it);
      it = q.erase(it);
      send_to(*p, std::move(o));
      it = q.begin();  // a failed send re-queues into redeliver_: start over
      continue;
    }
    int r = target(g, it->key);
    if (blocked[size_t(r)]) {
      ++it;
      continue;
    }
    Peer* p = pick_replica(g, r);
    if (!p) {
      blocked[size_t(r)] = true;  // keep its items in order
      ++it;
      continue;
    }
    Outstanding o = std::move(*it);
    it = q.erase(it);
    if (&q == &parked_[g]) parked_for_[g][size_t(r)]--;
    if (!send_to(*p, std::move(o))) {
      blocked[size_t(r)] = true;  // gone: its items wait in redeliver_ for its successor
      it = q.begin();
    }
  }
}

void Producer::pump_redeliveries() {
  for (size_t g = 0; g < redeliver_.size(); ++g) {
    if (groups_[g].keyed_replicas > 0) {
      // Re-delivered items first, then parked ones, each replica in order.
      std::vector<bool> blocked(size_t(groups_[g].keyed_replicas), false);
      pump_keyed(g, redeliver_[g], blocked);
      for (auto& o : redeliver_[g])
        if (o.key >= 0) blocked[size_t(target(g, o.key))] = true;
      pump_keyed(g, parked_[g], blocked);
      continue;
    }
    while (!redeliver_[g].empty()) {
      Peer* p = pick(g);
      if (!p) break;
      Outstanding item = std::move(redeliver_[g].front());
      redeliver_[g].pop_front();
      send_to(*p, std::move(item));
    }
  }
}

void Producer::enable_shm(std::shared_ptr<shm::Pool> pool, size_t threshold) {
  pool_ = std::move(pool);
  shm_threshold_ = std::max<size_t>(threshold, 1);
}

// An extent of n bytes, waiting while the pool is full (extents come back
// as consumers acknowledge). No extent freed for kPoolStallS: the consumers
// hold their views (a stage keeping many items), so the caller sends bytes
// rather than wait for them forever.
Producer::Reserve Producer::reserve(size_t n, Blob& out) {
  auto t0 = Clock::now(), progress = t0;
  size_t used = pool_->in_use();
  bool waited = false;
  Reserve r = Reserve::Ok;
  while (!pool_->reserve(n, out)) {
    if (stopped(stop_)) {
      r = Reserve::Stopped;
      break;
    }
    waited = true;
    poll_control(20);
    if (size_t u = pool_->in_use(); u < used) {
      used = u;
      progress = Clock::now();
    } else if (since(progress) > kPoolStallS) {
      shm_stalls_++;
      r = Reserve::Stalled;
      break;
    }
  }
  if (waited) blocked_s_ += since(t0);
  return r;
}

bool Producer::allocate(size_t n, Blob& out) {
  if (!pool_ || groups_.empty() || n < shm_threshold_ || !pool_->fits(n)) return false;
  return reserve(n, out) == Reserve::Ok;
}

// Large attachments into the pool (or, shared-memory views already, as they
// are: forwarded, or written in place through allocate()): each gets its
// descriptor. False if stopped while waiting for room.
bool Producer::to_pool(Payload& pl) {
  pl.descriptors.assign(pl.attachments.size(), std::string());
  if (!pool_) return true;
  for (size_t i = 0; i < pl.attachments.size(); ++i) {
    Blob& a = pl.attachments[i];
    if (a.size() < shm_threshold_) continue;
    shm::Descriptor d;
    if (!shm::describe(a, d)) {
      if (!pool_->fits(a.size())) continue;  // larger than the whole pool: bytes
      Blob view;
      Reserve r = reserve(a.size(), view);
      if (r == Reserve::Stopped) return false;
      if (r == Reserve::Stalled) continue;
      std::memcpy(view.data(), a.data(), a.size());
      shm_copied_ += static_cast<int64_t>(a.size());
      a = std::move(view);  // consumers without shared memory get the bytes from the pool
      shm::describe(a, d);
    }
    pl.descriptors[i] = shm::encode_descriptor(d);
  }
  return true;
}

bool Producer::send(std::string&& encoded, std::vector<std::string>&& attachments, int64_t key) {
  std::vector<Blob> blobs;
  blobs.reserve(attachments.size());
  for (auto& a : attachments) blobs.emplace_back(std::move(a));
  return send(std::move(encoded), std::move(blobs), key);
}

bool Producer::send(std::string&& encoded, std::vector<Blob>&& attachments, int64_t key) {
  auto pl = std::make_shared<Payload>();
  pl->head = std::move(encoded);
  pl->attachments = std::move(attachments);
  Outstanding item;
  item.ordinal = next_ordinal_++;
  item.key = key;
  if (groups_.empty()) return true;
  if (!to_pool(*pl)) return false;
  item.payload = std::move(pl);
  pending_[item.ordinal] = static_cast<int>(groups_.size());
  auto t0 = Clock::now();
  bool waited = false;
  // Incoming credits are read only every few sends or when credit runs out:
  // a syscall per item would cost more than the balancing gains.
  if ((sent_ & 7) == 0) poll_control(0);
  // Every group gets the item (sharing its buffers): one replica each.
  for (size_t g = 0; g < groups_.size(); ++g) {
    Outstanding copy = item;
    if (groups_[g].keyed_replicas > 0 && key >= 0) {
      // Keyed: parked for its replica (sent at once if it has credit); this
      // blocks only while the group's parking is full.
      const int r = target(g, key);  // a replica that cannot be reached from here fails now
      // Straight to its replica when it has credit and nothing of it waits
      // before this item (credits change only in poll_control, which
      // pumps what waits).
      auto waiting_for_r = [&] {
        if (parked_for_[g][size_t(r)] > 0) return true;
        return std::any_of(redeliver_[g].begin(), redeliver_[g].end(),
                           [&](const Outstanding& o) { return o.key >= 0 && target(g, o.key) == r; });
      };
      for (;;) {
        if (!waiting_for_r())
          if (Peer* p = pick_replica(g, r)) {
            send_to(*p, std::move(copy));  // if it is gone, the item waits in redeliver_ for its successor
            break;
          }
        if (parked_[g].size() < park_cap(g)) {
          parked_[g].push_back(std::move(copy));
          parked_for_[g][size_t(r)]++;
          break;
        }
        if (stopped(stop_)) return false;
        waited = true;
        poll_control(50);
      }
      continue;
    }
    copy.key = -1;  // balanced: a re-delivery may go to any replica
    for (;;) {
      pump_redeliveries();  // what a lost consumer held goes first
      if (redeliver_[g].empty())
        if (Peer* p = pick(g)) {
          if (send_to(*p, std::move(copy))) break;
          copy = std::move(redeliver_[g].back());  // it came back: try another
          redeliver_[g].pop_back();
          redelivered_--;
          continue;
        }
      if (stopped(stop_)) return false;
      waited = true;
      poll_control(50);
    }
  }
  if (waited) blocked_s_ += since(t0);
  sent_++;
  return true;
}

bool Producer::acked_range(uint64_t first, uint64_t last) const {
  auto it = pending_.lower_bound(first);
  return it == pending_.end() || it->first >= last;
}

bool Producer::all_connected() const {
  for (size_t g = 0; g < groups_.size(); ++g)
    if (static_cast<int>(by_group_[g].size()) < groups_[g].replicas) return false;
  return true;
}

bool Producer::finish() {
  // End of stream goes out once every consumer has said Hello and nothing
  // waits to be re-sent; then this producer stays until every consumer has
  // echoed it and every item is acknowledged, so a consumer that dies before
  // then has its items re-sent to its successor (which gets end of stream
  // again). End of stream does not wait for acknowledgements: a consumer may
  // hold an item until its siblings end (a collective across ranks).
  std::string eos = control_bytes(MsgKind::EndOfStream, 0, "");
  for (;;) {
    if (stopped(stop_)) return false;
    bool redelivering = false;
    for (auto& q : redeliver_) redelivering = redelivering || !q.empty();
    for (auto& q : parked_) redelivering = redelivering || !q.empty();
    bool ready = all_connected() && !redelivering;
    if (ready) {
      for (auto& peer : peers_) {
        const std::string& id = peer.first;  // not a structured binding: lambdas below capture it (clang)
        auto& p = peer.second;
        if (p->eos_sent || p->gone) continue;
        try {
          uint64_t seq = 0;  // end of stream is not acknowledged by number
          no_eintr([&] { return sock_.send(zmq::buffer(id), zmq::send_flags::sndmore); });
          no_eintr([&] { return sock_.send(zmq::buffer(&seq, sizeof seq), zmq::send_flags::sndmore); });
          no_eintr([&] { return sock_.send(zmq::buffer(eos), zmq::send_flags::none); });
          p->eos_sent = true;
        } catch (const zmq::error_t& e) {
          if (e.num() != EHOSTUNREACH) throw TransportError("consumer " + id + " at end of stream: " + e.what());
          p->gone = true;
        }
      }
      // Every consumer echoed end of stream (so nothing is still queued
      // when the socket closes: with tcp, ZeroMQ can drop messages still
      // queued when a ROUTER closes) and acknowledged every item.
      if (acks_ == peers_.size() && pending_.empty()) return true;
    }
    poll_control(50);
  }
}

}  // namespace catlip
