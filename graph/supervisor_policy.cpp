// The supervisor's policy (supervisor_impl.h): a hung replica found by
// liveness, the end-of-run outcome checks, and restarts of the whole run
// after a rank failure or a lost node (run_restarts.h, on_node_loss).
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "catlip/plan.h"
#include "supervisor_impl.h"

namespace catlip::detail {

// A replica still running that has sent no report for its stage's
// liveness_timeout_s (reports come from a thread of their own every
// report_interval_s, from before configure() to exit) is hung or stopped:
// the run fails naming it. Replicas that reported a final state are exiting.
void Supervisor::check_liveness() {
  if (!failure_.empty() || !finished_by_.empty()) return;
  auto now = Clock::now();
  for (auto& slot : all_replicas(g_)) {
    auto key = std::make_pair(slot.stage, slot.replica);
    if (exited_.count(key)) continue;
    const ReplicaReport* r = report_.metrics().report(slot.stage, slot.replica);
    if (r && (r->state == ReplicaState::Done || r->state == ReplicaState::Failed || r->state == ReplicaState::Stopped))
      continue;
    auto it = heard_.find(key);
    double silent = secs(now - (it == heard_.end() ? replicas_started_ : it->second));
    const StageSpec* spec = g_.find(slot.stage);
    double limit = spec && spec->liveness_timeout_s > 0 ? spec->liveness_timeout_s : g_.liveness_timeout_s;
    if (silent <= limit) continue;
    std::string why = "stage '" + slot.stage + "' replica " + std::to_string(slot.replica) + " (node " +
                      std::to_string(slot.node) + ", pid " + (r ? std::to_string(r->pid) : std::string("unknown")) +
                      ") sent nothing for " + fmt1(silent) + " s" + (r ? "" : " since it started") +
                      ": hung or stopped (liveness_timeout_s " + fmt1(limit) + ")";
    // A restartable stage: kill it, and its exit is restarted (or, with no
    // restarts left, fails the run with this reason).
    if (restart_budget_.count(slot.stage) && !hung_.count(key)) {
      bool killed = slot.node == 0 ? local_ && local_->kill_replica(slot.stage, slot.replica)
                                   : remote_ && remote_->kill_replica(slot.stage, slot.replica);
      if (killed) {
        hung_[key] = why;
        heard_[key] = now;
        report_.line("catlip: " + why + "; killing it");
        continue;
      }
    }
    if (hung_.count(key)) continue;  // killed, its exit is on the way
    // A hung rank of a stage with ranks and run restarts left: the run
    // restarts (every replica is stopped, this one killed).
    if (restart_cause_.empty() && run_restarts_.allows(slot.stage, false)) {
      restart_of_ = ReplicaExit{slot.stage, slot.replica, slot.node};
      restart_cause_ = why;
      restart_for_node_ = false;
      return;
    }
    report_.metrics().mark_failed(slot.stage, slot.replica, why);
    if (slot.node == 0) report_.nodes()[0].failed++;
    failure_ = why;
    return;
  }
}

// A rank failed (restart_cause_, restart_of_): every replica is stopped, what
// each counted is kept, and all start again with resume = true for every
// stage that has it. Returns OK or why the run could not start again.
Status Supervisor::restart_run(const std::atomic<int>& signal) {
  const std::string stage = restart_of_.stage;
  const bool for_node = restart_for_node_;
  const int attempt = for_node ? ++node_loss_restarts_ : run_restarts_.record(stage);
  const int max = for_node ? g_.max_restarts : run_restarts_.max(stage);
  RunRestart rr;
  rr.stage = stage;
  rr.replica = restart_of_.replica;
  rr.node = restart_of_.node;
  rr.cause = restart_cause_;
  rr.at_s = report_.elapsed_s();
  const double rejoin_s = g_.on_node_loss == "wait" ? g_.rejoin_timeout_s : g_.join_timeout_s;
  restarting_ = true;
  // The other nodes' agents stay: they stop their replicas and wait for the
  // next generation's ASSIGN.
  if (remote_) {
    remote_->set_outcome(false, restart_cause_);
    remote_->request_stop(opt_.stop_grace_s, rejoin_s + 30);
  }
  stop_all("restarting the run");
  std::string lost;  // nodes that must join again, or that the run goes on without
  std::set<int> lost_ranks;
  if (remote_)
    for (auto& n : remote_->nodes())
      if (n.status == "lost") {
        lost += (lost.empty() ? "" : ", ") + std::to_string(n.rank);
        lost_ranks.insert(n.rank);
      }
  const bool shrink = g_.on_node_loss == "shrink" && !lost_ranks.empty();
  if (local_) local_->handle(*this);  // the last reports of the stopped replicas
  // The step the ranks reached: the largest in the reports of the stages
  // with ranks, the last of which they send as they exit.
  std::string ranked = stage;
  for (auto& s : g_.stages)
    for (int r = 0; r < s.replicas; ++r)
      if (const ReplicaReport* rep = report_.metrics().report(s.name, r)) {
        auto it = rep->gauges.find(kStepGauge);
        if (it == rep->gauges.end() || (!stage.empty() && s.name != stage)) continue;
        rr.step_reached = std::max(rr.step_reached, int64_t(it->second));
        ranked = s.name;
      }
  rr.stage = ranked;
  report_.line("catlip: " + restart_cause_ + "; restarting the run from the newest checkpoint [" +
               std::to_string(attempt) + "/" + std::to_string(max) + "]" +
               (shrink ? " on the nodes left, without node " + lost
                : !lost.empty() ? ", once node " + lost + " has joined again (rejoin_timeout_s " +
                                      param_value_to_string(rejoin_s) + ")"
                                : std::string()) +
               (rr.step_reached >= 0 ? " (stage '" + ranked + "' had reached step " + std::to_string(rr.step_reached) + ")"
                                     : std::string()));
  for (auto& slot : all_replicas(g_)) {
    if (slot.stage == stage && slot.replica == rr.replica) report_.metrics().mark_restarted(stage, slot.replica, rr.cause);
    else report_.metrics().carry_over(slot.stage, slot.replica);
  }
  report_.run_restarts().push_back(rr);
  local_.reset();
  sock_dir_.reset();
  listeners_ = NodeListeners{};
  exited_.clear();
  hung_.clear();
  heard_.clear();
  report_.nodes()[0].exited = report_.nodes()[0].failed = 0;
  restart_cause_.clear();
  failure_.clear();
  stopping_ = restarting_ = false;
  params_ = RunRestarts::resume_params(std::move(params_));
  for (auto& s : g_.stages)  // the graph the other nodes get says so too
    if (params_.count(s.name) && params_.at(s.name).has("resume")) s.params["resume"] = ParamValue(true);
  std::vector<int> new_rank;
  if (shrink) {
    Status shrunk = shrink_run(lost_ranks, new_rank);
    if (!shrunk.ok()) return shrunk.context("cannot go on without node " + lost);
  }
  if (remote_) remote_->next_generation(g_, rejoin_s, new_rank);
  Status started = start_replicas(signal);
  // "shrink": a node that does not come back for the new generation within
  // join_timeout_s (silent since before its loss could be noticed, say: the
  // rank failure came first) is lost too, and the run goes on without it
  // while [graph] max_restarts allows node losses.
  while (!started.ok() && g_.on_node_loss == "shrink" && remote_ && !remote_->late_nodes().empty() &&
         !signal.load()) {
    const std::set<int> late = remote_->late_nodes();
    std::string names;
    for (int k : late) names += (names.empty() ? "" : ", ") + std::to_string(k);
    if (node_loss_restarts_ >= g_.max_restarts)
      return started.context("no node loss left to go on without node " + names + " ([graph] max_restarts " +
                             std::to_string(g_.max_restarts) + ")");
    ++node_loss_restarts_;
    report_.line("catlip: node " + names + " did not come back for the restarted run (" + started.message() +
                 "); going on without it [" + std::to_string(node_loss_restarts_) + "/" +
                 std::to_string(g_.max_restarts) + "]");
    report_.run_restarts().back().cause += "; node " + names + " did not come back: the run went on without it";
    std::vector<int> renumber;
    Status shrunk = shrink_run(late, renumber);
    if (!shrunk.ok()) return shrunk.context("cannot go on without node " + names);
    remote_->next_generation(g_, rejoin_s, renumber);
    started = start_replicas(signal);
  }
  return started;
}

// on_node_loss = "shrink": the graph re-planned on the nodes left (stages
// over every node lose the lost nodes' replicas; the source's shard split
// follows its replica count), and each stage with ranks keeps its global
// batch by raising accumulate_steps when the new world size divides it.
Status Supervisor::shrink_run(const std::set<int>& lost, std::vector<int>& new_rank) {
  std::map<std::string, int> before;
  for (auto& s : g_.stages) before[s.name] = s.replicas;
  Status shrunk = shrink_graph(g_, lost, new_rank);
  if (!shrunk.ok()) return shrunk;
  report_.metrics().reshape();
  report_.nodes().resize(size_t(g_.nodes));
  std::string notes;
  for (auto& s : g_.stages) {
    const int w = before[s.name], w2 = s.replicas;
    if (!run_restarts_.has_ranks(s.name) || w == w2 || !params_.count(s.name)) continue;
    Params& p = params_.at(s.name);
    if (!p.has("accumulate_steps") || !p.has("batch_size")) continue;
    const int64_t acc = p.get_int("accumulate_steps"), b = p.get_int("batch_size");
    if ((w * acc) % w2 == 0) {
      const int64_t acc2 = w * acc / w2;
      p.set("accumulate_steps", ParamValue(acc2));
      s.params["accumulate_steps"] = ParamValue(acc2);
      notes += "; stage '" + s.name + "': " + std::to_string(w2) + " ranks x accumulate_steps " + std::to_string(acc2) +
               " keep its global batch of " + std::to_string(b * w * acc);
    } else {
      notes += "; stage '" + s.name + "': its global batch goes from " + std::to_string(b * w * acc) + " to " +
               std::to_string(b * w2 * acc) + " (" + std::to_string(w2) + " ranks do not divide " +
               std::to_string(w * acc) + " micro-batches; scale lr by the same factor for the linear rule)";
    }
  }
  report_.line("catlip: the run goes on on " + std::to_string(g_.nodes) + " node" + (g_.nodes == 1 ? "" : "s") + notes);
  return Status::Ok();
}

// The first report after a run restart that says where the stage's ranks
// resumed: the steps of compute the restart cost.
void Supervisor::note_resumed(const ReplicaReport& r) {
  if (report_.run_restarts().empty()) return;
  RunRestart& last = report_.run_restarts().back();
  if (last.resumed_step >= 0 || r.stage != last.stage) return;
  auto it = r.gauges.find(kResumedStepGauge);
  if (it == r.gauges.end()) return;
  last.resumed_step = int64_t(it->second);
  std::string lost = last.step_reached >= 0
                         ? ": " + std::to_string(std::max<int64_t>(0, last.step_reached - last.resumed_step)) +
                               " step(s) of compute lost (it had reached step " + std::to_string(last.step_reached) + ")"
                         : std::string();
  report_.line("catlip: stage '" + r.stage + "' resumed at step " + std::to_string(last.resumed_step) + lost);
}

// End-of-run checks of a run whose replicas all succeeded: each stage's
// min_samples and max_error_fraction. Returns OK or the first violation.
Status Supervisor::check_outcomes() const {
  for (auto& v : report_.metrics().view()) {
    const StageSpec* s = g_.find(v.name);
    if (!s) continue;
    bool source = s->inputs.empty();
    int64_t items = source ? v.items_out : v.items_in;
    // A stage that ended the run (finish_run: a step budget reached) may
    // leave others with nothing: only then is an empty stage fine.
    int64_t min = s->min_samples >= 0 ? s->min_samples : source ? 0 : 1;
    if (finished_by_.empty() && items < min)
      return Status::Invalid("stage '" + v.name + "' " + (source ? "emitted " : "received ") + std::to_string(items) + " item" +
             (items == 1 ? "" : "s") + ", fewer than min_samples " + std::to_string(min) +
             (items == 0 ? ": no data reached it" : "") + " (set min_samples = 0 on the stage if that is expected)");
    int64_t errors = 0;
    std::string named;
    for (auto& [k, c] : v.counters)
      if (k.rfind("error.", 0) == 0 && c > 0) {
        errors += c;
        named += (named.empty() ? "" : ", ") + k + " " + std::to_string(c);
      }
    int64_t denom = source ? v.items_out + errors : v.items_in;
    double limit = s->max_error_fraction >= 0 ? s->max_error_fraction : g_.max_error_fraction;
    if (errors > 0 && denom > 0 && double(errors) / double(denom) > limit)
      return Status::Invalid("stage '" + v.name + "': " + std::to_string(errors) + " errors for " + std::to_string(denom) + " items (" +
             fmt1(100.0 * double(errors) / double(denom)) + "%: " + named + "), above max_error_fraction " +
             param_value_to_string(limit));
  }
  return Status::Ok();
}

}  // namespace catlip::detail
