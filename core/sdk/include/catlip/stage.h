// catlip/stage.h - the interface a plugin author implements.
//
// A stage is configured once from validated parameters, then either produces
// items (a source: no inputs) or processes items from its inputs, emitting
// zero or more items for each; at end of stream it is flushed and closed.
// The runtime owns threads, sockets, back-pressure and end-of-stream: a stage
// sees only items. Stages are single-threaded from the runtime's point of
// view: all calls come from one thread; a stage may run its own worker
// threads internally but must call Emitter only from the calling thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catlip/params.h"
#include "catlip/sample.h"

namespace catlip {

enum class StageKind {
  Source,     // no inputs; produce() is called until it returns false
  Transform,  // inputs and outputs; its output must be consumed
  Sink,       // inputs; may emit, but nobody needs to consume it
};
const char* stage_kind_name(StageKind k);

// Where a stage sends its results. Calls may block: that is back-pressure.
class Emitter {
 public:
  virtual ~Emitter() = default;
  virtual void emit(Sample&& s) = 0;
  virtual void emit(Batch&& b) = 0;
  // A buffer of n bytes for a large field of an item this stage is about to
  // emit (a Bytes field or a Tensor's data), to be filled in place: on a
  // node-local link it is an extent of this replica's shared-memory pool, so
  // the field reaches the consumers without a copy (ARCHITECTURE.md, "Data
  // path"); elsewhere (tcp, threads, small n, no pool) owned bytes. Its
  // content is unspecified. May block while the pool is full (back-pressure).
  // Emit it soon (or drop it): a buffer held keeps its extent.
  virtual Blob allocate(size_t n) {
    Blob b;
    b.resize(n);
    return b;
  }
};

enum class LogLevel { Debug, Info, Warn, Error };

// What the runtime tells a stage about itself and offers it.
class StageContext {
 public:
  virtual ~StageContext() = default;
  virtual const std::string& stage_name() const = 0;
  virtual const std::string& stage_type() const = 0;
  virtual int replica() const = 0;   // 0-based index of this replica, global over all nodes
  virtual int replicas() const = 0;  // number of replicas of this stage on all nodes
  virtual int node() const { return 0; }   // node rank this replica runs on (multi-host runs)
  virtual int nodes() const { return 1; }  // number of nodes of the run
  // This replica's index among the stage's replicas on its node, and their
  // number (e.g. a trainer rank's local rank, to pick its GPU).
  virtual int node_replica() const { return replica(); }
  virtual int node_replicas() const { return replicas(); }
  // Group stages (StageSchema::group): "tcp://address:port" where replica 0
  // serves the group's rendezvous (e.g. a c10d TCPStore), and this replica's
  // own address as the others reach it. The port was reserved by the plan and
  // is free for replica 0 to bind when configure() is called. "" otherwise.
  virtual std::string group_endpoint() const { return ""; }
  virtual std::string node_address() const { return ""; }
  virtual const std::string& run_dir() const = 0;  // per-run output directory
  virtual const std::string& graph_name() const = 0;

