#include "catlip/transport.h"

#include <algorithm>
#include <cstring>

namespace catlip {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string control_bytes(MsgKind kind, int64_t value, const std::string& text) {
  Message m;
  m.kind = kind;
  m.value = value;
  m.text = text;
  return encode(m);
}

// Hands the string's buffer to ZeroMQ without copying.
zmq::message_t to_zmq(std::string&& s) {
  auto* heap = new std::string(std::move(s));
  return zmq::message_t(heap->data(), heap->size(),
                        [](void*, void* hint) { delete static_cast<std::string*>(hint); }, heap);
}

bool stopped(const std::atomic<bool>* s) { return s && s->load(std::memory_order_relaxed); }

// zmq::poll, with a signal (EINTR) treated as "nothing ready": the caller's
// loop then sees the stop flag the signal handler set.
int poll_items(zmq::pollitem_t* items, size_t n, int timeout_ms) {
  try {
    return zmq::poll(items, n, std::chrono::milliseconds(timeout_ms));
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return 0;
    throw;
  }
}

// Blocking receive of the next frame of a multipart message already queued.
void recv_part(zmq::socket_t& s, zmq::message_t& m) {
  for (;;) {
    try {
      (void)s.recv(m);
      return;
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
  }
}

}  // namespace

// ---------------------------------------------------------------- Producer

Producer::Producer(zmq::context_t& ctx, const std::vector<std::string>& endpoints, std::vector<ConsumerGroup> groups,
                   const std::atomic<bool>* stop, int listen_fd, const std::string& curve_secret)
    : sock_(ctx, zmq::socket_type::router), groups_(std::move(groups)), stop_(stop) {
  // Unknown/disconnected peers are an error, not a silent drop.
  sock_.set(zmq::sockopt::router_mandatory, 1);
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
}

// A Hello is taken only from an identity of the plan ("<stage>#<i>" with i a
// member of a consumer group), sent from the routing id it names, once, and
// over CURVE only by the stage the ZAP handler authenticated.
bool Producer::accept_hello(const std::string& pid, const Message& m, const char* user_id, int& group) {
  group = -1;
  auto hash = m.text.rfind('#');
  if (hash == std::string::npos || m.text != pid || m.value < 0) return false;
  std::string stage = m.text.substr(0, hash), idx = m.text.substr(hash + 1);
  if (idx.empty() || idx.size() > 9 || idx.find_first_not_of("0123456789") != std::string::npos) return false;
  int replica = std::stoi(idx);
  if (user_id && stage != user_id) return false;
  for (size_t i = 0; i < groups_.size(); ++i)
    if (groups_[i].stage == stage &&
        std::find(groups_[i].members.begin(), groups_[i].members.end(), replica) != groups_[i].members.end())
      group = static_cast<int>(i);
  if (group < 0) return false;
  auto [it, fresh] = claimed_.emplace(m.text, pid);
  return fresh || it->second == pid;
}

Producer::~Producer() = default;

void Producer::poll_control(int timeout_ms) {
  zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
  if (poll_items(&item, 1, timeout_ms) <= 0) return;
  for (;;) {
    zmq::message_t id, body;
    auto r = sock_.recv(id, zmq::recv_flags::dontwait);
    if (!r) return;
    if (!id.more()) continue;
    recv_part(sock_, body);
    while (body.more()) {  // ignore extra frames
      zmq::message_t extra;
      recv_part(sock_, extra);
      body = std::move(extra);
    }
    Message m;
    if (!decode(body.data(), body.size(), m, 1 << 16).ok) continue;
    std::string pid = id.to_string();
    if (m.kind == MsgKind::Hello) {
      // text = "<stage>#<replica>", value = initial credit
      int g = -1;
      if (!accept_hello(pid, m, zmq_msg_gets(body.handle(), "User-Id"), g)) {
        rejected_++;
        continue;
      }
      auto& p = peers_[pid];
      if (!p) {
        p = std::make_unique<Peer>();
        p->id = pid;
        p->group = g;
        by_group_[g].push_back(p.get());
      }
      add_credit(*p, m.value);
    } else if (m.kind == MsgKind::Credit) {
      auto it = peers_.find(pid);
      if (it != peers_.end()) add_credit(*it->second, m.value);
    } else if (m.kind == MsgKind::EndOfStream) {
      // The consumer has everything we sent, end of stream included.
      auto it = peers_.find(pid);
      if (it != peers_.end() && !it->second->acked) {
        it->second->acked = true;
        acks_++;
      }
    }
  }
}

void Producer::add_credit(Peer& p, int64_t n) {
  if (n <= 0) return;
  int cap = groups_[size_t(p.group)].prefetch;
  int64_t limit = cap > 0 ? cap : kDefaultCreditCap;
  p.credit = std::min(limit, p.credit + std::min(n, limit));
}

bool Producer::send(std::string&& encoded, std::vector<std::string>&& attachments) {
  // Choose a consumer in every group first, then send, so that a copy is made
  // only when several stages consume this one.
  std::vector<Peer*> chosen(groups_.size(), nullptr);
  auto t0 = Clock::now();
  bool waited = false;
  // Incoming credits are read only every few sends or when credit runs out:
  // a syscall per item would cost more than the balancing gains.
  if ((sent_ & 7) == 0) poll_control(0);
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (;;) {
      Peer* best = nullptr;
      auto& peers = by_group_[g];
      // Most credit wins (least busy); rotate the start for ties.
      for (size_t k = 0; k < peers.size(); ++k) {
        Peer* p = peers[(rr_[g] + k) % peers.size()];
        if (p->credit > 0 && (!best || p->credit > best->credit)) best = p;
      }
      if (best) {
        chosen[g] = best;
        rr_[g]++;
        break;
      }
      if (stopped(stop_)) return false;
      waited = true;
      poll_control(50);
    }
  }
  if (waited) blocked_s_ += since(t0);
  for (size_t g = 0; g < groups_.size(); ++g) {
    Peer* p = chosen[g];
    bool last_group = g + 1 == groups_.size();
    // Only the last group gets the original buffers; earlier ones get copies.
    auto frame = [&](std::string& s) {
      if (last_group) return to_zmq(std::move(s));
      return zmq::message_t(s.data(), s.size());
    };
    try {
      sock_.send(zmq::buffer(p->id), zmq::send_flags::sndmore);
      zmq::message_t head = frame(encoded);
      sock_.send(head, attachments.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore);
      for (size_t i = 0; i < attachments.size(); ++i) {
        zmq::message_t a = frame(attachments[i]);
        sock_.send(a, i + 1 == attachments.size() ? zmq::send_flags::none : zmq::send_flags::sndmore);
      }
    } catch (const zmq::error_t& e) {
      throw TransportError("consumer " + p->id + " of stage " + groups_[g].stage +
                           " is gone: " + e.what());
    }
    p->credit--;
  }
  sent_++;
  return true;
}

