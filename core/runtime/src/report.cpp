// The implementation of catlip/report.h: what a stage replica tells the supervisor about itself.
#include "catlip/report.h"

#include <msgpack.hpp>

namespace catlip {

const char* replica_state_name(ReplicaState s) {
  switch (s) {
    case ReplicaState::Starting: return "starting";
    case ReplicaState::Running: return "running";
    case ReplicaState::Done: return "done";
    case ReplicaState::Failed: return "failed";
    case ReplicaState::Stopped: return "stopped";
  }
  return "?";
}

namespace {
struct Wire {
  std::string stage;
  int replica, pid, state;
  double elapsed;
  int64_t in, out, bytes;
  double busy, wait_in, wait_out;
  int64_t queue, total;
  std::map<std::string, int64_t> counters;
  std::map<std::string, double> gauges;
  std::string error;
  std::string finish_run;
  MSGPACK_DEFINE(stage, replica, pid, state, elapsed, in, out, bytes, busy, wait_in, wait_out,
                 queue, total, counters, gauges, error, finish_run);
};
}  // namespace

std::string encode_report(const ReplicaReport& r) {
  Wire w{r.stage, r.replica, r.pid, int(r.state), r.elapsed_s, r.items_in, r.items_out,
         r.bytes_out, r.busy_s, r.wait_in_s, r.wait_out_s, r.queue, r.total, r.counters,
         r.gauges, r.error, r.finish_run};
  msgpack::sbuffer buf;
  msgpack::pack(buf, w);
  return std::string(buf.data(), buf.size());
}

bool decode_report(const void* data, size_t size, ReplicaReport& r) {
  try {
    msgpack::unpack_limit limit(4096, 4096, 1 << 20, 0, 0, 8);
    auto oh = msgpack::unpack(static_cast<const char*>(data), size, nullptr, nullptr, limit);
    Wire w = oh.get().as<Wire>();
    r = ReplicaReport{w.stage, w.replica, w.pid, static_cast<ReplicaState>(w.state), w.elapsed,
                      w.in, w.out, w.bytes, w.busy, w.wait_in, w.wait_out, w.queue, w.total,
                      w.counters, w.gauges, w.error, w.finish_run};
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace catlip
