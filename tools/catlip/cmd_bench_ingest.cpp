// catlip bench ingest: end-to-end ingestion throughput: shards.source ->
// image.decode (replicas) -> testing.null, as processes, reading local
// shards and then the same shards over HTTP from a local server.
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <utility>

#include <boost/asio.hpp>

#include "catlip/graph.h"
#include "catlip/plugin_loader.h"
#include "catlip/supervisor.h"
#include "catlip/validate.h"
#include "cli.h"

using namespace catlip;
using namespace catlip::cli;
namespace fs = std::filesystem;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// A static file server for the HTTP half: GET /<file> with Content-Length,
// one thread per connection (a handful of shard readers at most).
class FileServer {
 public:
  explicit FileServer(std::string root) : root_(std::move(root)), acceptor_(io_, tcp::endpoint(tcp::v4(), 0)) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { loop(); });
  }
  ~FileServer() {
    done_ = true;
    // Closing does not wake a blocking accept(); shutting the socket down does.
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    boost::system::error_code ec;
    if (thread_.joinable()) thread_.join();
    acceptor_.close(ec);
    for (auto& t : workers_) t.join();
  }
  int port() const { return port_; }

 private:
  void loop() {
    while (!done_) {
      boost::system::error_code ec;
      tcp::socket s(io_);
      acceptor_.accept(s, ec);
      if (ec) return;
      workers_.emplace_back([this, sock = std::move(s)]() mutable { serve(std::move(sock)); });
    }
  }
  void serve(tcp::socket s) {
    boost::system::error_code ec;
    asio::streambuf buf;
    asio::read_until(s, buf, "\r\n\r\n", ec);
    if (ec) return;
    std::istream in(&buf);
    std::string method, path;
    in >> method >> path;
    std::string file = root_ + "/" + fs::path(path).filename().string();
    std::ifstream f(file, std::ios::binary);
    if (!f) {
      asio::write(s, asio::buffer(std::string("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")), ec);
      return;
    }
    size_t size = fs::file_size(file);
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nContent-Length: " +
                       std::to_string(size) + "\r\nConnection: close\r\n\r\n";
    asio::write(s, asio::buffer(head), ec);
    std::vector<char> chunk(1 << 16);
    while (!ec && f) {
      f.read(chunk.data(), chunk.size());
      if (f.gcount() > 0) asio::write(s, asio::buffer(chunk.data(), size_t(f.gcount())), ec);
    }
  }
  std::string root_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  int port_ = 0;
  std::atomic<bool> done_{false};
  std::thread thread_;
  std::vector<std::thread> workers_;
};

struct Figures {
  double samples_per_s = 0, mb_per_s = 0, seconds = 0;
  int64_t samples = 0;
};

Figures run_ingest(const std::string& urls, int decoders, int size, const std::string& run_dir, double shard_mb) {
  std::ostringstream t;
  t << "[graph]\nname = \"bench-ingest\"\n"
    << "[stages.read]\ntype = \"shards.source\"\nurls = [\"" << urls << "\"]\nrequire = [\"jpg\", \"txt\"]\n"
    << "[stages.decode]\ntype = \"image.decode\"\ninputs = [\"read\"]\nreplicas = " << decoders
    << "\nsize = " << size << "\n"
    << "[stages.sink]\ntype = \"testing.null\"\ninputs = [\"decode\"]\n";
  GraphSpec g;
  std::vector<Diagnostic> d;
  PluginLoader loader;
  std::map<std::string, Params> params;
  if (!load_graph_string(t.str(), "<bench ingest>", LoadOptions{}, g, d).ok() || !validate_graph(g, loader, d, &params).ok()) {
    for (auto& x : d) std::cerr << x.str() << "\n";
    return {};
  }
  RunOptions opt;
  opt.run_dir = run_dir;
  opt.quiet = true;
  auto t0 = std::chrono::steady_clock::now();
  if (run_graph(g, params, opt) != 0) return {};
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Figures r;
  r.samples = int64_t(summary_figure(run_dir, "sink", "items_in"));
  double first = summary_figure(run_dir, "sink", "first_item_s"), last = summary_figure(run_dir, "sink", "last_item_s");
  r.seconds = last > first ? last - first : wall;
  double read_bytes = summary_figure(run_dir, "read", "bytes_out");
  (void)shard_mb;
  r.samples_per_s = r.samples / r.seconds;
  r.mb_per_s = read_bytes / r.seconds / 1e6;  // encoded (shard) bytes moved per second
  return r;
}

