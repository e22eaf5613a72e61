// The implementation of catlip/shards/shard_source.h: the `shards.source` stage (assigned
// shards, shuffle buffer, epochs, resumption, per-reason problem counts).
#include "catlip/shards/shard_source.h"
#include <cerrno>
#include <cstring>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <map>
#include <stdexcept>
#include <utility>

#include "catlip/shards/url_expand.h"

namespace catlip::shards {

StageSchema ShardSource::schema() {
  StageSchema s;
  s.type = "shards.source";
  s.kind = StageKind::Source;
  s.doc =
      "Reads WebDataset tar shards (local paths, file://, http://, https://) and emits one sample per key "
      "group with fields named by extension (jpg/png/webp as bytes, txt/json/cls as text). Shards are "
      "shuffled per (seed, epoch), split by rank then by replica; see stages/shards/README.md.";
  using S = ShardSource;
  s.params = {
      Param("urls", &S::url_patterns_).require().describe(
          "Shard URLs or patterns: brace ranges 'shard-{000000..000012}.tar', lists '{a,b}', '@file' for a "
          "shard-list file (one pattern per line)"),
      Param("seed", &S::seed_).def(0).describe("Seed for the shard order and the sample shuffle buffer"),
      Param("shuffle_shards", &S::assign_, &AssignOptions::shuffle).def(true).describe("Shuffle the shard list every epoch (by seed and epoch)"),
      Param("shuffle_buffer", &S::shuffle_buffer_).def(0).range(0, 1e7).describe(
          "Samples held in the shuffle buffer (0 = no sample shuffling, emit in shard order)"),
      Param("epochs", &S::epochs_).def(1).range(0, 1e9).describe(
          "Passes over the shard list; 0 = endless resampling (a fresh shard order every pass)"),
      Param("rank", &S::assign_, &AssignOptions::rank).def(0).at_least(0).describe("Data-parallel rank of this job (0-based)"),
      Param("world_size", &S::assign_, &AssignOptions::world_size).def(1).at_least(1).describe("Number of data-parallel ranks"),
      Param("resume_from", &S::resume_from_).def({}).describe(
          "Per replica, position 'EPOCH:SHARD:SAMPLE' of the last sample delivered (empty string or empty "
          "list = from the start); one entry per replica of this stage"),
      Param("require", &S::read_, &ReadOptions::require).def({}).describe(
          "Fields a sample must have, each an alternatives list such as 'jpg|png|webp'; a sample lacking one is "
          "counted as skipped.missing_<alts> and dropped"),
      Param("keep", &S::read_, &ReadOptions::keep)
          .def({"jpg", "png", "webp", "txt", "json", "cls"})
          .describe("Extensions to keep (lowercase; jpeg is read as jpg); others are counted as "
                    "skipped.unknown_extension and dropped. Empty list keeps everything"),
      Param("text_fields", &S::read_, &ReadOptions::text)
          .def({"txt", "json", "cls"})
          .describe("Extensions emitted as text fields; all others are bytes"),
      Param("max_member_bytes", &S::read_, &ReadOptions::max_member_bytes).def(int64_t{64} << 20).range(1, 1e12).describe(
          "Largest tar member read; larger ones are counted as skipped.member_too_large and skipped unread"),
      Param("timeout_s", &S::stream_, &StreamOptions::timeout_s).def(30.0).range(0.1, 3600).describe(
          "HTTP connect timeout and longest stall without data before a retry"),
      Param("retries", &S::stream_, &StreamOptions::retries).def(10).range(0, 1000).describe(
          "HTTP retries per shard after a transient failure (5xx, 408, 429, dropped connection, stall, "
          "low speed, resumed bytes that do not match); every retry counts, whatever the request delivered; "
          "exponential backoff. Permanent errors (other 4xx, too many redirects, malformed URL, TLS "
          "verification, a shard that changed on the server) are never retried"),
      Param("low_speed_limit", &S::stream_, &StreamOptions::low_speed_limit).def(10240.0).range(0, 1e12).describe(
          "Minimum HTTP transfer rate in bytes/s: a request slower than this over low_speed_time_s seconds "
          "is ended and retried (time blocked because the reader is slow does not count). 0 = no minimum"),
      Param("low_speed_time_s", &S::stream_, &StreamOptions::low_speed_time_s).def(30.0).range(0.1, 3600).describe(
          "The window over which low_speed_limit is measured"),
      Param("shard_timeout_s", &S::stream_, &StreamOptions::shard_timeout_s).def(600.0).range(0, 1e7).describe(
          "Longest time one HTTP shard may spend fetching (connects, waits for data, retry backoff; not time "
          "blocked because the reader is slow); past it the shard fails as error.shard_timeout and the source "
          "moves on. 0 = no limit"),
      Param("max_redirects", &S::stream_, &StreamOptions::max_redirects).def(10).range(0, 1000).describe(
          "HTTP redirects followed per request; one more is a permanent error naming the URL"),
      Param("buffer_bytes", &S::stream_, &StreamOptions::buffer_bytes).def(int64_t{4} << 20).range(65536, 1e10).describe(
          "Bytes of an HTTP shard buffered ahead of the parser"),
      Param("ca_file", &S::stream_, &StreamOptions::ca_file).def("").describe("Extra CA certificate bundle for https URLs"),
      Param("count_total", &S::count_total_).def(true).describe(
          "For local shards and finite epochs, count samples (tar headers only) to report a progress total"),
      Param("order", &S::numbered_).values({{"arrival", false}, {"deterministic", true}}).def(false).describe(
          "deterministic: number every sample (field order.seq) in this seeded order, the same at any world size; "
          "a trainer with order = \"deterministic\" then trains sample g on rank g % ranks in that order. Needs "
          "one replica, world_size 1 and no resume_from (a resumed trainer skips what it consumed)"),
  };
  s.writes = {"jpg", "png", "webp", "txt", "json"};
  return s;
}

void ShardSource::problem(const std::string& reason, const std::string& msg) {
  ctx().count(reason);
  // The first few of each kind are logged; a counter tells the rest.
  if (++logged_[reason] <= 20)
    ctx().log(reason.rfind("error", 0) == 0 ? LogLevel::Warn : LogLevel::Info, reason + ": " + msg);
}

std::vector<std::pair<std::string, std::string>> ShardSource::check_files() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& pattern : url_patterns_) {
    std::vector<std::string> urls;
    try {
      urls = expand_urls({pattern});
    } catch (const std::exception& e) {
      out.push_back({"urls", e.what()});
      continue;
    }
    size_t local = 0, found = 0;
    std::string first_missing;
    for (auto& u : urls) {
      if (is_http_url(u)) continue;
      ++local;
      std::string path = local_path(u);
      if (::access(path.c_str(), R_OK) == 0) ++found;
      else if (first_missing.empty()) first_missing = path + " (" + std::strerror(errno) + ")";
    }
    if (local > 0 && found == 0)
      out.push_back({"urls", "'" + pattern + "' matches no readable file" +
                                 (local > 1 ? " (" + std::to_string(local) + " names, e.g. " : " (") + first_missing + ")"});
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ShardSource::check_urls(double timeout_s) const {
  constexpr size_t kPerPattern = 16;
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& pattern : url_patterns_) {
    std::vector<std::string> urls;
    try {
      urls = expand_urls({pattern});
    } catch (const std::exception&) {
      continue;  // check_files() (or configure) reports a malformed pattern
    }
    std::vector<std::string> http;
    for (auto& u : urls)
      if (is_http_url(u)) http.push_back(u);
    if (http.empty()) continue;
    size_t n = std::min(http.size(), kPerPattern), bad = 0;
    std::string first_problem;
    for (size_t i = 0; i < n; ++i) {
      size_t k = n == 1 ? 0 : i * (http.size() - 1) / (n - 1);
      if (auto why = head_url(http[k], stream_, timeout_s); !why.empty())
        if (bad++ == 0) first_problem = why;
    }
    if (bad > 0)
      out.push_back({"urls", "'" + pattern + "': " + std::to_string(bad) + " of " + std::to_string(n) +
                                 " URLs checked did not answer a HEAD request (" +
                                 (http.size() > n ? std::to_string(http.size()) + " in the pattern; " : "") +
                                 "first: " + first_problem + ")"});
  }
  return out;
}

