// catlip/shards/shard_source.h - the `shards.source` stage.
//
// Reads WebDataset tar shards (local, file://, http(s)://) assigned to this
// replica (see assignment.h), optionally through a bounded shuffle buffer,
// for a number of epochs or endlessly, and emits one Sample per key group:
// key, origin {url, shard, index, epoch}, image fields as Bytes and text
// fields (txt, json, cls) as text. Problems are counted per reason
// (ctx.count) and logged with shard and key; the run goes on, unless no
// sample was read at all because every shard this replica tried failed:
// then produce() throws "all N shards failed; first: <error>" and the
// replica fails (a replica assigned no shards does not).
//
// Resuming: `resume_from` holds, per replica, the position "E:S:K" of the
// last sample that replica delivered (format_position(sample.origin)).
// Without a shuffle buffer the reader jumps straight to shard S and steps
// over samples <= K. With a shuffle buffer the emission order depends on
// every sample read since the start of the epoch, so the replica replays
// epoch E deterministically, suppressing output until that sample has been
// emitted; the result is exact, at the cost of re-reading up to one epoch.
//
// order = "deterministic": the one replica numbers the samples it emits
// 0, 1, 2, ... across epochs (kSeqField, catlip/sample.h) in the seeded
// order above (shard order by (seed, epoch), then the shuffle buffer), an
// order that depends on neither ranks nor decode replicas; the runtime
// routes sample g to trainer rank g % ranks. The trainer's data position
// skips what a resumed run consumed, so the source always starts from the
// beginning (no resume_from) and the numbers stay the same.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "catlip/shards/assignment.h"
#include "catlip/shards/webdataset.h"
#include "catlip/stage.h"

namespace catlip::shards {

class ShardSource : public SourceStage {
 public:
  static StageSchema schema();
  void configure() override;
  // Every local pattern of `urls` matches at least one readable file.
  std::vector<std::pair<std::string, std::string>> check_files() const override;
  // HEAD requests to up to 16 of each pattern's http(s) URLs (the first, the
  // last and evenly spaced ones between).
  std::vector<std::pair<std::string, std::string>> check_urls(double timeout_s) const override;
  // order = "deterministic" needs one replica.
  std::string check_placement(int replicas, int per_node) const override;
  bool produce(Emitter& out) override;
  void close() override;

 private:
  bool next_read(Sample& s);  // next sample of the current epoch, before shuffling
  bool open_next_shard();
  bool start_epoch(int64_t epoch);
  void deliver(Sample&& s, Emitter& out);
  void problem(const std::string& reason, const std::string& msg);
  void compute_total();
  void shard_failed(const std::string& error);
  void check_not_all_failed() const;
  std::vector<std::string> url_patterns_;  // as given; urls_ is their expansion
  std::vector<std::string> resume_from_;  // per replica, "EPOCH:SHARD:SAMPLE"
  int64_t seed_ = 0;
  std::vector<std::string> urls_;
  AssignOptions assign_;
  ReadOptions read_;
  StreamOptions stream_;
  int64_t epochs_ = 1;  // 0 = endless
  size_t shuffle_buffer_ = 0;
  bool count_total_ = true;
  bool numbered_ = false;   // order = "deterministic"
  int64_t next_seq_ = 0;    // the number of the next sample delivered

  int64_t epoch_ = 0;
  std::vector<int64_t> plan_;  // this epoch's shards for this replica
  size_t plan_pos_ = 0;
  std::unique_ptr<SampleReader> reader_;
  std::vector<Sample> buffer_;
  std::optional<Rng> rng_;
  bool epoch_input_done_ = false, finished_ = false;

  std::optional<Position> resume_;  // shuffle mode: suppress until this has been emitted
  int64_t resume_skip_before_ = 0;  // direct mode: first shard's skip
  std::map<std::string, int64_t> logged_;  // per-reason log lines, to cap noise
  int64_t samples_read_ = 0;               // samples read from shards (before shuffle / resume replay)
  int64_t shards_tried_ = 0, shards_failed_ = 0;
  std::string first_error_;
};

}  // namespace catlip::shards
