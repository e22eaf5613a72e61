// The implementation of catlip/shards/byte_stream.h: file and in-memory streams, opening a
// stream by URL, and HEAD checks; the HTTP(S) stream itself is in http_stream.cpp.
#include "catlip/shards/byte_stream.h"

#include "http_stream.h"

#include <curl/curl.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

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

}  // namespace

std::unique_ptr<ByteStream> open_stream(const std::string& url, const StreamOptions& opts) {
  if (is_http_url(url)) return open_http_stream(url, opts);
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