std::string ShardSource::check_placement(int replicas, int) const {
  if (numbered_ && replicas > 1)
    return "order = \"deterministic\" numbers the samples in one sequence: it needs 1 replica, not " +
           std::to_string(replicas);
  return "";
}

void ShardSource::configure() {
  // Derived from the bound values: urls expanded, the extension lists
  // normalized, resume_from parsed, and seed keeps a negative int's bits.
  urls_ = expand_urls(url_patterns_);
  if (urls_.empty()) throw std::invalid_argument("shards.source: 'urls' expands to no shards");
  assign_.seed = static_cast<uint64_t>(seed_);
  if (assign_.rank >= assign_.world_size)
    throw std::invalid_argument("shards.source: rank " + std::to_string(assign_.rank) + " >= world_size " +
                                std::to_string(assign_.world_size));
  assign_.replica = ctx().replica();
  assign_.replicas = std::max(1, ctx().replicas());
  read_.keep = normalize_exts(read_.keep);
  read_.text = normalize_exts(read_.text);
  read_.require = normalize_exts(read_.require);
  StageContext* c = &ctx();
  stream_.on_retry = [c](int, const std::string&) { c->count("shards.http_retries"); };
  // From fetch threads: counted, the first 20 logged.
  auto told = std::make_shared<std::atomic<int>>(0);
  stream_.on_resume_mismatch = [c, told](const std::string& what) {
    c->count("shards.http_resume_mismatch");
    if (told->fetch_add(1) < 20) c->log(LogLevel::Warn, "shards.http_resume_mismatch: " + what);
  };

  if (numbered_) {
    if (ctx().replicas() > 1 || assign_.world_size > 1)
      throw std::invalid_argument("shards.source: order = \"deterministic\" needs replicas = 1 and world_size = 1 "
                                  "(one sequence of numbered samples)");
    for (auto& r : resume_from_)
      if (!r.empty())
        throw std::invalid_argument("shards.source: order = \"deterministic\" numbers samples from the start: "
                                    "leave resume_from empty (a resumed trainer skips what it consumed)");
  }
  const auto& resume = resume_from_;
  if (!resume.empty() && resume.size() != static_cast<size_t>(assign_.replicas) &&
      !(resume.size() == 1 && assign_.replicas == 1))
    throw std::invalid_argument("shards.source: resume_from has " + std::to_string(resume.size()) +
                                " positions but the stage has " + std::to_string(assign_.replicas) + " replicas");
  if (!resume.empty()) resume_ = parse_position(resume[assign_.replica]);

  int64_t first_epoch = resume_ ? resume_->epoch : 0;
  if (epochs_ > 0 && first_epoch >= epochs_) {
    finished_ = true;  // the saved position is past the last epoch
    return;
  }
  if (resume_) {
    if (resume_->shard < 0 || resume_->shard >= static_cast<int64_t>(urls_.size()))
      throw std::invalid_argument("shards.source: resume_from shard " + std::to_string(resume_->shard) +
                                  " is outside the shard list (" + std::to_string(urls_.size()) + " shards)");
    auto plan = assign_shards(urls_.size(), first_epoch, assign_);
    auto it = std::find(plan.begin(), plan.end(), resume_->shard);
    if (it == plan.end())
      throw std::invalid_argument("shards.source: resume_from " + format_position(*resume_) +
                                  ": shard is not assigned to replica " + std::to_string(assign_.replica) +
                                  " (were seed, ranks or replicas changed?)");
    if (shuffle_buffer_ == 0) {
      // Jump straight to the shard, stepping over the samples already delivered.
      start_epoch(first_epoch);
      plan_pos_ = static_cast<size_t>(it - plan.begin());
      resume_skip_before_ = resume_->sample + 1;
      resume_.reset();
    } else {
      start_epoch(first_epoch);  // replay; deliver() suppresses until the position
      ctx().log(LogLevel::Info, "resuming at " + format_position(*resume_) + " by replaying epoch " +
                                  std::to_string(first_epoch) + " through the shuffle buffer");
    }
  } else {
    start_epoch(0);
  }
  if (count_total_) compute_total();
}

