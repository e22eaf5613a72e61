// catlip/shards/byte_stream.h - sequential byte sources for shards.
//
// A shard is read front to back exactly once, so a stream only needs read()
// and skip(). Local paths and file:// URLs read a file; http:// and https://
// URLs are fetched with libcurl on a background thread that fills a bounded
// ring buffer (buffer_bytes), so a shard is parsed while it arrives and never
// held in memory whole. Transient failures (connection errors, timeouts,
// stalls, transfers slower than low_speed_limit, dropped connections, HTTP
// 408/429/5xx) are retried with exponential backoff, at most `retries` times
// per shard. A retry asks for `Range: bytes=<received - overlap>-` with
// If-Range (the first answer's ETag or Last-Modified) and checks that the
// overlap equals the bytes already delivered, so the parser sees each byte
// exactly once: a server that ignores Range and answers 200 has the prefix
// skipped (and checked); one whose resumed bytes do not match has the shard
// fetched again from byte 0 without Range; a shard that changed on the
// server (another ETag, Last-Modified or size, or different bytes on that
// whole-file fetch) fails. Permanent errors fail at once with a StreamError
// naming the URL: other 4xx (404, 403...), more than max_redirects
// redirects, oversized headers, unsupported protocols, malformed URLs, TLS
// verification failures. A shard that spends more than shard_timeout_s
// fetching fails too, whatever its progress.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

namespace catlip::shards {

// A shard could not be read (missing file, HTTP error, retries exhausted).
struct StreamError : std::runtime_error {
  using std::runtime_error::runtime_error;
  int http_status = 0;  // when the server answered with an error status
  bool permanent = false;          // not worth retrying (4xx, bad URL, TLS verification, too many redirects)
  bool deadline_exceeded = false;  // StreamOptions::shard_timeout_s passed
};

// Bytes before the resume offset that a retry asks for again and compares
// with what was delivered.
constexpr size_t kResumeOverlapBytes = 16 << 10;

struct StreamOptions {
  double timeout_s = 30;         // connect timeout, and max seconds without any data
  int retries = 10;              // requests after the first, per shard, whatever each one delivered
  // A request slower than low_speed_limit bytes/s over low_speed_time_s
  // seconds of fetching is ended and retried (0 = no minimum). Like curl's
  // CURLOPT_LOW_SPEED_LIMIT/TIME, except that time blocked on a full buffer
  // because the reader is slow does not count.
  double low_speed_limit = 10240;
  double low_speed_time_s = 30;
  // Longest time one shard may spend fetching (connecting, waiting for data,
  // backing off before retries); time blocked on a full buffer because the
  // reader is slow does not count. 0 = no limit.
  double shard_timeout_s = 600;
  long max_redirects = 10;       // HTTP redirects followed per request; more is a permanent error
  double backoff_s = 0.25;       // first retry delay; doubles each retry (capped at 30 s)
  size_t buffer_bytes = 4 << 20; // HTTP ring buffer
  std::string ca_file;           // extra CA bundle for https (e.g. a test's self-signed cert)
  bool insecure = false;         // skip TLS verification (never the default)
  // Called (from the fetch thread) before each retry: attempt number and why.
  std::function<void(int attempt, const std::string& why)> on_retry;
  // Called (from the fetch thread) when resumed bytes did not match the ones
  // delivered and the shard is fetched again from byte 0; names the URL.
  std::function<void(const std::string& what)> on_resume_mismatch;
};

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Reads up to n bytes; returns 0 only at the end of the stream. Throws
  // StreamError when the stream fails.
  virtual size_t read(char* dst, size_t n) = 0;
  // Skips n bytes; returns how many were skipped (fewer only at the end).
  virtual uint64_t skip(uint64_t n);
  // Bytes delivered to the reader so far (read + skipped).
  uint64_t offset() const { return offset_; }
  // Total size when known in advance (local files), else -1.
  virtual int64_t size_hint() const { return -1; }
  virtual uint64_t retries_done() const { return 0; }

 protected:
  uint64_t offset_ = 0;
};

bool is_http_url(const std::string& url);
// "file:///a/b" -> "/a/b"; other strings unchanged.
std::string local_path(const std::string& url);

// Opens a stream for a local path, file:// or http(s):// URL.
std::unique_ptr<ByteStream> open_stream(const std::string& url, const StreamOptions& opts = {});

// One HEAD request (redirects followed as opts says; TLS as opts says):
// "" when the server answers 2xx, else why not, naming the URL and the HTTP
// status or the connection error. At most timeout_s in all.
std::string head_url(const std::string& url, const StreamOptions& opts, double timeout_s);

// A stream over an in-memory string (tests, tools).
std::unique_ptr<ByteStream> memory_stream(std::string data);

}  // namespace catlip::shards
