// The implementation of catlip/train/sample_order.h: the deterministic-order
// reorder buffer of one trainer rank.
#include "catlip/train/sample_order.h"

#include <stdexcept>

namespace catlip::train {

SampleOrder::SampleOrder(int rank, int world_size, int64_t start, size_t window)
    : rank_(rank), world_(world_size < 1 ? 1 : world_size), window_(window < 1 ? 1 : window) {
  if (start < 0) start = 0;
  int64_t w = world_;
  next_ = start + (((rank_ - start) % w) + w) % w;  // the first of this rank's numbers at or after start
}

SampleOrder::Put SampleOrder::put(int64_t seq, Sample&& s) {
  if (seq % world_ != rank_)
    throw std::runtime_error("deterministic order: sample " + std::to_string(seq) + " ('" + s.key + "' from " +
                             (s.origin.url.empty() ? std::string("?") : s.origin.url) + ") reached rank " +
                             std::to_string(rank_) + " of " + std::to_string(world_) + ", but it belongs to rank " +
                             std::to_string(seq % world_) +
                             " (is the trainer's input fed by a stage whose order is not \"deterministic\"?)");
  if (seq < next_ || held_.count(seq)) return Put::Consumed;
  held_.emplace(seq, std::move(s));
  if (held_.size() > window_ && held_.begin()->first != next_)
    throw std::runtime_error("deterministic order: rank " + std::to_string(rank_) + " holds " +
                             std::to_string(held_.size()) + " samples (reorder_window " + std::to_string(window_) +
                             ") waiting for sample " + std::to_string(next_) +
                             ", which was dropped upstream without a marker or is late by more than the window "
                             "(a stage that reorders its outputs, or raise reorder_window)");
  return Put::Held;
}

std::optional<Sample> SampleOrder::pop() {
  auto it = held_.begin();
  if (it == held_.end() || it->first != next_) return std::nullopt;
  Sample s = std::move(it->second);
  held_.erase(it);
  next_ += world_;
  return s;
}

}  // namespace catlip::train
