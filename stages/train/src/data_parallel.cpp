// The implementation of catlip/train/data_parallel.h: the c10d rendezvous and process
// group, weight broadcast and checks, and the bucketed gradient allreduce.
#include "catlip/train/data_parallel.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef CATLIP_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstring>
#include <stdexcept>

namespace catlip::train {

namespace {

using Clock = std::chrono::steady_clock;

// "tcp://host:port" -> {host, port}.
std::pair<std::string, int> parse_endpoint(const std::string& ep) {
  std::string s = ep.rfind("tcp://", 0) == 0 ? ep.substr(6) : ep;
  auto colon = s.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("bad group endpoint '" + ep + "' (expected tcp://host:port)");
  return {s.substr(0, colon), std::stoi(s.substr(colon + 1))};
}

// The local address the kernel would use to reach `ipv4` (nothing is sent).
std::string local_address_towards(const std::string& ipv4) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(9);
  std::string out = "127.0.0.1";
  if (fd >= 0 && ::inet_pton(AF_INET, ipv4.c_str(), &a.sin_addr) == 1 &&
      ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    socklen_t len = sizeof a;
    char b[INET_ADDRSTRLEN];
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0 && ::inet_ntop(AF_INET, &a.sin_addr, b, sizeof b))
      out = b;
  }
  if (fd >= 0) ::close(fd);
  return out;
}

}  // namespace

DataParallel::DataParallel(const DistOptions& opt, torch::Device device)
    : rank_(opt.rank), world_(opt.world_size), device_(device), bucket_bytes_(opt.bucket_mb * 1e6) {
  if (world_ < 2) throw std::logic_error("DataParallel needs at least 2 ranks");
  auto [host, port] = parse_endpoint(opt.endpoint);
  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(opt.timeout_s * 1000));
  timeout_ = timeout;
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(port);
    so.isServer = rank_ == 0;
    so.numWorkers = static_cast<size_t>(world_);
    so.waitWorkers = false;
    so.timeout = timeout;
    store_ = c10::make_intrusive<c10d::TCPStore>(host, so);
  } catch (const std::exception& e) {
    throw std::runtime_error("rank " + std::to_string(rank_) + " cannot reach the group's store at " + opt.endpoint +
                             ": " + e.what());
  }
  // Gloo connects to every rank at this address: the one our route to
  // rank 0 leaves from (a host name may resolve to loopback).
  address_ = opt.address.empty() ? local_address_towards(host) : opt.address;
  pg_ = make_backend(store_);
}

// LibTorch 2: ProcessGroupGloo and ProcessGroupNCCL are c10d Backends; one
// per device kind, used directly (no ProcessGroup dispatch in between).
c10::intrusive_ptr<c10d::Backend> DataParallel::make_backend(const c10::intrusive_ptr<c10d::Store>& store) {
  if (device_.is_cuda()) {
#ifdef CATLIP_WITH_NCCL
    auto o = c10d::ProcessGroupNCCL::Options::create();
    o->timeout = timeout_;
    backend_ = "nccl";
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank_, world_, o);
#else
    throw std::runtime_error("data parallel on " + device_.str() +
                             " needs NCCL, and this LibTorch has no ProcessGroupNCCL");
#endif
  }
  auto o = c10d::ProcessGroupGloo::Options::create();
  o->timeout = timeout_;
  o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(address_));
  backend_ = "gloo";
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank_, world_, o);
}

DataParallel::~DataParallel() = default;

std::vector<std::string> DataParallel::backends_built() {
  std::vector<std::string> out{"gloo"};
#ifdef CATLIP_WITH_NCCL
  if (c10d::ProcessGroupNCCL::Options::create()) out.push_back("nccl");
#endif
  return out;
}

void DataParallel::broadcast_from_rank0(const std::vector<torch::Tensor>& tensors, const std::string& what) {
  torch::NoGradGuard g;
  for (auto& t : tensors) {
    std::vector<at::Tensor> v{t.detach()};
    pg_->broadcast(v)->wait();
  }
  check_identical(tensors, what);
}

