// Restarting a whole run from its checkpoint when a rank of a stage with
// ranks fails (the supervisor's policy; torchrun's --max-restarts).
//
// A stage with ranks (its schema has a group: train.*) keeps state that no
// replica restart can rebuild, and its ranks meet in collectives: when one
// rank dies or hangs the others cannot go on. With `max_restarts` set on such
// a stage, the supervisor instead stops every replica of the run, and starts
// them all again with `resume = true` for every stage that has it: the ranks
// form a new process group, reload the newest checkpoint (model, optimizer,
// EMA, schedule, data position), the sources read again, and the trainer
// skips what the checkpoint holds, so every sample is still trained once per
// epoch; the steps after the checkpoint are trained again (counted as lost).
// `restart_window_s` makes max_restarts count only recent restarts.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <set>
#include <string>

#include "catlip/graph.h"
#include "catlip/params.h"

namespace catlip {

class RunRestarts {
 public:
  using Clock = std::chrono::steady_clock;

  // Reads each stage's schema (plugins) and its max_restarts and
  // restart_window_s.
  RunRestarts(const GraphSpec& g, const std::map<std::string, Params>& params);

  // Whether a failure of `stage` now restarts the run. False for stages
  // without ranks or without max_restarts, for configuration errors, and
  // once the restarts in the window are spent; `note` then gets what to add
  // to the failure (e.g. " (after 2 run restarts; max_restarts 2)").
  bool allows(const std::string& stage, bool config_error, std::string* note = nullptr) const;
  // Counts a restart of `stage` now; returns its attempt number (1, 2, ...).
  int record(const std::string& stage);
  int max(const std::string& stage) const;
  // Whether `stage` has ranks that can resume (its schema has a group and a
  // `resume` parameter), whatever its max_restarts.
  bool has_ranks(const std::string& stage) const { return ranked_.count(stage) != 0; }

  // `params` with resume = true for every stage that has that parameter.
  static std::map<std::string, Params> resume_params(std::map<std::string, Params> params);

 private:
  struct Budget {
    int max = 0;
    double window_s = 0;
    mutable std::deque<Clock::time_point> times;  // restarts still in the window
  };
  void expire(const Budget& b) const;
  std::map<std::string, Budget> budgets_;
  std::set<std::string> ranked_;
};

// The gauges a stage with ranks reports that a run restart reads: the step
// reached (the largest of its ranks') and the step its ranks resumed at.
inline constexpr const char* kStepGauge = "train.step";
inline constexpr const char* kResumedStepGauge = "train.resumed_step";

}  // namespace catlip
