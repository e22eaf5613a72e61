// BatchStager: pinned double buffers and side-stream copies (batch_stager.h).
#include "batch_stager.h"

#include <chrono>
#include <optional>

#ifdef CATLIP_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace catlip::train {

#ifdef CATLIP_WITH_CUDA
struct BatchStager::Cuda {
  c10::cuda::CUDAStream copy;  // the side stream host-to-device copies run on
  at::cuda::CUDAEvent done[2];  // copy of host_[i] finished (recorded on `copy`)
  bool pending[2] = {false, false};
  explicit Cuda(const torch::Device& d) : copy(c10::cuda::getStreamFromPool(false, d.index())) {}
};
#else
struct BatchStager::Cuda {};
#endif

BatchStager::BatchStager(int64_t batch, int64_t image, const torch::Device& device) : device_(device) {
  auto opts = torch::TensorOptions().dtype(torch::kUInt8);
  host_[0] = torch::empty({batch, image, image, 3}, opts);
#ifdef CATLIP_WITH_CUDA
  if (device.is_cuda()) {
    host_[0] = host_[0].pin_memory();
    host_[1] = torch::empty({batch, image, image, 3}, opts).pin_memory();
    cuda_ = std::make_unique<Cuda>(device);
  }
#endif
}

BatchStager::~BatchStager() = default;

bool BatchStager::async() const { return cuda_ != nullptr; }

torch::Tensor& BatchStager::host() { return host_[cur_]; }

torch::Tensor BatchStager::stage() {
  if (!cuda_) return host_[cur_];
#ifdef CATLIP_WITH_CUDA
  auto compute = c10::cuda::getCurrentCUDAStream(device_.index());
  torch::Tensor dev;
  {
    c10::cuda::CUDAStreamGuard on_copy(cuda_->copy);
    dev = torch::empty(host_[cur_].sizes(), host_[cur_].options().device(device_).pinned_memory(false));
    dev.copy_(host_[cur_], /*non_blocking=*/true);
    cuda_->done[cur_].record(cuda_->copy);
  }
  cuda_->pending[cur_] = true;
  cuda_->done[cur_].block(compute);  // compute waits on the device, not the host
  // Allocated on the copy stream, used on the compute stream: the caching
  // allocator must not reuse it until the compute stream is done with it.
  dev.record_stream(compute);
  cur_ ^= 1;
  if (cuda_->pending[cur_]) {  // the buffer about to be collated into: its copy must be over
    auto t0 = std::chrono::steady_clock::now();
    cuda_->done[cur_].synchronize();
    waited_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    cuda_->pending[cur_] = false;
  }
  return dev;
#else
  return host_[cur_];
#endif
}

}  // namespace catlip::train
