// `catlip bench train --ranks N`: data-parallel steps over the real c10d
// path (see the top of bench_train.cpp): rank processes of this binary, a
// TCPStore on a free loopback port, Gloo, and the three modes (no allreduce,
// blocking, overlapped with backward) in turn.
#include <sys/wait.h>
#include <unistd.h>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench_train.h"
#include "catlip/train/data_parallel.h"
#include "catlip/train/loss.h"
#include "cli.h"

namespace catlip::bench {

using namespace catlip::model;
using namespace catlip::train;

namespace {

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

}  // namespace

// One rank (a process of its own): joins the group, then times steps with no
// allreduce, a blocking allreduce after backward, and the allreduce overlapped
// with backward, in turn. Prints "dp-result MODE BYTES N step_1..step_N comm_1..comm_N".
int dp_worker(const DpSpec& d, int rank, const std::string& endpoint) {
  at::set_num_threads(d.threads_per_rank());
  torch::manual_seed(0);
  StepModel m(d.cfg, torch::kCPU);
  ViT& model = m.model;
  std::vector<torch::Tensor>& params = m.params;
  AdamW& opt = *m.opt;
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


namespace {

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

}  // namespace

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

}  // namespace catlip::bench
