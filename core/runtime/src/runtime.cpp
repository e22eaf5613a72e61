// The implementation of catlip/runtime.h: the loop that runs one stage replica between its
// input queue and its output queue (credits, acknowledgements, reports).
#include "catlip/runtime.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "catlip/report.h"

namespace catlip {

namespace {

using Clock = std::chrono::steady_clock;

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// StageContext of a replica run by the runtime. Counters are shared with the
// reporter thread, hence the mutex; the stage thread is the only writer.
class ReplicaContext : public StageContext {
 public:
  ReplicaContext(const ReplicaPlan& p, const std::atomic<bool>& stop) : plan_(p), stop_(stop) {
    report_.stage = p.stage_name;
    report_.replica = p.replica;
    report_.pid = static_cast<int>(::getpid());
  }
  const std::string& stage_name() const override { return plan_.stage_name; }
  const std::string& stage_type() const override { return plan_.stage_type; }
  int replica() const override { return plan_.replica; }
  int replicas() const override { return plan_.replicas; }
  int node() const override { return plan_.node; }
  int node_replica() const override { return plan_.node_replica; }
  int node_replicas() const override { return plan_.node_replicas; }
  std::string group_endpoint() const override { return plan_.group_endpoint; }
  std::string node_address() const override { return plan_.node_address; }
  int nodes() const override { return plan_.nodes; }
  const std::string& run_dir() const override { return plan_.run_dir; }
  const std::string& graph_name() const override { return plan_.graph_name; }
  void count(std::string_view name, int64_t n) override {
    std::lock_guard<std::mutex> l(mu_);
    report_.counters[std::string(name)] += n;
  }
  void gauge(std::string_view name, double v) override {
    std::lock_guard<std::mutex> l(mu_);
    report_.gauges[std::string(name)] = v;
  }
  void set_total(int64_t total) override {
    std::lock_guard<std::mutex> l(mu_);
    report_.total = total;
  }
  void log(LogLevel level, std::string_view msg) override {
    static const char* names[] = {"debug", "info", "warn", "error"};
    // One write per line so lines from threads do not interleave; the
    // supervisor adds the stage/replica prefix.
    std::string line = std::string(names[int(level)]) + ": " + std::string(msg) + "\n";
    ssize_t r = ::write(2, line.data(), line.size());
    (void)r;
  }
  bool stop_requested() const override { return stop_.load(std::memory_order_relaxed) || finishing_; }
  void finish_run(std::string_view reason) override {
    finishing_ = true;
    std::lock_guard<std::mutex> l(mu_);
    report_.finish_run = reason.empty() ? std::string("finished") : std::string(reason);
  }
  bool finishing() const { return finishing_; }

  template <class F>
  void update(F f) {
    std::lock_guard<std::mutex> l(mu_);
    f(report_);
  }
  ReplicaReport snapshot() {
    std::lock_guard<std::mutex> l(mu_);
    report_.elapsed_s = secs(Clock::now() - start_);
    return report_;
  }

 private:
  const ReplicaPlan& plan_;
  const std::atomic<bool>& stop_;
  std::mutex mu_;
  std::atomic<bool> finishing_{false};
  ReplicaReport report_;
  Clock::time_point start_ = Clock::now();
};

// Sends the context's snapshot to the supervisor periodically.
class Reporter {
 public:
  Reporter(zmq::context_t& zctx, const ReplicaPlan& plan, ReplicaContext& ctx) : ctx_(ctx) {
    if (plan.report_endpoint.empty()) return;
    sock_ = std::make_unique<zmq::socket_t>(zctx, zmq::socket_type::push);
    sock_->set(zmq::sockopt::linger, 2000);
    sock_->set(zmq::sockopt::sndhwm, 64);
    sock_->connect(plan.report_endpoint);
    interval_ = plan.report_interval_s;
    thread_ = std::thread([this] { loop(); });
  }
  ~Reporter() { stop(); }
  void stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (done_) return;
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (sock_) send();  // final state
  }

