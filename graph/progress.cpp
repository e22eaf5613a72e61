// Progress lines, the live view, metrics.jsonl / metrics.prom and summary.json of a run
// (catlip/run_metrics.h).
#include <cmath>
#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "catlip/run_metrics.h"

namespace catlip {

RunMetrics::RunMetrics(const GraphSpec& g) : g_(g) {
  for (auto& s : g.stages) {
    StageView v;
    v.name = s.name;
    v.type = s.type;
    v.replicas = s.replicas;
    views_.push_back(v);
  }
}

void RunMetrics::update(const ReplicaReport& r) { latest_[{r.stage, r.replica}] = r; }

void RunMetrics::mark_failed(const std::string& stage, int replica, const std::string& why) {
  failed_.emplace(std::make_pair(stage, replica), why);  // the first reason stays
}

void RunMetrics::mark_restarted(const std::string& stage, int replica, const std::string& why) {
  Carried& c = carried_[stage];
  c.restarts++;
  if (c.reasons.size() < 20) c.reasons.push_back(why);
  carry_over(stage, replica);
}

void RunMetrics::carry_over(const std::string& stage, int replica) {
  Carried& c = carried_[stage];
  failed_.erase({stage, replica});
  auto it = latest_.find({stage, replica});
  if (it == latest_.end()) return;
  c.items_in += it->second.items_in;
  c.items_out += it->second.items_out;
  c.bytes_out += it->second.bytes_out;
  for (auto& [k, n] : it->second.counters) c.counters[k] += n;
  latest_.erase(it);
}

void RunMetrics::reshape() {
  for (auto& v : views_)
    if (const StageSpec* s = g_.find(v.name)) v.replicas = s->replicas;
}

const ReplicaReport* RunMetrics::report(const std::string& stage, int replica) const {
  auto it = latest_.find({stage, replica});
  return it == latest_.end() ? nullptr : &it->second;
}

static bool is_error_counter(const std::string& n) {
  return n.rfind("error", 0) == 0 || n.rfind("skipped", 0) == 0;
}

void RunMetrics::tick(double now, bool whole_run) {
  for (auto& v : views_) {
    StageView n;
    n.name = v.name;
    n.type = v.type;
    n.replicas = v.replicas;
    double busy = 0, wait_in = 0, wait_out = 0, elapsed_sum = 0;
    bool totals_known = true;
    int64_t total = 0;
    for (int r = 0; r < v.replicas; ++r) {
      auto* rep = report(v.name, r);
      auto marked = failed_.find({v.name, r});
      if (marked != failed_.end()) {
        n.failed++;
        n.failures.push_back(marked->second);
      } else if (rep && rep->state == ReplicaState::Failed) {
        n.failed++;
        n.failures.push_back("stage '" + v.name + "' replica " + std::to_string(r) + " failed: " + rep->error);
      }
      if (!rep) {
        totals_known = false;
        continue;
      }
      n.items_in += rep->items_in;
      n.items_out += rep->items_out;
      n.bytes_out += rep->bytes_out;
      n.queue += rep->queue;
      busy += rep->busy_s;
      wait_in += rep->wait_in_s;
      wait_out += rep->wait_out_s;
      elapsed_sum += rep->elapsed_s;
      bool failed = marked != failed_.end() || rep->state == ReplicaState::Failed;
      if (!failed && rep->state == ReplicaState::Done) n.done++;
      else if (!failed && rep->state == ReplicaState::Running) n.running++;
      if (rep->total < 0) totals_known = false;
      else total += rep->total;
      for (auto& [k, c] : rep->counters) {
        n.counters[k] += c;
        if (is_error_counter(k)) n.errors += c;
      }
      if (r == 0 || n.gauges.empty())
        for (auto& [k, x] : rep->gauges) n.gauges[k] = x;
    }
    if (auto c = carried_.find(v.name); c != carried_.end()) {
      n.items_in += c->second.items_in;
      n.items_out += c->second.items_out;
      n.bytes_out += c->second.bytes_out;
      for (auto& [k, x] : c->second.counters) {
        n.counters[k] += x;
        if (is_error_counter(k)) n.errors += x;
      }
      n.restarts = c->second.restarts;
      n.restart_reasons = c->second.reasons;
    }
    n.total = totals_known ? total : -1;
    Prev& p = prev_[v.name];
    if (whole_run) p = Prev{};
    double dt = now - p.t;
    if (dt >= 0.5 || p.t == 0) {
      if (whole_run && now > 0) {
        n.in_rate = n.items_in / now;
        n.out_rate = n.items_out / now;
        n.mb_rate = n.bytes_out / now / 1e6;
        n.busy_pct = 100.0 * busy / now / v.replicas;
        n.wait_in_pct = 100.0 * wait_in / now / v.replicas;
        n.wait_out_pct = 100.0 * wait_out / now / v.replicas;
      } else if (p.t > 0 && dt > 0) {
        n.in_rate = (n.items_in - p.in) / dt;
        n.out_rate = (n.items_out - p.out) / dt;
        n.mb_rate = (n.bytes_out - p.bytes) / dt / 1e6;
        n.busy_pct = 100.0 * (busy - p.busy) / dt / v.replicas;
        n.wait_in_pct = 100.0 * (wait_in - p.wait_in) / dt / v.replicas;
        n.wait_out_pct = 100.0 * (wait_out - p.wait_out) / dt / v.replicas;
      } else if (elapsed_sum > 0) {
        n.busy_pct = 100.0 * busy / elapsed_sum;
      }
      p = Prev{now, n.items_in, n.items_out, n.bytes_out, busy, wait_in, wait_out};
    } else {
      n.in_rate = v.in_rate;
      n.out_rate = v.out_rate;
      n.mb_rate = v.mb_rate;
      n.busy_pct = v.busy_pct;
      n.wait_in_pct = v.wait_in_pct;
      n.wait_out_pct = v.wait_out_pct;
    }
    n.busy_pct = std::clamp(n.busy_pct, 0.0, 100.0);
    n.wait_in_pct = std::clamp(n.wait_in_pct, 0.0, 100.0);
    n.wait_out_pct = std::clamp(n.wait_out_pct, 0.0, 100.0);
    v = n;
  }
}

static std::string prom_label(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (c == '\n') { o += "\\n"; continue; }
    o += c;
  }
  return o;
}

