// `catlip bench train`: one training step of the CatLIP ViT in C++ (the
// trainer's own model, fast paths, loss and optimizer) against the same step
// in Python PyTorch (tools/torch/bench_train.py), eager and under
// torch.compile, same config, batch, device, precision and thread count, in
// one run. Python is the project venv's (catlip::cli::default_python: the
// same torch wheel catlip's LibTorch comes from; --python overrides); the
// header states the interpreter and its torch version. Prints, per case, the
// fastest and median step times of all three, the ratios C++/eager (target
// <= 1.0) and C++/torch.compile of the fastest steps, images/s, and achieved
// FLOP/s (training step counted as 3x the forward pass's matmul FLOPs)
// against a peak: on CPU a torch::mm peak measured here, on CUDA the card's
// dense bf16 peak looked up from its name (MFU; n/a for unknown cards).
// --json FILE writes every number. torch.compile's warm-up (compilation) is
// timed apart and left out of its step times; where torch.compile fails, the
// reason is printed in one line and the eager column stays (a failed eager
// run likewise leaves the C++ column, and exit status 1).
//
// Why the fastest step: on a shared machine, other processes preempt one of
// the OpenMP threads and the other spins at a barrier, so a single step can
// take 10x longer; the minimum over steps and rounds (alternating C++ and
// Python) is the figure least affected by that. Medians are printed too.
//
// `catlip bench train --ranks 2` (bench_train_dp.cpp): data-parallel training over the real c10d
// path (catlip::train::DataParallel: TCPStore + ProcessGroupGloo, bucketed
// allreduce from autograd hooks), on CPU. The ranks are separate processes
// (this binary re-executed with --dp-rank, a TCPStore on a free loopback
// port), each with threads/ranks intra-op threads. Steps take turns between
// three modes: no allreduce (the baseline with both ranks computing), a
// blocking allreduce after backward (allreduce_grads_blocking), and the
// allreduce overlapped with backward (hooks; finish_backward's wait is the
// exposed part). Prints the fraction of the allreduce hidden behind backward
// twice: from the waits (1 - exposed/blocking, the target) and from
// step times (what the overlap actually saves: it also counts the bucket
// copies the hooks add to backward and the cores Gloo's threads take from
// compute). Scaling efficiency is against one rank with threads/ranks threads
// and with all threads, same batch per rank and at the global batch. No
// Python reference in this mode.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/version.h>

#ifdef CATLIP_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "catlip/model/model_io.h"
#include "catlip/model/state_io.h"
#include "catlip/model/vit.h"
#include "catlip/train/data_parallel.h"
#include "catlip/train/loss.h"
#include "catlip/train/objective.h"
#include "catlip/train/optim.h"
#include "bench_train.h"
#include "cli.h"

namespace fs = std::filesystem;
namespace json = catlip::json;
using namespace catlip::model;
using namespace catlip::train;
using namespace catlip::bench;
using Clock = std::chrono::steady_clock;

namespace {

struct BenchCase {
  int64_t image = 64, batch = 32;
};


// The fastest of 5 x 3 products n^3 on the CPU, in GFLOP/s.
double matmul_peak_gflops(int n, torch::ScalarType dtype) {
  auto a = torch::randn({n, n}).to(dtype), b = torch::randn({n, n}).to(dtype);
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

// Dense bf16 tensor-core peak of a CUDA card, TFLOP/s, from its name; 0 if
// unknown (MFU then prints as n/a).
double cuda_bf16_peak_tflops(const std::string& name) {
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  if (has("H100") && (has("PCIe") || has("PCIE"))) return 756;
  if (has("H100") && (has("SXM") || has("HBM3"))) return 989;
  if (has("H200")) return 989;
  if (has("A100")) return 312;
  return 0;
}

std::string cuda_device_name(const torch::Device& d) {
#ifdef CATLIP_WITH_CUDA
  if (d.is_cuda()) return at::cuda::getDeviceProperties(d.has_index() ? d.index() : 0)->name;
#endif
  return d.str();
}

void device_sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.has_index() ? d.index() : -1);
}

