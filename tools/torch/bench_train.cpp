// `catlip bench train`: one training step of the CatLIP ViT in C++ (the
// trainer's own model, loss and optimizer) against the same step in Python
// PyTorch (tools/torch/bench_train.py, run with /usr/bin/python3), same
// config, batch and thread count, in one run. Prints the fastest and median
// step times, the ratio C++/Python of the fastest steps (target <= 1.0), and
// achieved GFLOP/s (training step counted as 3x the forward pass's matmul
// FLOPs) against a torch::mm peak measured here.
//
// Why the fastest step: on a shared machine, other processes preempt one of
// the OpenMP threads and the other spins at a barrier, so a single step can
// take 10x longer; the minimum over steps and rounds (alternating C++ and
// Python) is the figure least affected by that. Medians are printed too.
//
// `catlip bench train --ranks 2`: data-parallel training over the real c10d
// path (catlip::train::DataParallel: TCPStore + ProcessGroupGloo, bucketed
// allreduce from autograd hooks). The ranks are separate processes (this
// binary re-executed with --dp-rank, a TCPStore on a free loopback port), each
// with threads/ranks intra-op threads. Steps take turns between three modes:
// no allreduce (the baseline with both ranks computing), a blocking allreduce
// after backward (allreduce_grads_blocking), and the allreduce overlapped with
// backward (hooks; finish_backward's wait is the exposed part). Prints the
// fraction of the allreduce hidden behind backward twice: from the waits
// (1 - exposed/blocking, the target) and from step times (what the
// overlap actually saves: it also counts the bucket copies the hooks add to
// backward and the cores Gloo's threads take from compute). Scaling efficiency
// is against one rank with threads/ranks threads and with all threads, same
// batch per rank and at the global batch. No Python reference in this mode.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "catlip/train/data_parallel.h"
#include "catlip/train/loss.h"
#include "catlip/train/optim.h"
#include "catlip/train/state_io.h"
#include "catlip/train/vit.h"
#include "cli.h"

namespace fs = std::filesystem;
using namespace catlip::train;
using Clock = std::chrono::steady_clock;

namespace {

struct BenchCase {
  int64_t image = 64, batch = 32;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double matmul_peak_gflops(int n) {
  auto a = torch::randn({n, n}), b = torch::randn({n, n});
  auto c = torch::mm(a, b);
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    auto t0 = Clock::now();
    for (int k = 0; k < 3; ++k) c = torch::mm(a, b);
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, 3 * 2.0 * double(n) * n * n / s / 1e9);
  }
  return best;
}

std::vector<double> cpp_steps(const ViTConfig& cfg, int64_t batch, int steps, int warmup) {
  torch::manual_seed(0);
  ViT model(cfg);
  model->train();
  NamedTensors named;
  std::vector<torch::Tensor> params;
  for (auto& kv : model->named_parameters(true)) {
    named.emplace_back(kv.key(), kv.value());
    params.push_back(kv.value());
  }
  AdamW opt(named, AdamWOptions{});
  auto x = torch::rand({batch, 3, cfg.image_size, cfg.image_size});
  auto y = torch::zeros({batch, cfg.num_classes});
  y.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, torch::indexing::None, 97)}, 1.0);
  std::vector<double> times;
  for (int i = 0; i < warmup + steps; ++i) {
    auto t0 = Clock::now();
    auto loss = catlip_bce_loss(model->forward(x), y);
    opt.zero_grad();
    loss.backward();
    clip_grad_norm(params, 1.0);
    opt.step(1e-4);
    loss.item<double>();
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (i >= warmup) times.push_back(s);
  }
  return times;
}

struct Times {
  double min = -1, median = -1;
};