bool Producer::all_connected() const {
  for (size_t g = 0; g < groups_.size(); ++g)
    if (static_cast<int>(by_group_[g].size()) < groups_[g].replicas) return false;
  return true;
}

bool Producer::finish() {
  while (!all_connected()) {
    if (stopped(stop_)) return false;
    poll_control(50);
  }
  std::string eos = control_bytes(MsgKind::EndOfStream, 0, "");
  for (auto& [id, p] : peers_) {
    try {
      sock_.send(zmq::buffer(id), zmq::send_flags::sndmore);
      sock_.send(zmq::buffer(eos), zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      throw TransportError("consumer " + id + " is gone at end of stream: " + e.what());
    }
  }
  // Wait for every consumer to acknowledge end of stream before the socket
  // may close: with tcp, ZeroMQ can drop messages still queued when a
  // ROUTER socket closes, linger notwithstanding (seen with libzmq 4.3.4).
  while (acks_ < peers_.size()) {
    if (stopped(stop_)) return false;
    poll_control(50);
  }
  return true;
}

// ---------------------------------------------------------------- Consumer

Consumer::Consumer(zmq::context_t& ctx, const std::vector<std::string>& upstreams,
                   const std::string& identity, int prefetch, const std::atomic<bool>* stop,
                   size_t max_message_bytes, const CurveClientOptions* curve)
    : eos_(upstreams.size(), false),
      owed_(upstreams.size(), 0),
      credit_batch_(std::max(1, prefetch / 4)),
      stop_(stop),
      max_bytes_(max_message_bytes) {
  static std::atomic<uint64_t> monitor_seq{0};
  for (size_t u = 0; u < upstreams.size(); ++u) {
    const std::string& ep = upstreams[u];
    auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    s->set(zmq::sockopt::routing_id, identity);
    s->set(zmq::sockopt::linger, 1000);
    s->set(zmq::sockopt::rcvhwm, 100000);
    // No frame may exceed the message limit (ZeroMQ drops the connection).
    s->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(max_message_bytes));
    const bool tcp = ep.rfind("tcp://", 0) == 0;
    if (tcp && curve && u < curve->server_keys.size() && !curve->server_keys[u].empty()) {
      s->set(zmq::sockopt::curve_serverkey, curve->server_keys[u]);
      s->set(zmq::sockopt::curve_publickey, curve->client.public_z85);
      s->set(zmq::sockopt::curve_secretkey, curve->client.secret_z85);
    }
    std::unique_ptr<zmq::socket_t> mon;
    if (tcp) {
      // Handshake events tell a peer that is not there from one that is
      // slow, and a refused key from a silent timeout.
      std::string addr = "inproc://catlip-mon-" + std::to_string(monitor_seq++) + "-" + identity;
      int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                   ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
      if (zmq_socket_monitor(s->handle(), addr.c_str(), events) == 0) {
        mon = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::pair);
        mon->set(zmq::sockopt::linger, 0);
        mon->connect(addr);
      }
    }
    monitors_.push_back(std::move(mon));
    endpoints_.push_back(ep);
    connected_.push_back(monitors_.back() == nullptr);
    reported_.push_back(false);
    handshake_failures_.push_back(0);
    handshake_error_.push_back("");
    try {
      s->connect(ep);
    } catch (const zmq::error_t& e) {
      throw TransportError("cannot connect to " + ep + ": " + e.what());
    }
    // ZeroMQ queues this until the connection is up, so order is preserved.
    std::string hello = control_bytes(MsgKind::Hello, std::max(1, prefetch), identity);
    s->send(zmq::buffer(hello), zmq::send_flags::none);
    socks_.push_back(std::move(s));
  }
}

