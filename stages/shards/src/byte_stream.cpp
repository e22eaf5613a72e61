// The implementation of catlip/shards/byte_stream.h: file and in-memory streams, and the
// libcurl HTTP(S) stream with its ring buffer, retries and Range resumption.
#include "catlip/shards/byte_stream.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

namespace catlip::shards {

uint64_t ByteStream::skip(uint64_t n) {
  char buf[16384];
  uint64_t done = 0;
  while (done < n) {
    size_t got = read(buf, static_cast<size_t>(std::min<uint64_t>(sizeof buf, n - done)));
    if (got == 0) break;
    done += got;
  }
  return done;  // read() already advanced offset_
}

bool is_http_url(const std::string& url) {
  return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
}

std::string local_path(const std::string& url) {
  if (url.rfind("file://", 0) == 0) return url.substr(7);
  return url;
}

namespace {

class FileStream : public ByteStream {
 public:
  explicit FileStream(const std::string& path) : path_(path) {
    f_ = std::fopen(path.c_str(), "rbe");
    if (!f_) throw StreamError("cannot open " + path + ": " + std::strerror(errno));
    if (std::fseek(f_, 0, SEEK_END) == 0) {
      size_ = std::ftell(f_);
      std::fseek(f_, 0, SEEK_SET);
    }
  }
  ~FileStream() override { std::fclose(f_); }
  size_t read(char* dst, size_t n) override {
    size_t got = std::fread(dst, 1, n, f_);
    if (got == 0 && std::ferror(f_)) throw StreamError("read error on " + path_ + ": " + std::strerror(errno));
    offset_ += got;
    return got;
  }
  uint64_t skip(uint64_t n) override {
    // Seeking lets a reader step over members it does not want (oversized,
    // already consumed before a resume) without reading them.
    uint64_t left = size_ >= 0 && offset_ <= static_cast<uint64_t>(size_) ? size_ - offset_ : 0;
    uint64_t k = std::min(n, left);
    if (std::fseek(f_, static_cast<long>(offset_ + k), SEEK_SET) != 0) return ByteStream::skip(n);
    offset_ += k;
    return k;
  }
  int64_t size_hint() const override { return size_; }

 private:
  std::string path_;
  FILE* f_ = nullptr;
  int64_t size_ = -1;
};

class MemoryStream : public ByteStream {
 public:
  explicit MemoryStream(std::string d) : d_(std::move(d)) {}
  size_t read(char* dst, size_t n) override {
    size_t k = std::min<size_t>(n, d_.size() - offset_);
    std::memcpy(dst, d_.data() + offset_, k);
    offset_ += k;
    return k;
  }
  int64_t size_hint() const override { return static_cast<int64_t>(d_.size()); }

 private:
  std::string d_;
};

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// libcurl on its own thread, writing into a bounded ring buffer that read()
// drains. The fetch thread blocks when the buffer is full (back-pressure), so
// memory per open shard is buffer_bytes no matter how large the shard is.
class HttpStream : public ByteStream {
 public:
  HttpStream(std::string url, StreamOptions opts) : url_(std::move(url)), opts_(std::move(opts)) {
    curl_init_once();
    ring_.resize(std::max<size_t>(opts_.buffer_bytes, 64 << 10));
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
      p += k;
      n -= k;
      received_ += k;
      lk.unlock();
      cv_.notify_all();
    }
    return true;
  }

  // Seconds of the shard deadline left (fetch thread only); +inf without one.
  double deadline_left() const {
    if (opts_.shard_timeout_s <= 0) return std::numeric_limits<double>::infinity();
    double spent = std::chrono::duration<double>(Clock::now() - start_).count() - blocked_s_;
    return opts_.shard_timeout_s - spent;
  }

  struct Attempt {
    HttpStream* self;
    CURL* h;
    uint64_t discard = 0;  // server ignored Range: drop what we already have
    bool checked = false;
    bool progressed = false;
    bool aborted = false;
    bool stalled = false;
    bool deadline = false;
    Clock::time_point last_data = Clock::now();
  };

