// SigLIP's ring for catlip/train/data_parallel.h: neighbour exchanges with
// gradient (OpenCLIP's NeighbourExchange and NeighbourExchangeBidir).
#include <chrono>

#include "catlip/train/data_parallel.h"

namespace catlip::train {

namespace {
// Gloo pairs a send with the receive of the same tag: one per direction.
constexpr int kTagRight = 7301, kTagLeft = 7302;  // travelling to rank + 1, to rank - 1
}  // namespace

void DataParallel::p2p(std::vector<P2POp>& ops) {
  auto& pg = feature_pg();
  auto t0 = std::chrono::steady_clock::now();
  const bool coalesce = pg.supportsCoalescing();  // NCCL: one group, no ordering deadlock between a pair
  if (coalesce) pg.startCoalescing();
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto& o : ops) {
    if (o.send) traffic_.ring += int64_t(o.t.nbytes());
    std::vector<at::Tensor> v{o.t};
    works.push_back(o.send ? pg.send(v, o.peer, o.tag) : pg.recv(v, o.peer, o.tag));
  }
  if (coalesce) {
    if (auto w = pg.endCoalescing()) w->wait();
  } else {
    for (auto& w : works) w->wait();
  }
  gather_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Forward: to_right -> rank + 1, rank - 1's -> returned. Backward: the
// reverse (the gradient of what came from the left goes back left; what
// the right neighbour sends back is the gradient of to_right).
struct ExchangeWithGrad : torch::autograd::Function<ExchangeWithGrad> {
  static torch::Tensor shift(DataParallel* dp, const torch::Tensor& out, int to, int from, int tag) {
    auto send = out.detach().contiguous();
    auto recv = torch::empty_like(send);
    std::vector<DataParallel::P2POp> ops{{true, to, tag, send}, {false, from, tag, recv}};
    dp->p2p(ops);
    return recv;
  }
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor to_right, DataParallel* dp) {
    ctx->saved_data["dp"] = reinterpret_cast<int64_t>(dp);
    const int w = dp->world_, r = dp->rank_;
    return shift(dp, to_right, (r + 1) % w, (r - 1 + w) % w, kTagRight);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* dp = reinterpret_cast<DataParallel*>(ctx->saved_data["dp"].toInt());
    const int w = dp->world_, r = dp->rank_;
    return {shift(dp, grads[0], (r - 1 + w) % w, (r + 1) % w, kTagLeft), torch::Tensor()};
  }
};

// Both directions in one round. Forward returns {from_right, from_left};
// backward sends their gradients back to the right and to the left and
// receives the gradients of to_left (from the left) and to_right (from the
// right).
struct ExchangeBidirWithGrad : torch::autograd::Function<ExchangeBidirWithGrad> {
  // Sends a to rank - 1 and b to rank + 1 (tags: the direction of travel);
  // returns {from rank + 1, from rank - 1}.
  static torch::autograd::variable_list both(DataParallel* dp, const torch::Tensor& a, const torch::Tensor& b,
                                             int tag_a, int tag_b) {
    const int w = dp->world_, r = dp->rank_, left = (r - 1 + w) % w, right = (r + 1) % w;
    auto sa = a.detach().contiguous(), sb = b.detach().contiguous();
    auto from_right = torch::empty_like(sa), from_left = torch::empty_like(sb);
    std::vector<DataParallel::P2POp> ops{
        {true, right, tag_b, sb}, {true, left, tag_a, sa}, {false, right, tag_a, from_right}, {false, left, tag_b, from_left}};
    dp->p2p(ops);
    return {from_right, from_left};
  }
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, torch::Tensor to_left,
                                                torch::Tensor to_right, DataParallel* dp) {
    ctx->saved_data["dp"] = reinterpret_cast<int64_t>(dp);
    return both(dp, to_left, to_right, kTagLeft, kTagRight);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* dp = reinterpret_cast<DataParallel*>(ctx->saved_data["dp"].toInt());
    // grads[0] belongs to what came from the right: it travels right, and
    // what arrives from the left is the gradient of to_left (and vice versa).
    // An output that took no part in the loss has an undefined gradient
    // (both have the shape of the text features).
    auto g_right = grads[0].defined() ? grads[0] : torch::zeros_like(grads[1]);
    auto g_left = grads[1].defined() ? grads[1] : torch::zeros_like(g_right);
    auto got = both(dp, g_left, g_right, kTagLeft, kTagRight);  // g_left -> rank - 1, g_right -> rank + 1
    // got = {from rank + 1: gradient of to_right, from rank - 1: gradient of to_left}
    return {got[1], got[0], torch::Tensor()};
  }
};

torch::Tensor DataParallel::exchange_with_grad(const torch::Tensor& to_right) {
  return ExchangeWithGrad::apply(to_right, this);
}

std::pair<torch::Tensor, torch::Tensor> DataParallel::exchange_bidir_with_grad(const torch::Tensor& to_left,
                                                                               const torch::Tensor& to_right) {
  auto out = ExchangeBidirWithGrad::apply(to_left, to_right, this);
  return {out[0], out[1]};
}

}  // namespace catlip::train