 private:
  void send() {
    std::string b = encode_report(ctx_.snapshot());
    for (;;) {  // again after a signal (EINTR): ZeroMQ queued nothing
      try {
        sock_->send(zmq::buffer(b), zmq::send_flags::dontwait);
        return;
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;
      }
    }
  }
  void loop() {
    std::unique_lock<std::mutex> l(mu_);
    while (!done_) {
      l.unlock();
      send();
      l.lock();
      cv_.wait_for(l, std::chrono::duration<double>(interval_), [this] { return done_; });
    }
  }
  ReplicaContext& ctx_;
  std::unique_ptr<zmq::socket_t> sock_;
  double interval_ = 0.5;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

// Which (epoch, shard, index) ids a replica has taken, to drop re-deliveries.
// Per shard: `next` (every index below it was either taken or is missing)
// and the missing ones: items still in flight when a replica died, or
// filtered upstream. A re-delivered item fills its gap; a second copy finds
// no gap. Memory follows the gaps, not the items: at most kMaxMissing per
// shard (the oldest gaps are taken as filtered for good) and kMaxShards
// shards (the least recently used is forgotten).
class Dedupe {
 public:
  bool seen_before(const MessageId& id) {
    if (id.index < 0) return false;
    Shard& s = shards_[{id.epoch, id.shard}];
    s.used = ++clock_;
    bool dup = false;
    if (id.index >= s.next) {
      if (id.index - s.next > int64_t(kMaxMissing)) s.missing.clear();  // a jump (e.g. a resumed source)
      else
        for (int64_t i = s.next; i < id.index; ++i) s.missing.insert(s.missing.end(), i);
      s.next = id.index + 1;
    } else {
      dup = s.missing.erase(id.index) == 0;
    }
    while (s.missing.size() > kMaxMissing) s.missing.erase(s.missing.begin());
    if (shards_.size() > kMaxShards) {
      auto oldest = shards_.begin();
      for (auto it = shards_.begin(); it != shards_.end(); ++it)
        if (it->second.used < oldest->second.used) oldest = it;
      shards_.erase(oldest);
    }
    return dup;
  }

 private:
  static constexpr size_t kMaxMissing = 16384, kMaxShards = 256;
  struct Shard {
    int64_t next = 0;
    std::set<int64_t> missing;
    uint64_t used = 0;
  };
  std::map<std::pair<int64_t, int64_t>, Shard> shards_;
  uint64_t clock_ = 0;
};

class ProducerEmitter : public Emitter {
 public:
  ProducerEmitter(Producer* p, ReplicaContext& ctx) : p_(p), ctx_(ctx) {}
  void emit(Sample&& s) override {
    close_inputs(sample_seq(s));
    emit_now(std::move(s));
  }
  void emit(Batch&& b) override {
    Message m;
    m.kind = MsgKind::Batch;
    if (!b.samples.empty()) {
      auto& o = b.samples.front().origin;
      m.id = {o.epoch, o.shard, o.index};
    }
    m.body = std::move(b);
    send(std::move(m));
  }
  Blob allocate(size_t n) override {
    Blob b;
    if (p_ && p_->allocate(n, b)) return b;
    return Emitter::allocate(n);
  }
  bool stopped = false;

  // Deterministic order: numbered inputs whose outputs have not been
  // emitted yet, oldest first. Stages emit in input order (decode's thread
  // pool keeps it), so when a numbered output is emitted, the inputs taken
  // before it that emitted nothing were dropped: each gets a marker
  // (kDroppedField) in its place. Those still open at the end (end_inputs)
  // too, and the oldest beyond kMaxOpen.
  void expect(const Sample& s, int64_t seq) {
    open_.push_back(dropped_marker(s, seq, ctx_.stage_name()));
    if (open_.size() > kMaxOpen) drop_front();
  }
  void end_inputs() {
    while (!open_.empty() && !stopped) drop_front();
  }