  static size_t on_write(char* p, size_t sz, size_t nm, void* ud) {
    auto* a = static_cast<Attempt*>(ud);
    size_t n = sz * nm;
    a->last_data = Clock::now();
    if (!a->checked) {
      a->checked = true;
      long code = 0;
      curl_easy_getinfo(a->h, CURLINFO_RESPONSE_CODE, &code);
      if (a->self->received_ > 0 && code == 200) a->discard = a->self->received_;
    }
    size_t skip = static_cast<size_t>(std::min<uint64_t>(a->discard, n));
    a->discard -= skip;
    if (skip < n) {
      a->progressed = true;
      if (!a->self->push(p + skip, n - skip)) {
        a->aborted = true;
        return 0;  // makes curl stop with CURLE_WRITE_ERROR
      }
      a->last_data = Clock::now();
    }
    return n;
  }
  // Called by curl at least once a second, also while nothing arrives.
  // curl's own low-speed check averages over several seconds; a stall should
  // be noticed after timeout_s. Time spent blocked on a full buffer is not a
  // stall: on_write refreshes last_data when it returns.
  static int on_progress(void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* a = static_cast<Attempt*>(ud);
    {
      std::lock_guard<std::mutex> lk(a->self->mu_);
      if (a->self->abort_) return 1;
    }
    if (a->self->deadline_left() <= 0) {
      a->deadline = true;
      return 1;
    }
    auto idle = std::chrono::duration<double>(Clock::now() - a->last_data).count();
    if (idle > a->self->opts_.timeout_s) {
      a->stalled = true;
      return 1;
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

  void setup(CURL* h, Attempt& a, char* errbuf, std::string& range) {
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
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &HttpStream::on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &a);
    long t = std::max(1L, static_cast<long>(opts_.timeout_s + 0.999));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, t);
    // A stall (no bytes for timeout_s, see on_progress) is a timeout, but a
    // slow steady download of a big shard is not: no total time limit per
    // request; shard_timeout_s bounds the shard as a whole.
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L << 10);
    if (!opts_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, opts_.ca_file.c_str());
    if (opts_.insecure) {
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (received_ > 0) {
      range = std::to_string(received_) + "-";
      curl_easy_setopt(h, CURLOPT_RANGE, range.c_str());
    }
  }

  static bool transient_status(long code) { return code == 408 || code == 429 || code >= 500; }

  // Whether a failed attempt is worth retrying, and why it failed. Anything
  // not known to be transient is permanent: retrying a 404, a redirect loop
  // or a certificate the store rejects cannot help.
  bool classify(CURLcode rc, long code, const Attempt& a, const char* errbuf, std::string& why) const {
    why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (a.stalled) {
      char msg[64];
      std::snprintf(msg, sizeof msg, "no data for %g s", opts_.timeout_s);
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

  // Runs one request; returns true when the stream has ended (done, failed
  // or aborted), false to retry after `why`.
  bool attempt(CURL* h, int& failures, std::string& why) {
    Attempt a{this, h};
    char errbuf[CURL_ERROR_SIZE] = {};
    std::string range;
    setup(h, a, errbuf, range);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (abort_ || a.aborted) return true;
    }
    if (rc == CURLE_OK) {
      // A 200 body shorter than what we already had is an error.
      finish(a.discard > 0 ? "http: " + url_ + " got shorter on retry" : "");
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
    if (a.progressed) failures = 0;  // a dropped connection that made progress starts afresh
    if (failures >= opts_.retries) {
      finish("http: " + url_ + ": giving up after " + std::to_string(failures) + " retries: " + why, status);
      return true;
    }
    return false;
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
};

}  // namespace

std::unique_ptr<ByteStream> open_stream(const std::string& url, const StreamOptions& opts) {
  if (is_http_url(url)) return std::make_unique<HttpStream>(url, opts);
  if (url.find("://") != std::string::npos && url.rfind("file://", 0) != 0)
    throw StreamError("unsupported URL scheme: " + url);
  return std::make_unique<FileStream>(local_path(url));
}

std::string head_url(const std::string& url, const StreamOptions& opts, double timeout_s) {
  curl_init_once();
  std::unique_ptr<CURL, void (*)(CURL*)> h(curl_easy_init(), curl_easy_cleanup);
  if (!h) return url + ": cannot start an HTTP request (curl_easy_init failed)";
  char errbuf[CURL_ERROR_SIZE] = {};
  CURL* c = h.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, long(opts.max_redirects));
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, long(std::max(1.0, timeout_s * 1000)));
  if (!opts.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, opts.ca_file.c_str());
  if (opts.insecure) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) return url + ": " + (errbuf[0] ? std::string(errbuf) : curl_easy_strerror(rc));
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status >= 300) return url + ": HTTP " + std::to_string(status) + " to a HEAD request";
  return "";
}

std::unique_ptr<ByteStream> memory_stream(std::string data) {
  return std::make_unique<MemoryStream>(std::move(data));
}

}  // namespace catlip::shards
