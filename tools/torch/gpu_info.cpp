// `catlip gpu info`: what this build's LibTorch can do on this machine: its
// version, whether libtorch_cuda is linked and which CUDA it was built for,
// the c10d backends (Gloo, NCCL), the GPUs visible now with their memory and
// compute capability, and which scaled-dot-product-attention kernels are
// enabled. Needs no GPU; `--json` prints the same as one JSON object.
#include <torch/torch.h>
#include <torch/version.h>

#include <ATen/Context.h>

#ifdef CATLIP_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <cuda_runtime_api.h>
#endif

#include <dlfcn.h>
#include <link.h>

#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "catlip/train/data_parallel.h"
#include "cli.h"

namespace {

// The loaded shared object whose file name contains `name`, or "".
std::string find_loaded(const std::string& name) {
  std::pair<std::string, std::string> p{name, ""};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        auto* q = static_cast<std::pair<std::string, std::string>*>(data);
        if (info->dlpi_name && std::string(info->dlpi_name).find(q->first) != std::string::npos) {
          q->second = info->dlpi_name;
          return 1;
        }
        return 0;
      },
      &p);
  return p.second;
}

int cmd_gpu_info(int argc, char** argv) {
  using namespace catlip::cli;
  Args a(argc, argv, {"json"});
  if (wants_help(argc, argv)) {
    std::cout << "usage: catlip gpu info [--json]\n\n"
                 "What this build's LibTorch can do here: version, libtorch_cuda and the CUDA it was\n"
                 "built for, c10d backends (gloo, nccl), visible GPUs, SDPA kernels enabled.\n";
    return kOk;
  }
  if (int rc = check_syntax(a, Syntax{"catlip gpu info", "usage: catlip gpu info [--json]", {"json"}, 0, 0}))
    return rc;
  const std::string cuda_lib = find_loaded("libtorch_cuda.so");
  std::string cuda_built = "none";
#ifdef CATLIP_WITH_CUDA
  {
    int v = CUDART_VERSION;
    cuda_built = std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
  }
#endif
  const auto backends = catlip::train::DataParallel::backends_built();
  std::string be;
  for (auto& b : backends) be += (be.empty() ? "" : " ") + b;
  const int gpus = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  std::vector<std::string> names;
#ifdef CATLIP_WITH_CUDA
  for (int i = 0; i < gpus; ++i) {
    auto* p = at::cuda::getDeviceProperties(i);
    std::ostringstream o;
    o << p->name << " (" << (p->totalGlobalMem >> 30) << " GiB, sm_" << p->major << p->minor << ")";
    names.push_back(o.str());
  }
#endif
  auto& ctx = at::globalContext();
  const bool flash = ctx.userEnabledFlashSDP(), mem = ctx.userEnabledMemEfficientSDP(),
             math = ctx.userEnabledMathSDP();
  if (a.has("json")) {
    catlip::json::Ordered j = {{"torch", TORCH_VERSION},
                               {"libtorch_cuda", cuda_lib},
                               {"cuda_built", cuda_built},
                               {"backends", backends},
                               {"gpus", names},
                               {"sdpa", {{"flash", flash}, {"mem_efficient", mem}, {"math", math}}}};
    std::cout << catlip::json::dump(j, 0) << "\n";
    return kOk;
  }
  std::cout << "LibTorch:        " << TORCH_VERSION << "\n"
            << "libtorch_cuda:   " << (cuda_lib.empty() ? "not linked (CPU-only LibTorch)" : "linked, " + cuda_lib)
            << "\n"
            << "CUDA (built):    " << cuda_built << "\n"
            << "c10d backends:   " << be << "\n"
            << "GPUs visible:    " << gpus << "\n";
  for (size_t i = 0; i < names.size(); ++i) std::cout << "  cuda:" << i << "  " << names[i] << "\n";
  std::cout << "SDPA kernels:    flash " << (flash ? "on" : "off") << ", memory-efficient " << (mem ? "on" : "off")
            << ", math " << (math ? "on" : "off") << " (CUDA picks among them per call; CPU runs a fused kernel)\n"
            << "CPU threads:     " << at::get_num_threads() << "\n";
  return kOk;
}

}  // namespace

CATLIP_COMMAND("gpu info", "LibTorch version, CUDA/NCCL linked, visible GPUs, SDPA kernels", cmd_gpu_info);