// Hands the C++ side's cached GPU memory back before the Python reference
// runs in its own process on the same card.
void release_device_memory(const torch::Device& d) {
#ifdef CATLIP_WITH_CUDA
  if (d.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
}


// What one run of the Python reference reported.
struct PyRun {
  bool ok = false;
  std::string error;  // one line when !ok
  double min = 0, median = 0, compile_s = 0;
  bool fused_adamw = false;
};

double num(const json::Value& o, const std::string& k) {
  const json::Value* x = json::find(o, k);
  return x && x->is_number() ? json::number(*x) : 0;
}

std::string str(const json::Value& o, const std::string& k) {
  const json::Value* x = json::find(o, k);
  return x && x->is_string() ? json::string(*x) : "";
}

// Runs a command; its stdout and stderr together, and the exit status.
std::string run_capture(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) {
    *rc = -1;
    return "cannot start: " + cmd;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  *rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return out;
}

// The last `n` lines of `text`, joined with " | " (for one-line errors).
std::string tail_lines(const std::string& text, size_t n) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) lines.push_back(l);
  std::string o;
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) o += (o.empty() ? "" : " | ") + lines[i];
  return o;
}

std::string quote_arg(const std::string& s) {
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

// The Python side of one case and round: eager, or the model under torch.compile.
struct PySpec {
  std::string python, script, size, device, precision;
  int64_t patch = 16, vocab = 1000;
  int threads = 2, steps = 5, warmup = 2;
};

PyRun python_run(const PySpec& s, const BenchCase& c, bool compile) {
  std::ostringstream cmd;
  cmd << quote_arg(s.python) << " " << quote_arg(s.script) << " --size " << s.size << " --image " << c.image
      << " --patch " << s.patch << " --batch " << c.batch << " --vocab " << s.vocab << " --threads " << s.threads
      << " --steps " << s.steps << " --warmup " << s.warmup << " --device " << s.device << " --precision "
      << s.precision << (compile ? " --compile" : "");
  int rc = 0;
  std::string out = run_capture(cmd.str(), &rc);
  PyRun r;
  // The script's result is its last line that is a JSON object.
  std::string last;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);)
    if (!l.empty() && l[0] == '{') last = l;
  try {
    if (last.empty()) throw std::runtime_error("no result line");
    const json::Value o = json::object(json::parse(last, "result line"));
    r.error = str(o, "error");
    if (rc == 0 && r.error.empty()) {
      r.ok = true;
      r.min = num(o, "min_s");
      r.median = num(o, "median_s");
      r.compile_s = num(o, "compile_s");
      const json::Value* f = json::find(o, "fused_adamw");
      r.fused_adamw = f && f->is_boolean() && f->get<bool>();
    }
  } catch (const std::exception&) {
    // no or unreadable result line: r.ok stays false and the error below quotes the output
  }
  if (!r.ok && r.error.empty())
    r.error = (compile ? "torch.compile" : std::string("eager")) + " run failed (exit status " + std::to_string(rc) +
              "): " + tail_lines(out, 3);
  return r;
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

int train_usage() {
  std::cout << "usage: catlip bench train [--size tiny] [--cases 64x32,224x8] [--threads 2] [--steps 5]\n"
               "                          [--warmup 2] [--rounds 2] [--vocab 1000] [--patch 16]\n"
               "                          [--device cpu|cuda] [--precision fp32|bf16] [--no-compile]\n"
               "                          [--json FILE] [--python PATH] [--script tools/torch/bench_train.py]\n\n"
               "Times one ViT training step (forward, BCE, backward, clipping, AdamW) in C++ (the\n"
               "trainer's model, fast paths and optimizer) and in Python PyTorch, eager and under\n"
               "torch.compile, with the same configuration, IMAGExBATCH per case; alternates them\n"
               "--rounds times. Prints fastest/median step times, the ratios C++/eager (target <= 1.0)\n"
               "and C++/torch.compile of the fastest steps (least disturbed by other load on the\n"
               "machine), images/s, and FLOP/s against a peak: on CPU a measured torch::mm peak, on\n"
               "CUDA the card's dense bf16 peak (MFU).\n\n"
               "  --python PATH     the interpreter of the baseline (default: $CATLIP_PYTHON, else the\n"
               "                    project venv .venv/bin/python beside the build, else /usr/bin/python3)\n"
               "  --device D        cpu (default) or cuda[:N]: model and inputs on D, both sides\n"
               "  --precision P     fp32 (default) or bf16: autocast around the forward pass, loss in fp32\n"
               "  --no-compile      skip the torch.compile baseline (its compilation costs minutes on CPU)\n"
               "  --json FILE       write every figure as JSON\n\n"
               "catlip bench train --ranks N [--bucket-mb 1] [--threads 2] [--cases 64x32] [--steps 20] ...\n\n"
               "Data-parallel training over c10d (Gloo, 127.0.0.1, CPU): N rank processes with threads/N\n"
               "threads each, batch per rank from the first case. Steps take turns between no\n"
               "allreduce, a blocking allreduce after backward, and the allreduce overlapped with\n"
               "backward through the gradient hooks; prints gradient bytes per step, the fraction of\n"
               "the allreduce hidden behind backward (from the waits: target >= 50%; and from step\n"
               "times), and the scaling efficiency against one rank with threads/N threads and with\n"
               "all threads. --bucket-mb: allreduce bucket size (default 1 here, so ViT-tiny has\n"
               "many buckets to overlap; the trainer's allreduce_bucket_mb defaults to 5).\n";
  return catlip::cli::kOk;
}

