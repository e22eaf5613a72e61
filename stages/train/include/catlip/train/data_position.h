// catlip/train/data_position.h - which samples the trainer has consumed,
// exactly, whatever order they arrive in.
//
// A sample is identified by its Origin: (url, epoch, shard, index). Samples
// of one stream (url, epoch, shard) are indices 0, 1, 2, ... of one shard
// pass; parallel decode replicas (and re-delivery after an upstream crash)
// deliver them out of order. For each stream a ConsumedSet keeps a high-water
// mark plus exceptions:
//
//   hwm         every index < hwm has been consumed
//   exceptions  the sorted set of consumed indices > hwm
//
// Inserting index hwm advances hwm over every following exception, so the
// exceptions are only the samples consumed ahead of a gap: at most the
// reorder distance (samples in flight between the source and the trainer,
// about prefetch x decode replicas), and none once a shard pass is complete.
// The trainer warns once when a stream holds more than kExceptionWarn
// exceptions (a stuck sample upstream, or a source that skips indices); it
// never drops any, so the position stays exact.
//
// JSON (checkpoint metadata catlip.data_position), version 2:
//   {"format":"data_position/2",
//    "urls":[["<url>", shard, [[first_epoch, last_epoch, hwm, [[first,last], ...]], ...]], ...]}
// grouped by (url, shard): consecutive epochs with the same set (finished
// passes: same hwm, no exceptions) share one entry, and the exceptions are
// written as runs of consecutive indices. So a checkpoint holds about one
// short entry per shard, plus the gaps at the stop point. In memory there is
// one set per (url, epoch, shard) seen. Version 1
// ({"<url>": [epoch, shard, index]}, the largest sample trained on per url)
// is still read: it means hwm = index + 1 for that epoch, and every earlier
// epoch of the url complete.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "catlip/sample.h"

namespace catlip::train {

class ConsumedSet {
 public:
  static constexpr int64_t kAll = INT64_MAX;  // hwm of "every index" (read from version 1)

  bool contains(int64_t index) const { return index < hwm_ || exceptions_.count(index) > 0; }
  // Adds index; false if it was already there.
  bool insert(int64_t index);
  // Union with another set.
  void merge(const ConsumedSet& o);
  int64_t hwm() const { return hwm_; }
  const std::set<int64_t>& exceptions() const { return exceptions_; }
  // Replaces the contents (normalised: exceptions at or below hwm folded in).
  void assign(int64_t hwm, const std::set<int64_t>& exceptions);
  bool operator==(const ConsumedSet& o) const { return hwm_ == o.hwm_ && exceptions_ == o.exceptions_; }

 private:
  void advance();
  int64_t hwm_ = 0;
  std::set<int64_t> exceptions_;
};

struct StreamKey {
  std::string url;
  int64_t epoch = 0, shard = -1;
  bool operator<(const StreamKey& o) const { return std::tie(url, epoch, shard) < std::tie(o.url, o.epoch, o.shard); }
  bool operator==(const StreamKey& o) const { return url == o.url && epoch == o.epoch && shard == o.shard; }
};

class DataPosition {
 public:
  static constexpr size_t kExceptionWarn = 65536;  // per stream

  // Samples without a url or an index (index < 0) are not tracked: never
  // contained, insert() returns true.
  static bool tracked(const Origin& o) { return !o.url.empty() && o.index >= 0; }
  bool contains(const Origin& o) const;
  bool insert(const Origin& o);  // false if already consumed
  void merge(const DataPosition& o);
  // The stream of o, or nullptr.
  const ConsumedSet* find(const Origin& o) const;
  const std::map<StreamKey, ConsumedSet>& streams() const { return streams_; }
  bool empty() const { return streams_.empty(); }
  size_t total_exceptions() const;
  void clear() { streams_.clear(); }
  bool operator==(const DataPosition& o) const { return streams_ == o.streams_; }

  std::string to_json() const;
  // Reads version 2 and version 1; throws std::runtime_error on bad input.
  static DataPosition parse(const std::string& json);
  // "3 streams, 12 exceptions" (for logs).
  std::string summary() const;

 private:
  std::map<StreamKey, ConsumedSet> streams_;
};

}  // namespace catlip::train