static std::string prom_name(const std::string& s) {
  std::string o;
  for (char c : s) o += (std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return o;
}

std::string RunMetrics::prometheus() const {
  std::ostringstream o;
  struct M { const char* name; const char* type; const char* help; };
  const M ms[] = {
      {"catlip_items_in_total", "counter", "Items received by a stage replica"},
      {"catlip_items_out_total", "counter", "Items emitted by a stage replica"},
      {"catlip_bytes_out_total", "counter", "Encoded bytes emitted by a stage replica"},
      {"catlip_busy_seconds_total", "counter", "Seconds spent in the stage's own code"},
      {"catlip_wait_input_seconds_total", "counter", "Seconds spent waiting for input"},
      {"catlip_wait_output_seconds_total", "counter", "Seconds blocked by downstream back-pressure"},
      {"catlip_queue_depth", "gauge", "Items received but not yet processed"},
      {"catlip_replica_up", "gauge", "1 while the replica runs"},
  };
  for (auto& m : ms) {
    o << "# HELP " << m.name << " " << m.help << "\n# TYPE " << m.name << " " << m.type << "\n";
    for (auto& [key, r] : latest_) {
      std::string lbl = "{graph=\"" + prom_label(g_.name) + "\",stage=\"" + prom_label(r.stage) +
                        "\",replica=\"" + std::to_string(r.replica) + "\"}";
      double v = 0;
      std::string n = m.name;
      if (n == "catlip_items_in_total") v = double(r.items_in);
      else if (n == "catlip_items_out_total") v = double(r.items_out);
      else if (n == "catlip_bytes_out_total") v = double(r.bytes_out);
      else if (n == "catlip_busy_seconds_total") v = r.busy_s;
      else if (n == "catlip_wait_input_seconds_total") v = r.wait_in_s;
      else if (n == "catlip_wait_output_seconds_total") v = r.wait_out_s;
      else if (n == "catlip_queue_depth") v = double(r.queue);
      else v = (r.state == ReplicaState::Running || r.state == ReplicaState::Starting) ? 1 : 0;
      o << m.name << lbl << " " << v << "\n";
    }
  }
  o << "# HELP catlip_stage_counter Named counters reported by stages (skips, errors, ...)\n"
       "# TYPE catlip_stage_counter counter\n";
  for (auto& [key, r] : latest_)
    for (auto& [k, c] : r.counters)
      o << "catlip_stage_counter{graph=\"" << prom_label(g_.name) << "\",stage=\"" << prom_label(r.stage)
        << "\",replica=\"" << r.replica << "\",name=\"" << prom_label(k) << "\"} " << c << "\n";
  o << "# HELP catlip_restarts_total Replicas of a stage restarted after a failure\n"
       "# TYPE catlip_restarts_total counter\n";
  for (auto& s : g_.stages) {
    auto c = carried_.find(s.name);
    o << "catlip_restarts_total{graph=\"" << prom_label(g_.name) << "\",stage=\"" << prom_label(s.name) << "\"} "
      << (c == carried_.end() ? 0 : c->second.restarts) << "\n";
  }
  o << "# HELP catlip_stage_gauge Named gauges reported by stages (loss, lr, ...)\n"
       "# TYPE catlip_stage_gauge gauge\n";
  for (auto& [key, r] : latest_)
    for (auto& [k, x] : r.gauges)
      o << "catlip_stage_gauge{graph=\"" << prom_label(g_.name) << "\",stage=\"" << prom_label(r.stage)
        << "\",replica=\"" << r.replica << "\",name=\"" << prom_label(prom_name(k)) << "\"} " << x << "\n";
  return o.str();
}

// Rates and gauges with 10 significant digits: gauges such as first_item_s
// (seconds of a steady clock) need them. Non-finite values are written as null.
static double num10(double d) { return json::round_sig(d, 10); }

json::Ordered RunMetrics::json_record(double now) const {
  json::Ordered stages = json::Ordered::object();
  for (auto& v : views_) {
    json::Ordered s = {{"replicas", v.replicas},   {"done", v.done},
                       {"failed", v.failed},       {"items_in", v.items_in},
                       {"items_out", v.items_out}, {"bytes_out", v.bytes_out},
                       {"in_rate", num10(v.in_rate)},       {"out_rate", num10(v.out_rate)},
                       {"mb_rate", num10(v.mb_rate)},       {"busy_pct", num10(v.busy_pct)},
                       {"wait_in_pct", num10(v.wait_in_pct)}, {"wait_out_pct", num10(v.wait_out_pct)},
                       {"queue", v.queue},         {"errors", v.errors},
                       {"total", v.total},         {"restarts", v.restarts}};
    if (!v.restart_reasons.empty()) s["restart_reasons"] = v.restart_reasons;
    if (!v.failures.empty()) s["failures"] = v.failures;
    s["counters"] = json::Ordered(v.counters);
    json::Ordered gauges = json::Ordered::object();
    for (auto& [k, x] : v.gauges) gauges[k] = num10(x);
    s["gauges"] = std::move(gauges);
    stages[v.name] = std::move(s);
  }
  return {{"t", num10(now)}, {"stages", std::move(stages)}};
}

std::string human_count(double v) {
  char b[32];
  double a = std::fabs(v);
  if (a >= 1e9) snprintf(b, sizeof b, "%.1fG", v / 1e9);
  else if (a >= 1e6) snprintf(b, sizeof b, "%.1fM", v / 1e6);
  else if (a >= 1e4) snprintf(b, sizeof b, "%.1fk", v / 1e3);
  else if (a >= 100 || v == std::floor(v)) snprintf(b, sizeof b, "%.0f", v);
  else snprintf(b, sizeof b, "%.1f", v);
  return b;
}

static std::string fmt_eta(double s) {
  char b[32];
  if (s < 0 || !std::isfinite(s)) return "?";
  int t = int(s + 0.5);
  if (t >= 3600) snprintf(b, sizeof b, "%dh%02dm", t / 3600, (t / 60) % 60);
  else snprintf(b, sizeof b, "%dm%02ds", t / 60, t % 60);
  return b;
}

std::string render_progress(const std::vector<StageView>& views, double elapsed, bool tty) {
  std::ostringstream o;
  size_t w = 5;
  for (auto& v : views) w = std::max(w, v.name.size());
  // Overall progress: sources with a known total.
  int64_t done = 0, total = 0;
  double rate = 0;
  bool known = false;
  for (auto& v : views) {
    if (v.type.empty() || v.items_in != 0 || v.total < 0) continue;
    known = true;
    done += v.items_out;
    total += v.total;
    rate += v.out_rate;
  }
  char line[512];
  for (auto& v : views) {
    std::string state = v.failed ? "FAILED" : (v.done == v.replicas ? "done" : std::to_string(v.running) + "/" + std::to_string(v.replicas));
    std::string restarts = v.restarts ? "  restarts " + std::to_string(v.restarts) : std::string();
    std::string gauges;
    int ng = 0;
    for (auto& [k, x] : v.gauges) {
      if (ng++ == 3) break;
      char gb[64];
      snprintf(gb, sizeof gb, " %s=%.4g", k.c_str(), x);
      gauges += gb;
    }
    snprintf(line, sizeof line, "%-*s %6s  in %7s  out %7s  %7s/s %7.1f MB/s  busy %3.0f%%  queue %4lld  errors %lld%s%s",
             int(w), v.name.c_str(), state.c_str(), human_count(double(v.items_in)).c_str(),
             human_count(double(v.items_out)).c_str(), human_count(v.out_rate > 0 ? v.out_rate : v.in_rate).c_str(),
             v.mb_rate, v.busy_pct, (long long)v.queue, (long long)v.errors, restarts.c_str(), gauges.c_str());
    o << (tty ? "" : "progress: ") << line << "\n";
  }
  if (known && total > 0) {
    double frac = double(done) / double(total);
    double eta = rate > 0 ? (total - done) / rate : -1;
    snprintf(line, sizeof line, "overall: %5.1f%% (%lld/%lld source items)  elapsed %s  ETA %s", 100 * frac,
             (long long)done, (long long)total, fmt_eta(elapsed).c_str(), fmt_eta(eta).c_str());
  } else {
    snprintf(line, sizeof line, "overall: elapsed %s (total unknown)", fmt_eta(elapsed).c_str());
  }
  o << (tty ? "" : "progress: ") << line << "\n";
  return o.str();
}

}  // namespace catlip

