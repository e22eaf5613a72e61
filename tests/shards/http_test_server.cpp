// A small HTTP server for the shard tests (http_test_server.h): ranges, stalls, errors
// and redirects on demand.
#include "http_test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace catlip::test {

HttpTestServer::HttpTestServer(std::string root) : root_(std::move(root)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 16) != 0)
    throw std::runtime_error("test server: bind/listen failed");
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { serve(); });
}

HttpTestServer::~HttpTestServer() {
  stop_ = true;
  thread_.join();
  for (auto& t : workers_) t.join();
  ::close(listen_fd_);
}

std::vector<HttpTestServer::Request> HttpTestServer::requests() const {
  std::lock_guard<std::mutex> lk(mu_);
  return requests_;
}

void HttpTestServer::serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    workers_.emplace_back([this, fd] { handle(fd); });
  }
}

static bool send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

void HttpTestServer::handle(int fd) {
  std::string req;
  char buf[4096];
  while (req.find("\r\n\r\n") == std::string::npos && req.size() < 65536) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) break;
    ssize_t k = ::recv(fd, buf, sizeof buf, 0);
    if (k <= 0) break;
    req.append(buf, static_cast<size_t>(k));
  }
  Request r;
  std::istringstream in(req);
  std::string method, target;
  in >> method >> target;
  r.path = target.empty() ? "" : target.substr(1);
  r.method = method;
  std::string lower = req;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto rp = lower.find("\r\nrange: bytes=");
  if (rp != std::string::npos) r.range_start = std::atoll(lower.c_str() + rp + 15);
  if (auto ip = lower.find("\r\nif-range: "); ip != std::string::npos) {
    auto end = req.find("\r\n", ip + 12);
    r.if_range = req.substr(ip + 12, end == std::string::npos ? std::string::npos : end - ip - 12);
  }

  std::string body;
  bool found = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (replace_from_ >= 0 && served_ >= replace_from_) {
      body = replacement_;
      found = true;
    }
    ++served_;
  }
  if (!found && r.path.find("..") == std::string::npos) {
    std::ifstream f(root_ + "/" + r.path, std::ios::binary);
    if (f) {
      std::ostringstream ss;
      ss << f.rdbuf();
      body = ss.str();
      found = true;
    }
  }
  // A strong validator: the content's FNV-1a hash.
  uint64_t h = 1469598103934665603ull;
  for (char c : body) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  const std::string etag = "\"" + std::to_string(h) + "\"";
  // If-Range with another validator: the whole (new) file, as RFC 9110 says.
  const bool range_ok = r.range_start >= 0 && !ignore_range_ && (r.if_range.empty() || r.if_range == etag);
  std::string head, location;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& [from, to] : redirects_)
      if (from == r.path) location = to;
  }
  size_t start = 0, send_n = 0;
  if (!location.empty()) {
    r.status = 302;
    head = "HTTP/1.1 302 Found\r\nLocation: /" + location + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  } else if (fail_left_.fetch_sub(1) > 0) {
    r.status = 503;
    head = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  } else if (!found) {
    r.status = 404;
    head = "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found";
  } else if (range_ok) {
    start = std::min<size_t>(static_cast<size_t>(r.range_start), body.size());
    r.status = 206;
    head = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes " + std::to_string(start) + "-" +
           std::to_string(body.size() - 1) + "/" + std::to_string(body.size()) +
           "\r\nContent-Length: " + std::to_string(body.size() - start) + "\r\nETag: " + etag +
           "\r\nConnection: close\r\n\r\n";
    send_n = body.size() - start;
    if (replay_from_zero_) start = 0;  // the right headers, the wrong bytes
  } else {
    r.status = 200;
    head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\nETag: " + etag +
           "\r\nConnection: close\r\n\r\n";
    send_n = body.size();
  }
  if (method == "HEAD") send_n = 0;  // the headers only, as HTTP says
  bool stall = false;
  if (send_n > 0 && cut_left_.fetch_sub(1) > 0) send_n = std::min(send_n, cut_bytes_.load());
  else if (send_n > 0 && stall_left_.fetch_sub(1) > 0) {
    send_n = std::min(send_n, stall_bytes_.load());
    stall = true;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    requests_.push_back(r);
  }
  if (send_all(fd, head.data(), head.size())) {
    const size_t piece = trickle_bytes_.load();
    if (piece == 0) {
      send_all(fd, body.data() + start, send_n);
    } else {
      // A crawl: a small piece, a pause, until done or the client hangs up.
      for (size_t off = 0; off < send_n && !stop_; off += piece) {
        if (!send_all(fd, body.data() + start + off, std::min(piece, send_n - off))) break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(trickle_s_.load() * 1000)) > 0) {
          char junk[256];
          if (::recv(fd, junk, sizeof junk, 0) <= 0) break;  // the client gave up
        }
      }
    }
  }
  if (stall) {
    // Hold the connection open without sending; the client must time out.
    auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(stall_s_.load());
    while (!stop_ && std::chrono::steady_clock::now() < until) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) {
        char junk[256];
        if (::recv(fd, junk, sizeof junk, 0) <= 0) break;  // the client gave up and closed
      }
    }
  }
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
}

}  // namespace catlip::test
