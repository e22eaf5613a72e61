#include "catlip/train/data_position.h"

#include <sstream>
#include <utility>
#include <vector>
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

namespace {
void write_runs(std::ostringstream& s, const std::set<int64_t>& ex) {
  s << "[";
  bool first = true;
  for (auto it = ex.begin(); it != ex.end();) {
    int64_t a = *it, b = a;
    for (++it; it != ex.end() && *it == b + 1; ++it) b = *it;
    s << (first ? "" : ",") << "[" << a << "," << b << "]";
    first = false;
  }
  s << "]";
}
}  // namespace

std::string DataPosition::to_json() const {
  // Grouped by (url, shard); consecutive epochs with the same set (finished
  // passes over the shard: same hwm, no exceptions) share one entry.
  std::map<std::pair<std::string, int64_t>, std::vector<std::pair<int64_t, const ConsumedSet*>>> by_shard;
  for (auto& [k, c] : streams_) by_shard[{k.url, k.shard}].emplace_back(k.epoch, &c);  // epochs ascending
  std::ostringstream s;
  s << "{\"format\":\"data_position/2\",\"urls\":[";
  bool first_url = true;
  for (auto& [us, eps] : by_shard) {
    s << (first_url ? "" : ",") << "[" << json::quote(us.first) << "," << us.second << ",[";
    first_url = false;
    for (size_t i = 0; i < eps.size();) {
      size_t j = i + 1;
      while (j < eps.size() && eps[j].first == eps[j - 1].first + 1 && *eps[j].second == *eps[i].second) ++j;
      s << (i == 0 ? "" : ",") << "[" << eps[i].first << "," << eps[j - 1].first << "," << eps[i].second->hwm() << ",";
      write_runs(s, eps[i].second->exceptions());
      s << "]";
      i = j;
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
    auto us = obj.find("urls");
    if (us == obj.end()) throw std::runtime_error("data position: 'urls' missing");
    for (auto& e : us->second.array()) {
      auto& a = e.array();
      if (a.size() != 3) throw std::runtime_error("data position: a url entry needs [url, shard, epochs]");
      const std::string& url = a[0].string();
      const int64_t shard = a[1].integer();
      for (auto& g : a[2].array()) {
        auto& ga = g.array();
        if (ga.size() != 4 || ga[0].integer() > ga[1].integer() || ga[1].integer() - ga[0].integer() > 1000000)
          throw std::runtime_error("data position: bad epoch entry for '" + url + "'");
        std::set<int64_t> ex;
        for (auto& r : ga[3].array()) {
          auto& ab = r.array();
          if (ab.size() != 2 || ab[0].integer() > ab[1].integer())
            throw std::runtime_error("data position: bad run for '" + url + "'");
          if (ab[1].integer() - ab[0].integer() > (int64_t(1) << 24))
            throw std::runtime_error("data position: run too long for '" + url + "'");
          for (int64_t i = ab[0].integer(); i <= ab[1].integer(); ++i) ex.insert(i);
        }
        for (int64_t ep = ga[0].integer(); ep <= ga[1].integer(); ++ep)
          out.streams_[StreamKey{url, ep, shard}].assign(ga[2].integer(), ex);
      }
    }
    return out;
  }
  // Version 1: {"url": [epoch, shard, index]}: the largest sample trained on.
  for (auto& [url, e] : obj) {
    auto& a = e.array();
    if (a.size() != 3) throw std::runtime_error("data position entry for '" + url + "' needs 3 numbers");
    int64_t epoch = a[0].integer(), shard = a[1].integer(), index = a[2].integer();
    if (epoch < 0 || epoch > 1000000) throw std::runtime_error("data position entry for '" + url + "': bad epoch");
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