// Runs the Python reference; returns its step times (min < 0 on failure).
Times python_times(const std::string& python, const std::string& script, const std::string& size,
                     const BenchCase& c, int64_t patch, int64_t vocab, int threads, int steps,
                     int warmup, std::string* err) {
  std::ostringstream cmd;
  cmd << python << " '" << script << "' --size " << size << " --image " << c.image << " --patch "
      << patch << " --batch " << c.batch << " --vocab " << vocab << " --threads " << threads
      << " --steps " << steps << " --warmup " << warmup << " 2>&1";
  FILE* p = ::popen(cmd.str().c_str(), "r");
  if (!p) {
    *err = "cannot run " + python;
    return {};
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  auto k = out.find("\"median_s\": "), j = out.find("\"min_s\": ");
  if (rc != 0 || k == std::string::npos || j == std::string::npos) {
    *err = "python reference failed: " + out;
    return {};
  }
  return {std::atof(out.c_str() + j + 9), std::atof(out.c_str() + k + 12)};
}

std::string default_script(const char* argv0) {
  if (const char* e = std::getenv("CATLIP_BENCH_TRAIN_PY")) return e;
  // Next to this source file (the usual case: run from a build tree) ...
  fs::path here = fs::path(__FILE__).parent_path() / "bench_train.py";
  if (fs::exists(here)) return here.string();
  // ... or installed next to the binary.
  fs::path bin = fs::path(argv0).parent_path() / "bench_train.py";
  return bin.string();
}

// ---- data parallel: --ranks N ----

struct DpSpec {
  ViTConfig cfg;
  std::string size;
  int64_t batch = 32;  // per rank
  int ranks = 2, threads = 2, steps = 20, warmup = 2;
  double bucket_mb = 1;
  int threads_per_rank() const { return std::max(1, threads / ranks); }
};

const char* const kDpModes[] = {"none", "blocking", "overlap"};

// Gradient buckets as DataParallel::attach forms them (reverse parameter
// order, greedy up to bucket_mb), for the printout.
int count_buckets(const std::vector<torch::Tensor>& params, double bucket_mb) {
  int n = 0;
  double fill = 0;
  for (size_t k = params.size(); k-- > 0;) {
    double bytes = double(params[k].numel() * params[k].element_size());
    if (n == 0 || (fill > 0 && fill + bytes > bucket_mb * 1e6)) {
      ++n;
      fill = 0;
    }
    fill += bytes;
  }
  return n;
}

// One rank (a process of its own): joins the group, then times steps with no
// allreduce, a blocking allreduce after backward, and the allreduce overlapped
// with backward, in turn. Prints "dp-result MODE BYTES N step_1..step_N comm_1..comm_N".
int dp_worker(const DpSpec& d, int rank, const std::string& endpoint) {
  at::set_num_threads(d.threads_per_rank());
  torch::manual_seed(0);
  ViT model(d.cfg);
  model->train();
  NamedTensors named;
  std::vector<torch::Tensor> params;
  for (auto& kv : model->named_parameters(true)) {
    named.emplace_back(kv.key(), kv.value());
    params.push_back(kv.value());
  }
  AdamW opt(named, AdamWOptions{});
  DistOptions o;
  o.rank = rank;
  o.world_size = d.ranks;
  o.endpoint = endpoint;
  o.timeout_s = 60;  // a rank that failed to start fails the other within a minute
  o.bucket_mb = d.bucket_mb;
  DataParallel dp(o, torch::kCPU);
  dp.attach(params);
  dp.broadcast_from_rank0(params, "model weights");
  torch::manual_seed(1 + rank);  // each rank its own batch
  auto x = torch::rand({d.batch, 3, d.cfg.image_size, d.cfg.image_size});
  auto y = torch::zeros({d.batch, d.cfg.num_classes});
  y.index_put_({torch::indexing::Slice(), torch::indexing::Slice(rank, torch::indexing::None, 97)}, 1.0);
  // The modes take turns step by step, so that drifting load on the machine
  // touches them alike. Every step starts with the ranks aligned (untimed
  // agreement, as the trainer's "have a batch" collective before each step).
  std::map<std::string, std::vector<double>> step, comm;
  for (int i = 0; i < d.warmup + d.steps; ++i)
    for (std::string mode : kDpModes) {
      dp.all_true(true);
      auto t0 = Clock::now();
      auto loss = catlip_bce_loss(model->forward(x), y);
      opt.zero_grad();
      dp.begin_backward(mode == "overlap");
      loss.backward();
      double c = 0;
      if (mode == "overlap") c = dp.finish_backward();
      else if (mode == "blocking") c = dp.allreduce_grads_blocking();
      clip_grad_norm(params, 1.0);
      opt.step(1e-4);
      loss.item<double>();
      double s = std::chrono::duration<double>(Clock::now() - t0).count();
      if (i >= d.warmup) {
        step[mode].push_back(s);
        comm[mode].push_back(c);
      }
    }
  for (std::string mode : kDpModes) {
    std::printf("dp-result %s %lld %zu", mode.c_str(), (long long)dp.bytes_per_step(), step[mode].size());
    for (double v : step[mode]) std::printf(" %.6f", v);
    for (double v : comm[mode]) std::printf(" %.6f", v);
    std::printf("\n");
  }
  std::fflush(stdout);
  return catlip::cli::kOk;
}


// Per mode: every rank's step and allreduce times (all rounds).
struct DpTimes {
  int64_t bytes = 0;
  std::map<std::string, std::vector<std::vector<double>>> step, comm;  // [mode][rank]
};

// Starts the ranks as processes of this binary and collects their figures.
bool dp_round(const DpSpec& d, DpTimes* out, std::string* err) {
  int port = catlip::cli::free_loopback_port();
  if (port <= 0) {
    *err = "no free TCP port on 127.0.0.1";
    return false;
  }
  // This very binary, even if a rebuild has replaced the file since it started.
  std::string exe = "/proc/" + std::to_string(::getpid()) + "/exe";
  std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  std::vector<FILE*> procs;
  for (int r = 0; r < d.ranks; ++r) {
    std::ostringstream cmd;
    cmd << "'" << exe << "' bench train --dp-rank " << r << " --ranks " << d.ranks << " --endpoint " << endpoint
        << " --size " << d.size << " --patch " << d.cfg.patch_size << " --vocab " << d.cfg.num_classes
        << " --cases " << d.cfg.image_size << "x" << d.batch << " --threads " << d.threads << " --steps "
        << d.steps << " --warmup " << d.warmup << " --bucket-mb " << d.bucket_mb << " 2>&1";
    FILE* p = ::popen(cmd.str().c_str(), "r");
    if (!p) {
      *err = "cannot start rank " + std::to_string(r);
      for (FILE* q : procs) ::pclose(q);
      return false;
    }
    procs.push_back(p);
  }
  bool ok = true;
  for (int r = 0; r < d.ranks; ++r) {
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, procs[size_t(r)])) > 0) text.append(buf, n);
    int rc = ::pclose(procs[size_t(r)]);
    int found = 0;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream f(line);
      std::string tag, mode;
      size_t count = 0;
      f >> tag >> mode >> out->bytes >> count;
      if (tag != "dp-result" || !f) continue;
      std::vector<double> st(count), cm(count);
      for (auto& v : st) f >> v;
      for (auto& v : cm) f >> v;
      auto& ms = out->step[mode];
      auto& mc = out->comm[mode];
      ms.resize(size_t(d.ranks));
      mc.resize(size_t(d.ranks));
      ms[size_t(r)].insert(ms[size_t(r)].end(), st.begin(), st.end());
      mc[size_t(r)].insert(mc[size_t(r)].end(), cm.begin(), cm.end());
      ++found;
    }
    if (rc != 0 || found != 3) {
      ok = false;
      *err += "rank " + std::to_string(r) + " failed (exit status " + std::to_string(rc) + "):\n" + text;
    }
  }
  return ok;
}