namespace catlip {

std::string render_nodes(const std::vector<NodeView>& nodes, double elapsed, bool tty) {
  std::ostringstream o;
  for (auto& n : nodes) {
    char b[256];
    std::snprintf(b, sizeof b, "%snode %-3d %-16.16s %-15.15s %-8s %d/%d replicas running  out %s  %s\n", tty ? "" : "progress: ", n.rank,
                  n.host.c_str(), n.address.c_str(), n.status.c_str(), n.status == "running" ? n.replicas - n.exited : 0, n.replicas,
                  human_count(double(n.items_out)).c_str(),
                  n.rank == 0 ? "coordinator" : ("seen " + std::to_string(int(std::max(0.0, elapsed - n.last_seen_s))) + " s ago").c_str());
    o << b;
  }
  return o.str();
}

json::Ordered nodes_json(const std::vector<NodeView>& nodes) {
  json::Ordered out = json::Ordered::array();
  for (auto& n : nodes)
    out.push_back({{"rank", n.rank},         {"host", n.host},         {"address", n.address},
                   {"pid", n.pid},           {"status", n.status},     {"replicas", n.replicas},
                   {"exited", n.exited},     {"failed", n.failed},     {"items_in", n.items_in},
                   {"items_out", n.items_out}, {"bytes_out", n.bytes_out}});
  return out;
}

}  // namespace catlip
