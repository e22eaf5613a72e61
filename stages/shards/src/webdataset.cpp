// The implementation of catlip/shards/webdataset.h: grouping tar members into samples by
// key, with problems reported by reason, and counting a shard's samples.
#include "catlip/shards/webdataset.h"

#include <algorithm>
#include <cstdio>

namespace catlip::shards {
namespace {

// A member name for a log line: control characters (NUL included) escaped.
std::string printable(const std::string& name) {
  std::string out;
  for (unsigned char c : name.substr(0, 300)) {
    if (c < 0x20 || c == 0x7f) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02x", c);
      out += esc;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

std::string stream_error_reason(const StreamError& e) {
  return e.deadline_exceeded ? "error.shard_timeout" : "error.shard_read";
}

std::optional<std::pair<std::string, std::string>> split_key_ext(const std::string& name) {
  size_t slash = name.rfind('/');
  size_t base = slash == std::string::npos ? 0 : slash + 1;
  size_t dot = name.find('.', base);
  if (dot == std::string::npos || dot == base || dot + 1 >= name.size()) return std::nullopt;
  std::string ext = name.substr(dot + 1);
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == "jpeg") ext = "jpg";
  return std::make_pair(name.substr(0, dot), std::move(ext));
}

std::string normalize_ext(const std::string& ext) {
  std::string out;
  size_t start = 0;
  for (;;) {
    size_t bar = ext.find('|', start);
    std::string part = ext.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
    for (auto& c : part) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (part == "jpeg") part = "jpg";
    out += part;
    if (bar == std::string::npos) return out;
    out += '|';
    start = bar + 1;
  }
}

std::vector<std::string> normalize_exts(std::vector<std::string> exts) {
  for (auto& e : exts) e = normalize_ext(e);
  return exts;
}

SampleReader::SampleReader(std::unique_ptr<ByteStream> in, std::string url, int64_t shard,
                           ReadOptions opts, ProblemFn problem, int64_t skip_before)
    : in_(std::move(in)), tar_(*in_, url), url_(std::move(url)), shard_(shard), opts_(std::move(opts)),
      problem_(std::move(problem)), skip_before_(skip_before) {}

bool SampleReader::fetch_header() {
  if (have_hdr_) return true;
  if (ended_) return false;
  try {
    have_hdr_ = tar_.next(hdr_);
  } catch (const TarError& e) {
    error_ = e.what();
    damage_between_members_ = e.between_members;
    report(e.truncated ? "error.truncated_shard" : "error.corrupt_shard",
           error_ + " (" + std::to_string(next_index_) + " samples so far)");
  } catch (const StreamError& e) {
    error_ = e.what();
    report(stream_error_reason(e), error_);
  }
  while (resyncs_reported_ < tar_.stats().resyncs) {
    ++resyncs_reported_;
    report("skipped.corrupt_header", tar_.stats().last_resync);
  }
  if (tar_.stats().non_regular > non_regular_reported_) {
    uint64_t n = tar_.stats().non_regular - non_regular_reported_;
    non_regular_reported_ = tar_.stats().non_regular;
    for (uint64_t i = 0; i < n; ++i)
      report("skipped.non_regular_member", url_ + ": skipped a tar member that is not a regular file");
  }
  if (!have_hdr_) ended_ = true;
  return have_hdr_;
}

bool SampleReader::finalize(Sample& cur, Sample& out) {
  // Decide whether the finished group becomes a sample.
  if (cur.origin.index < skip_before_) return false;
  auto where = url_ + ": sample " + cur.key;
  if (cur.fields.empty()) {
    report("skipped.empty_sample", where + " has no usable fields");
    return false;
  }
  for (auto& alts : opts_.require) {
    bool ok = false;
    size_t start = 0;
    for (;;) {
      size_t bar = alts.find('|', start);
      if (cur.has(alts.substr(start, bar == std::string::npos ? std::string::npos : bar - start))) ok = true;
      if (bar == std::string::npos) break;
      start = bar + 1;
    }
    if (!ok) {
      std::string tag = alts;
      std::replace(tag.begin(), tag.end(), '|', '_');
      report("skipped.missing_" + tag, where + " lacks a required " + alts + " field");
      return false;
    }
  }
  out = std::move(cur);
  return true;
}

bool SampleReader::next(Sample& out) {
  Sample cur;
  bool open = false;
  for (;;) {
    if (!fetch_header()) {
      // Damage in a header leaves the open group's members whole: it is
      // finished like any other; damage inside a member's data is not.
      if (open && (!failed() || damage_between_members_)) {
        if (finalize(cur, out)) return true;
      } else if (open && cur.origin.index >= skip_before_) {
        report("skipped.incomplete_sample", url_ + ": dropped sample " + cur.key + " cut short by the damage");
      }
      return false;
    }
    if (!safe_member_name(hdr_.name)) {
      // "../x", "/etc/x", a NUL: never a key. The member is left out and
      // does not open or close a group.
      if (next_index_ >= skip_before_)
        report("skipped.unsafe_name", url_ + ": member '" + printable(hdr_.name) + "' has an unsafe name");
      have_hdr_ = false;
      continue;
    }
    auto ke = split_key_ext(hdr_.name);
    if (!ke) {
      if (next_index_ >= skip_before_)
        report("skipped.no_extension", url_ + ": member '" + hdr_.name + "' has no key.extension name");
      have_hdr_ = false;
      continue;  // data skipped by the next tar_.next()
    }
    auto& [key, ext] = *ke;
    if (open && key != cur.key) {
      // hdr_ stays pending: it starts the next group.
      if (finalize(cur, out)) return true;
      cur = Sample{};
      open = false;
    }
    if (!open) {
      open = true;
      cur.key = key;
      cur.origin.url = url_;
      cur.origin.shard = shard_;
      cur.origin.index = next_index_++;
    }
    have_hdr_ = false;
    if (cur.origin.index < skip_before_) continue;  // resuming: data skipped unread
    std::string where = url_ + ": sample " + cur.key + " member " + ext;
    if (hdr_.size > opts_.max_member_bytes) {
      report("skipped.member_too_large", where + " is " + std::to_string(hdr_.size) + " bytes (limit " +
                                             std::to_string(opts_.max_member_bytes) + ")");
      continue;
    }
    if (!opts_.keep.empty() && std::find(opts_.keep.begin(), opts_.keep.end(), ext) == opts_.keep.end()) {
      report("skipped.unknown_extension", where + ": extension not in keep list");
      continue;
    }
    if (cur.has(ext)) {
      report("skipped.duplicate_field", where + " appears twice; keeping the first");
      continue;
    }
    std::string data;
    try {
      tar_.read_data(data);
    } catch (const TarError& e) {
      error_ = e.what();
      report("error.truncated_shard", error_ + " (" + std::to_string(cur.origin.index) + " samples so far)");
      ended_ = true;
      continue;
    } catch (const StreamError& e) {
      error_ = e.what();
      report(stream_error_reason(e), error_);
      ended_ = true;
      continue;
    }
    bool is_text = std::find(opts_.text.begin(), opts_.text.end(), ext) != opts_.text.end();
    if (is_text) cur.set_text(ext, std::move(data));
    else cur.set_bytes(ext, std::move(data));
  }
}

int64_t count_samples(const std::string& url, const StreamOptions& sopts) {
  try {
    auto in = open_stream(url, sopts);
    TarReader tar(*in, url);
    TarHeader h;
    int64_t n = 0;
    std::string last;
    bool any = false;
    while (tar.next(h)) {
      if (!safe_member_name(h.name)) continue;
      auto ke = split_key_ext(h.name);
      if (!ke) continue;
      if (!any || ke->first != last) {
        ++n;
        last = ke->first;
        any = true;
      }
    }
    return n;
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace catlip::shards