void DataParallel::check_identical(const std::vector<torch::Tensor>& tensors, const std::string& what) {
  torch::NoGradGuard g;
  // Fingerprint: sum and position-weighted sum of every tensor, in double.
  std::vector<double> fp;
  for (auto& t : tensors) {
    auto d = t.detach().to(torch::kCPU, torch::kFloat64).flatten();
    fp.push_back(d.sum().item<double>());
    fp.push_back((d * torch::arange(1, d.numel() + 1, torch::kFloat64).remainder(97)).sum().item<double>());
  }
  auto lo = torch::tensor(fp, torch::kFloat64).to(device_), hi = lo.clone();
  std::vector<at::Tensor> a{lo}, b{hi};
  c10d::AllreduceOptions mn, mx;
  mn.reduceOp = c10d::ReduceOp::MIN;
  mx.reduceOp = c10d::ReduceOp::MAX;
  pg_->allreduce(a, mn)->wait();
  pg_->allreduce(b, mx)->wait();
  if (!torch::equal(lo, hi))
    throw std::runtime_error(what + " differ between ranks (fingerprints disagree after broadcast)");
}

void DataParallel::attach(const std::vector<torch::Tensor>& params) {
  if (!params_.empty()) return;
  params_ = params;
  bucket_of_.assign(params_.size(), 0);
  ready_grads_.assign(params_.size(), torch::Tensor());
  // Reverse order: backward produces the last layers' gradients first.
  double fill = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    double bytes = double(params_[k].numel() * params_[k].element_size());
    if (buckets_.empty() || (fill > 0 && fill + bytes > bucket_bytes_)) {
      buckets_.emplace_back();
      fill = 0;
    }
    buckets_.back().params.push_back(k);
    bucket_of_[k] = buckets_.size() - 1;
    fill += bytes;
    bytes_ += static_cast<int64_t>(bytes);
  }
  for (size_t k = 0; k < params_.size(); ++k)
    params_[k].register_hook([this, k](torch::Tensor grad) {
      on_grad(k, grad);
      return grad;
    });
}

void DataParallel::begin_backward(bool sync) {
  std::lock_guard<std::mutex> l(mu_);
  sync_ = sync;
  next_launch_ = 0;
  for (auto& b : buckets_) {
    b.pending = static_cast<int>(b.params.size());
    b.launched = false;
    b.work.reset();
  }
  for (auto& g : ready_grads_) g = torch::Tensor();
}

void DataParallel::on_grad(size_t k, const torch::Tensor& grad) {
  std::lock_guard<std::mutex> l(mu_);
  if (!sync_) return;
  torch::NoGradGuard ng;
  // This step's total: what earlier micro-steps accumulated plus this one.
  const auto& acc = params_[k].grad();
  ready_grads_[k] = acc.defined() ? acc + grad : grad;  // the bucket's cat copies it
  auto& b = buckets_[bucket_of_[k]];
  if (--b.pending == 0) launch_ready();
}

void DataParallel::launch_ready() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending <= 0) {
    auto& b = buckets_[next_launch_++];
    std::vector<torch::Tensor> parts;
    for (size_t k : b.params) {
      auto g = ready_grads_[k];
      parts.push_back((g.defined() ? g : torch::zeros_like(params_[k])).flatten());
    }
    b.flat = torch::cat(parts);
    traffic_.grads += int64_t(b.flat.nbytes());
    std::vector<at::Tensor> v{b.flat};
    b.work = pg_->allreduce(v);
    b.launched = true;
  }
}