Consumer::~Consumer() {
  for (size_t i = 0; i < socks_.size(); ++i)
    if (monitors_[i]) zmq_socket_monitor(socks_[i]->handle(), nullptr, 0);
}

namespace {
std::string protocol_error_text(int32_t v) {
  if (v == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
    return "security mechanism mismatch (one side uses CURVE, the other not: are both from the same run?)";
  if (v == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) return "cryptographic error (wrong key)";
  return "protocol error " + std::to_string(v);
}
}  // namespace

void Consumer::read_monitors() {
  for (size_t i = 0; i < monitors_.size(); ++i) {
    if (!monitors_[i] || connected_[i]) continue;
    for (;;) {
      zmq::message_t ev;
      if (!monitors_[i]->recv(ev, zmq::recv_flags::dontwait)) break;
      if (ev.size() >= 6) {
        uint16_t event;
        int32_t value;
        std::memcpy(&event, ev.data(), 2);
        std::memcpy(&value, static_cast<const char*>(ev.data()) + 2, 4);
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
          connected_[i] = true;
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
          handshake_failures_[i] = 1000;
          handshake_error_[i] = "it refused this replica's key (ZAP status " + std::to_string(value) +
                                "): not a member of that producer's run";
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
          handshake_failures_[i] = 1000;  // ZeroMQ does not retry after a protocol error
          handshake_error_[i] = protocol_error_text(value);
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
          handshake_failures_[i]++;
          if (handshake_error_[i].empty())
            handshake_error_[i] = "it closed the connection during the handshake (wrong server key, or not a catlip "
                                  "producer of this run)";
        }
      }
      while (ev.more()) (void)monitors_[i]->recv(ev, zmq::recv_flags::dontwait);
    }
  }
}

