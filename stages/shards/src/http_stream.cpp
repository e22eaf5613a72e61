// The libcurl HTTP(S) stream of catlip/shards/byte_stream.h: a fetch thread
// filling a bounded ring buffer, retries counted per shard, a minimum
// transfer rate, and resumption that checks the bytes it resumes from.
#include "http_stream.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

namespace catlip::shards {

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

// What one response's headers said (the last response, after redirects).
struct ResponseHeaders {
  int64_t range_start = -1, range_total = -1;  // Content-Range: bytes START-END/TOTAL
  int64_t content_length = -1;
  std::string etag, last_modified;
};

// libcurl on its own thread, writing into a bounded ring buffer that read()
// drains. The fetch thread blocks when the buffer is full (back-pressure), so
// memory per open shard is buffer_bytes no matter how large the shard is.
//
// Resuming: the fetch thread keeps the last kResumeOverlapBytes it delivered.
// A retry asks for `Range: bytes=<received - overlap>-` (with If-Range: the
// first answer's ETag or Last-Modified) and compares the overlap with what
// it kept before delivering anything more; a 200 answer is read from byte 0
// the same way. Bytes that do not match mean the server does not resume
// correctly: the shard is fetched again from byte 0 without Range, skipping
// (and checking) what was already delivered. A changed validator or size,
// or a mismatch on that whole-file fetch, means the shard changed on the
// server: it fails, since what was delivered came from the old version.
class HttpStream : public ByteStream {
 public:
  HttpStream(std::string url, StreamOptions opts) : url_(std::move(url)), opts_(std::move(opts)) {
    curl_init_once();
    ring_.resize(std::max<size_t>(opts_.buffer_bytes, 64 << 10));
    tail_.resize(kResumeOverlapBytes);
    start_ = Clock::now();
    thread_ = std::thread([this] { fetch_loop(); });
  }
  ~HttpStream() override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      abort_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  size_t read(char* dst, size_t n) override {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return count_ > 0 || finished_; });
    if (count_ == 0) {
      if (!error_.empty()) throw error_obj_;
      return 0;
    }
    size_t k = std::min(n, count_);
    size_t first = std::min(k, ring_.size() - head_);
    std::memcpy(dst, &ring_[head_], first);
    std::memcpy(dst + first, &ring_[0], k - first);
    head_ = (head_ + k) % ring_.size();
    count_ -= k;
    offset_ += k;
    lk.unlock();
    cv_.notify_all();
    return k;
  }
  uint64_t retries_done() const override { return retries_.load(); }

 private:
  using Clock = std::chrono::steady_clock;

  // Pushes body bytes into the ring, waiting for space. Returns false on abort.
  // Time spent waiting for the reader is not fetch time (see shard_timeout_s).
  bool push(const char* p, size_t n) {
    while (n > 0) {
      std::unique_lock<std::mutex> lk(mu_);
      if (count_ == ring_.size() && !abort_) {
        auto t0 = Clock::now();
        cv_.wait(lk, [&] { return count_ < ring_.size() || abort_; });
        blocked_s_ += std::chrono::duration<double>(Clock::now() - t0).count();
      }
      if (abort_) return false;
      size_t tail = (head_ + count_) % ring_.size();
      size_t k = std::min({n, ring_.size() - count_, ring_.size() - tail});
      std::memcpy(&ring_[tail], p, k);
      count_ += k;
      keep_tail(p, k);
      p += k;
      n -= k;
      received_ += k;
      lk.unlock();
      cv_.notify_all();
    }
    return true;
  }
  // Remembers delivered bytes for the next resume's check: the byte at
  // offset o lives at tail_[o % size] while o >= received_ - size.
  void keep_tail(const char* p, size_t k) {
    const size_t cap = tail_.size();
    uint64_t at = received_;
    if (k > cap) {
      at += k - cap;
      p += k - cap;
      k = cap;
    }
    size_t pos = static_cast<size_t>(at % cap), first = std::min(k, cap - pos);
    std::memcpy(&tail_[pos], p, first);
    std::memcpy(&tail_[0], p + first, k - first);
  }
  uint64_t overlap() const { return std::min<uint64_t>(received_, tail_.size()); }

  // Seconds of fetching so far: time blocked on a full buffer excluded.
  double fetch_seconds() const {
    return std::chrono::duration<double>(Clock::now() - start_).count() - blocked_s_;
  }
  // Seconds of the shard deadline left (fetch thread only); +inf without one.
  double deadline_left() const {
    if (opts_.shard_timeout_s <= 0) return std::numeric_limits<double>::infinity();
    return opts_.shard_timeout_s - fetch_seconds();
  }

  struct Attempt {
    HttpStream* self = nullptr;
    CURL* h = nullptr;
    ResponseHeaders hdr;
    bool checked = false;   // the response's status and headers were examined
    uint64_t pos = 0;       // shard offset of the next body byte of this response
    bool progressed = false;
    bool aborted = false;
    bool stalled = false;
    bool slow = false;
    bool deadline = false;
    bool mismatch = false;  // the resumed bytes are not the ones delivered
    bool changed = false;   // the shard is not the one we started reading
    std::string why;        // of mismatch / changed
    Clock::time_point last_data = Clock::now();
    // Low-speed window, in fetch seconds (blocked time excluded).
    double window_start = -1;
    uint64_t window_bytes = 0, body_bytes = 0;
  };

  static size_t on_header(char* p, size_t sz, size_t nm, void* ud) {
    auto* a = static_cast<Attempt*>(ud);
    size_t n = sz * nm;
    std::string line(p, n);
    if (line.rfind("HTTP/", 0) == 0) {
      a->hdr = ResponseHeaders{};  // a new response (after a redirect or 100 Continue)
      return n;
    }
    auto colon = line.find(':');
    if (colon == std::string::npos) return n;
    std::string name = lower(trim(line.substr(0, colon))), value = trim(line.substr(colon + 1));
    if (name == "etag") a->hdr.etag = value;
    else if (name == "last-modified") a->hdr.last_modified = value;
    else if (name == "content-length") a->hdr.content_length = std::atoll(value.c_str());
    else if (name == "content-range") {
      long long s = -1, e = -1, t = -1;
      if (std::sscanf(value.c_str(), "bytes %lld-%lld/%lld", &s, &e, &t) >= 2) {
        a->hdr.range_start = s;
        a->hdr.range_total = t;
      }
    }
    return n;
  }

  // The first body bytes of a response: where they start in the shard, and
  // whether this is still the shard we began with.
  void examine(Attempt& a) {
    a.checked = true;
    long code = 0;
    curl_easy_getinfo(a.h, CURLINFO_RESPONSE_CODE, &code);
    const ResponseHeaders& h = a.hdr;
    int64_t total = -1;
    if (code == 206) {
      if (h.range_start < 0) return fail_resume(a, false, "a 206 answer without a usable Content-Range");
      a.pos = static_cast<uint64_t>(h.range_start);
      total = h.range_total;
    } else {
      a.pos = 0;  // a whole-file answer (the server ignored or refused the Range)
      total = h.content_length;
    }
    if (!have_first_) {
      have_first_ = true;
      etag_ = h.etag;
      last_modified_ = h.last_modified;
      total_ = total;
    } else if (!etag_.empty() && !h.etag.empty() && h.etag != etag_) {
      return fail_resume(a, true, "its ETag changed from " + etag_ + " to " + h.etag);
    } else if (!last_modified_.empty() && !h.last_modified.empty() && h.last_modified != last_modified_) {
      return fail_resume(a, true, "its Last-Modified changed from " + last_modified_ + " to " + h.last_modified);
    } else if (total_ >= 0 && total >= 0 && total != total_) {
      return fail_resume(a, true, "its size changed from " + std::to_string(total_) + " to " + std::to_string(total) + " bytes");
    }
    if (a.pos > received_)
      return fail_resume(a, false, "the answer starts at byte " + std::to_string(a.pos) + ", after the " +
                                       std::to_string(received_) + " bytes already read");
  }
  void fail_resume(Attempt& a, bool changed, const std::string& why) {
    a.mismatch = true;
    a.changed = changed;
    a.why = why;
  }

  static size_t on_write(char* p, size_t sz, size_t nm, void* ud) {
    auto* a = static_cast<Attempt*>(ud);
    HttpStream* self = a->self;
    size_t n = sz * nm;
    a->last_data = Clock::now();
    a->body_bytes += n;
    if (!a->checked) self->examine(*a);
    if (a->mismatch) return 0;  // makes curl stop with CURLE_WRITE_ERROR
    const char* q = p;
    size_t left = n;
    // Before the bytes kept for checking: already delivered, skipped.
    uint64_t check_from = self->received_ - self->overlap();
    if (a->pos < check_from) {
      size_t k = static_cast<size_t>(std::min<uint64_t>(left, check_from - a->pos));
      a->pos += k;
      q += k;
      left -= k;
    }
    // The overlap: must equal what was delivered.
    while (left > 0 && a->pos < self->received_) {
      const size_t cap = self->tail_.size();
      size_t at = static_cast<size_t>(a->pos % cap);
      size_t k = static_cast<size_t>(std::min<uint64_t>({left, self->received_ - a->pos, cap - at}));
      if (std::memcmp(&self->tail_[at], q, k) != 0) {
        uint64_t bad = a->pos;
        for (size_t i = 0; i < k; ++i)
          if (self->tail_[at + i] != q[i]) {
            bad = a->pos + i;
            break;
          }
        self->fail_resume(*a, false, "byte " + std::to_string(bad) + " differs from the one read before");
        return 0;
      }
      a->pos += k;
      q += k;
      left -= k;
    }
    if (left > 0) {
      a->progressed = true;
      if (!self->push(q, left)) {
        a->aborted = true;
        return 0;
      }
      a->pos += left;
      a->last_data = Clock::now();
    }
    return n;
  }
  // Called by curl at least once a second, also while nothing arrives:
  // abort, shard deadline, stall (no bytes for timeout_s) and low speed
  // (under low_speed_limit bytes/s over low_speed_time_s). curl's own
  // low-speed check would count time blocked on a full buffer (a slow
  // reader) as a slow server; these do not: on_write refreshes last_data
  // when it returns, and the speed window runs on fetch seconds.
  static int on_progress(void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* a = static_cast<Attempt*>(ud);
    HttpStream* self = a->self;
    {
      std::lock_guard<std::mutex> lk(self->mu_);
      if (self->abort_) return 1;
    }
    if (self->deadline_left() <= 0) {
      a->deadline = true;
      return 1;
    }
    auto idle = std::chrono::duration<double>(Clock::now() - a->last_data).count();
    if (idle > self->opts_.timeout_s) {
      a->stalled = true;
      return 1;
    }
    if (self->opts_.low_speed_limit > 0 && self->opts_.low_speed_time_s > 0) {
      double now = self->fetch_seconds();
      if (a->window_start < 0) {
        a->window_start = now;
        a->window_bytes = a->body_bytes;
      } else if (now - a->window_start >= self->opts_.low_speed_time_s) {
        double rate = double(a->body_bytes - a->window_bytes) / (now - a->window_start);
        if (rate < self->opts_.low_speed_limit) {
          a->slow = true;
          return 1;
        }
        a->window_start = now;
        a->window_bytes = a->body_bytes;
      }
    }
    return 0;
  }

  void finish(std::string error, int status = 0, bool permanent = false, bool deadline = false) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      finished_ = true;
      error_ = error;
      error_obj_ = StreamError(error);
      error_obj_.http_status = status;
      error_obj_.permanent = permanent;
      error_obj_.deadline_exceeded = deadline;
    }
    cv_.notify_all();
  }

  std::string after_bytes() const {
    return received_ ? " (after " + std::to_string(received_) + " bytes)" : std::string();
  }
  void finish_deadline() {
    char msg[96];
    std::snprintf(msg, sizeof msg, "shard deadline of %g s (shard_timeout_s) exceeded", opts_.shard_timeout_s);
    finish("http: " + url_ + ": " + msg + after_bytes(), 0, true, true);
  }

  void setup(CURL* h, Attempt& a, char* errbuf, std::string& range, curl_slist*& headers) {
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, opts_.max_redirects);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &HttpStream::on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &HttpStream::on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &HttpStream::on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &a);
    long t = std::max(1L, static_cast<long>(opts_.timeout_s + 0.999));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, t);
    // A stall (no bytes for timeout_s) and a crawl (low_speed_limit) end a
    // request, see on_progress; a slow steady download of a big shard does
    // not: no total time limit per request; shard_timeout_s bounds the shard.
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L << 10);
    if (!opts_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, opts_.ca_file.c_str());
    if (opts_.insecure) {
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (received_ > 0 && !range_untrusted_) {
      range = std::to_string(received_ - overlap()) + "-";
      curl_easy_setopt(h, CURLOPT_RANGE, range.c_str());
      // Only the version we began with: another one comes whole (200).
      const std::string& v = !etag_.empty() && etag_.rfind("W/", 0) != 0 ? etag_ : last_modified_;
      if (!v.empty()) {
        headers = curl_slist_append(headers, ("If-Range: " + v).c_str());
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
      }
    }
  }

  static bool transient_status(long code) { return code == 408 || code == 429 || code >= 500; }

  // Whether a failed attempt is worth retrying, and why it failed. Anything
  // not known to be transient is permanent: retrying a 404, a redirect loop
  // or a certificate the store rejects cannot help.
  bool classify(CURLcode rc, long code, const Attempt& a, const char* errbuf, std::string& why) const {
    why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (a.stalled || a.slow) {
      char msg[96];
      if (a.stalled) std::snprintf(msg, sizeof msg, "no data for %g s", opts_.timeout_s);
      else
        std::snprintf(msg, sizeof msg, "slower than %g bytes/s for %g s (low_speed_limit)", opts_.low_speed_limit,
                      opts_.low_speed_time_s);
      why = msg;
      return true;
    }
    if (rc == CURLE_HTTP_RETURNED_ERROR) {
      why = "HTTP " + std::to_string(code);
      return transient_status(code);
    }
    if (rc == CURLE_TOO_MANY_REDIRECTS) {
      why = "too many redirects (more than max_redirects = " + std::to_string(opts_.max_redirects) + ")";
      return false;
    }
    // Oversized response headers: curl reports them as a receive error.
    if (why.find("header") != std::string::npos && why.find("max is") != std::string::npos) return false;
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_PARTIAL_FILE ||
           rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING ||
           rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_HTTP2 ||
           rc == CURLE_HTTP2_STREAM;
  }

  // A resumed answer that does not continue what was delivered: fetch the
  // whole file again (once), or fail when the shard itself changed.
  bool on_mismatch(const Attempt& a, std::string& why) {
    if (a.changed || range_untrusted_) {
      finish("http: " + url_ + ": the shard changed on the server while it was read (" + a.why + "); the " +
                 std::to_string(received_) + " bytes already read are kept, the rest of the shard is dropped",
             0, true);
      return true;
    }
    range_untrusted_ = true;
    why = "the resumed bytes do not match what was read (" + a.why + "); fetching again from byte 0 without Range";
    if (opts_.on_resume_mismatch) opts_.on_resume_mismatch("http: " + url_ + ": " + why);
    return false;
  }

  // Runs one request; returns true when the stream has ended (done, failed
  // or aborted), false to retry after `why`.
  bool attempt(CURL* h, int failures, std::string& why) {
    Attempt a;
    a.self = this;
    a.h = h;
    char errbuf[CURL_ERROR_SIZE] = {};
    std::string range;
    curl_slist* headers = nullptr;
    setup(h, a, errbuf, range, headers);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (abort_ || a.aborted) return true;
    }
    if (a.mismatch) return on_mismatch(a, why) || give_up(failures, why, 0);
    if (rc == CURLE_OK) {
      // A whole-file answer shorter than what we already had is an error.
      finish(a.pos < received_ ? "http: " + url_ + " got shorter on retry" + after_bytes() : "");
      return true;
    }
    if (a.deadline) {
      finish_deadline();
      return true;
    }
    int status = rc == CURLE_HTTP_RETURNED_ERROR ? static_cast<int>(code) : 0;
    if (!classify(rc, code, a, errbuf, why)) {
      finish("http: " + url_ + ": " + why + " (permanent error, not retried)" + after_bytes(), status, true);
      return true;
    }
    // Every retry counts, progress or not: a server that sends a little per
    // request must not be retried for ever.
    return give_up(failures, why, status);
  }
  bool give_up(int failures, const std::string& why, int status) {
    if (failures < opts_.retries) return false;
    finish("http: " + url_ + ": giving up after " + std::to_string(failures) + " retries: " + why + after_bytes(),
           status);
    return true;
  }

  void fetch_loop() {
    CURL* h = curl_easy_init();
    if (!h) return finish("curl_easy_init failed for " + url_);
    int failures = 0;
    for (;;) {
      std::string why;
      if (attempt(h, failures, why)) break;
      ++failures;
      ++retries_;
      if (opts_.on_retry) opts_.on_retry(failures, why);
      double delay = std::min(30.0, opts_.backoff_s * double(1 << std::min(failures - 1, 16)));
      double left = deadline_left();
      {
        std::unique_lock<std::mutex> lk(mu_);
        if (cv_.wait_for(lk, std::chrono::duration<double>(std::max(0.0, std::min(delay, left))),
                         [&] { return abort_; }))
          break;
      }
      if (deadline_left() <= 0) {
        finish_deadline();
        break;
      }
    }
    curl_easy_cleanup(h);
    std::lock_guard<std::mutex> lk(mu_);
    finished_ = true;
    cv_.notify_all();
  }

  std::string url_;
  StreamOptions opts_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<char> ring_;
  size_t head_ = 0, count_ = 0;
  uint64_t received_ = 0;  // body bytes pushed (touched only by the fetch thread, under mu_ in push)
  bool finished_ = false, abort_ = false;
  std::string error_;
  StreamError error_obj_{""};
  Clock::time_point start_;
  double blocked_s_ = 0;  // seconds push() waited for the reader (fetch thread only)
  std::atomic<uint64_t> retries_{0};
  // Resumption (fetch thread only).
  std::vector<char> tail_;          // the last delivered bytes, see keep_tail
  bool have_first_ = false;         // the first answer's validators are known
  std::string etag_, last_modified_;
  int64_t total_ = -1;              // the shard's size, when an answer said
  bool range_untrusted_ = false;    // a resume did not match: whole-file requests from now on
};

}  // namespace

std::unique_ptr<ByteStream> open_http_stream(const std::string& url, const StreamOptions& opts) {
  return std::make_unique<HttpStream>(url, opts);
}

}  // namespace catlip::shards