void ShardSource::compute_total() {
  if (epochs_ == 0) return;
  for (auto& u : urls_)
    if (is_http_url(u)) return;  // would mean fetching every shard twice
  std::map<int64_t, int64_t> counts;
  int64_t total = 0;
  for (int64_t e = epoch_; e < epochs_; ++e) {
    for (int64_t s : assign_shards(urls_.size(), e, assign_)) {
      auto it = counts.find(s);
      if (it == counts.end()) it = counts.emplace(s, std::max<int64_t>(0, count_samples(urls_[s]))).first;
      total += it->second;
    }
    if (counts.size() > 100000) return;
  }
  ctx().set_total(total);
}

bool ShardSource::start_epoch(int64_t epoch) {
  if (epochs_ > 0 && epoch >= epochs_) return false;
  epoch_ = epoch;
  plan_ = assign_shards(urls_.size(), epoch, assign_);
  plan_pos_ = 0;
  reader_.reset();
  epoch_input_done_ = false;
  rng_.emplace(derive_seed(assign_.seed, {0x53414D504C45ull /* "SAMPLE" */, static_cast<uint64_t>(epoch),
                                          static_cast<uint64_t>(assign_.rank),
                                          static_cast<uint64_t>(assign_.replica)}));
  if (plan_.empty() && epoch == 0)
    ctx().log(LogLevel::Warn, "replica " + std::to_string(assign_.replica) + " of rank " +
                                  std::to_string(assign_.rank) + " has no shards (" + std::to_string(urls_.size()) +
                                  " shards for " + std::to_string(assign_.world_size * assign_.replicas) +
                                  " readers)");
  return true;
}

