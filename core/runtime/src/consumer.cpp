// Consumer: one DEALER per upstream producer replica; says Hello, returns
// credits as acknowledgements (held back until what it emitted for an item
// is acknowledged downstream), and says Hello again to a restarted producer.
#include <algorithm>
#include <cstring>

#include "catlip/transport.h"
#include "transport_internal.h"

namespace catlip {

using namespace transport_detail;

namespace {

std::string protocol_error_text(int32_t v) {
  if (v == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
    return "security mechanism mismatch (one side uses CURVE, the other not: are both from the same run?)";
  if (v == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) return "cryptographic error (wrong key)";
  return "protocol error " + std::to_string(v);
}

// Hello: text = identity, value = credits, id.index = 1 when this link
// takes shared-memory descriptors.
std::string hello_bytes(int64_t window, const std::string& identity, bool shm) {
  Message m;
  m.kind = MsgKind::Hello;
  m.value = window;
  m.text = identity;
  m.id.index = shm ? 1 : 0;
  return encode(m);
}

// Keeps a received frame alive for the fields that view it.
struct FrameHolder : BlobHolder {
  zmq::message_t frame;
  explicit FrameHolder(zmq::message_t&& f) : frame(std::move(f)) {}
};

}  // namespace

Consumer::Consumer(zmq::context_t& ctx, const std::vector<std::string>& upstreams, const std::string& identity,
                   int prefetch, const std::atomic<bool>* stop, size_t max_message_bytes,
                   const CurveClientOptions* curve, bool shm, int shm_prefetch)
    : identity_(identity),
      eos_(upstreams.size(), false),
      owed_(upstreams.size(), 0),
      gen_(upstreams.size(), 0),
      ack_out_(upstreams.size()),
      handshakes_(upstreams.size(), 0),
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
    if (tcp || ep.rfind("ipc://", 0) == 0) {
      // Handshake events tell a peer that is not there from one that is
      // slow, a refused key from a silent timeout, and a restarted producer
      // (a second handshake) from the first.
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
    // Only tcp upstreams are reported as unreachable.
    connected_.push_back(!tcp || monitors_.back() == nullptr);
    reported_.push_back(false);
    handshake_failures_.push_back(0);
    handshake_error_.push_back("");
    try {
      s->connect(ep);
    } catch (const zmq::error_t& e) {
      throw TransportError("cannot connect to " + ep + ": " + e.what());
    }
    // Shared-memory payloads only on ipc links: both ends on this host.
    shm_.push_back(shm && ep.rfind("ipc://", 0) == 0);
    // Its items are descriptors there: the producer's pool bounds their
    // bytes, and a deeper window saves wake-ups.
    window_.push_back(std::max(1, shm_.back() && shm_prefetch > 0 ? shm_prefetch : prefetch));
    credit_batch_.push_back(std::max<int64_t>(1, window_.back() / 4));
    // ZeroMQ queues this until the connection is up, so order is preserved.
    std::string hello = hello_bytes(window_.back(), identity, shm_.back());
    no_eintr([&] { return s->send(zmq::buffer(hello), zmq::send_flags::none); });
    socks_.push_back(std::move(s));
  }
}

Consumer::~Consumer() {
  for (size_t i = 0; i < socks_.size(); ++i)
    if (monitors_[i]) zmq_socket_monitor(socks_[i]->handle(), nullptr, 0);
}

void Consumer::read_monitors() {
  for (size_t i = 0; i < monitors_.size(); ++i) {
    if (!monitors_[i]) continue;
    for (;;) {
      zmq::message_t ev;
      if (!no_eintr([&] { return monitors_[i]->recv(ev, zmq::recv_flags::dontwait); })) break;
      if (ev.size() >= 6) {
        uint16_t event;
        int32_t value;
        std::memcpy(&event, ev.data(), 2);
        std::memcpy(&value, static_cast<const char*>(ev.data()) + 2, 4);
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
          connected_[i] = true;
          if (++handshakes_[i] > 1) on_reconnect(i);
        } else if (connected_[i] || handshakes_[i] > 0) {
          // failures after a first success: a producer going away; its
          // successor's handshake is what counts
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
      while (ev.more()) (void)no_eintr([&] { return monitors_[i]->recv(ev, zmq::recv_flags::dontwait); });
    }
  }
}

// A second handshake on one upstream: its producer replica was restarted
// (or its connection came back). The new one knows nothing of us: say Hello
// again with the whole window; what we owed the old one is moot (it re-sends
// anything unacknowledged through its own upstream).
void Consumer::on_reconnect(size_t u) {
  if (eos_[u]) return;
  reconnects_++;
  gen_[u]++;
  owed_[u] = 0;
  ack_out_[u].clear();
  if (shm_[u]) shm::sweep_peer_pools();  // the old producer's pool, once no field views it
  std::string hello = hello_bytes(window_[u], identity_, shm_[u]);
  no_eintr([&] { return socks_[u]->send(zmq::buffer(hello), zmq::send_flags::dontwait); });
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
  if (eos_[upstream]) {
    // Credits are moot after end of stream; acknowledgements still count.
    if (ack_out_[upstream].empty()) return;
    n = 0;
  }
  std::string c = control_bytes(MsgKind::Credit, n, ack_out_[upstream]);
  ack_out_[upstream].clear();
  no_eintr([&] { return socks_[upstream]->send(zmq::buffer(c), zmq::send_flags::dontwait); });
}

void Consumer::drain(int timeout_ms) {
  std::vector<zmq::pollitem_t> items;
  for (auto& s : socks_) items.push_back({s->handle(), 0, ZMQ_POLLIN, 0});
  // While we wait, acknowledgements from downstream may release ours.
  if (gate_) items.push_back({gate_->socket().handle(), 0, ZMQ_POLLIN, 0});
  if (poll_items(items.data(), items.size(), timeout_ms) <= 0) return;
  if (gate_ && (items.back().revents & ZMQ_POLLIN)) gate_->service();
  for (size_t i = 0; i < socks_.size(); ++i) {
    if (!(items[i].revents & ZMQ_POLLIN)) continue;
    for (;;) {
      zmq::message_t m;
      if (!no_eintr([&] { return socks_[i]->recv(m, zmq::recv_flags::dontwait); })) break;
      // First frame: the link's sequence number (8 bytes), then the message.
      Pending p{i, gen_[i], 0, {}};
      bool more = m.more();
      if (m.size() == 8 && more) {
        std::memcpy(&p.seq, m.data(), 8);
        recv_part(*socks_[i], m);
        more = m.more();
      }
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

// An item (or an undecodable message, which also cost a credit) is done
// with: its credit goes back now (flow control), its acknowledgement once
// the gate has acknowledged what was emitted while processing it, the
// ordinals [first, gate's next ordinal now).
void Consumer::done_with(size_t upstream, uint64_t gen, uint64_t seq, uint64_t first) {
  if (gen == gen_[upstream]) owed_[upstream]++;  // else: its producer was replaced
  if (!gate_) return;  // a sink acknowledged it when it took it (or once its views go)
  acks_.push_back(AckWait{upstream, gen, seq, first, gate_->next_ordinal(), last_lease_});
  last_lease_.reset();
}

// The attachment frames of a message as Blobs: a descriptor (from an ipc
// upstream) becomes a view of the producer's pool, any other frame is
// shared, not copied. False (with last_error_) for a descriptor refused.
bool Consumer::attachments_of(Pending& p, std::vector<Blob>& att, std::shared_ptr<const void>& lease) {
  for (size_t k = 1; k < p.frames.size(); ++k) {
    zmq::message_t& f = p.frames[k];
    if (shm_[p.upstream] && shm::is_descriptor(f.data(), f.size())) {
      shm::Descriptor d;
      shm::decode_descriptor(f.data(), f.size(), d);
      if (!lease) lease = std::make_shared<int>(0);
      Blob b;
      std::string err;
      if (!shm::open_view(d, lease, b, err)) {
        last_error_ = "shared-memory payload from upstream " + endpoints_[p.upstream] + ": " + err;
        return false;
      }
      shm_fields_++;
      att.push_back(std::move(b));
    } else {
      // (A small frame keeps its bytes inside the message object: take the
      // address once it has moved into its holder.)
      auto h = std::make_shared<FrameHolder>(std::move(f));
      const char* data = static_cast<const char*>(h->frame.data());
      size_t n = h->frame.size();
      att.push_back(Blob::shared(data, n, std::move(h)));
    }
  }
  return true;
}

// ignore_leases: at the end, once every upstream has ended: nothing new is
// written into their pools, so a view still held stays valid.
void Consumer::release_acks(bool ignore_leases) {
  if (acks_.empty()) return;
  bool serviced = false;
  for (auto it = acks_.begin(); it != acks_.end();) {
    if (!ignore_leases && !it->lease.expired()) {  // a field still views the producer's pool
      ++it;
      continue;
    }
    bool safe = !gate_ || it->first == it->last || gate_->acked_range(it->first, it->last);
    if (!safe && !serviced) {
      gate_->service();  // read downstream's acknowledgements once
      serviced = true;
      safe = gate_->acked_range(it->first, it->last);
    }
    if (!safe) {
      ++it;
      continue;
    }
    if (it->gen == gen_[it->upstream] && it->seq != 0) {
      std::string& out = ack_out_[it->upstream];
      out.append(reinterpret_cast<const char*>(&it->seq), 8);
    }
    it = acks_.erase(it);
  }
}

void Consumer::flush_acks(double timeout_s) {
  if (last_ >= 0) {
    done_with(static_cast<size_t>(last_), last_gen_, last_seq_, last_first_);
    last_ = -1;
  }
  auto t0 = Clock::now();
  for (;;) {
    release_acks(true);
    return_credit(true);
    if (acks_.empty() || stopped(stop_) || since(t0) > timeout_s) return;
    if (gate_) gate_->service();
    drain(20);
  }
}

void Consumer::return_credit(bool all) {
  release_acks();
  for (size_t u = 0; u < owed_.size(); ++u) {
    int64_t acks = static_cast<int64_t>(ack_out_[u].size() / 8);
    if ((owed_[u] > 0 || acks > 0) && (all || owed_[u] >= credit_batch_[u] || acks >= credit_batch_[u])) {
      grant(u, owed_[u]);
      owed_[u] = 0;
    }
  }
}

Consumer::Next Consumer::next(Message& out) {
  out = Message{};  // the previous item's views go (its acknowledgement waits for them)
  if (last_ >= 0) {
    done_with(static_cast<size_t>(last_), last_gen_, last_seq_, last_first_);
    last_ = -1;
  }
  if ((received_ & 63) == 0) read_monitors();  // a restarted upstream, while busy
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
      std::vector<Blob> att;
      std::shared_ptr<const void> lease;
      DecodeResult r;
      if (!attachments_of(p, att, lease)) r.error = last_error_;
      else r = decode(p.frames[0].data(), p.frames[0].size(), m, max_bytes_, att);
      att.clear();
      if (!r.ok) {
        bad_++;
        last_error_ = r.error;
        done_with(p.upstream, p.gen, p.seq, gate_ ? gate_->next_ordinal() : 0);  // it cost a credit
        continue;
      }
      if (m.kind == MsgKind::EndOfStream) {
        if (!eos_[p.upstream] && p.gen == gen_[p.upstream]) {
          // Outstanding credits are moot now; acknowledge the end instead.
          owed_[p.upstream] = 0;
          std::string ack = control_bytes(MsgKind::EndOfStream, 0, "");
          no_eintr([&] { return socks_[p.upstream]->send(zmq::buffer(ack), zmq::send_flags::dontwait); });
          eos_[p.upstream] = true;
          n_eos_++;
        }
        continue;
      }
      if (m.kind != MsgKind::Sample && m.kind != MsgKind::Batch) continue;
      received_++;
      last_ = static_cast<long>(p.upstream);
      last_gen_ = p.gen;
      last_seq_ = p.seq;
      last_first_ = gate_ ? gate_->next_ordinal() : 0;
      last_lease_ = lease;
      if (!gate_) {
        // A sink (a stage that keeps state, or ends the flow): the item is
        // its own once taken, so it is acknowledged now; the
        // acknowledgement travels with the next credits. (End of stream
        // does not wait for it, so a stage blocked in process() on its
        // siblings, say a collective, holds nobody up.) Fields viewing a
        // producer's pool: once the sink has let go of them.
        if (lease) acks_.push_back(AckWait{p.upstream, p.gen, p.seq, 0, 0, last_lease_});
        else if (p.gen == gen_[p.upstream] && p.seq != 0)
          ack_out_[p.upstream].append(reinterpret_cast<const char*>(&p.seq), 8);
      }
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
