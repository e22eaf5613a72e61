// catlip-worker: runs one replica of one stage, started by `catlip run`.
// It loads only the plugin of its stage type, reads the resolved graph the
// supervisor wrote, and exits 0 (done), 1 (failed), 2 (usage), 3 (a
// configuration error: parameters or configure() failed; never restarted),
// 4 (plugin error) or 5 (stopped on request).
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>
#include <iostream>
#include <string>

#include <zmq.hpp>

#include "catlip/graph.h"
#include "catlip/plugin_loader.h"
#include "catlip/runtime.h"
#include "catlip/plan.h"

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

int usage() {
  std::cerr << "usage: catlip-worker --graph RESOLVED.toml --stage NAME --replica N --sock-dir DIR "
               "--run-dir DIR [--endpoints FILE] [--listen-fd FD] [--group-fd FD] [--parent PID]\n"
               "(normally started by `catlip run` or `catlip node`)\n";
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  std::string graph, stage, sock_dir, run_dir, endpoints_file;
  int replica = -1, listen_fd = -1, group_fd = -1;
  long parent = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") { usage(); return 0; }
    if (i + 1 >= argc) return usage();
    std::string v = argv[++i];
    if (a == "--graph") graph = v;
    else if (a == "--stage") stage = v;
    else if (a == "--replica") replica = std::atoi(v.c_str());
    else if (a == "--sock-dir") sock_dir = v;
    else if (a == "--run-dir") run_dir = v;
    else if (a == "--parent") parent = std::atol(v.c_str());
    else if (a == "--endpoints") endpoints_file = v;
    else if (a == "--listen-fd") listen_fd = std::atoi(v.c_str());
    else if (a == "--group-fd") group_fd = std::atoi(v.c_str());
    else return usage();
  }
  if (graph.empty() || stage.empty() || replica < 0 || run_dir.empty()) return usage();
  // Exit if the supervisor is already gone (the death signal is set in the child before exec).
  if (parent > 0 && ::getppid() != parent) return 1;
  std::string comm = (stage + "/" + std::to_string(replica)).substr(0, 15);
  ::prctl(PR_SET_NAME, comm.c_str());

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  catlip::GraphSpec g;
  std::vector<catlip::Diagnostic> diags;
  catlip::LoadOptions lo;
  lo.interpolate_env = false;  // already resolved by the supervisor
  if (!catlip::load_graph(graph, lo, g, diags)) {
    for (auto& d : diags) std::cerr << d.str() << "\n";
    return 2;
  }
  const catlip::StageSpec* spec = g.find(stage);
  if (!spec || replica >= spec->replicas) {
    std::cerr << "error: no stage '" << stage << "' replica " << replica << " in " << graph << "\n";
    return 2;
  }
  catlip::PluginLoader loader;
  const catlip::StageType* type = nullptr;
  try {
    type = loader.find_type(spec->type);
  } catch (const catlip::PluginError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 4;
  }
  if (!type) {
    std::cerr << "error: unknown stage type " << spec->type << "\n";
    return 4;
  }
  catlip::Params params;
  try {
    params = catlip::resolve_params(type->schema, spec->params);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  catlip::EndpointTable tcp;
  if (!endpoints_file.empty()) {
    std::ifstream f(endpoints_file);
    if (!f) {
      std::cerr << "error: cannot read " << endpoints_file << "\n";
      return 2;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    tcp = catlip::endpoints_from_text(ss.str());
  }
  catlip::ReplicaPlan plan;
  try {
    plan = catlip::make_plan(g, tcp, stage, replica, sock_dir, run_dir, false);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  if (catlip::curve_links(g)) {
    // This stage's secret and the others' public keys, from the 0600 file
    // the launcher wrote in the node's private socket directory.
    std::string kf = catlip::key_file(sock_dir, stage);
    try {
      catlip::apply_run_keys(plan, g, catlip::run_keys_from_text(catlip::read_private_file(kf)));
    } catch (const std::exception& e) {
      std::cerr << "error: CURVE keys: " << e.what() << "\n";
      return 2;
    }
  }
  plan.listen_fd = listen_fd;
  plan.dedupe = !type->schema.restartable && !plan.inputs.empty();
  plan.group_fd = group_fd;
  std::unique_ptr<catlip::Stage> st = type->create();
  catlip::ReplicaResult res;
  {
    zmq::context_t zctx(1);
    res = catlip::run_replica(plan, *st, type->schema, params, zctx, g_stop);
    st.reset();
  }
  if (res.stopped) return 5;
  if (!res.ok) {
    std::cerr << "error: " << res.error << "\n";
    return res.config_error ? catlip::kConfigErrorExit : 1;
  }
  return 0;
}
