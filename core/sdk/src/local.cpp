// The implementation of catlip/local.h: running a stage in the current thread, without processes.
#include "catlip/local.h"

#include <iostream>
#include <stdexcept>

namespace catlip {

Params configure_stage(Stage& stage, const StageSchema& schema, const std::map<std::string, ParamValue>& given,
                       StageContext& ctx) {
  Params p = resolve_params(schema, given);
  bind_and_configure(stage, schema, p, ctx);
  return p;
}

LocalContext::LocalContext(std::string name, std::string type, int replica, int replicas,
                           std::string run_dir)
    : name_(std::move(name)), type_(std::move(type)), replica_(replica), replicas_(replicas),
      run_dir_(std::move(run_dir)) {}

void LocalContext::count(std::string_view name, int64_t n) {
  std::lock_guard<std::mutex> l(mu_);
  counters_[std::string(name)] += n;
}
void LocalContext::gauge(std::string_view name, double value) {
  std::lock_guard<std::mutex> l(mu_);
  gauges_[std::string(name)] = value;
}
void LocalContext::log(LogLevel level, std::string_view message) {
  static const char* names[] = {"debug", "info", "warn", "error"};
  std::string line = std::string(names[int(level)]) + ": " + std::string(message);
  if (echo_logs) std::cerr << "[" << name_ << "/" << replica_ << "] " << line << "\n";
  std::lock_guard<std::mutex> l(mu_);
  logs_.push_back(std::move(line));
}
int64_t LocalContext::counter(const std::string& name) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = counters_.find(name);
  return it == counters_.end() ? 0 : it->second;
}
std::map<std::string, int64_t> LocalContext::counters() const {
  std::lock_guard<std::mutex> l(mu_);
  return counters_;
}
std::map<std::string, double> LocalContext::gauges() const {
  std::lock_guard<std::mutex> l(mu_);
  return gauges_;
}
std::vector<std::string> LocalContext::logs() const {
  std::lock_guard<std::mutex> l(mu_);
  return logs_;
}

void run_source(Stage& stage, Emitter& out) {
  while (stage.produce(out)) {
  }
  stage.flush(out);
}

void run_transform(Stage& stage, std::vector<Sample> inputs, Emitter& out) {
  for (auto& s : inputs) stage.process(std::move(s), out);
  stage.flush(out);
}

}  // namespace catlip
