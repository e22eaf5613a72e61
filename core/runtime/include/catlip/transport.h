// catlip/transport.h - moving encoded messages between stage replicas.
//
// Pattern: credit-based load balancing (zguide ch. 4 "load balancing", with
// the credit flow control of ch. 7). Every producer replica binds one ROUTER
// socket. Every consumer replica connects one DEALER to each upstream
// producer replica, says Hello, and grants `prefetch` credits. A producer
// sends an item only to a consumer that holds credit, picking the one with
// the most (the least busy); a consumer returns a credit once it has
// finished processing an item. So a busy replica gets no new work, a slow
// consumer blocks its producers (back-pressure), and at most `prefetch`
// items per producer wait in any consumer: memory stays bounded.
//
// A producer may feed several downstream stages: each stage gets every item
// (broadcast across stages), balanced across that stage's replicas.
// End-of-stream: a finished producer waits until every expected consumer has
// said Hello, then sends EndOfStream to each and waits for each to echo it
// back (so nothing is still queued when its socket closes); a consumer ends
// when all its upstream producers have.
//
// Endpoints are ZeroMQ addresses: ipc:// on one host, tcp:// across hosts,
// inproc:// when stages share a process (and a zmq context).
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "catlip/codec.h"
#include "catlip/security.h"
#include "catlip/shm.h"

namespace catlip {

struct TransportError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One downstream stage fed by a producer.
struct ConsumerGroup {
  std::string stage;
  int replicas = 1;
  // Replica indices that may say Hello as "<stage>#<i>" (each once); empty:
  // 0..replicas-1. Credits a consumer holds are capped at `prefetch`.
  std::vector<int> members;
  int prefetch = 0;  // 0: kDefaultCreditCap
  // Keyed routing (deterministic data order): when > 0, an item sent with a
  // key k >= 0 goes to replica k % keyed_replicas of the stage, whichever
  // has credit, instead of to the least busy one. Items without a key are
  // balanced as usual.
  int keyed_replicas = 0;
  // The cap instead for a replica whose link carries shared-memory
  // descriptors (the bytes wait in this producer's bounded pool, not in
  // socket buffers, so a deeper window costs no memory); 0: `prefetch`.
  int shm_prefetch = 0;
};
// Keyed items waiting for their replica's credit, per keyed group: at most
// kParkPerLink x the window x keyed_replicas (send() blocks when its item's
// replica has no credit and the parking is full), so one replica's full
// window does not stop items for the others.
constexpr int64_t kParkPerLink = 4;
constexpr int64_t kDefaultCreditCap = 1024;
// Control messages (Hello, Credit, EndOfStream) are tiny: a producer refuses
// any frame larger than this at the protocol level.
constexpr int64_t kMaxControlBytes = 64 << 10;

// CURVE settings of a consumer: its stage's keypair and, per upstream
// endpoint (parallel to the endpoint list), the producer stage's public key
// ("" for a plain link such as ipc).
struct CurveClientOptions {
  CurveKeyPair client;
  std::vector<std::string> server_keys;
};

class Producer {
 public:
  // Binds every endpoint (e.g. ipc for consumers on this host and tcp for
  // the others). A tcp endpoint takes over `listen_fd` when it is >= 0: a
  // socket already bound and listening (ZMQ_USE_FD), so its port was known
  // before this process started. With `curve_secret` (the stage's secret
  // key, z85) every tcp endpoint is a CURVE server; ipc and inproc stay
  // plain. A ZAP handler on the context decides who may connect.
  Producer(zmq::context_t& ctx, const std::vector<std::string>& bind_endpoints, std::vector<ConsumerGroup> groups,
           const std::atomic<bool>* stop, int listen_fd = -1, const std::string& curve_secret = "");
  Producer(zmq::context_t& ctx, const std::string& bind_endpoint, std::vector<ConsumerGroup> groups,
           const std::atomic<bool>* stop)
      : Producer(ctx, std::vector<std::string>{bind_endpoint}, std::move(groups), stop) {}
  ~Producer();

  // Sends one encoded item to one replica of every group, blocking while no
  // replica of a group has credit. Returns false if stopped while waiting.
  // The head and its attachments (see encode_parts) travel as one multipart
  // message; their buffers are shared with ZeroMQ, not copied, and kept
  // until every group has acknowledged the item.
  // key >= 0: keyed groups send it to replica key % keyed_replicas; while
  // that replica has no credit the item is parked (bounded, see
  // kParkPerLink) and sent as its credit returns, in key order per replica.
  bool send(std::string&& encoded, std::vector<Blob>&& attachments, int64_t key = -1);
  bool send(std::string&& encoded, std::vector<std::string>&& attachments = {}, int64_t key = -1);