int cmd_bench_ingest(int argc, char** argv) {
  Args a(argc, argv, {"help"});
  if (a.has("help")) {
    std::cout << "usage: catlip bench ingest [--samples N] [--image-size P] [--size S] [--decoders R] [--data DIR]\n\n"
                 "Generates N synthetic P x P JPEG samples (default 2000 x 320) in 8 shards (or reads\n"
                 "DIR/bench-*.tar if present), then runs shards.source -> image.decode (R replicas,\n"
                 "default 2; RandomResizedCrop to S, default 224) -> testing.null as processes, from\n"
                 "local files and from a local HTTP server. Prints samples/s and MB/s of shard data.\n";
    return kOk;
  }
  if (int rc = check_syntax(a, Syntax{"catlip bench ingest", "usage: catlip bench ingest [--samples N] [--image-size P] [--size S] [--decoders R] [--data DIR]", {"samples", "image-size", "size", "decoders", "data"}, 0, 0})) return rc;
  int n = int(a.get_int("samples", 2000));
  int isize = int(a.get_int("image-size", 320));
  int size = int(a.get_int("size", 224));
  int decoders = int(a.get_int("decoders", 2));
  fs::path tmp = fs::temp_directory_path() / ("catlip-bench-ingest-" + std::to_string(::getpid()));
  fs::path data = a.has("data") ? fs::path(a.get("data")) : tmp / "data";
  fs::create_directories(data);
  int per_shard = std::max(1, n / 8);
  if (!fs::exists(data / "bench-000000.tar")) {
    std::string self = catlip_front_end();
    std::string cmd = "'" + self + "' shards synth '" + (data / "bench").string() + "' --samples " + std::to_string(n) +
                      " --size " + std::to_string(isize) + " --samples-per-shard " + std::to_string(per_shard) + " >/dev/null";
    if (std::system(cmd.c_str()) != 0) {
      std::cerr << "catlip bench ingest: generating data failed: " << cmd << "\n";
      return kFailed;
    }
  }
  int shards = 0;
  double bytes = 0;
  for (auto& e : fs::directory_iterator(data))
    if (e.path().filename().string().rfind("bench-", 0) == 0) {
      shards++;
      bytes += double(fs::file_size(e.path()));
    }
  std::string pattern = "bench-{000000.." + std::string(6 - std::to_string(shards - 1).size(), '0') +
                        std::to_string(shards - 1) + "}.tar";
  std::printf("catlip bench ingest: %d shards, %.1f MB, %d decode replicas, crop %d, %d cores\n", shards, bytes / 1e6,
              decoders, size, int(std::thread::hardware_concurrency()));
  std::printf("%-8s %10s %12s %10s %10s\n", "source", "samples", "samples/s", "MB/s", "seconds");
  Figures local = run_ingest((data / pattern).string(), decoders, size, (tmp / "run-local").string(), bytes / 1e6);
  std::printf("%-8s %10lld %12.0f %10.1f %10.2f\n", "local", (long long)local.samples, local.samples_per_s,
              local.mb_per_s, local.seconds);
  Figures http;
  {
    FileServer server(data.string());
    http = run_ingest("http://127.0.0.1:" + std::to_string(server.port()) + "/" + pattern, decoders, size,
                      (tmp / "run-http").string(), bytes / 1e6);
  }
  std::printf("%-8s %10lld %12.0f %10.1f %10.2f\n", "http", (long long)http.samples, http.samples_per_s, http.mb_per_s,
              http.seconds);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  return (local.samples > 0 && http.samples == local.samples) ? kOk : kFailed;
}

}  // namespace

CATLIP_COMMAND("bench ingest", "End-to-end shard reading + decoding throughput, local and HTTP", cmd_bench_ingest);