int dp_bench(const DpSpec& d, int rounds) {
  // The parent's own model: parameter count and buckets for the printout.
  ViT probe(d.cfg);
  std::vector<torch::Tensor> params;
  int64_t nparams = 0;
  for (auto& p : probe->parameters()) {
    params.push_back(p);
    nparams += p.numel();
  }
  const int tpr = d.threads_per_rank();
  std::printf("bench train --ranks %d: ViT-%s (dim %lld, depth %lld, heads %lld), patch %lld, %lld classes, "
              "image %lld, batch %lld per rank; %d steps after %d warmup per setup, %d rounds\n",
              d.ranks, d.size.c_str(), (long long)d.cfg.dim, (long long)d.cfg.depth, (long long)d.cfg.heads,
              (long long)d.cfg.patch_size, (long long)d.cfg.num_classes, (long long)d.cfg.image_size,
              (long long)d.batch, d.steps, d.warmup, rounds);
  std::printf("c10d ProcessGroupGloo over 127.0.0.1, %d processes x %d thread%s; %lld fp32 parameters, "
              "allreduce buckets of <= %g MB: %d (the trainer's default 25 MB gives %d)\n\n",
              d.ranks, tpr, tpr == 1 ? "" : "s", (long long)nparams, d.bucket_mb, count_buckets(params, d.bucket_mb),
              count_buckets(params, 25));
  std::fflush(stdout);

  DpTimes dpt;
  std::vector<double> one_all, one_tpr, one_all_global;
  for (int r = 0; r < rounds; ++r) {
    std::string err;
    if (!dp_round(d, &dpt, &err)) {
      std::cerr << "bench train: " << err << "\n";
      return catlip::cli::kFailed;
    }
    at::set_num_threads(d.threads);
    auto t = cpp_steps(d.cfg, d.batch, d.steps, d.warmup);
    one_all.insert(one_all.end(), t.begin(), t.end());
    t = cpp_steps(d.cfg, d.batch * d.ranks, d.steps, d.warmup);
    one_all_global.insert(one_all_global.end(), t.begin(), t.end());
    at::set_num_threads(tpr);
    t = cpp_steps(d.cfg, d.batch, d.steps, d.warmup);
    one_tpr.insert(one_tpr.end(), t.begin(), t.end());
  }

  struct Row {
    std::string name;
    double min, med, images_per_s, comm = -1, comm_min = -1;
  };
  auto one_row = [](const std::string& name, const std::vector<double>& t, int64_t images) {
    double med = median(t);
    return Row{name, *std::min_element(t.begin(), t.end()), med, double(images) / med};
  };
  // Steps are synchronous: a group step lasts as long as its slowest rank
  // (step i of every rank is the same step); allreduce times are the mean
  // over ranks at each step. Min and median over the steps.
  auto dp_row = [&](const std::string& name, const std::string& mode) {
    std::vector<double> st, cm;
    auto& ranks_st = dpt.step[mode];
    auto& ranks_cm = dpt.comm[mode];
    size_t n = ranks_st[0].size();
    for (auto& v : ranks_st) n = std::min(n, v.size());
    for (size_t i = 0; i < n; ++i) {
      double s = 0, c = 0;
      for (int r = 0; r < d.ranks; ++r) {
        s = std::max(s, ranks_st[size_t(r)][i]);
        c += ranks_cm[size_t(r)][i] / d.ranks;
      }
      st.push_back(s);
      cm.push_back(c);
    }
    Row row = one_row(name, st, d.batch * d.ranks);
    if (mode != "none") {
      row.comm = median(cm);
      row.comm_min = *std::min_element(cm.begin(), cm.end());
    }
    return row;
  };
  char buf[160];
  auto label = [&](int ranks, int threads, int64_t batch, const char* what) {
    std::snprintf(buf, sizeof buf, "%d rank%s x %d thread%s, batch %lld%s", ranks, ranks == 1 ? " " : "s", threads,
                  threads == 1 ? " " : "s", (long long)batch, what);
    return std::string(buf);
  };
  std::vector<Row> rows = {
      one_row(label(1, d.threads, d.batch, ""), one_all, d.batch),
      one_row(label(1, d.threads, d.batch * d.ranks, " (the global batch)"), one_all_global, d.batch * d.ranks),
      one_row(label(1, tpr, d.batch, ""), one_tpr, d.batch),
      dp_row(label(d.ranks, tpr, d.batch, "/rank, no allreduce"), "none"),
      dp_row(label(d.ranks, tpr, d.batch, "/rank, blocking allreduce"), "blocking"),
      dp_row(label(d.ranks, tpr, d.batch, "/rank, overlapped allreduce"), "overlap"),
  };
  std::printf("%-56s %17s %9s %17s\n", "setup", "step s min/median", "img/s med", "allreduce min/med");
  for (auto& row : rows) {
    std::printf("%-56s %8.4f/%-8.4f %9.1f", row.name.c_str(), row.min, row.med, row.images_per_s);
    if (row.comm >= 0) std::printf(" %8.4f/%-8.4f", row.comm_min, row.comm);
    std::printf("\n");
  }
  const Row &one2 = rows[0], &one2g = rows[1], &one1 = rows[2], &none = rows[3], &blk = rows[4], &ovl = rows[5];
  // Each figure from the fastest steps (least disturbed by other load on a
  // shared machine) and from the medians (what a run sees on average).
  const int64_t global = d.batch * d.ranks;
  auto ips = [](int64_t images, double s) { return s > 0 ? double(images) / s : 0.0; };
  double hid_min = blk.comm_min > 0 ? 1 - ovl.comm_min / blk.comm_min : 0, hid_med = blk.comm > 0 ? 1 - ovl.comm / blk.comm : 0;
  std::printf("\ngradient bytes allreduced per step: %lld (%.1f MB), %d bucket%s\n\n", (long long)dpt.bytes,
              double(dpt.bytes) / 1e6, count_buckets(params, d.bucket_mb), count_buckets(params, d.bucket_mb) == 1 ? "" : "s");
  std::printf("%-58s %9s %9s\n", "", "fastest", "median");
  auto line = [](const std::string& what, double a, double b, const char* fmt) {
    std::printf("%-58s ", what.c_str());
    std::printf(fmt, a);
    std::printf(" ");
    std::printf(fmt, b);
    std::printf("\n");
  };
  line("allreduce s/step, blocking (after backward)", blk.comm_min, blk.comm, "%9.4f");
  line("allreduce s/step, exposed with overlap (finish_backward)", ovl.comm_min, ovl.comm, "%9.4f");
  line("allreduce hidden behind backward, 1 - exposed/blocking, %", 100 * hid_min, 100 * hid_med, "%9.0f");
  line("step s, no allreduce", none.min, none.med, "%9.4f");
  line("step s, blocking allreduce", blk.min, blk.med, "%9.4f");
  line("step s, overlapped allreduce", ovl.min, ovl.med, "%9.4f");
  line("step s added by the allreduce, blocking (- no allreduce)", blk.min - none.min, blk.med - none.med, "%9.4f");
  line("step s added by the allreduce, overlapped", ovl.min - none.min, ovl.med - none.med, "%9.4f");
  // The exposed wait leaves out what the hooks add to backward (gradient
  // copies into the buckets) and the cores the allreduce takes from compute;
  // step times include both.
  auto hid_steps = [](double b, double o) { return b > 0 ? 100 * (1 - o / b) : 0.0; };
  // (From medians only: the fastest steps of three modes are not one step.)
  std::printf("%-58s %9s %9.0f\n", "allreduce hidden by step time, 1 - added overlapped/blocking, %", "",
              hid_steps(blk.med - none.med, ovl.med - none.med));
  line("images/s, " + std::to_string(d.ranks) + " ranks (overlapped)", ips(global, ovl.min), ips(global, ovl.med), "%9.1f");
  line("scaling efficiency vs " + std::to_string(d.ranks) + " x (1 rank x " + std::to_string(tpr) + " thread" +
           (tpr == 1 ? "" : "s") + "), %",
       100 * ips(global, ovl.min) / (d.ranks * ips(d.batch, one1.min)),
       100 * ips(global, ovl.med) / (d.ranks * ips(d.batch, one1.med)), "%9.0f");
  line("images/s ratio vs 1 rank x " + std::to_string(d.threads) + " threads, batch " + std::to_string(d.batch),
       ips(global, ovl.min) / ips(d.batch, one2.min), ips(global, ovl.med) / ips(d.batch, one2.med), "%9.2f");
  line("images/s ratio vs 1 rank x " + std::to_string(d.threads) + " threads, batch " + std::to_string(global),
       ips(global, ovl.min) / ips(global, one2g.min), ips(global, ovl.med) / ips(global, one2g.med), "%9.2f");
  std::printf("\ntarget: at least half of the allreduce hidden behind backward (medians): %s\n",
              hid_med >= 0.5 ? "met" : "NOT met");
  return catlip::cli::kOk;
}