  // Shared-memory payloads (catlip/shm.h) for consumers on this host: an
  // attachment of at least `threshold` bytes goes into `pool` (or, already
  // a shared-memory view, is forwarded as is) and consumers that said Hello
  // over ipc as able to map it get a descriptor instead of the bytes; the
  // others get the bytes. When the pool is full, send() waits for
  // acknowledgements (back-pressure); the pool never grows.
  void enable_shm(std::shared_ptr<shm::Pool> pool, size_t threshold);
  // A writable extent of the pool for a field of n bytes to be filled in
  // place and sent (Emitter::allocate): no copy at all. Waits while the pool
  // is full. False (out untouched) without a pool, below the threshold, when
  // stopped, or when the pool stayed full for kPoolStallS.
  bool allocate(size_t n, Blob& out);
  const shm::Pool* shm_pool() const { return pool_.get(); }
  // Attachments sent as descriptors (one per consumer they went to), and
  // bytes that went into the pool.
  int64_t shm_descriptors_sent() const { return shm_sent_; }
  int64_t shm_bytes_copied() const { return shm_copied_; }
  int64_t socket_payload_bytes() const { return socket_bytes_; }  // attachment bytes sent over the socket
  // Attachments sent as bytes because the pool stayed full for kPoolStallS
  // with nothing freed (consumers holding their views).
  int64_t shm_stalls() const { return shm_stalls_; }
  static constexpr double kPoolStallS = 2.0;
  // Sends EndOfStream to every expected consumer once all of them have said
  // Hello and every item is acknowledged. Returns false if stopped first.
  bool finish();
  // Reads acknowledgements and Hellos and re-sends what a lost consumer
  // held, without waiting (for callers idle between sends).
  void service();
  zmq::socket_t& socket() { return sock_; }

  // Flow control and acknowledgement are separate: a consumer returns a
  // credit as soon as it has processed an item (so a stalled item never
  // blocks the flow), and acknowledges the item by its per-link sequence
  // number once its effects are safe (a transform: once what it emitted for
  // the item is acknowledged downstream). Items are numbered in send order
  // (ordinals); acked_range(a, b) is true when every item with an ordinal
  // in [a, b) is acknowledged by every group.
  uint64_t next_ordinal() const { return next_ordinal_; }
  bool acked_range(uint64_t first, uint64_t last) const;

  // The endpoint actually bound last (a tcp port chosen by the kernel shows here).
  std::string endpoint() const { return sock_.get(zmq::sockopt::last_endpoint); }

  // Seconds spent blocked in send() waiting for credit (back-pressure).
  double blocked_seconds() const { return blocked_s_; }
  int64_t sent() const { return sent_; }
  // Hello messages ignored: an identity outside the plan, a stage other
  // than the authenticated one, or a malformed one.
  int64_t rejected_hellos() const { return rejected_; }
  // Messages from a connection that has no accepted Hello: a Credit or an
  // EndOfStream from an identity that never said one (for instance the
  // second message of a peer that claimed a routing id a live consumer
  // holds: ZeroMQ drops that claim, and the peer's next frame becomes its
  // routing id), or a kind a consumer never sends.
  int64_t rejected_messages() const { return stray_; }
  // Told (peer address, why) of each rejected Hello and rejected message;
  // the caller rate-limits its logging. The address is ZeroMQ's
  // Peer-Address ("" on ipc).
  std::function<void(const std::string& peer, const std::string& why)> on_rejected;
  // Told the connection (file descriptor, ZMQ_SRCFD) of every message read:
  // a HandshakeWatch's heard_from, to notice connections that never speak.
  std::function<void(int fd)> on_heard;
  // Items sent again because their consumer was lost or restarted, and how
  // many consumers came back (a second Hello from one identity).
  int64_t redelivered() const { return redelivered_; }
  int64_t consumer_restarts() const { return restarts_seen_; }

