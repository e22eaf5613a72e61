// A tiny HTTP/1.1 file server for the shard tests, on 127.0.0.1 in a thread.
// It honours `Range: bytes=N-` and `If-Range`, sends an ETag (a hash of the
// content), and can misbehave on purpose: cut the body of the first N
// responses short (then drop the connection) to exercise resume, stall,
// answer 503, redirect, drip-feed, replay the file from byte 0 under a 206,
// or change the file between requests.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace catlip::test {

class HttpTestServer {
 public:
  explicit HttpTestServer(std::string root);
  ~HttpTestServer();
  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + path;
  }

  // The next `n` responses with a body send only `bytes` body bytes (after
  // announcing the full Content-Length) and then close the connection.
  void cut_responses(int n, size_t bytes) {
    cut_left_ = n;
    cut_bytes_ = bytes;
  }
  // The next `n` responses with a body send `bytes` body bytes, then stall
  // (send nothing more) for `seconds` before closing: a hung server.
  void stall_responses(int n, size_t bytes, double seconds) {
    stall_left_ = n;
    stall_bytes_ = bytes;
    stall_s_ = seconds;
  }
  // Answer every request with 200 and the whole file, as servers without
  // Range support do.
  void ignore_range(bool on) { ignore_range_ = on; }
  // Hostile: answer a Range request with 206 and a correct Content-Range,
  // but send the body from byte 0 (as a broken cache or proxy might).
  void replay_from_zero(bool on) { replay_from_zero_ = on; }
  // Send every body `bytes` at a time, pausing `interval_s` after each piece:
  // a link that never stalls but crawls.
  void trickle(size_t bytes, double interval_s) {
    trickle_bytes_ = bytes;
    trickle_s_ = interval_s;
  }
  // From request number `n` (0-based) on, serve `content` for every path
  // instead of the file: the shard changed on the server (new ETag).
  void replace_content_from(int n, std::string content) {
    std::lock_guard<std::mutex> lk(mu_);
    replace_from_ = n;
    replacement_ = std::move(content);
  }
  // The next `n` requests get a 503.
  void fail_responses(int n) { fail_left_ = n; }
  // Requests for `from` get a 302 to `to` (both paths below the root).
  void redirect(const std::string& from, const std::string& to) {
    std::lock_guard<std::mutex> lk(mu_);
    redirects_.emplace_back(from, to);
  }

  struct Request {
    std::string path;
    std::string method;              // GET, HEAD
    long long range_start = -1;  // -1: no Range header
    std::string if_range;        // the If-Range header, if any
    int status = 0;
  };
  std::vector<Request> requests() const;

 private:
  void serve();
  void handle(int fd);

  std::string root_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false}, ignore_range_{false}, replay_from_zero_{false};
  std::atomic<size_t> trickle_bytes_{0};
  std::atomic<double> trickle_s_{0};
  int replace_from_ = -1;  // under mu_
  std::string replacement_;
  int served_ = 0;  // requests answered (under mu_)
  std::atomic<int> cut_left_{0}, fail_left_{0}, stall_left_{0};
  std::atomic<size_t> stall_bytes_{0};
  std::atomic<double> stall_s_{0};
  std::atomic<size_t> cut_bytes_{0};
  std::thread thread_;
  std::vector<std::thread> workers_;
  mutable std::mutex mu_;
  std::vector<Request> requests_;
  std::vector<std::pair<std::string, std::string>> redirects_;
};

}  // namespace catlip::test
