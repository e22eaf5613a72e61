#include "catlip/train/data_position.h"

#include <sstream>
#include <stdexcept>

#include "catlip/train/mini_json.h"

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

std::string DataPosition::to_json() const {
  std::ostringstream s;
  s << "{\"format\":\"data_position/2\",\"streams\":[";
  bool first = true;
  for (auto& [k, c] : streams_) {
    s << (first ? "" : ",") << "[" << json::quote(k.url) << "," << k.epoch << "," << k.shard << "," << c.hwm()
      << ",[";
    first = false;
    // Runs of consecutive indices: [first,last].
    bool first_run = true;
    auto& ex = c.exceptions();
    for (auto it = ex.begin(); it != ex.end();) {
      int64_t a = *it, b = a;
      for (++it; it != ex.end() && *it == b + 1; ++it) b = *it;
      s << (first_run ? "" : ",") << "[" << a << "," << b << "]";
      first_run = false;
    }
    s << "]]";
  }
  s << "]}";
  return s.str();
}

DataPosition DataPosition::parse(const std::string& text) {
  DataPosition out;
  auto v = json::parse(text);
  auto& obj = v.object();
  auto fmt = obj.find("format");
  if (fmt != obj.end() && fmt->second.is_string()) {
    if (fmt->second.string() != "data_position/2")
      throw std::runtime_error("data position: unknown format '" + fmt->second.string() + "'");
    auto st = obj.find("streams");
    if (st == obj.end()) throw std::runtime_error("data position: 'streams' missing");
    for (auto& e : st->second.array()) {
      auto& a = e.array();
      if (a.size() != 5) throw std::runtime_error("data position: a stream needs [url, epoch, shard, hwm, runs]");
      StreamKey k{a[0].string(), a[1].integer(), a[2].integer()};
      std::set<int64_t> ex;
      for (auto& r : a[4].array()) {
        auto& ab = r.array();
        if (ab.size() != 2 || ab[0].integer() > ab[1].integer())
          throw std::runtime_error("data position: bad run in stream '" + k.url + "'");
        if (ab[1].integer() - ab[0].integer() > (int64_t(1) << 24))
          throw std::runtime_error("data position: run too long in stream '" + k.url + "'");
        for (int64_t i = ab[0].integer(); i <= ab[1].integer(); ++i) ex.insert(i);
      }
      out.streams_[k].assign(a[3].integer(), ex);
    }
    return out;
  }
  // Version 1: {"url": [epoch, shard, index]}: the largest sample trained on.
  for (auto& [url, e] : obj) {
    auto& a = e.array();
    if (a.size() != 3) throw std::runtime_error("data position entry for '" + url + "' needs 3 numbers");
    int64_t epoch = a[0].integer(), shard = a[1].integer(), index = a[2].integer();
    for (int64_t ep = 0; ep < epoch; ++ep) out.streams_[StreamKey{url, ep, shard}].assign(ConsumedSet::kAll, {});
    out.streams_[StreamKey{url, epoch, shard}].assign(index + 1, {});
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
