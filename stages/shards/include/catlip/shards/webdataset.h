// catlip/shards/webdataset.h - grouping tar members into samples.
//
// WebDataset convention: consecutive members whose names share a key form one
// sample; the key is the name up to the first dot of its basename (the
// directory part stays in the key: "a/b/000001.seg.png" has key "a/b/000001"
// and extension "seg.png"); the extension, lowercased, names the field.
// "jpeg" is normalised to "jpg". A member whose basename has no dot (or starts
// with one) cannot belong to a sample and is skipped.
//
// Problems are reported through a callback with a reason (a counter name such
// as "skipped.member_too_large") and a message naming the shard and key; the
// reader carries on wherever the tar format allows. A header with a bad
// checksum is stepped over (the tar reader resyncs to the next valid header,
// counted as "skipped.corrupt_header"). Other damage ends the shard: every
// sample whose members were all read before it is kept (damage in a header
// finishes the open group like the next key would); a sample whose member
// data was cut short is dropped as "skipped.incomplete_sample". Members with
// unsafe names (see safe_member_name) are skipped as "skipped.unsafe_name".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "catlip/sample.h"
#include "catlip/shards/byte_stream.h"
#include "catlip/shards/tar_reader.h"

namespace catlip::shards {

// "a/b/000001.Seg.PNG" -> {"a/b/000001", "seg.png"}; nullopt if no extension.
std::optional<std::pair<std::string, std::string>> split_key_ext(const std::string& name);

// Lowercases and maps "jpeg" to "jpg", as split_key_ext does; applied to
// each '|' alternative. For user-given keep/require/text lists.
std::string normalize_ext(const std::string& ext);
std::vector<std::string> normalize_exts(std::vector<std::string> exts);

struct ReadOptions {
  uint64_t max_member_bytes = 64ull << 20;
  // Extensions to keep (after lowercasing and jpeg->jpg); empty keeps all.
  // Others are dropped and counted as "skipped.unknown_extension".
  std::vector<std::string> keep;
  // Extensions stored as text fields; everything else is Bytes.
  std::vector<std::string> text = {"txt", "json", "cls"};
  // Each entry lists alternatives ("jpg|png|webp"); a sample lacking all of
  // an entry's alternatives is skipped as "skipped.missing_jpg_png_webp".
  std::vector<std::string> require;
};

// The counter for a failed stream: "error.shard_timeout" when the shard
// deadline passed, else "error.shard_read".
std::string stream_error_reason(const StreamError& e);

// reason, message
using ProblemFn = std::function<void(const std::string&, const std::string&)>;

class SampleReader {
 public:
  // Reads samples of shard `url` (number `shard` in the shard list) from `in`.
  // Samples with index < skip_before are stepped over without reading their
  // data and without reporting their problems (used to resume).
  SampleReader(std::unique_ptr<ByteStream> in, std::string url, int64_t shard, ReadOptions opts,
               ProblemFn problem, int64_t skip_before = 0);

  // Next complete, valid sample (origin.epoch left at 0). False at the end
  // of the shard, including after damage (see failed()).
  bool next(Sample& out);

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  int64_t samples_seen() const { return next_index_; }  // groups started, valid or not
  uint64_t bytes_read() const { return in_->offset(); }
  const ByteStream& stream() const { return *in_; }

 private:
  bool fetch_header();
  void report(const std::string& reason, const std::string& msg) {
    if (problem_) problem_(reason, msg);
  }
  bool finalize(Sample& cur, Sample& out);

  std::unique_ptr<ByteStream> in_;
  TarReader tar_;
  std::string url_;
  int64_t shard_;
  ReadOptions opts_;
  ProblemFn problem_;
  int64_t skip_before_;
  int64_t next_index_ = 0;
  TarHeader hdr_;
  bool have_hdr_ = false, ended_ = false;
  uint64_t non_regular_reported_ = 0, resyncs_reported_ = 0;
  bool damage_between_members_ = false;
  std::string error_;
};

// Counts samples (key groups) of a shard by reading headers only; for
// progress totals. Returns -1 when the shard cannot be read.
int64_t count_samples(const std::string& url, const StreamOptions& sopts = {});

}  // namespace catlip::shards
