// The implementation of catlip/train/data_position.h: per-stream consumed sets
// (high-water mark + exceptions) and their JSON form in checkpoints.
#include "catlip/train/data_position.h"

#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "catlip/json.h"

namespace catlip::train {

void ConsumedSet::advance() {
  while (!exceptions_.empty() && *exceptions_.begin() <= hwm_) {
    if (*exceptions_.begin() == hwm_ && hwm_ != kAll) ++hwm_;
    exceptions_.erase(exceptions_.begin());
  }
}

bool ConsumedSet::insert(int64_t index) {
  if (contains(index)) return false;
  if (index == hwm_) {
    ++hwm_;
    advance();
  } else {
    exceptions_.insert(index);
  }
  return true;
}

void ConsumedSet::merge(const ConsumedSet& o) {
  if (o.hwm_ > hwm_) hwm_ = o.hwm_;
  for (int64_t i : o.exceptions_)
    if (i >= hwm_) exceptions_.insert(i);
  // Exceptions of this set now below the new hwm are covered by it.
  while (!exceptions_.empty() && *exceptions_.begin() < hwm_) exceptions_.erase(exceptions_.begin());
  advance();
}

void ConsumedSet::assign(int64_t hwm, const std::set<int64_t>& exceptions) {
  hwm_ = hwm < 0 ? 0 : hwm;
  exceptions_.clear();
  for (int64_t i : exceptions)
    if (i >= hwm_) exceptions_.insert(i);
  advance();
}

namespace {
StreamKey key_of(const Origin& o) { return StreamKey{o.url, o.epoch, o.shard}; }
}  // namespace

bool DataPosition::contains(const Origin& o) const {
  if (!tracked(o)) return false;
  auto it = streams_.find(key_of(o));
  return it != streams_.end() && it->second.contains(o.index);
}

bool DataPosition::insert(const Origin& o) {
  if (!tracked(o)) return true;
  return streams_[key_of(o)].insert(o.index);
}

void DataPosition::merge(const DataPosition& o) {
  for (auto& [k, s] : o.streams_) streams_[k].merge(s);
}

const ConsumedSet* DataPosition::find(const Origin& o) const {
  auto it = streams_.find(key_of(o));
  return it == streams_.end() ? nullptr : &it->second;
}

size_t DataPosition::total_exceptions() const {
  size_t n = 0;
  for (auto& [k, s] : streams_) n += s.exceptions().size();
  return n;
}

namespace {
// Runs of consecutive indices: [[first, last], ...].
json::Ordered runs(const std::set<int64_t>& ex) {
  json::Ordered out = json::Ordered::array();
  for (auto it = ex.begin(); it != ex.end();) {
    int64_t a = *it, b = a;
    for (++it; it != ex.end() && *it == b + 1; ++it) b = *it;
    out.push_back({a, b});
  }
  return out;
}
}  // namespace

std::string DataPosition::to_json() const {
  // Grouped by (url, shard); consecutive epochs with the same set (finished
  // passes over the shard: same hwm, no exceptions) share one entry.
  std::map<std::pair<std::string, int64_t>, std::vector<std::pair<int64_t, const ConsumedSet*>>> by_shard;
  for (auto& [k, c] : streams_) by_shard[{k.url, k.shard}].emplace_back(k.epoch, &c);  // epochs ascending
  json::Ordered urls = json::Ordered::array();
  for (auto& [us, eps] : by_shard) {
    json::Ordered epochs = json::Ordered::array();
    for (size_t i = 0; i < eps.size();) {
      size_t j = i + 1;
      while (j < eps.size() && eps[j].first == eps[j - 1].first + 1 && *eps[j].second == *eps[i].second) ++j;
      epochs.push_back({eps[i].first, eps[j - 1].first, eps[i].second->hwm(), runs(eps[i].second->exceptions())});
      i = j;
    }
    urls.push_back({us.first, us.second, std::move(epochs)});
  }
  json::Ordered out = {{"format", "data_position/2"}, {"urls", std::move(urls)}};
  return json::dump(out);
}

DataPosition DataPosition::parse(const std::string& text) {
  const json::Value v = json::parse(text, "data position");
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  DataPosition out;
  try {
    auto* fmt = json::find(json::object(v), "format");
    if (fmt && fmt->is_string()) {
      if (json::string(*fmt) != "data_position/2") throw std::runtime_error("unknown format '" + json::string(*fmt) + "'");
      auto* us = json::find(v, "urls");
      if (!us) throw std::runtime_error("'urls' missing");
      for (auto& e : json::array(*us)) {
        auto& a = json::array(e);
        if (a.size() != 3) throw std::runtime_error("a url entry needs [url, shard, epochs]");
        const std::string& url = json::string(a[0]);
        const int64_t shard = json::integer(a[1]);
        for (auto& g : json::array(a[2])) {
          auto& ga = json::array(g);
          if (ga.size() != 4) throw std::runtime_error("bad epoch entry for '" + url + "'");
          const int64_t first = json::integer(ga[0]), last = json::integer(ga[1]), hwm = json::integer(ga[2]);
          // Epochs and indices are >= 0, and below INT64_MAX so that loops end.
          if (first < 0 || first > last || last == kMax || last - first > 1000000)
            throw std::runtime_error("bad epoch entry for '" + url + "'");
          std::set<int64_t> ex;
          for (auto& r : json::array(ga[3])) {
            auto& ab = json::array(r);
            if (ab.size() != 2) throw std::runtime_error("bad run for '" + url + "'");
            const int64_t a0 = json::integer(ab[0]), a1 = json::integer(ab[1]);
            if (a0 < 0 || a0 > a1 || a1 == kMax) throw std::runtime_error("bad run for '" + url + "'");
            if (a1 - a0 > (int64_t(1) << 24)) throw std::runtime_error("run too long for '" + url + "'");
            for (int64_t i = a0; i <= a1; ++i) ex.insert(i);
          }
          for (int64_t ep = first; ep <= last; ++ep) out.streams_[StreamKey{url, ep, shard}].assign(hwm, ex);
        }
      }
    } else {
      // Version 1: {"url": [epoch, shard, index]}: the largest sample trained on.
      for (auto& [url, e] : v.items()) {
        auto& a = json::array(e);
        if (a.size() != 3) throw std::runtime_error("entry for '" + url + "' needs 3 numbers");
        int64_t epoch = json::integer(a[0]), shard = json::integer(a[1]), index = json::integer(a[2]);
        if (epoch < 0 || epoch > 1000000) throw std::runtime_error("entry for '" + url + "': bad epoch");
        if (index < -1 || index == kMax) throw std::runtime_error("entry for '" + url + "': bad index");
        for (int64_t ep = 0; ep < epoch; ++ep) out.streams_[StreamKey{url, ep, shard}].assign(ConsumedSet::kAll, {});
        out.streams_[StreamKey{url, epoch, shard}].assign(index + 1, {});
      }
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("data position: ") + e.what());
  }
  return out;
}

std::string DataPosition::summary() const {
  int64_t complete = 0;
  for (auto& [k, s] : streams_)
    if (s.exceptions().empty()) ++complete;
  return std::to_string(streams_.size()) + " stream(s) (" + std::to_string(complete) + " without gaps), " +
         std::to_string(total_exceptions()) + " sample(s) consumed ahead of a gap";
}

}  // namespace catlip::train