 private:
  static constexpr size_t kMaxOpen = 65536;
  static Sample dropped_marker(const Sample& s, int64_t seq, const std::string& stage) {
    Sample m;
    m.key = s.key;
    m.origin = s.origin;
    m.set_ints(kSeqField, {seq});
    m.set_text(kDroppedField, stage);
    return m;
  }
  void drop_front() {
    Sample m = std::move(open_.front());
    open_.pop_front();
    ctx_.count("order.dropped", 1);
    emit_now(std::move(m));
  }
  // An emitted numbered sample closes its input and marks the ones before it dropped.
  void close_inputs(int64_t seq) {
    if (seq < 0 || open_.empty()) return;
    auto it = std::find_if(open_.begin(), open_.end(), [&](const Sample& m) { return sample_seq(m) == seq; });
    if (it == open_.end()) return;
    size_t before = static_cast<size_t>(it - open_.begin());
    for (size_t i = 0; i < before; ++i) drop_front();
    open_.pop_front();
  }
  std::deque<Sample> open_;
  void emit_now(Sample&& s) {
    Message m;
    m.kind = MsgKind::Sample;
    m.id = {s.origin.epoch, s.origin.shard, s.origin.index};
    int64_t key = sample_seq(s);
    m.body = std::move(s);
    send(std::move(m), key);
  }
  void send(Message&& m, int64_t key = -1) {
    int64_t n = 0;
    if (p_) {
      std::string head;
      std::vector<Blob> att;
      encode_parts(std::move(m), head, att);
      n = static_cast<int64_t>(head.size());
      for (auto& a : att) n += static_cast<int64_t>(a.size());
      if (!p_->send(std::move(head), std::move(att), key)) stopped = true;
    }
    ctx_.update([&](ReplicaReport& r) {
      r.items_out++;
      r.bytes_out += n;
      if (p_) r.wait_out_s = p_->blocked_seconds();
    });
  }
  Producer* p_;
  ReplicaContext& ctx_;
};

// A producer's peers that are turned away are named in the log (rate-
// limited) and counted: connections whose handshake fails on a tcp endpoint
// (plain ZeroMQ against CURVE, not ZMTP, dropped mid-handshake), rejected
// Hellos, and messages from connections without an accepted Hello.
void watch_peers(zmq::context_t& zctx, const ReplicaPlan& plan, ReplicaContext& ctx, Producer& producer,
                 std::unique_ptr<HandshakeWatch>& watch) {
  bool tcp = false;
  for (auto& e : plan.output_endpoints) tcp = tcp || e.rfind("tcp://", 0) == 0;
  if (tcp) {
    watch = std::make_unique<HandshakeWatch>(zctx, producer.socket(), [&ctx](const std::string& who, const std::string& why) {
      ctx.log(LogLevel::Warn, "refused a connection from " + who + ": " + why);
    });
    producer.on_heard = [w = watch.get()](int fd) { w->heard_from(fd); };
  }
  auto limit = std::make_shared<RefusalLogLimit>();
  producer.on_rejected = [&ctx, limit](const std::string& peer, const std::string& why) {
    std::string who = peer.empty() ? "a local peer" : peer;
    int64_t unlogged = 0;
    if (limit->allow(who + why, unlogged))
      ctx.log(LogLevel::Warn, "rejected " + why + " (peer " + who + ")" +
                                  (unlogged ? " (" + std::to_string(unlogged) + " more not logged)" : ""));
  };
}

}  // namespace

ReplicaResult run_replica(const ReplicaPlan& plan, Stage& stage, const StageSchema& schema, const Params& params,
                          zmq::context_t& zctx, const std::atomic<bool>& stop) {
  ReplicaResult res;
  ReplicaContext ctx(plan, stop);
  std::unique_ptr<ZapHandler> zap;
  std::unique_ptr<Producer> producer;
  std::unique_ptr<HandshakeWatch> watch;  // after producer: stops before its socket closes
  std::unique_ptr<Consumer> consumer;
  Reporter reporter(zctx, plan, ctx);
  auto set_state = [&](ReplicaState s, const std::string& err = "") {
    ctx.update([&](ReplicaReport& r) {
      r.state = s;
      if (!err.empty()) r.error = err;
    });
  };
  bool configured = false;
  try {
    if (!plan.curve_secret.empty()) {
      // Before the first CURVE bind: without a handler ZeroMQ admits anyone.
      zap = std::make_unique<ZapHandler>(zctx);
      for (auto& [pub, stage] : plan.curve_clients) zap->allow(pub, stage);
      zap->on_refused = [&ctx](const std::string& address, const std::string& why) {
        ctx.log(LogLevel::Warn, "refused a connection from " + address + ": " + why);
      };
    }
    if (!plan.output_endpoints.empty()) {
      producer = std::make_unique<Producer>(zctx, plan.output_endpoints, plan.consumers, &stop, plan.listen_fd,
                                            plan.curve_secret);
      watch_peers(zctx, plan, ctx, *producer, watch);
      if (plan.shm_pool_bytes > 0) {
        try {
          producer->enable_shm(std::make_shared<shm::Pool>(plan.shm_pool_bytes, plan.graph_name + "." +
                                                                                    plan.stage_name + "." +
                                                                                    std::to_string(plan.replica)),
                               plan.shm_threshold);
        } catch (const std::exception& e) {
          ctx.log(LogLevel::Warn, std::string("no shared-memory pool (large payloads go over the socket): ") + e.what());
        }
      }
    }
    if (!plan.inputs.empty())
      consumer = std::make_unique<Consumer>(zctx, plan.inputs,
                                            plan.stage_name + "#" + std::to_string(plan.replica),
                                            plan.prefetch, &stop, plan.max_message_bytes,
                                            plan.curve.server_keys.empty() ? nullptr : &plan.curve, plan.shm,
                                            plan.shm_prefetch);
    // An input is acknowledged only once what it produced is.
    if (consumer && producer) consumer->set_ack_gate(producer.get());
    if (consumer)
      consumer->on_unreachable = [&ctx](const std::string& ep) {
        ctx.log(LogLevel::Error, "cannot reach upstream " + ep +
                                     ": no connection after 5 s (is its node up, and is the port reachable from here?); still trying");
      };
    // Replica 0 of a group serves the rendezvous on the port the plan held
    // for it: release it now, just before the stage binds it.
    if (plan.group_fd >= 0) ::close(plan.group_fd);
    bind_and_configure(stage, schema, params, ctx);
    configured = true;
    set_state(ReplicaState::Running);
    ProducerEmitter out(producer.get(), ctx);
    double busy = 0;
    auto account = [&](Clock::time_point t0) {
      double blocked = producer ? producer->blocked_seconds() : 0;
      busy += secs(Clock::now() - t0);
      ctx.update([&](ReplicaReport& r) {
        r.busy_s = busy - blocked;
        if (consumer) {
          r.wait_in_s = consumer->waited_seconds();
          r.queue = static_cast<int64_t>(consumer->queued());
        }
      });
    };
    if (plan.inputs.empty()) {
      for (;;) {
        if (stop.load() || out.stopped || ctx.finishing()) break;
        auto t0 = Clock::now();
        bool more = stage.produce(out);
        account(t0);
        if (!more) break;
      }
    } else {
      Message m;
      Dedupe dedupe;
      for (;;) {
        auto r = consumer->next(m);
        if (r == Consumer::Next::Stopped) break;
        if (consumer->bad_messages())
          ctx.update([&](ReplicaReport& rep) { rep.counters["error.bad_message"] = consumer->bad_messages(); });
        if (r == Consumer::Next::End) break;
        if (plan.dedupe && m.kind == MsgKind::Sample && dedupe.seen_before(m.id)) {
          ctx.count("transport.duplicates_dropped", 1);
          continue;
        }
        ctx.update([&](ReplicaReport& rep) { rep.items_in++; });
        auto t0 = Clock::now();
        if (auto* s = std::get_if<Sample>(&m.body)) {
          int64_t seq = producer ? sample_seq(*s) : -1;
          if (seq >= 0 && s->has(kDroppedField)) {
            out.emit(std::move(*s));  // dropped upstream: the marker goes on to the trainer
          } else {
            if (seq >= 0) out.expect(*s, seq);
            stage.process(std::move(*s), out);
          }
        } else if (auto* b = std::get_if<Batch>(&m.body)) stage.process(std::move(*b), out);
        account(t0);
        if (out.stopped || stop.load() || ctx.finishing()) break;
      }
    }
    if ((stop.load() || out.stopped) && !ctx.finishing()) {
      res.stopped = true;
      set_state(ReplicaState::Stopped);
    } else if (ctx.finishing()) {
      // Ending the run: flush what we hold, but do not wait for downstream
      // end-of-stream handshakes; the supervisor stops the others.
      auto t0 = Clock::now();
      stage.flush(out);
      account(t0);
      res.ok = true;
      set_state(ReplicaState::Done);
    } else {
      auto t0 = Clock::now();
      stage.flush(out);
      out.end_inputs();
      account(t0);
      if (producer && !producer->finish()) {
        res.stopped = true;
        set_state(ReplicaState::Stopped);
      } else {
        // Everything this replica emitted is acknowledged now: so are its
        // inputs, which their producers wait for before they end.
        if (consumer) consumer->flush_acks();
        res.ok = true;
        set_state(ReplicaState::Done);
      }
    }
  } catch (const zmq::error_t& e) {
    // A ZeroMQ call the transport does not wrap, interrupted or failed by
    // the run stopping, is part of stopping; otherwise it fails the replica.
    res.ok = false;
    res.stopped = stop.load();
    if (!res.stopped) res.error = std::string("ZeroMQ: ") + e.what();
    set_state(res.stopped ? ReplicaState::Stopped : ReplicaState::Failed, res.error);
  } catch (const TransportError& e) {
    // A peer that left after the run was told to stop is part of stopping.
    res.ok = false;
    res.stopped = stop.load();
    if (!res.stopped) res.error = e.what();
    set_state(res.stopped ? ReplicaState::Stopped : ReplicaState::Failed, res.error);
  } catch (const std::exception& e) {
    res.ok = false;
    res.error = std::string(configured ? "" : "configure: ") + e.what();
    res.config_error = !configured;
    set_state(ReplicaState::Failed, res.error);
  }
  try {
    stage.close();
  } catch (const std::exception& e) {
    if (res.ok) {
      res.ok = false;
      res.error = std::string("close: ") + e.what();
      set_state(ReplicaState::Failed, res.error);
    }
  }
  if (zap && zap->refused()) ctx.count("security.refused_connections", zap->refused());
  if (producer && producer->rejected_hellos()) ctx.count("security.rejected_hellos", producer->rejected_hellos());
  if (producer && producer->rejected_messages())
    ctx.count("security.rejected_messages", producer->rejected_messages());
  if (watch && watch->failed()) ctx.count("security.failed_handshakes", watch->failed());
  if (watch && watch->silent()) ctx.count("security.silent_connections", watch->silent());
  if (producer) producer->on_heard = nullptr;
  watch.reset();
  if (producer && producer->redelivered()) ctx.count("transport.redelivered", producer->redelivered());
  if (consumer && consumer->reconnects()) ctx.count("transport.upstream_restarts", consumer->reconnects());
  if (consumer && consumer->shm_fields()) ctx.count("transport.shm_fields_in", consumer->shm_fields());
  if (producer && producer->shm_descriptors_sent())
    ctx.count("transport.shm_descriptors_out", producer->shm_descriptors_sent());
  if (producer && producer->shm_bytes_copied()) ctx.count("transport.shm_bytes_copied", producer->shm_bytes_copied());
  if (producer && producer->shm_stalls()) ctx.count("transport.shm_pool_stalls", producer->shm_stalls());
  reporter.stop();
  return res;
}

}  // namespace catlip
