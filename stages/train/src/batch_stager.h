// batch_stager.h (internal to the trainer) - where collated batches live and
// how they reach the device.
//
// On the CPU: one uint8 [B,H,W,3] buffer; stage() hands it over as is.
// On CUDA: two pinned host buffers. stage() starts the batch's host-to-device
// copy on a side stream (asynchronous, from pinned memory), makes the compute
// stream wait for it with an event (the host does not wait), and switches
// collation to the other pinned buffer, so the next batch is collated while
// this one is copied and trained on. Before a pinned buffer is written again
// (two batches later) its copy is waited for; that wait is counted.
#pragma once

#include <torch/torch.h>

#include <memory>

namespace catlip::train {

class BatchStager {
 public:
  // batch x image x image x 3 uint8 on the host; pinned and double-buffered
  // when `device` is CUDA.
  BatchStager(int64_t batch, int64_t image, const torch::Device& device);
  ~BatchStager();
  // The host buffer being collated into.
  torch::Tensor& host();
  // Sends the collated batch to the device: a uint8 [B,H,W,3] tensor that
  // the current (compute) stream may use at once. CPU: host() itself.
  torch::Tensor stage();
  // Seconds the host waited for a previous copy before reusing its buffer.
  double waited_s() const { return waited_s_; }
  bool async() const;

 private:
  struct Cuda;
  torch::Device device_;
  torch::Tensor host_[2];
  int cur_ = 0;
  double waited_s_ = 0;
  std::unique_ptr<Cuda> cuda_;
};

}  // namespace catlip::train