void Consumer::check_handshakes() {
  read_monitors();
  for (size_t i = 0; i < socks_.size(); ++i)
    if (!connected_[i] && handshake_failures_[i] >= 3)
      throw TransportError("cannot connect to upstream " + endpoints_[i] + ": " + handshake_error_[i]);
}

std::vector<std::string> Consumer::newly_unreachable(double after_s) {
  std::vector<std::string> out;
  if (since(started_) < after_s) return out;
  read_monitors();
  for (size_t i = 0; i < socks_.size(); ++i)
    if (!connected_[i] && !reported_[i] && !eos_[i]) {
      reported_[i] = true;
      out.push_back(endpoints_[i]);
    }
  return out;
}

void Consumer::grant(size_t upstream, int64_t n) {
  if (eos_[upstream]) return;
  std::string c = control_bytes(MsgKind::Credit, n, "");
  socks_[upstream]->send(zmq::buffer(c), zmq::send_flags::dontwait);
}

void Consumer::drain(int timeout_ms) {
  std::vector<zmq::pollitem_t> items;
  for (auto& s : socks_) items.push_back({s->handle(), 0, ZMQ_POLLIN, 0});
  if (poll_items(items.data(), items.size(), timeout_ms) <= 0) return;
  for (size_t i = 0; i < socks_.size(); ++i) {
    if (!(items[i].revents & ZMQ_POLLIN)) continue;
    for (;;) {
      zmq::message_t m;
      if (!socks_[i]->recv(m, zmq::recv_flags::dontwait)) break;
      Pending p{i, {}};
      bool more = m.more();
      p.frames.push_back(std::move(m));
      // The rest of a multipart message is already here (atomic delivery).
      while (more) {
        zmq::message_t part;
        recv_part(*socks_[i], part);
        more = part.more();
        p.frames.push_back(std::move(part));
      }
      queue_.push_back(std::move(p));
    }
  }
}

void Consumer::return_credit(bool all) {
  for (size_t u = 0; u < owed_.size(); ++u)
    if (owed_[u] > 0 && (all || owed_[u] >= credit_batch_)) {
      grant(u, owed_[u]);
      owed_[u] = 0;
    }
}

Consumer::Next Consumer::next(Message& out) {
  if (last_ >= 0) {
    owed_[static_cast<size_t>(last_)]++;
    last_ = -1;
  }
  // Credits go back in small batches, and all of them before we wait.
  return_credit(queue_.empty());
  auto t0 = Clock::now();
  bool waited = false;
  for (;;) {
    if (queue_.empty()) drain(0);
    while (!queue_.empty()) {
      Pending p = std::move(queue_.front());
      queue_.pop_front();
      Message m;
      std::vector<Span> att;
      for (size_t k = 1; k < p.frames.size(); ++k) att.push_back(Span{p.frames[k].data(), p.frames[k].size()});
      auto r = decode(p.frames[0].data(), p.frames[0].size(), m, max_bytes_, att);
      if (!r.ok) {
        bad_++;
        last_error_ = r.error;
        grant(p.upstream, 1);  // the producer spent a credit on it
        continue;
      }
      if (m.kind == MsgKind::EndOfStream) {
        if (!eos_[p.upstream]) {
          // Outstanding credits are moot now; acknowledge the end instead.
          owed_[p.upstream] = 0;
          std::string ack = control_bytes(MsgKind::EndOfStream, 0, "");
          socks_[p.upstream]->send(zmq::buffer(ack), zmq::send_flags::dontwait);
          eos_[p.upstream] = true;
          n_eos_++;
        }
        continue;
      }
      if (m.kind != MsgKind::Sample && m.kind != MsgKind::Batch) continue;
      received_++;
      last_ = static_cast<long>(p.upstream);
      out = std::move(m);
      if (waited) waited_s_ += since(t0);
      return Next::Item;
    }
    if (n_eos_ == socks_.size()) {
      if (waited) waited_s_ += since(t0);
      return Next::End;
    }
    if (stopped(stop_)) return Next::Stopped;
    return_credit(true);
    waited = true;
    check_handshakes();
    if (on_unreachable)
      for (auto& ep : newly_unreachable(unreachable_after_s)) on_unreachable(ep);
    drain(50);
  }
}

}  // namespace catlip
