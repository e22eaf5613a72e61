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
                   const std::atomic<bool>* stop, int listen_fd)
    : sock_(ctx, zmq::socket_type::router), groups_(std::move(groups)), stop_(stop) {
  // Unknown/disconnected peers are an error, not a silent drop.
  sock_.set(zmq::sockopt::router_mandatory, 1);
  sock_.set(zmq::sockopt::linger, 10000);
  // Credits are the real bound; the HWM only guards against a buggy peer.
  sock_.set(zmq::sockopt::sndhwm, 100000);
  sock_.set(zmq::sockopt::rcvhwm, 100000);
  for (auto& endpoint : endpoints) {
    bool use_fd = listen_fd >= 0 && endpoint.rfind("tcp://", 0) == 0;
    try {
      if (use_fd) sock_.set(zmq::sockopt::use_fd, listen_fd);
      sock_.bind(endpoint);
      if (use_fd) sock_.set(zmq::sockopt::use_fd, -1);
    } catch (const zmq::error_t& e) {
      throw TransportError("cannot bind " + endpoint + ": " + e.what());
    }
  }
  by_group_.resize(groups_.size());
  rr_.assign(groups_.size(), 0);
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
      std::string stage = m.text.substr(0, m.text.rfind('#'));
      int g = -1;
      for (size_t i = 0; i < groups_.size(); ++i)
        if (groups_[i].stage == stage) g = static_cast<int>(i);
      if (g < 0) continue;  // not one of our consumers
      auto& p = peers_[pid];
      if (!p) {
        p = std::make_unique<Peer>();
        p->id = pid;
        p->group = g;
        by_group_[g].push_back(p.get());
      }
      p->credit += m.value;
    } else if (m.kind == MsgKind::Credit) {
      auto it = peers_.find(pid);
      if (it != peers_.end()) it->second->credit += m.value;
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
                   size_t max_message_bytes)
    : eos_(upstreams.size(), false),
      owed_(upstreams.size(), 0),
      credit_batch_(std::max(1, prefetch / 4)),
      stop_(stop),
      max_bytes_(max_message_bytes) {
  static std::atomic<uint64_t> monitor_seq{0};
  for (auto& ep : upstreams) {
    auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    s->set(zmq::sockopt::routing_id, identity);
    s->set(zmq::sockopt::linger, 1000);
    s->set(zmq::sockopt::rcvhwm, 100000);
    std::unique_ptr<zmq::socket_t> mon;
    if (ep.rfind("tcp://", 0) == 0) {
      // Handshake events tell a peer that is not there from one that is slow.
      std::string addr = "inproc://catlip-mon-" + std::to_string(monitor_seq++) + "-" + identity;
      if (zmq_socket_monitor(s->handle(), addr.c_str(), ZMQ_EVENT_HANDSHAKE_SUCCEEDED) == 0) {
        mon = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::pair);
        mon->set(zmq::sockopt::linger, 0);
        mon->connect(addr);
      }
    }
    monitors_.push_back(std::move(mon));
    endpoints_.push_back(ep);
    connected_.push_back(monitors_.back() == nullptr);
    reported_.push_back(false);
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

void Consumer::read_monitors() {
  for (size_t i = 0; i < monitors_.size(); ++i) {
    if (!monitors_[i] || connected_[i]) continue;
    for (;;) {
      zmq::message_t ev;
      if (!monitors_[i]->recv(ev, zmq::recv_flags::dontwait)) break;
      if (ev.size() >= 2) {
        uint16_t event;
        std::memcpy(&event, ev.data(), 2);
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) connected_[i] = true;
      }
      while (ev.more()) (void)monitors_[i]->recv(ev, zmq::recv_flags::dontwait);
    }
  }
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
    if (on_unreachable)
      for (auto& ep : newly_unreachable(unreachable_after_s)) on_unreachable(ep);
    drain(50);
  }
}

}  // namespace catlip