  // Named counters, e.g. count("skipped.corrupt_jpeg"). Counters whose name
  // starts with "error" or "skipped" are shown as errors in progress output.
  virtual void count(std::string_view name, int64_t n = 1) = 0;
  // A gauge (last value wins), e.g. gauge("loss", 0.31).
  virtual void gauge(std::string_view name, double value) = 0;
  // Expected number of items this replica will emit, for progress and ETA.
  virtual void set_total(int64_t total) = 0;
  virtual void log(LogLevel level, std::string_view message) = 0;
  // True once the run is being stopped (signal or failure elsewhere); long
  // loops in produce() or process() should check it and return early.
  virtual bool stop_requested() const = 0;
  // Ends the whole run successfully from inside: e.g. a trainer that has
  // reached its step budget while its sources are endless. The runtime stops
  // feeding this replica, flushes and closes it; the supervisor then stops
  // every other replica and the run exits 0, naming this stage and reason.
  virtual void finish_run(std::string_view reason) = 0;
};

// The base class of every stage. Every virtual is optional except
// process() (transforms and sinks) or produce() (sources, via SourceStage);
// each says its default. The runtime owns the stage object, its context and
// its parameters; a stage owns what it creates.
class Stage {
 public:
  virtual ~Stage() = default;
  // Optional (default: nothing). Called once before any item, after every
  // parameter bound to a member (Param("count", &MyStage::count_), see
  // catlip/params.h) has been stored; ctx() and params() are valid from here
  // to close(). Compute what parameters imply (derived values, files to
  // open) here. Throw std::exception to fail the run with a clear message
  // (the runtime prefixes stage name and replica).
  virtual void configure() {}
  // Sources: emit some items; return false when there is nothing more.
  virtual bool produce(Emitter& out) { (void)out; return false; }
  // Transforms and sinks (required): handle one input item.
  virtual void process(Sample&& in, Emitter& out) = 0;
  // Optional: a batch arriving on an input; by default each sample is processed.
  virtual void process(Batch&& in, Emitter& out) {
    for (auto& s : in.samples) process(std::move(s), out);
  }
  // Optional (default: nothing): all inputs have ended: emit anything still held.
  virtual void flush(Emitter& out) { (void)out; }
  // Optional (default: nothing): release resources; called even after a
  // failure when possible.
  virtual void close() {}
  // Optional (default: any placement is fine): checked by catlip validate,
  // before anything runs, on a fresh instance whose bound parameters are set
  // (configure() has not run; ctx() is not available). Returns "" or why the
  // stage cannot run on `replicas` replicas, at most `per_node` of them on
  // one node (e.g. data-parallel ranks sharing one GPU).
  virtual std::string check_placement(int replicas, int per_node) const {
    (void)replicas;
    (void)per_node;
    return "";
  }
  // Optional (default: nothing to check): files the stage needs that a
  // parameter's ParamSpec::must_exist cannot express (shard patterns, a
  // program in PATH), checked by catlip validate and run before anything
  // starts, on a fresh instance with its bound parameters set. Returns
  // (parameter, problem) pairs, e.g. {"urls", "'d/x-{0..3}.tar' matches no file"}.
  virtual std::vector<std::pair<std::string, std::string>> check_files() const { return {}; }
  // Optional (default: nothing to check): remote inputs the stage reads
  // (http(s) shard URLs), checked by `catlip validate/run --check-urls` on
  // the same probe: one HEAD request each, none slower than timeout_s.
  // Returns (parameter, problem) pairs like check_files().
  virtual std::vector<std::pair<std::string, std::string>> check_urls(double timeout_s) const {
    (void)timeout_s;
    return {};
  }

 protected:
  // What the runtime tells this replica and offers it (counters, logs,
  // run_dir, replica index). Owned by the runtime; valid from configure()
  // to close(). Throws std::logic_error before configure().
  StageContext& ctx() const;
  // Every resolved parameter value, defaults filled in, bound or not.
  const Params& params() const { return params_; }

 private:
  friend void bind_and_configure(Stage& stage, const StageSchema& schema, const Params& params, StageContext& ctx);
  StageContext* ctx_ = nullptr;
  Params params_;
};

// What the runtime does before the first item, in one place: stores every
// bound parameter (bind_params()), attaches `ctx` and `params` (Stage::ctx(),
// Stage::params()), then calls configure(). The process runtime, the thread
// launcher and the local harness all use it. Throws std::invalid_argument
// when a value does not fit its member, and whatever configure() throws.
void bind_and_configure(Stage& stage, const StageSchema& schema, const Params& params, StageContext& ctx);

// Source stages derive from this so they need not implement process().
class SourceStage : public Stage {
 public:
  void process(Sample&&, Emitter&) override {}
};

// Everything the runtime and tools need to know about a stage type.
struct StageSchema {
  std::string type;  // "<plugin>.<name>", e.g. "ingest.shards"
  StageKind kind = StageKind::Transform;
  std::string doc;
  std::vector<ParamSpec> params;
  // Field names read and written, for documentation (not enforced).
  std::vector<std::string> reads, writes;
  // The replicas form one collective group (e.g. data-parallel trainer
  // ranks): the plan gives them a rendezvous endpoint on replica 0's node,
  // StageContext::group_endpoint().
  bool group = false;
  // Optional (default false): a failed or hung replica may be restarted
  // (up to the stage's max_restarts) instead of failing the run. Declare it
  // only for stages whose replicas keep no state across items (decode,
  // labelling): the items a replica held are re-sent to its successor or
  // its siblings, so one may be processed twice; the first stateful stage
  // downstream drops such duplicates by id. Stages that hold state (counts,
  // a trainer, a source's read position) must leave it false.
  bool restartable = false;

  const ParamSpec* find(const std::string& name) const;
};

using StageFactory = std::unique_ptr<Stage> (*)();

struct StageType {
  StageSchema schema;
  StageFactory create = nullptr;
};

}  // namespace catlip
