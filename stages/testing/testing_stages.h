// Stages for exercising the runtime: a counting source, a mapping transform
// (with optional delay, failure or crash), and sinks that record or discard.
// They ship as the `testing` plugin: the embedded default graph, the
// runtime's tests and `catlip bench transport` use them.
#pragma once

#include <fstream>
#include <random>

#include "catlip/stage.h"

namespace catlip::testing {

// Emits items 0..count-1, split across replicas (replica r emits i with
// i % replicas == r). Each item has an int-list field "n" = [i] and, if
// payload_bytes > 0, a bytes field "payload" of that size.
class CounterSource : public SourceStage {
 public:
  static StageSchema schema();
  void configure() override;
  bool produce(Emitter& out) override;

 private:
  int64_t next_ = 0, count_ = 0, step_ = 1, payload_ = 0, batch_ = 1;
  double rate_ = 0;
  std::string prefix_, payload_template_;
  double started_ = 0;
};

// Appends op(n.back()) to "n" and "<stage>/<replica>;" to text field "via".
class MapStage : public Stage {
 public:
  static StageSchema schema();
  void configure() override;
  void process(Sample&& s, Emitter& out) override;

 private:
  std::string op_, tag_;
  int64_t add_ = 0, fail_at_ = -1, crash_at_ = -1, seen_ = 0, error_every_ = 0;
  double sleep_ms_ = 0, startup_ms_ = 0;
  bool fail_configure_ = false;
};

// Writes one line per item (key, n values, via) to <run_dir>/<file>.<replica>.
class CollectSink : public Stage {
 public:
  static StageSchema schema();
  void configure() override;
  void process(Sample&& s, Emitter& out) override;
  void flush(Emitter& out) override;

 private:
  std::ofstream out_;
  std::string file_;
  double sleep_ms_ = 0;
  int64_t finish_after_ = -1, seen_ = 0;
  bool payload_ = false;
};

// Discards items (counting bytes): the end of benchmark graphs.
class NullSink : public Stage {
 public:
  static StageSchema schema();
  void configure() override {}
  void process(Sample&& s, Emitter& out) override;

 private:
  int64_t seen_ = 0;
};

}  // namespace catlip::testing