 private:
  // One item's frames: the head, the attachments (owned or shared-memory
  // views), and for each attachment in the pool its descriptor ("" if none).
  struct Payload {
    std::string head;
    std::vector<Blob> attachments;
    std::vector<std::string> descriptors;
  };
  // One sent item, shared with ZeroMQ while it sends it.
  struct Outstanding {
    uint64_t ordinal = 0;
    int64_t key = -1;  // keyed routing; -1: by demand
    std::shared_ptr<const Payload> payload;
  };
  struct Peer {
    std::string id;
    int group = -1;
    int replica = -1;  // its replica index in the consumer stage
    int64_t window = 0, credit = 0;
    uint64_t next_seq = 1;                     // per-link sequence number of the next item
    std::map<uint64_t, Outstanding> unacked;  // sent, not yet acknowledged, by sequence number
    bool gone = false;                // its connection failed; waiting for its successor
    bool shm = false;                 // on this host, and maps shared-memory payloads
    bool eos_sent = false, eos_acked = false;
  };
  // Reads pending Hello/Credit messages (waiting up to timeout_ms for one),
  // then re-sends what lost consumers held.
  void poll_control(int timeout_ms);
  bool all_connected() const;
  // "" when the Hello is accepted (group set), else why not.
  std::string accept_hello(const std::string& pid, const Message& m, const char* user_id, int& group);
  void reject(const zmq::message_t& body, int64_t& counter, const std::string& why);
  int64_t window_for(int group, int64_t hello_credit, bool shm) const;
  void on_hello(const std::string& pid, int group, int64_t credit, bool shm);
  bool to_pool(Payload& p);
  enum class Reserve { Ok, Stalled, Stopped };
  Reserve reserve(size_t n, Blob& out);
  void on_credit(Peer& p, int64_t n, const std::string& acks);
  void requeue(Peer& p);
  bool send_to(Peer& p, Outstanding&& item);
  Peer* pick(size_t group);
  // Keyed groups: the replica an item goes to, and that replica's peer if it
  // can take an item now.
  int target(size_t group, int64_t key) const;
  Peer* pick_replica(size_t group, int replica);
  // Sends what a keyed group's queue holds for replicas with credit, in
  // order per replica; `blocked` marks replicas that must wait.
  void pump_keyed(size_t group, std::deque<Outstanding>& q, std::vector<bool>& blocked);
  size_t park_cap(size_t group) const;
  void pump_redeliveries();

  zmq::socket_t sock_;
  std::vector<ConsumerGroup> groups_;
  std::vector<std::vector<Peer*>> by_group_;
  std::map<std::string, std::unique_ptr<Peer>> peers_;
  std::vector<size_t> rr_;
  std::vector<std::deque<Outstanding>> redeliver_;  // per group: to send before anything new
  std::vector<std::deque<Outstanding>> parked_;     // per keyed group: keyed items waiting for credit
  std::vector<std::vector<int>> parked_for_;        // per keyed group and replica: how many of them
  std::vector<std::vector<char>> member_;           // per keyed group and replica: reads this producer
  std::map<uint64_t, int> pending_;                  // ordinal -> groups yet to acknowledge it
  uint64_t next_ordinal_ = 0;
  const std::atomic<bool>* stop_;
  double blocked_s_ = 0;
  int64_t sent_ = 0;
  size_t acks_ = 0;
  int64_t rejected_ = 0, redelivered_ = 0, restarts_seen_ = 0, stray_ = 0;
  std::shared_ptr<shm::Pool> pool_;
  size_t shm_threshold_ = shm::kDefaultThreshold;
  int64_t shm_sent_ = 0, shm_copied_ = 0, socket_bytes_ = 0, shm_stalls_ = 0;
};

class Consumer {
 public:
  // identity: "<stage>#<replica>", unique per consumer replica.
  // shm: on ipc upstreams, say Hello as able to map shared-memory payloads
  // (catlip/shm.h) and take their descriptors, granting those upstreams
  // shm_prefetch credits (0: prefetch) instead of prefetch.
  Consumer(zmq::context_t& ctx, const std::vector<std::string>& upstream_endpoints,
           const std::string& identity, int prefetch, const std::atomic<bool>* stop,
           size_t max_message_bytes = kDefaultMaxMessageBytes, const CurveClientOptions* curve = nullptr,
           bool shm = false, int shm_prefetch = 0);
  ~Consumer();

