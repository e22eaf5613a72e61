// catlip/report.h - what a stage replica tells the supervisor about itself.
//
// Workers push a report a few times per second on a PUSH socket to the
// supervisor's PULL socket; the supervisor aggregates them into the progress
// display, the Prometheus endpoint and the metrics file.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace catlip {

enum class ReplicaState : uint8_t { Starting = 0, Running = 1, Done = 2, Failed = 3, Stopped = 4 };
const char* replica_state_name(ReplicaState s);

struct ReplicaReport {
  std::string stage;
  int replica = 0;
  int pid = 0;
  ReplicaState state = ReplicaState::Starting;
  double elapsed_s = 0;  // since the replica started
  int64_t items_in = 0, items_out = 0, bytes_out = 0;
  double busy_s = 0;      // in produce/process/flush, excluding blocked sends
  double wait_in_s = 0;   // waiting for input
  double wait_out_s = 0;  // blocked by downstream (back-pressure)
  int64_t queue = 0;      // items received but not yet processed
  int64_t total = -1;     // expected items, -1 unknown
  std::map<std::string, int64_t> counters;
  std::map<std::string, double> gauges;
  std::string error;
  std::string finish_run;  // non-empty: the stage ended the run (its reason)
};

std::string encode_report(const ReplicaReport& r);
bool decode_report(const void* data, size_t size, ReplicaReport& out);

}  // namespace catlip