double DataParallel::finish_backward() {
  auto t0 = Clock::now();
  {
    // Parameters that got no gradient this step complete their buckets now.
    std::lock_guard<std::mutex> l(mu_);
    for (auto& b : buckets_) b.pending = 0;
    launch_ready();
  }
  torch::NoGradGuard ng;
  for (auto& b : buckets_) {
    b.work->wait();
    b.flat.div_(world_);
    int64_t off = 0;
    for (size_t k : b.params) {
      auto& p = params_[k];
      auto avg = b.flat.narrow(0, off, p.numel()).view_as(p);
      off += p.numel();
      if (p.grad().defined()) p.mutable_grad().copy_(avg);
      else p.mutable_grad() = avg.clone();
    }
  }
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double DataParallel::allreduce_grads_blocking() {
  {
    std::lock_guard<std::mutex> l(mu_);
    sync_ = true;
    next_launch_ = 0;
    for (size_t k = 0; k < params_.size(); ++k) ready_grads_[k] = params_[k].grad();
    for (auto& b : buckets_) {
      b.pending = 0;
      b.launched = false;
    }
  }
  auto t0 = Clock::now();
  {
    std::lock_guard<std::mutex> l(mu_);
    launch_ready();
  }
  finish_backward();
  std::lock_guard<std::mutex> l(mu_);
  sync_ = false;  // until the next begin_backward
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool DataParallel::all_true(bool mine) {
  auto t = torch::tensor({mine ? 1.0 : 0.0}, torch::kFloat64).to(device_);
  std::vector<at::Tensor> v{t};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::MIN;
  pg_->allreduce(v, o)->wait();
  return t.item<double>() > 0.5;
}

std::vector<double> DataParallel::sum(const std::vector<double>& x) {
  auto t = torch::tensor(x, torch::kFloat64).to(device_);
  std::vector<at::Tensor> v{t};
  pg_->allreduce(v)->wait();
  t = t.cpu();
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

void DataParallel::sum_(torch::Tensor& t) {
  torch::NoGradGuard g;
  auto t0 = Clock::now();
  std::vector<at::Tensor> v{t};
  pg_->allreduce(v)->wait();
  traffic_.counts += int64_t(t.nbytes());
  traffic_.counts_s += std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<std::string> DataParallel::allgather(const std::string& s) {
  // Lengths first, then the bytes padded to the longest.
  auto len = torch::tensor({static_cast<int64_t>(s.size())}, torch::kInt64);
  std::vector<std::vector<at::Tensor>> lens_out(1);
  for (int r = 0; r < world_; ++r) lens_out[0].push_back(torch::empty({1}, torch::kInt64));
  std::vector<at::Tensor> lens_in{len};
  pg_->allgather(lens_out, lens_in)->wait();
  int64_t longest = 1;
  for (auto& t : lens_out[0]) longest = std::max(longest, t.item<int64_t>());
  auto mine = torch::zeros({longest}, torch::kUInt8);
  if (!s.empty()) std::memcpy(mine.data_ptr(), s.data(), s.size());
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < world_; ++r) out[0].push_back(torch::empty({longest}, torch::kUInt8));
  std::vector<at::Tensor> in{mine};
  pg_->allgather(out, in)->wait();
  std::vector<std::string> res;
  for (int r = 0; r < world_; ++r)
    res.emplace_back(reinterpret_cast<const char*>(out[0][size_t(r)].data_ptr()),
                     static_cast<size_t>(lens_out[0][size_t(r)].item<int64_t>()));
  return res;
}

// Forward: allgather; backward: allreduce (sum) of the gathered gradient,
// then this rank's rows (what torch.distributed.nn.all_gather does).
struct GatherWithGrad : torch::autograd::Function<GatherWithGrad> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor local, DataParallel* dp) {
    ctx->saved_data["rows"] = local.size(0);
    ctx->saved_data["dp"] = reinterpret_cast<int64_t>(dp);
    auto t0 = Clock::now();
    auto in = local.detach().contiguous();
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < dp->world_; ++r) out[0].push_back(torch::empty_like(in));
    std::vector<at::Tensor> inv{in};
    dp->gather_pg_->allgather(out, inv)->wait();
    dp->gather_s_ += std::chrono::duration<double>(Clock::now() - t0).count();
    dp->traffic_.gather += int64_t(in.nbytes());
    return torch::cat(out[0], 0);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* dp = reinterpret_cast<DataParallel*>(ctx->saved_data["dp"].toInt());
    const int64_t rows = ctx->saved_data["rows"].toInt();
    auto t0 = Clock::now();
    auto g = grads[0].contiguous().clone();
    std::vector<at::Tensor> v{g};
    dp->gather_pg_->allreduce(v)->wait();
    dp->gather_s_ += std::chrono::duration<double>(Clock::now() - t0).count();
    dp->traffic_.gather += int64_t(g.nbytes());
    return {g.narrow(0, dp->rank_ * rows, rows), torch::Tensor()};
  }
};

c10d::Backend& DataParallel::feature_pg() {
  if (!gather_pg_) {
    // A second group on the same store (its keys prefixed): collectives on
    // the first pair up by call order with the gradient buckets.
    auto store = c10::make_intrusive<c10d::PrefixStore>("catlip-gather/", store_);
    gather_pg_ = make_backend(store);
  }
  return *gather_pg_;
}

torch::Tensor DataParallel::gather_with_grad(const torch::Tensor& local) {
  feature_pg();
  return GatherWithGrad::apply(local, this);
}

DataParallel::Traffic DataParallel::take_traffic() {
  std::lock_guard<std::mutex> l(mu_);  // launch_ready counts from backward's threads
  Traffic t = traffic_;
  traffic_ = Traffic();
  return t;
}

double DataParallel::take_gather_seconds() {
  double s = gather_s_;
  gather_s_ = 0;
  return s;
}

}  // namespace catlip::train
