// catlip/train/data_parallel.h - synchronous data parallelism over c10d:
// the process group of the trainer ranks and the bucketed gradient
// allreduce that overlaps backward. Includes LibTorch: only the trainer and
// the train bench include it.
//
// Ranks rendezvous at a c10d TCPStore served by rank 0 on the port the plan
// reserved (StageContext::group_endpoint), then form a ProcessGroupGloo (or
// ProcessGroupNCCL in builds against a CUDA LibTorch that has it: define
// CATLIP_WITH_NCCL). Gradients are grouped into buckets of about bucket_mb,
// in reverse parameter order (the order backward produces them); an autograd
// hook on every parameter marks its gradient ready, and a bucket whose
// gradients are all ready is allreduced asynchronously while backward goes on.
// Buckets are launched in one fixed order on every rank, since collectives
// pair up by call order.
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "catlip/train/trainer.h"


namespace catlip::train {

class DataParallel {
 public:
  // Joins the group (blocks until every rank has, up to opt.timeout_s).
  // Throws std::runtime_error naming the endpoint on failure.
  DataParallel(const DistOptions& opt, torch::Device device);
  ~DataParallel();

  int rank() const { return rank_; }
  int world() const { return world_; }
  std::string backend() const { return backend_; }

  // Makes every rank's tensors equal to rank 0's, then checks they are
  // (a fingerprint reduced with min and max); throws if they differ.
  void broadcast_from_rank0(const std::vector<torch::Tensor>& tensors, const std::string& what);
  void check_identical(const std::vector<torch::Tensor>& tensors, const std::string& what);

  // Buckets `params` and installs the gradient hooks (once).
  void attach(const std::vector<torch::Tensor>& params);
  // Before a backward pass: `sync` is false for accumulation micro-steps,
  // whose gradients only accumulate locally.
  void begin_backward(bool sync);
  // After backward (sync): waits for every bucket and writes the averaged
  // gradients into .grad. Returns the seconds spent waiting here, i.e. the
  // allreduce time backward did not hide.
  double finish_backward();
  // Allreduces every gradient now, without overlap (accumulate and bench).
  double allreduce_grads_blocking();

  // The minimum of `mine` over ranks: true only if every rank has a batch.
  bool all_true(bool mine);
  // Element-wise sums over ranks of a few numbers (loss, counts).
  std::vector<double> sum(const std::vector<double>& v);
  // Element-wise sum over ranks of a tensor on this rank's device, in place
  // (SuperClass's document counts; any dtype the backend reduces).
  void sum_(torch::Tensor& t);
  // Every rank's string, in rank order.
  std::vector<std::string> allgather(const std::string& s);

  // Every rank's `local` [B,...] concatenated in rank order [W*B,...], with
  // gradient (OpenCLIP's gather_with_grad): backward sums the gathered
  // gradient over ranks and returns this rank's rows. Every rank must pass
  // the same shape. Runs on a second process group (made on first use), so
  // it never interleaves with the gradient buckets backward launches.
  torch::Tensor gather_with_grad(const torch::Tensor& local);
  // SigLIP's ring (OpenCLIP's neighbour_exchange_with_grad): sends
  // `to_right` to rank + 1 and returns what rank - 1 sent (same shape);
  // backward sends the gradient of what arrived back to rank - 1 and
  // returns, as the gradient of `to_right`, what rank + 1 sends back. On the
  // second group, like gather_with_grad (data_parallel_ring.cpp).
  torch::Tensor exchange_with_grad(const torch::Tensor& to_right);
  // Both directions at once (neighbour_exchange_bidir_with_grad): sends
  // `to_left` to rank - 1 and `to_right` to rank + 1; returns {from the
  // right, from the left}, each with its gradient returned to its sender.
  std::pair<torch::Tensor, torch::Tensor> exchange_bidir_with_grad(const torch::Tensor& to_left,
                                                                   const torch::Tensor& to_right);
  // Seconds spent in gather_with_grad's and the exchanges' collectives
  // (forward and backward) since the last call; resets.
  double take_gather_seconds();

  // The c10d backends this build can form: "gloo", and "nccl" where the
  // LibTorch has ProcessGroupNCCL (checked by constructing its options, so
  // the symbol is really linked).
  static std::vector<std::string> backends_built();

  // Gradient bytes allreduced per synchronous step.
  int64_t bytes_per_step() const { return bytes_; }

  // Bytes of the tensors this rank handed to collectives since the last
  // take_traffic(), by purpose (catlip bench objectives measures with it):
  // allreduce buffers count their size, an allgather this rank's input, a
  // send what it sends (what a rank receives is not counted). The
  // control-plane collectives (all_true, sum, allgather of strings,
  // broadcast) are not counted.
  struct Traffic {
    int64_t grads = 0;     // gradient buckets (begin/finish_backward, allreduce_grads_blocking)
    int64_t gather = 0;    // gather_with_grad: forward allgather inputs, backward allreduce of the gathered gradient
    int64_t ring = 0;      // exchange_with_grad, exchange_bidir_with_grad: tensors sent, forward and backward
    int64_t counts = 0;    // sum_ (SuperClass's document counts)
    double counts_s = 0;   // seconds in sum_
  };
  Traffic take_traffic();

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    torch::Tensor flat;
    int pending = 0;
    bool launched = false;
    c10::intrusive_ptr<c10d::Work> work;
  };
  void on_grad(size_t param, const torch::Tensor& grad);
  void launch_ready();  // launches ready buckets in order; mu_ held
  c10::intrusive_ptr<c10d::Backend> make_backend(const c10::intrusive_ptr<c10d::Store>& store);
  c10d::Backend& feature_pg();  // gather_pg_, made on first use
  // Point-to-point sends and receives on feature_pg(), waited for together
  // (coalesced where the backend can: NCCL pairs them in one group).
  struct P2POp {
    bool send;
    int peer, tag;
    torch::Tensor t;
  };
  void p2p(std::vector<P2POp>& ops);

  int rank_ = 0, world_ = 1;
  std::string backend_;
  torch::Device device_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> pg_;  // Gloo or NCCL (LibTorch 2: a Backend)
  c10::intrusive_ptr<c10d::Backend> gather_pg_;  // features (CLIP); see gather_with_grad
  std::string address_;                               // this rank's, for the second group
  std::chrono::milliseconds timeout_{600000};
  double gather_s_ = 0;
  Traffic traffic_;
  friend struct GatherWithGrad;
  friend struct ExchangeWithGrad;
  friend struct ExchangeBidirWithGrad;
  std::vector<torch::Tensor> params_;
  std::vector<size_t> bucket_of_;
  std::vector<Bucket> buckets_;
  std::vector<torch::Tensor> ready_grads_;  // this step's total gradient per param
  size_t next_launch_ = 0;
  bool sync_ = false;
  int64_t bytes_ = 0;
  double bucket_bytes_ = 25e6;
  std::mutex mu_;
};

}  // namespace catlip::train
