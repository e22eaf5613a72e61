// Prometheus text endpoint: a tiny HTTP/1.0 server on Boost.Asio. Every
// request, whatever its path, gets the current metrics text.
#include <fcntl.h>

#include <utility>

#include <boost/asio.hpp>
#include <thread>

#include "catlip/run_metrics.h"

namespace catlip {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
// Asio opens sockets without close-on-exec: the workers forked later must
// not inherit the listening socket (it would keep the port bound, and
// serve nothing, after the supervisor is gone).
void set_cloexec(int fd) {
  int f = ::fcntl(fd, F_GETFD);
  if (f >= 0) ::fcntl(fd, F_SETFD, f | FD_CLOEXEC);
}
}  // namespace

struct MetricsServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::function<std::string()> provider;
  std::thread thread;
  int port = 0;

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket sock) {
      if (ec) return;
      set_cloexec(sock.native_handle());
      auto s = std::make_shared<tcp::socket>(std::move(sock));
      auto buf = std::make_shared<asio::streambuf>();
      // Read the request head (bounded), then answer.
      asio::async_read_until(*s, *buf, "\r\n\r\n", [this, s, buf](boost::system::error_code, size_t) {
        std::string body = provider();
        auto resp = std::make_shared<std::string>(
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
        asio::async_write(*s, asio::buffer(*resp), [s, resp](boost::system::error_code, size_t) {
          boost::system::error_code ignored;
          s->shutdown(tcp::socket::shutdown_both, ignored);
        });
      });
      accept();
    });
  }
};

MetricsServer::MetricsServer() : impl_(std::make_unique<Impl>()) {}
MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::start(const std::string& address, int port, std::function<std::string()> provider) {
  impl_->provider = std::move(provider);
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(address, ec);
  if (ec) throw std::runtime_error("cannot serve metrics at '" + address + "': not an IP address");
  tcp::endpoint ep(addr, static_cast<unsigned short>(port));
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) set_cloexec(impl_->acceptor.native_handle());
  if (!ec) impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(16, ec);
  if (ec) throw std::runtime_error("cannot serve metrics on " + address + ":" + std::to_string(port) + ": " + ec.message());
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

void MetricsServer::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->io.stop();
  impl_->thread.join();
}

int MetricsServer::port() const { return impl_->port; }

}  // namespace catlip
