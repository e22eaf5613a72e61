// catlip/local.h - running a stage in the current thread, without processes.
//
// Used by tests of stage logic and by tools that reuse a stage directly
// (benchmarks, `catlip label`). configure_stage() resolves parameters, sets
// the bound ones and configures, as the multi-process runtime does, so a
// stage sees identical parameters either way.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "catlip/stage.h"

namespace catlip {

// What the runtime does before the first item: resolve_params(schema,
// given) (defaults filled in, values checked), then bind_and_configure()
// (catlip/stage.h: bound members stored, context attached, configure()).
// Returns the resolved Params. Throws like resolve_params() and like
// configure().
Params configure_stage(Stage& stage, const StageSchema& schema, const std::map<std::string, ParamValue>& given,
                       StageContext& ctx);

// Keeps everything a stage emits.
class CollectEmitter : public Emitter {
 public:
  void emit(Sample&& s) override { samples.push_back(std::move(s)); }
  void emit(Batch&& b) override { batches.push_back(std::move(b)); }
  std::vector<Sample> samples;
  std::vector<Batch> batches;
};

// A StageContext that records counters, gauges and logs in memory.
class LocalContext : public StageContext {
 public:
  explicit LocalContext(std::string name = "local", std::string type = "local", int replica = 0,
                        int replicas = 1, std::string run_dir = ".");
  const std::string& stage_name() const override { return name_; }
  const std::string& stage_type() const override { return type_; }
  int replica() const override { return replica_; }
  int replicas() const override { return replicas_; }
  const std::string& run_dir() const override { return run_dir_; }
  const std::string& graph_name() const override { return graph_; }
  void count(std::string_view name, int64_t n = 1) override;
  void gauge(std::string_view name, double value) override;
  void set_total(int64_t total) override { total_ = total; }
  void log(LogLevel level, std::string_view message) override;
  bool stop_requested() const override { return stop_; }
  void finish_run(std::string_view reason) override {
    finish_reason_ = std::string(reason);
    stop_ = true;
  }
  // Set once the stage called finish_run().
  const std::string& finish_reason() const { return finish_reason_; }

  int64_t counter(const std::string& name) const;
  std::map<std::string, int64_t> counters() const;
  std::map<std::string, double> gauges() const;
  std::vector<std::string> logs() const;
  int64_t total() const { return total_; }
  void request_stop() { stop_ = true; }
  bool echo_logs = false;  // also print log lines to stderr

 private:
  std::string name_, type_;
  int replica_, replicas_;
  std::string run_dir_, graph_ = "local";
  mutable std::mutex mu_;
  std::map<std::string, int64_t> counters_;
  std::map<std::string, double> gauges_;
  std::vector<std::string> logs_;
  int64_t total_ = -1;
  bool stop_ = false;
  std::string finish_reason_;
};

// Runs a source stage to completion (produce until false, then flush).
void run_source(Stage& stage, Emitter& out);
// Feeds `inputs` through a transform/sink stage, then flushes.
void run_transform(Stage& stage, std::vector<Sample> inputs, Emitter& out);

}  // namespace catlip