int usage() {
  std::cout << "usage: catlip bench train [--size tiny] [--cases 64x32,224x8] [--threads 2] [--steps 5]\n"
               "                          [--warmup 2] [--rounds 2] [--vocab 1000] [--patch 16]\n"
               "                          [--python /usr/bin/python3] [--script tools/torch/bench_train.py]\n\n"
               "Times one ViT training step (forward, BCE, backward, clipping, AdamW) in C++ and in\n"
               "Python PyTorch with the same configuration, IMAGExBATCH per case; alternates the two\n"
               "--rounds times. Prints fastest/median step times, the ratio C++/Python of the\n"
               "fastest steps (target <= 1.0; least disturbed by other load on the machine) and\n"
               "GFLOP/s against a measured torch::mm peak.\n\n"
               "catlip bench train --ranks N [--bucket-mb 1] [--threads 2] [--cases 64x32] [--steps 20] ...\n\n"
               "Data-parallel training over c10d (Gloo, 127.0.0.1): N rank processes with threads/N\n"
               "threads each, batch per rank from the first case. Steps take turns between no\n"
               "allreduce, a blocking allreduce after backward, and the allreduce overlapped with\n"
               "backward through the gradient hooks; prints gradient bytes per step, the fraction of\n"
               "the allreduce hidden behind backward (from the waits: target >= 50%; and from step\n"
               "times), and the scaling efficiency against one rank with threads/N threads and with\n"
               "all threads. --bucket-mb: allreduce bucket size (default 1 here; the trainer's\n"
               "allreduce_bucket_mb, default 25, puts ViT-tiny in one bucket: nothing to overlap).\n";
  return catlip::cli::kOk;
}

