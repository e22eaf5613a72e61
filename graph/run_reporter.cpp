// The implementation of run_reporter.h: the progress display, the run's
// metrics files, the Prometheus text and summary.json.
#include "run_reporter.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "catlip/plan.h"

namespace catlip {

namespace {

// Files of the supervisor are opened close-on-exec (std::ofstream cannot be):
// the workers it forks must not inherit them.
FILE* open_run_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return nullptr;
  FILE* f = ::fdopen(fd, "w");
  if (!f) ::close(fd);
  return f;
}

double cpu_seconds(int who) {
  struct rusage ru {};
  ::getrusage(who, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

}  // namespace

void write_run_file(const std::string& path, const std::string& text) {
  if (FILE* f = open_run_file(path)) {
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
}

RunReporter::RunReporter(const GraphSpec& g, const RunOptions& opt) : g_(g), opt_(opt), metrics_(g_) {
  nodes_.resize(size_t(g_.nodes));
  for (int k = 0; k < g_.nodes; ++k) {
    nodes_[size_t(k)].rank = k;
    nodes_[size_t(k)].replicas = static_cast<int>(replicas_on_node(g_, k).size());
  }
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  nodes_[0].host = host;
  nodes_[0].pid = static_cast<int>(::getpid());
  nodes_[0].status = "running";
}

RunReporter::~RunReporter() {
  close();
  if (metrics_file_) std::fclose(metrics_file_);
}

void RunReporter::open(const std::string& run_dir) {
  run_dir_ = run_dir;
  cpu_self0_ = cpu_seconds(RUSAGE_SELF);
  cpu_children0_ = cpu_seconds(RUSAGE_CHILDREN);
  tty_ = !opt_.quiet && (opt_.progress == 1 || (opt_.progress == -1 && ::isatty(2)));
  metrics_file_ = open_run_file(run_dir_ + "/metrics.jsonl");
  if (g_.metrics_port > 0)
    server_.start(g_.metrics_bind, g_.metrics_port, [this] {
      std::lock_guard<std::mutex> l(prom_mu_);
      return prom_text_;
    });
}

void RunReporter::close() { server_.stop(); }

void RunReporter::line(const std::string& text) {
  clear();
  std::cerr << text << "\n";
}

void RunReporter::clear() {
  if (!tty_ || drawn_lines_ == 0) return;
  std::cerr << "\033[" << drawn_lines_ << "A\033[J";
  drawn_lines_ = 0;
}

void RunReporter::refresh_nodes(const std::vector<NodeView>* remote) {
  if (remote)
    for (size_t k = 1; k < remote->size() && k < nodes_.size(); ++k) nodes_[k] = (*remote)[k];
  for (auto& n : nodes_) n.items_in = n.items_out = n.bytes_out = 0;
  for (auto& s : all_replicas(g_))
    if (auto* r = metrics_.report(s.stage, s.replica)) {
      auto& n = nodes_[size_t(s.node)];
      n.items_in += r->items_in;
      n.items_out += r->items_out;
      n.bytes_out += r->bytes_out;
    }
}

void RunReporter::progress(bool force, const std::vector<NodeView>* remote) {
  if (opt_.quiet) return;
  auto now = Clock::now();
  double el = elapsed_s();
  auto text = [&](bool live) {
    std::string t = render_progress(metrics_.view(), el, live);
    if (g_.nodes > 1) {
      refresh_nodes(remote);
      t += render_nodes(nodes_, el, live);
    }
    return t;
  };
  if (tty_) {
    if (!force && now - last_draw_ < std::chrono::milliseconds(500)) return;
    last_draw_ = now;
    clear();
    std::string t = text(true);
    std::cerr << t << std::flush;
    drawn_lines_ = static_cast<int>(std::count(t.begin(), t.end(), '\n'));
  } else {
    if (!force && now - last_plain_ < std::chrono::duration<double>(opt_.plain_interval_s)) return;
    last_plain_ = now;
    std::cerr << text(false) << std::flush;
  }
}

void RunReporter::files(bool final) {
  auto now = Clock::now();
  if (!final && now - last_file_ < std::chrono::seconds(1)) return;
  last_file_ = now;
  if (metrics_file_) {
    std::string record = json::dump(metrics_.json_record(elapsed_s())) + "\n";
    std::fwrite(record.data(), 1, record.size(), metrics_file_);
    std::fflush(metrics_file_);
  }
  std::string prom = metrics_.prometheus();
  {
    std::lock_guard<std::mutex> l(prom_mu_);
    prom_text_ = prom;
  }
  if (final) write_run_file(run_dir_ + "/metrics.prom", prom);
}

// This host's CPU time since open(): the workers' (children that have ended
// and been reaped, with the descendants they reaped) and the supervisor's own
// (every thread of this process, so in-process replicas too).
nlohmann::ordered_json RunReporter::cpu_json() const {
  const double workers = cpu_seconds(RUSAGE_CHILDREN) - cpu_children0_;
  const double self = cpu_seconds(RUSAGE_SELF) - cpu_self0_;
  return {{"workers", json::round_sig(workers, 6)},
          {"supervisor", json::round_sig(self, 6)},
          {"total", json::round_sig(workers + self, 6)}};
}

void RunReporter::summary(int exit_code, const std::string& failure, const std::vector<NodeView>* remote) {
  refresh_nodes(remote);
  double el = elapsed_s();
  json::Ordered failures = json::Ordered::array();
  for (auto& v : metrics_.view())
    for (auto& f : v.failures) failures.push_back(f);
  json::Ordered sum = {{"graph", g_.name},
                       {"exit_code", exit_code},
                       {"elapsed_s", json::round_sig(el, 6)},
                       {"failure", failure},
                       {"failures", std::move(failures)},
                       {"nodes", nodes_json(nodes_)},
                       {"cpu_s", cpu_json()},
                       {"final", metrics_.json_record(el)}};
  if (!run_restarts_.empty()) {
    json::Ordered rr = json::Ordered::array();
    for (auto& r : run_restarts_) {
      json::Ordered o = {{"stage", r.stage}, {"replica", r.replica}, {"node", r.node}, {"cause", r.cause},
                         {"at_s", json::round_sig(r.at_s, 6)}, {"step_reached", r.step_reached},
                         {"resumed_step", r.resumed_step}};
      if (r.step_reached >= 0 && r.resumed_step >= 0) o["steps_lost"] = r.step_reached - r.resumed_step;
      rr.push_back(std::move(o));
    }
    sum["run_restarts"] = std::move(rr);
  }
  write_run_file(run_dir_ + "/summary.json", json::dump(sum) + "\n");
}

}  // namespace catlip
