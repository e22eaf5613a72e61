// The runtime's test stages (testing_stages.h): testing.counter, testing.map and
// testing.collect.
#include "testing_stages.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <unistd.h>

namespace catlip::testing {

static double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static void sleep_ms(double ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
}

StageSchema CounterSource::schema() {
  StageSchema s;
  s.type = "testing.counter";
  s.kind = StageKind::Source;
  s.doc = "Emits items 0..count-1 (split across replicas), each with an int-list field 'n' = [i] "
          "and an optional bytes payload. For tests, demos and transport benchmarks.";
  s.writes = {"n", "payload"};
  s.params = {
      Param("count", &CounterSource::count_).def(1000).at_least(0).describe("Number of items over all replicas"),
      Param("payload_bytes", &CounterSource::payload_).def(0).range(0, 1 << 30)
          .describe("Size of the bytes field 'payload' added to each item (0: none)"),
      Param("rate", &CounterSource::rate_).def(0.0).at_least(0).describe("Items per second per replica (0: as fast as possible)"),
      Param("key_prefix", &CounterSource::prefix_).def("item").describe("Prefix of item keys"),
  };
  return s;
}

void CounterSource::configure() {
  next_ = ctx().replica();
  step_ = ctx().replicas();
  int64_t mine = count_ > next_ ? (count_ - next_ + step_ - 1) / step_ : 0;
  ctx().set_total(mine);
  if (payload_ > 0) {
    std::mt19937 rng(42);
    payload_template_.resize(static_cast<size_t>(payload_));
    for (auto& c : payload_template_) c = static_cast<char>(rng());
  }
  started_ = now_s();
}

bool CounterSource::produce(Emitter& out) {
  if (next_ >= count_) return false;
  if (rate_ > 0) {
    double due = started_ + double(next_ / step_) / rate_;
    double wait = due - now_s();
    if (wait > 0) sleep_ms(wait * 1000);
  }
  Sample s;
  char key[64];
  snprintf(key, sizeof key, "%s%09lld", prefix_.c_str(), (long long)next_);
  s.key = key;
  s.origin = Origin{"counter", ctx().replica(), next_, 0};
  s.set_ints("n", {next_});
  if (payload_ > 0) {
    // Written in place (Emitter::allocate: the shared-memory pool on a
    // node-local link), so the bytes are produced once and never copied.
    Blob p = out.allocate(payload_template_.size());
    std::memcpy(p.data(), payload_template_.data(), p.size());
    std::memcpy(p.data(), &next_, std::min<size_t>(sizeof next_, p.size()));
    s.set_bytes("payload", std::move(p));
  }
  out.emit(std::move(s));
  next_ += step_;
  return next_ < count_;
}

StageSchema MapStage::schema() {
  StageSchema s;
  s.type = "testing.map";
  s.restartable = true;
  s.kind = StageKind::Transform;
  s.doc = "Appends op(last n) to the int-list field 'n' and '<stage>/<replica>@<pid>;' to the text field "
          "'via'; can be slowed down, made to fail or to crash, to exercise the runtime.";
  s.reads = {"n"};
  s.writes = {"n", "via"};
  s.params = {
      Param("op", &MapStage::op_).def("square").one_of({"square", "identity", "add", "negate"})
          .describe("Function applied to the last value of 'n'"),
      Param("add", &MapStage::add_).def(1).describe("Addend for op = \"add\""),
      Param("sleep_ms", &MapStage::sleep_ms_).def(0.0).range(0, 60000).describe("Delay per item, to simulate a slow stage"),
      Param("fail_at", &MapStage::fail_at_).def(-1).describe("Throw an error at this item count (-1: never)"),
      Param("crash_at", &MapStage::crash_at_).def(-1).describe("abort() the process at this item count (-1: never)"),
      Param("startup_ms", &MapStage::startup_ms_).def(0.0).range(0, 600000)
          .describe("Delay in configure(), as a stage loading a model (the replica still reports meanwhile)"),
      Param("fail_configure", &MapStage::fail_configure_).def(false)
          .describe("Throw from configure(), as a stage given a missing file (a configuration error)"),
      Param("error_every", &MapStage::error_every_).def(0).range(0, int64_t{1} << 40)
          .describe("Drop every Nth item, counting it as error.injected (0: never)"),
  };
  return s;
}

void MapStage::configure() {
  sleep_ms(startup_ms_);
  if (fail_configure_) throw std::invalid_argument("failing configure() on purpose (fail_configure = true)");
  // The pid shows which process handled the item (tests check that
  // replicas really are separate processes).
  tag_ = ctx().stage_name() + "/" + std::to_string(ctx().replica()) + "@" + std::to_string(::getpid()) + ";";
}

void MapStage::process(Sample&& s, Emitter& out) {
  if (seen_ == crash_at_) std::abort();
  if (seen_ == fail_at_)
    throw std::runtime_error("failing on purpose at item " + std::to_string(seen_) + " (" + s.key + ")");
  seen_++;
  sleep_ms(sleep_ms_);
  if (error_every_ > 0 && seen_ % error_every_ == 0) {
    ctx().count("error.injected");
    return;
  }
  const IntList* n = s.ints("n");
  if (!n || n->empty()) {
    ctx().count("skipped.no_n");
    return;
  }
  IntList v = *n;
  int64_t x = v.back();
  if (op_ == "square") x = x * x;
  else if (op_ == "add") x = x + add_;
  else if (op_ == "negate") x = -x;
  v.push_back(x);
  s.set_ints("n", std::move(v));
  const std::string* via = s.text("via");
  s.set_text("via", (via ? *via : std::string()) + tag_);
  out.emit(std::move(s));
}

StageSchema CollectSink::schema() {
  StageSchema s;
  s.type = "testing.collect";
  s.kind = StageKind::Sink;
  s.doc = "Writes one tab-separated line per item (key, values of 'n', 'via') to "
          "<run_dir>/<file>.<replica>, so a test can check every item arrived exactly once.";
  s.reads = {"n", "via"};
  s.params = {
      Param("file", &CollectSink::file_).def("collected.tsv").describe("File name in the run directory"),
      Param("sleep_ms", &CollectSink::sleep_ms_).def(0.0).range(0, 60000).describe("Delay per item, to simulate a slow consumer"),
      Param("finish_after", &CollectSink::finish_after_).def(-1)
          .describe("End the whole run successfully after this many items (-1: never), as a trainer "
                    "that reached its step budget does"),
      Param("payload", &CollectSink::payload_).def(false)
          .describe("Add a column describing the bytes field 'payload' (testing.counter's): its first 8 bytes "
                    "as an integer, the FNV-1a hash of the rest and its size, so a test can check its content"),
  };
  return s;
}

void CollectSink::configure() {
  std::string path = ctx().run_dir() + "/" + file_ + "." + std::to_string(ctx().replica());
  out_.open(path);
  if (!out_) throw std::runtime_error("cannot write " + path);
}

void CollectSink::process(Sample&& s, Emitter&) {
  sleep_ms(sleep_ms_);
  out_ << s.key << "\t";
  if (auto* n = s.ints("n"))
    for (size_t i = 0; i < n->size(); ++i) out_ << (i ? "," : "") << (*n)[i];
  out_ << "\t" << (s.text("via") ? *s.text("via") : "");
  if (payload_) {
    out_ << "\t";
    if (const Bytes* b = s.bytes("payload"); b && b->data.size() >= 8) {
      int64_t head;
      std::memcpy(&head, b->data.data(), 8);
      uint64_t h = 1469598103934665603ull;
      for (size_t i = 8; i < b->data.size(); ++i) h = (h ^ uint8_t(b->data[i])) * 1099511628211ull;
      out_ << head << ":" << std::hex << h << std::dec << ":" << b->data.size();
    }
  }
  out_ << "\n";
  if (++seen_ == finish_after_) ctx().finish_run("collected " + std::to_string(seen_) + " items");
}

void CollectSink::flush(Emitter&) { out_.flush(); }

StageSchema NullSink::schema() {
  StageSchema s;
  s.type = "testing.null";
  s.kind = StageKind::Sink;
  s.doc = "Discards every item, counting them and their bytes (counter 'bytes'); gauges first_item_s "
          "and last_item_s give the monotonic clock times of the first and last item.";
  return s;
}

void NullSink::process(Sample&& s, Emitter&) {
  // Monotonic clock times of the first and last item, comparable across
  // processes on one host: throughput without process start-up.
  double t = now_s();
  if (!seen_) ctx().gauge("first_item_s", t);
  ctx().gauge("last_item_s", t);
  seen_++;
  ctx().count("bytes", static_cast<int64_t>(s.payload_bytes()));
}

}  // namespace catlip::testing