// Fastest and median step seconds of one side, over the rounds.
struct Side {
  bool ran = false;
  double min = 1e30, median = 1e30;
  void add(double mn, double md) {
    ran = true;
    min = std::min(min, mn);
    median = std::min(median, md);
  }
};

struct CaseResult {
  BenchCase c;
  double flops = 0;  // per training step
  Side cpp, eager, compiled;
  std::vector<double> compile_s;  // torch.compile's warm-up (compilation) per round
  bool fused_adamw = false;
};

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// "min/median" in a fixed width, or `what` when the side did not run.
std::string pair_col(const Side& s, const char* what) {
  if (!s.ran) return what;
  return fmt("%.4f", s.min) + "/" + fmt("%.4f", s.median);
}

// Figures with 6 significant digits; NaN/inf are written as null.
double num6(double v) { return json::round_sig(v, 6); }

// The whole run as one JSON object (--json).
struct Header {
  std::string size, device, device_name, precision, python, torch_version, peak_source, eager_error, compile_error;
  ViTConfig cfg;
  int threads = 0, steps = 0, warmup = 0, rounds = 0;
  bool compile = true;
  double peak_tflops = 0;  // 0: unknown
};

json::Ordered side_json(const Side& s, int64_t batch, double flops, double peak_tflops) {
  if (!s.ran) return nullptr;
  double tf_best = flops / s.min / 1e12, tf_med = flops / s.median / 1e12;
  const double none = std::nan("");  // written as null
  return {{"min_s", num6(s.min)},
          {"median_s", num6(s.median)},
          {"images_per_s", num6(double(batch) / s.median)},
          {"images_per_s_best", num6(double(batch) / s.min)},
          {"tflops", num6(tf_best)},
          {"tflops_median", num6(tf_med)},
          {"mfu", peak_tflops > 0 ? num6(tf_best / peak_tflops) : none},
          {"mfu_median", peak_tflops > 0 ? num6(tf_med / peak_tflops) : none}};
}

bool write_json(const std::string& path, const Header& h, const std::vector<CaseResult>& rs, bool eager_met) {
  auto text_or_null = [](const std::string& s) { return s.empty() ? json::Ordered() : json::Ordered(s); };
  const double none = std::nan("");  // written as null
  json::Ordered cases = json::Ordered::array();
  for (const auto& r : rs) {
    auto ratio = [&](const Side& s, bool med) {
      return r.cpp.ran && s.ran ? num6(med ? r.cpp.median / s.median : r.cpp.min / s.min) : none;
    };
    json::Ordered compile_s = json::Ordered::array();
    for (double x : r.compile_s) compile_s.push_back(num6(x));
    cases.push_back({{"image", r.c.image},
                     {"batch", r.c.batch},
                     {"size", h.size},
                     {"device", h.device},
                     {"precision", h.precision},
                     {"threads", h.threads},
                     {"torch", h.torch_version},
                     {"python", h.python},
                     {"flops_per_step", num6(r.flops)},
                     {"cpp", side_json(r.cpp, r.c.batch, r.flops, h.peak_tflops)},
                     {"eager", side_json(r.eager, r.c.batch, r.flops, h.peak_tflops)},
                     {"compile", side_json(r.compiled, r.c.batch, r.flops, h.peak_tflops)},
                     {"compile_s", std::move(compile_s)},
                     {"eager_fused_adamw", r.fused_adamw},
                     {"ratio_eager", ratio(r.eager, false)},
                     {"ratio_eager_median", ratio(r.eager, true)},
                     {"ratio_compile", ratio(r.compiled, false)},
                     {"ratio_compile_median", ratio(r.compiled, true)}});
  }
  json::Ordered j = {{"command", "bench train"},
                     {"size", h.size},
                     {"dim", h.cfg.dim},
                     {"depth", h.cfg.depth},
                     {"heads", h.cfg.heads},
                     {"patch", h.cfg.patch_size},
                     {"vocab", h.cfg.num_classes},
                     {"device", h.device},
                     {"device_name", h.device_name},
                     {"precision", h.precision},
                     {"threads", h.threads},
                     {"steps", h.steps},
                     {"warmup", h.warmup},
                     {"rounds", h.rounds},
                     {"libtorch", TORCH_VERSION},
                     {"torch", h.torch_version},
                     {"python", h.python},
                     {"peak_tflops", h.peak_tflops > 0 ? num6(h.peak_tflops) : none},
                     {"peak_source", h.peak_source},
                     {"compile", h.compile},
                     {"eager_error", text_or_null(h.eager_error)},
                     {"compile_error", text_or_null(h.compile_error)},
                     {"target_eager_met", eager_met},
                     {"cases", std::move(cases)}};
  std::ofstream f(path);
  // One key per line; one line per case.
  f << json::dump(j, 2) << "\n";
  return bool(f);
}