  enum class Next { Item, End, Stopped };
  // Returns the next Sample/Batch message (`out` is cleared first). Fields
  // that came as shared-memory descriptors are views of the producer's pool;
  // the item is acknowledged only once no view of it is left (the caller
  // dropped or copied them). The previous item (which the
  // caller has finished with) is then acknowledged: its credit goes back
  // once everything the gate producer sent so far is acknowledged
  // downstream (at once without a gate), in small batches, and all of them
  // before waiting. Undecodable messages are counted in bad_messages() and
  // skipped. Throws TransportError when an upstream refuses the handshake.
  Next next(Message& out);
  // The producer this replica emits through: an input is acknowledged only
  // after what was emitted for it is, so a replica that dies never loses an
  // item whose outputs were still in flight. Its acknowledgements are read
  // while next() waits. Not owned.
  void set_ack_gate(Producer* gate) { gate_ = gate; }
  // Upstream producers that came back (restarted): each got a fresh Hello.
  int64_t reconnects() const { return reconnects_; }
  // After the end: acknowledges every item whose effects the gate has
  // acknowledged by now, waiting up to timeout_s for the rest (call it after
  // the gate's finish(), when everything emitted is acknowledged).
  void flush_acks(double timeout_s = 10);

  size_t queued() const { return queue_.size(); }
  double waited_seconds() const { return waited_s_; }
  int64_t received() const { return received_; }
  int64_t bad_messages() const { return bad_; }
  int64_t shm_fields() const { return shm_fields_; }  // fields received as shared-memory views
  const std::string& last_error() const { return last_error_; }
  // Upstream tcp endpoints with no completed connection handshake `after_s`
  // seconds after this consumer started, each reported once (the runtime
  // logs them: an unreachable peer is named instead of a silent hang).
  std::vector<std::string> newly_unreachable(double after_s);
  // Called from next() while it waits, once per unreachable upstream.
  std::function<void(const std::string& endpoint)> on_unreachable;
  double unreachable_after_s = 5;

 private:
  void drain(int timeout_ms);
  void read_monitors();
  void grant(size_t upstream, int64_t n);
  void return_credit(bool all);
  void on_reconnect(size_t upstream);
  void done_with(size_t upstream, uint64_t gen, uint64_t seq, uint64_t first);
  void release_acks(bool ignore_leases = false);

  std::string identity_;
  std::vector<int64_t> window_;        // per upstream: the credits granted
  std::vector<int64_t> credit_batch_;  // per upstream: credits returned in batches of this many

  std::vector<std::unique_ptr<zmq::socket_t>> socks_;
  std::vector<std::string> endpoints_;
  // Per tcp upstream: a monitor PAIR socket reporting handshakes (else null).
  std::vector<std::unique_ptr<zmq::socket_t>> monitors_;
  std::vector<bool> connected_, reported_;
  std::vector<int> handshake_failures_;
  std::vector<std::string> handshake_error_;
  void check_handshakes();  // throws TransportError on a refused or failing handshake
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::vector<bool> eos_;
  size_t n_eos_ = 0;
  struct Pending {
    size_t upstream;
    uint64_t gen;                        // which incarnation of the upstream sent it
    uint64_t seq;                        // its sequence number on that link
    std::vector<zmq::message_t> frames;  // head, then attachments
  };
  bool attachments_of(Pending& p, std::vector<Blob>& att, std::shared_ptr<const void>& lease);
  std::vector<bool> shm_;  // per upstream: descriptors accepted (an ipc link)
  std::weak_ptr<const void> last_lease_;
  int64_t shm_fields_ = 0;
  std::deque<Pending> queue_;
  long last_ = -1;            // upstream of the item being processed, -1 if none
  uint64_t last_gen_ = 0, last_seq_ = 0, last_first_ = 0;
  std::vector<int64_t> owed_;  // credits due per upstream, returned in batches
  std::vector<uint64_t> gen_;  // per upstream: reconnections seen (a restarted producer)
  std::vector<int> handshakes_;
  // Items done with, waiting for the gate to have what they produced
  // acknowledged (any order).
  struct AckWait {
    size_t upstream;
    uint64_t gen, seq;
    uint64_t first, last;  // the gate's ordinals emitted while processing it
    std::weak_ptr<const void> lease;  // held by its shared-memory views, if any
  };
  std::deque<AckWait> acks_;
  std::vector<std::string> ack_out_;  // per upstream: sequence numbers to acknowledge (8 bytes each)
  Producer* gate_ = nullptr;
  int64_t reconnects_ = 0;
  const std::atomic<bool>* stop_;
  size_t max_bytes_;
  double waited_s_ = 0;
  int64_t received_ = 0, bad_ = 0;
  std::string last_error_;
};

}  // namespace catlip
