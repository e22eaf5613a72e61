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
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

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

int usage() {
  std::cout << "catlip bench train [--size tiny] [--cases 64x32,224x8] [--threads 2] [--steps 5]\n"
               "                   [--warmup 2] [--rounds 2] [--vocab 1000] [--patch 16]\n"
               "                   [--python /usr/bin/python3] [--script tools/torch/bench_train.py]\n\n"
               "Times one ViT training step (forward, BCE, backward, clipping, AdamW) in C++ and in\n"
               "Python PyTorch with the same configuration, IMAGExBATCH per case; alternates the two\n"
               "--rounds times. Prints fastest/median step times, the ratio C++/Python of the\n"
               "fastest steps (target <= 1.0; least disturbed by other load on the machine) and\n"
               "GFLOP/s against a measured torch::mm peak.\n";
  return catlip::cli::kOk;
}

int cmd_bench_train(int argc, char** argv) {
  if (catlip::cli::wants_help(argc, argv)) return usage();
  std::string size = "tiny", python = "/usr/bin/python3", script = default_script(argv[0]);
  std::string cases_s = "64x32,224x8";
  int threads = 2, steps = 5, warmup = 2, rounds = 2;
  int64_t vocab = 1000, patch = 16;
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
      else if (a == "--steps") steps = std::stoi(next());
      else if (a == "--warmup") warmup = std::stoi(next());
      else if (a == "--rounds") rounds = std::stoi(next());
      else if (a == "--vocab") vocab = std::stoll(next());
      else if (a == "--patch") patch = std::stoll(next());
      else if (a == "--python") python = next();
      else if (a == "--script") script = next();
      else {
        std::cerr << "bench train: unknown option " << a << "\n";
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
  ViTConfig base;
  if (!vit_size(size, &base)) {
    std::cerr << "bench train: unknown size " << size << "\n";
    return catlip::cli::kUsage;
  }
  base.patch_size = patch;
  base.num_classes = vocab;
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
