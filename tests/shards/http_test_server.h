// A tiny HTTP/1.1 file server for the shard tests, on 127.0.0.1 in a thread.
// It honours `Range: bytes=N-` and can misbehave on purpose: cut the body of
// the first N responses short (then drop the connection) to exercise resume,
// stall, answer 503, or redirect.
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
    int status = 0;
  };
  std::vector<Request> requests() const;

 private:
  void serve();
  void handle(int fd);

  std::string root_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false}, ignore_range_{false};
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
