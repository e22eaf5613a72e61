// Run restarts after a rank failure (run_restarts.h).
#include "run_restarts.h"

#include "catlip/plugin_loader.h"

namespace catlip {

RunRestarts::RunRestarts(const GraphSpec& g, const std::map<std::string, Params>& params) {
  PluginLoader loader;
  for (auto& s : g.stages) {
    const StageType* t = loader.find_type(s.type);
    auto p = params.find(s.name);
    if (!t || !t->schema.group || p == params.end() || !p->second.has("resume")) continue;
    ranked_.insert(s.name);
    if (s.max_restarts <= 0) continue;
    Budget b;
    b.max = s.max_restarts;
    b.window_s = s.restart_window_s;
    budgets_[s.name] = b;
  }
}

void RunRestarts::expire(const Budget& b) const {
  if (b.window_s <= 0) return;
  auto oldest = Clock::now() - std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(b.window_s));
  while (!b.times.empty() && b.times.front() < oldest) b.times.pop_front();
}

bool RunRestarts::allows(const std::string& stage, bool config_error, std::string* note) const {
  auto it = budgets_.find(stage);
  if (it == budgets_.end() || config_error) return false;
  expire(it->second);
  if (int(it->second.times.size()) < it->second.max) return true;
  if (note) {
    size_t n = it->second.times.size();
    *note = " (after " + std::to_string(n) + " run restart" + (n == 1 ? "" : "s") +
            (it->second.window_s > 0 ? " in " + param_value_to_string(it->second.window_s) + " s" : std::string()) +
            "; max_restarts " + std::to_string(it->second.max) + ")";
  }
  return false;
}

int RunRestarts::record(const std::string& stage) {
  Budget& b = budgets_.at(stage);
  expire(b);
  b.times.push_back(Clock::now());
  return int(b.times.size());
}

int RunRestarts::max(const std::string& stage) const {
  auto it = budgets_.find(stage);
  return it == budgets_.end() ? 0 : it->second.max;
}

std::map<std::string, Params> RunRestarts::resume_params(std::map<std::string, Params> params) {
  for (auto& [name, p] : params)
    if (p.has("resume")) p.set("resume", ParamValue(true));
  return params;
}

}  // namespace catlip