bool ShardSource::open_next_shard() {
  while (plan_pos_ < plan_.size()) {
    int64_t s = plan_[plan_pos_++];
    const std::string& url = urls_[s];
    int64_t skip = std::exchange(resume_skip_before_, 0);
    ++shards_tried_;
    try {
      auto in = open_stream(url, stream_);
      reader_ = std::make_unique<SampleReader>(
          std::move(in), url, s, read_, [this](const std::string& r, const std::string& m) { problem(r, m); },
          skip);
      ctx().count("shards.opened");
      return true;
    } catch (const std::exception& e) {
      problem("error.shard_open", std::string(e.what()));
      shard_failed(e.what());
    }
  }
  return false;
}

bool ShardSource::next_read(Sample& s) {
  for (;;) {
    if (ctx().stop_requested()) return false;
    if (!reader_ && !open_next_shard()) return false;
    if (reader_->next(s)) {
      s.origin.epoch = epoch_;
      ++samples_read_;
      return true;
    }
    ctx().count("shards.bytes", static_cast<int64_t>(reader_->bytes_read()));
    if (!reader_->failed()) ctx().count("shards.completed");
    else shard_failed(reader_->error());
    reader_.reset();
  }
}

void ShardSource::shard_failed(const std::string& error) {
  if (shards_failed_++ == 0) first_error_ = error;
}

void ShardSource::check_not_all_failed() const {
  // Nothing read and every shard tried failed: a broken configuration or a
  // dead server, not a small dataset. Fail the stage so the run says so. A
  // replica with no shards, or shards that are merely empty, does not fail.
  if (samples_read_ > 0 || shards_failed_ == 0 || shards_failed_ < shards_tried_) return;
  throw std::runtime_error("shards.source: all " + std::to_string(shards_failed_) + " shard" +
                           (shards_failed_ == 1 ? "" : "s") + " failed; first: " + first_error_);
}

void ShardSource::deliver(Sample&& s, Emitter& out) {
  if (resume_) {
    // Replaying towards the saved position (shuffle-buffer mode).
    bool at = s.origin.epoch == resume_->epoch && s.origin.shard == resume_->shard &&
              s.origin.index == resume_->sample;
    ctx().count("shards.resume_replayed");
    if (at) resume_.reset();
    return;
  }
  ctx().count("samples");
  if (numbered_) s.set_ints(kSeqField, {next_seq_++});
  out.emit(std::move(s));
}

bool ShardSource::produce(Emitter& out) {
  if (finished_) return false;
  // One sample per call keeps stop requests and back-pressure responsive.
  for (;;) {
    if (!epoch_input_done_) {
      Sample s;
      if (next_read(s)) {
        if (shuffle_buffer_ == 0) {
          deliver(std::move(s), out);
          return true;
        }
        buffer_.push_back(std::move(s));
        if (buffer_.size() < shuffle_buffer_) continue;
      } else {
        if (ctx().stop_requested()) {
          finished_ = true;
          return false;
        }
        epoch_input_done_ = true;
        continue;
      }
    }
    if (!buffer_.empty()) {
      size_t i = static_cast<size_t>(rng_->below(buffer_.size()));
      std::swap(buffer_[i], buffer_.back());
      Sample s = std::move(buffer_.back());
      buffer_.pop_back();
      deliver(std::move(s), out);
      return true;
    }
    // Epoch finished (the buffer drains at each epoch's end so epochs do not mix).
    check_not_all_failed();
    if (resume_) {
      throw std::runtime_error("shards.source: resume_from " + format_position(*resume_) +
                               " was never reached while replaying its epoch (did the shards change?)");
    }
    if (!start_epoch(epoch_ + 1)) {
      finished_ = true;
      return false;
    }
    if (plan_.empty() && epochs_ == 0) {
      finished_ = true;  // endless mode with nothing to read would spin forever
      return false;
    }
  }
}

void ShardSource::close() {
  reader_.reset();
  buffer_.clear();
}

}  // namespace catlip::shards