int cmd_bench_train(int argc, char** argv) {
  if (catlip::cli::wants_help(argc, argv)) return usage();
  std::string size = "tiny", python = "/usr/bin/python3", script = default_script(argv[0]);
  std::string cases_s = "64x32,224x8";
  int threads = 2, steps = 5, warmup = 2, rounds = 2;
  int64_t vocab = 1000, patch = 16;
  int ranks = 1, dp_rank = -1;
  bool steps_given = false;
  double bucket_mb = 1;
  std::string endpoint;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--size") size = next();
      else if (a == "--cases") cases_s = next();
      else if (a == "--threads") threads = std::stoi(next());
      else if (a == "--steps") steps = std::stoi(next()), steps_given = true;
      else if (a == "--ranks") ranks = std::stoi(next());
      else if (a == "--bucket-mb") bucket_mb = std::stod(next());
      else if (a == "--dp-rank") dp_rank = std::stoi(next());  // internal: one rank's process
      else if (a == "--endpoint") endpoint = next();         // internal: the group's TCPStore
      else if (a == "--warmup") warmup = std::stoi(next());
      else if (a == "--rounds") rounds = std::stoi(next());
      else if (a == "--vocab") vocab = std::stoll(next());
      else if (a == "--patch") patch = std::stoll(next());
      else if (a == "--python") python = next();
      else if (a == "--script") script = next();
      else {
        std::cerr << "catlip bench train: unknown option " << a
                  << catlip::cli::did_you_mean(a, {"size", "cases", "threads", "steps", "ranks", "bucket-mb", "warmup",
                                                   "rounds", "vocab", "patch", "python", "script"})
                  << "\n";
        usage();
        return catlip::cli::kUsage;
      }
    } catch (const std::exception& e) {
      std::cerr << "bench train: " << a << ": " << e.what() << "\n";
      return catlip::cli::kUsage;
    }
  }
  std::vector<BenchCase> cases;
  std::stringstream cs(cases_s);
  for (std::string item; std::getline(cs, item, ',');) {
    auto x = item.find('x');
    if (x == std::string::npos) {
      std::cerr << "bench train: case '" << item << "' must be IMAGExBATCH\n";
      return catlip::cli::kUsage;
    }
    cases.push_back({std::stoll(item.substr(0, x)), std::stoll(item.substr(x + 1))});
  }
  if (cases.empty()) {
    std::cerr << "bench train: --cases is empty\n";
    return catlip::cli::kUsage;
  }
  ViTConfig base;
  if (!vit_size(size, &base)) {
    std::cerr << "bench train: unknown size " << size << "\n";
    return catlip::cli::kUsage;
  }
  base.patch_size = patch;
  base.num_classes = vocab;
  if (ranks < 1 || threads < 1 || steps < 1 || warmup < 0 || rounds < 1 || bucket_mb <= 0) {
    std::cerr << "bench train: --ranks, --threads, --steps, --rounds must be >= 1, --bucket-mb > 0\n";
    return catlip::cli::kUsage;
  }
  if (ranks > 1 || dp_rank >= 0) {
    if (ranks < 2) {
      std::cerr << "bench train: --dp-rank needs --ranks >= 2\n";
      return catlip::cli::kUsage;
    }
    DpSpec d;
    d.cfg = base;
    d.cfg.image_size = cases.front().image;
    if (auto e = d.cfg.check(); !e.empty()) {
      std::cerr << "bench train: " << e << "\n";
      return catlip::cli::kUsage;
    }
    d.size = size;
    d.batch = cases.front().batch;
    d.ranks = ranks;
    d.threads = threads;
    d.steps = steps_given ? steps : 20;
    d.warmup = warmup;
    d.bucket_mb = bucket_mb;
    if (dp_rank >= 0) return dp_worker(d, dp_rank, endpoint);
    return dp_bench(d, rounds);
  }
  at::set_num_threads(threads);
  double peak = matmul_peak_gflops(2048);
  std::printf("bench train: ViT-%s (dim %lld, depth %lld, heads %lld), patch %lld, %lld classes, "
              "%d threads, %d steps after %d warmup, best of %d rounds\n",
              size.c_str(), (long long)base.dim, (long long)base.depth, (long long)base.heads,
              (long long)patch, (long long)vocab, threads, steps, warmup, rounds);
  std::printf("matmul peak (torch::mm 2048^3 fp32): %.1f GFLOP/s\n\n", peak);
  std::printf("%-10s %6s %17s %17s %8s %12s %8s\n", "image", "batch", "C++ s min/median",
              "Python min/median", "C++/Py", "C++ GFLOP/s", "of peak");
  std::fflush(stdout);
  bool all_ok = true;
  for (auto& c : cases) {
    ViTConfig cfg = base;
    cfg.image_size = c.image;
    if (auto e = cfg.check(); !e.empty()) {
      std::cerr << "bench train: " << e << "\n";
      return catlip::cli::kUsage;
    }
    double best_cpp = 1e30, best_py = 1e30, med_cpp = 1e30, med_py = 1e30;
    std::string err;
    for (int r = 0; r < rounds; ++r) {
      auto t = cpp_steps(cfg, c.batch, steps, warmup);
      best_cpp = std::min(best_cpp, *std::min_element(t.begin(), t.end()));
      med_cpp = std::min(med_cpp, median(t));
      Times py = python_times(python, script, size, c, patch, vocab, threads, steps, warmup, &err);
      if (py.min < 0) {
        std::cerr << "bench train: " << err << "\n";
        return catlip::cli::kFailed;
      }
      best_py = std::min(best_py, py.min);
      med_py = std::min(med_py, py.median);
    }
    double flops = 3.0 * cfg.forward_flops() * double(c.batch);
    double gf = flops / best_cpp / 1e9;
    double ratio = best_cpp / best_py;
    all_ok = all_ok && ratio <= 1.0;
    char img[32];
    std::snprintf(img, sizeof img, "%lldx%lld", (long long)c.image, (long long)c.image);
    std::printf("%-10s %6lld %8.4f/%-8.4f %8.4f/%-8.4f %8.3f %12.1f %7.0f%%\n", img, (long long)c.batch,
                best_cpp, med_cpp, best_py, med_py, ratio, gf, 100.0 * gf / peak);
    std::fflush(stdout);
  }
  std::printf("\ntarget C++/Python <= 1.0: %s\n", all_ok ? "met" : "NOT met");
  return catlip::cli::kOk;
}

}  // namespace

CATLIP_COMMAND("bench train", "Time a ViT training step in C++ vs Python PyTorch", cmd_bench_train);