int cmd_bench_train(int argc, char** argv) {
  if (catlip::cli::wants_help(argc, argv)) return train_usage();
  std::string size = "tiny", python = catlip::cli::default_python(argv[0]), script = default_script(argv[0]);
  std::string cases_s = "64x32,224x8", device_s = "cpu", precision = "fp32", json_path;
  int threads = 2, steps = 5, warmup = 2, rounds = 2;
  int64_t vocab = 1000, patch = 16;
  int ranks = 1, dp_rank = -1;
  bool steps_given = false, compile = true, device_given = false;
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
      else if (a == "--device") device_s = next(), device_given = true;
      else if (a == "--precision") precision = next();
      else if (a == "--json") json_path = next();
      else if (a == "--no-compile") compile = false;
      else {
        std::cerr << "catlip bench train: unknown option " << a
                  << catlip::cli::did_you_mean(a, {"size", "cases", "threads", "steps", "ranks", "bucket-mb", "warmup",
                                                   "rounds", "vocab", "patch", "python", "script", "device",
                                                   "precision", "json", "no-compile"})
                  << "\n";
        train_usage();
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
    try {
      if (x == std::string::npos) throw std::invalid_argument("no x");
      cases.push_back({std::stoll(item.substr(0, x)), std::stoll(item.substr(x + 1))});
    } catch (const std::exception&) {
      std::cerr << "bench train: case '" << item << "' must be IMAGExBATCH\n";
      return catlip::cli::kUsage;
    }
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
  if (precision != "fp32" && precision != "bf16") {
    std::cerr << "bench train: --precision must be fp32 or bf16\n";
    return catlip::cli::kUsage;
  }
  if (device_s != "cpu" && device_s.rfind("cuda", 0) != 0) {
    std::cerr << "bench train: --device must be cpu or cuda[:N]\n";
    return catlip::cli::kUsage;
  }
  if (ranks > 1 || dp_rank >= 0) {
    if (ranks < 2) {
      std::cerr << "bench train: --dp-rank needs --ranks >= 2\n";
      return catlip::cli::kUsage;
    }
    if ((device_given && device_s != "cpu") || precision != "fp32") {
      std::cerr << "bench train: --ranks runs on the CPU in fp32 (Gloo)\n";
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
  for (auto& c : cases) {
    ViTConfig cfg = base;
    cfg.image_size = c.image;
    if (auto e = cfg.check(); !e.empty()) {
      std::cerr << "bench train: " << e << "\n";
      return catlip::cli::kUsage;
    }
  }
  torch::Device device = torch::kCPU;
  try {
    device = resolve_device(device_s);
  } catch (const std::exception& e) {
    std::cerr << "bench train: --device " << device_s << ": " << e.what() << "\n";
    return catlip::cli::kFailed;
  }
  const bool bf16 = precision == "bf16";
  at::set_num_threads(threads);

  // One interpreter for the whole comparison: stated, and checked first.
  Header h;
  h.size = size;
  h.cfg = base;
  h.device = device.str();
  h.precision = precision;
  h.python = python;
  h.threads = threads;
  h.steps = steps;
  h.warmup = warmup;
  h.rounds = rounds;
  h.compile = compile;
  {
    int rc = 0;
    std::string out = run_capture(quote_arg(python) + " -c 'import torch; print(torch.__version__)'", &rc);
    if (rc != 0) {
      std::cerr << "bench train: " << python << " cannot import torch (bash tools/setup.sh makes the venv; "
                << "--python or $CATLIP_PYTHON picks another): " << tail_lines(out, 2) << "\n";
      return catlip::cli::kFailed;
    }
    h.torch_version = tail_lines(out, 1);
  }
  std::string unit = "GFLOP/s";
  double unit_scale = 1e9;  // FLOP/s per unit
  if (device.is_cuda()) {
    h.device_name = cuda_device_name(device);
    h.peak_tflops = bf16 ? cuda_bf16_peak_tflops(h.device_name) : 0;
    h.peak_source = h.peak_tflops > 0 ? "dense bf16 peak of " + h.device_name + " (from its name)"
                                      : (bf16 ? "unknown for " + h.device_name : "known for bf16 only");
    unit = "TFLOP/s";
    unit_scale = 1e12;
  } else {
    h.device_name = "cpu";
    const auto dt = bf16 ? torch::kBFloat16 : torch::kFloat32;
    h.peak_tflops = matmul_peak_gflops(2048, dt) / 1e3;
    h.peak_source = std::string("torch::mm 2048^3 ") + (bf16 ? "bf16" : "fp32") + ", measured here";
  }
  std::printf("bench train: ViT-%s (dim %lld, depth %lld, heads %lld), patch %lld, %lld classes, %s %s, "
              "%d thread%s, %d steps after %d warmup, best of %d round%s\n",
              size.c_str(), (long long)base.dim, (long long)base.depth, (long long)base.heads, (long long)patch,
              (long long)vocab, device.is_cuda() ? (h.device + " (" + h.device_name + ")").c_str() : "cpu",
              precision.c_str(), threads, threads == 1 ? "" : "s", steps, warmup, rounds, rounds == 1 ? "" : "s");
  std::printf("C++: LibTorch %s, catlip's trainer model (fast paths), BCE and AdamW (%s)\n", TORCH_VERSION,
              AdamWOptions{}.impl.c_str());
  std::printf("Python: %s, torch %s: eager%s\n", python.c_str(), h.torch_version.c_str(),
              compile ? " and torch.compile (default mode; compilation timed apart)" : " (torch.compile skipped: --no-compile)");
  if (h.peak_tflops > 0)
    std::printf("peak: %.1f %s (%s)\n\n", h.peak_tflops * 1e12 / unit_scale, unit.c_str(), h.peak_source.c_str());
  else
    std::printf("peak: unknown (%s): MFU n/a\n\n", h.peak_source.c_str());
  std::printf("%-10s %6s %17s %17s %17s %9s %11s %9s %9s %6s\n", "image", "batch", "C++ s min/median",
              "eager min/median", "compile min/med", "C++/eager", "C++/compile", "C++ img/s", unit.c_str(), "MFU");
  std::fflush(stdout);

  PySpec ps{python, script, size, device.str(), precision, patch, vocab, threads, steps, warmup};
  std::vector<CaseResult> results;
  bool all_ok = true;
  for (auto& c : cases) {
    ViTConfig cfg = base;
    cfg.image_size = c.image;
    CaseResult r;
    r.c = c;
    r.flops = 3.0 * cfg.forward_flops() * double(c.batch);
    for (int round = 0; round < rounds; ++round) {
      try {
        auto t = cpp_steps(cfg, c.batch, steps, warmup, device, bf16);
        r.cpp.add(*std::min_element(t.begin(), t.end()), median(t));
      } catch (const std::exception& e) {
        std::cerr << "bench train: the C++ step failed (" << c.image << "x" << c.batch << "): " << e.what() << "\n";
        return catlip::cli::kFailed;
      }
      // A failed baseline leaves its column empty (the reason is printed
      // below the table) and the command's exit status 1, the rest still runs.
      if (h.eager_error.empty()) {
        PyRun e = python_run(ps, c, false);
        if (e.ok) {
          r.eager.add(e.min, e.median);
          r.fused_adamw = e.fused_adamw;
        } else {
          h.eager_error = e.error;
        }
      }
      if (compile && h.compile_error.empty()) {
        PyRun k = python_run(ps, c, true);
        if (k.ok) {
          r.compiled.add(k.min, k.median);
          r.compile_s.push_back(k.compile_s);
        } else {
          h.compile_error = k.error;  // not tried again
        }
      }
    }
    const bool have_eager = r.eager.ran;
    const double ratio = have_eager ? r.cpp.min / r.eager.min : NAN;
    all_ok = all_ok && have_eager && ratio <= 1.0;
    const double achieved = r.flops / r.cpp.min;
    char img[32];
    std::snprintf(img, sizeof img, "%lldx%lld", (long long)c.image, (long long)c.image);
    std::string compile_col = r.compiled.ran ? pair_col(r.compiled, "") : (compile ? "failed" : "skipped");
    std::string compile_ratio = r.compiled.ran ? fmt("%.3f", r.cpp.min / r.compiled.min) : "n/a";
    std::string mfu = h.peak_tflops > 0 ? fmt("%.0f%%", 100.0 * achieved / (h.peak_tflops * 1e12)) : "n/a";
    std::string eager_ratio = have_eager ? fmt("%.3f", ratio) : "n/a";
    std::printf("%-10s %6lld %17s %17s %17s %9s %11s %9.1f %9.1f %6s\n", img, (long long)c.batch,
                pair_col(r.cpp, "").c_str(), pair_col(r.eager, "failed").c_str(), compile_col.c_str(), eager_ratio.c_str(),
                compile_ratio.c_str(), double(c.batch) / r.cpp.min, achieved / unit_scale, mfu.c_str());
    std::fflush(stdout);
    results.push_back(r);
  }
  std::printf("\n");
  if (!h.eager_error.empty()) std::printf("PyTorch eager: %s\n", h.eager_error.c_str());
  if (!compile) {
    std::printf("torch.compile: skipped (--no-compile)\n");
  } else {
    if (!h.compile_error.empty()) std::printf("torch.compile: %s\n", h.compile_error.c_str());
    std::string ratios, warm;
    for (auto& r : results) {
      if (!r.compiled.ran) continue;
      std::string name = std::to_string(r.c.image) + "x" + std::to_string(r.c.batch);
      ratios += (ratios.empty() ? "" : ", ") + name + " " + fmt("%.3f", r.cpp.min / r.compiled.min);
      warm += (warm.empty() ? "" : ", ") + name + " " + fmt("%.1f s", r.compile_s.empty() ? 0.0 : r.compile_s[0]);
    }
    if (!ratios.empty()) {
      std::printf("torch.compile warm-up (compilation, first round; not in its step times): %s\n", warm.c_str());
      std::printf("C++/compile (fastest steps; > 1: catlip slower than torch.compile): %s\n", ratios.c_str());
    }
  }
  std::printf("target C++/eager <= 1.0: %s\n", all_ok ? "met" : h.eager_error.empty() ? "NOT met" : "NOT measured");
  if (!json_path.empty()) {
    if (!write_json(json_path, h, results, all_ok)) {
      std::cerr << "bench train: cannot write " << json_path << "\n";
      return catlip::cli::kFailed;
    }
    std::printf("json: %s\n", json_path.c_str());
  }
  return h.eager_error.empty() ? catlip::cli::kOk : catlip::cli::kFailed;
}

}  // namespace

namespace catlip::bench {

// One training step's seconds, `steps` of them after `warmup` untimed ones.
// bf16: autocast around the forward pass (as the objectives do), loss in fp32.
std::vector<double> cpp_steps(const ViTConfig& cfg, int64_t batch, int steps, int warmup,
                              const torch::Device& device, bool bf16) {
  torch::manual_seed(0);
  std::vector<double> times;
  {
    StepModel m(cfg, device);
    auto x = torch::rand({batch, 3, cfg.image_size, cfg.image_size}).to(device);
    auto y = torch::zeros({batch, cfg.num_classes});
    y.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, torch::indexing::None, 97)}, 1.0);
    y = y.to(device);
    for (int i = 0; i < warmup + steps; ++i) {
      device_sync(device);
      auto t0 = Clock::now();
      torch::Tensor logits;
      {
        AutocastScope ac(bf16 && device.is_cuda(), bf16 && !device.is_cuda());
        logits = m.model->forward(x);
      }
      auto loss = catlip_bce_loss(logits, y);
      m.opt->zero_grad();
      loss.backward();
      clip_grad_norm(m.params, 1.0);
      m.opt->step(1e-4);
      loss.item<double>();
      device_sync(device);
      double s = std::chrono::duration<double>(Clock::now() - t0).count();
      if (i >= warmup) times.push_back(s);
    }
  }
  release_device_memory(device);
  return times;
}

}  // namespace catlip::bench

CATLIP_COMMAND("bench train", "Time a ViT training step in C++ vs Python PyTorch (eager, torch.compile)",
               cmd_bench_train);
