// catlip-worker: runs one replica of one stage, started by `catlip run` or
// `catlip node`. It reads the replica spec its node's launcher wrote (the
// plan and resolved parameters: catlip/replica_spec.h), loads only the plugin
// of its stage type, and exits 0 (done), 1 (failed), 2 (usage or an
// unreadable spec), 3 (a configuration error: parameters or configure()
// failed; never restarted), 4 (plugin error) or 5 (stopped on request).
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <string>

#include <zmq.hpp>

#include "catlip/plugin_loader.h"
#include "catlip/replica_spec.h"
#include "catlip/runtime.h"

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

int usage() {
  std::cerr << "usage: catlip-worker --spec REPLICA.json [--run-dir DIR] [--listen-fd FD] [--group-fd FD] "
               "[--parent PID]\n"
               "(started by `catlip run` or `catlip node`, which write the spec; --run-dir names the run\n"
               "in ps and must be the spec's)\n";
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  std::string spec_file, run_dir;
  int listen_fd = -1, group_fd = -1;
  long parent = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") { usage(); return 0; }
    if (i + 1 >= argc) return usage();
    std::string v = argv[++i];
    if (a == "--spec") spec_file = v;
    else if (a == "--run-dir") run_dir = v;
    else if (a == "--parent") parent = std::atol(v.c_str());
    else if (a == "--listen-fd") listen_fd = std::atoi(v.c_str());
    else if (a == "--group-fd") group_fd = std::atoi(v.c_str());
    else return usage();
  }
  if (spec_file.empty()) return usage();
  // Exit if the supervisor is already gone (the death signal is set in the child before exec).
  if (parent > 0 && ::getppid() != parent) return 1;

  auto spec = catlip::read_replica_spec(spec_file);
  if (!spec.ok()) {
    std::cerr << "error: " << spec.status().message() << "\n";
    return 2;
  }
  catlip::ReplicaPlan& plan = spec.value().plan;
  if (!run_dir.empty() && run_dir != plan.run_dir) {
    std::cerr << "error: " << spec_file << " is a replica of the run in " << plan.run_dir << ", not " << run_dir << "\n";
    return 2;
  }
  std::string comm = (plan.stage_name + "/" + std::to_string(plan.replica)).substr(0, 15);
  ::prctl(PR_SET_NAME, comm.c_str());

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  catlip::PluginLoader loader;
  const catlip::StageType* type = nullptr;
  try {
    type = loader.find_type(plan.stage_type);
  } catch (const catlip::PluginError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 4;
  }
  if (!type) {
    std::cerr << "error: unknown stage type " << plan.stage_type << "\n";
    return 4;
  }
  plan.listen_fd = listen_fd;
  plan.group_fd = group_fd;
  std::unique_ptr<catlip::Stage> st = type->create();
  catlip::ReplicaResult res;
  {
    zmq::context_t zctx(1);
    res = catlip::run_replica(plan, *st, type->schema, spec.value().params, zctx, g_stop);
    st.reset();
  }
  if (res.stopped) return 5;
  if (!res.ok) {
    std::cerr << "error: " << res.error << "\n";
    return res.config_error ? catlip::kConfigErrorExit : 1;
  }
  return 0;
}
