// The implementation of catlip/security.h: CurveZMQ keys for tcp links and the ZAP handler
// that admits only the plan's peers.
#include "catlip/security.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

namespace catlip {

namespace {

void init_sodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) throw std::runtime_error("libsodium cannot initialise");
  });
}

std::string z85(const unsigned char* key32) {
  char out[41];
  if (!zmq_z85_encode(out, key32, 32)) throw std::runtime_error("z85 encoding failed");
  return std::string(out, 40);
}

CurveKeyPair pair_from_secret_bytes(const unsigned char* sk) {
  unsigned char pk[crypto_scalarmult_BYTES];
  if (crypto_scalarmult_base(pk, sk) != 0) throw std::runtime_error("cannot derive a CURVE public key");
  return {z85(pk), z85(sk)};
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

CurveKeyPair curve_keypair() {
  init_sodium();
  unsigned char pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
  crypto_box_keypair(pk, sk);
  CurveKeyPair k{z85(pk), z85(sk)};
  sodium_memzero(sk, sizeof sk);
  return k;
}

CurveKeyPair curve_keypair_from_secret(std::string_view secret, std::string_view role) {
  init_sodium();
  // Keyed by the role so the two ends of the join channel get distinct pairs.
  std::string key = "catlip-cluster-v1/" + std::string(role);
  unsigned char sk[crypto_box_SECRETKEYBYTES];
  crypto_generichash(sk, sizeof sk, reinterpret_cast<const unsigned char*>(secret.data()), secret.size(),
                     reinterpret_cast<const unsigned char*>(key.data()), key.size());
  CurveKeyPair k = pair_from_secret_bytes(sk);
  sodium_memzero(sk, sizeof sk);
  return k;
}

std::string random_secret_hex() {
  init_sodium();
  unsigned char b[32];
  randombytes_buf(b, sizeof b);
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, b, sizeof b);
  return hex;
}

double curve_seal_rate(size_t bytes, double seconds) {
  init_sodium();
  unsigned char pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES], k[crypto_box_BEFORENMBYTES];
  unsigned char nonce[crypto_box_NONCEBYTES] = {0};
  crypto_box_keypair(pk, sk);
  if (crypto_box_beforenm(k, pk, sk) != 0) return 0;
  std::vector<unsigned char> m(bytes), c(bytes + crypto_box_MACBYTES);
  auto t0 = std::chrono::steady_clock::now();
  int64_t n = 0;
  double el = 0;
  do {
    for (int i = 0; i < 8; ++i, ++n) {
      sodium_increment(nonce, sizeof nonce);
      if (crypto_box_easy_afternm(c.data(), m.data(), m.size(), nonce, k) != 0) return 0;
    }
    el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (el < seconds);
  return double(n) / el;
}

const CurveKeyPair* RunKeys::find(const std::string& stage) const {
  auto it = stages.find(stage);
  return it == stages.end() ? nullptr : &it->second;
}

std::string run_keys_to_text(const RunKeys& k, const std::vector<std::string>& secrets_of, bool all_secrets) {
  std::string out = "# catlip run keys: stage public secret ('-': withheld)\n";
  for (auto& [stage, kp] : k.stages) {
    bool mine = all_secrets;
    for (auto& s : secrets_of) mine = mine || s == stage;
    out += stage + " " + kp.public_z85 + " " + (mine ? kp.secret_z85 : std::string("-")) + "\n";
  }
  return out;
}

RunKeys run_keys_from_text(const std::string& text) {
  RunKeys k;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string stage, pub, sec, extra;
    ls >> stage >> pub >> sec;
    if (stage.empty() || pub.size() != 40 || (sec != "-" && sec.size() != 40) || (ls >> extra))
      throw std::runtime_error("key table line " + std::to_string(n) + ": expected '<stage> <public> <secret|->'");
    k.stages[stage] = CurveKeyPair{pub, sec == "-" ? std::string() : sec};
  }
  return k;
}

void write_key_file(const std::string& path, const std::string& text) {
  ::unlink(path.c_str());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw std::runtime_error("cannot create key file " + path + ": " + errno_text());
  size_t off = 0;
  while (off < text.size()) {
    ssize_t w = ::write(fd, text.data() + off, text.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      ::close(fd);
      throw std::runtime_error("cannot write key file " + path + ": " + errno_text());
    }
    off += size_t(w);
  }
  ::close(fd);
}

std::string read_private_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot read " + path + ": " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error(path + " is not a regular file");
  }
  if (st.st_mode & 077) {
    ::close(fd);
    throw std::runtime_error(path + " is readable by others (mode " + [&] {
      char b[8];
      std::snprintf(b, sizeof b, "%04o", unsigned(st.st_mode & 07777));
      return std::string(b);
    }() + "): chmod 600 it");
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    out.append(buf, size_t(r));
    if (out.size() > (1 << 20)) {
      ::close(fd);
      throw std::runtime_error(path + " is larger than 1 MB: not a secret");
    }
  }
  ::close(fd);
  return out;
}

std::string cluster_secret(const std::string& secret_file) {
  auto trim = [](std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
  };
  std::string s;
  std::string from;
  if (const char* v = std::getenv("CATLIP_CLUSTER_SECRET"); v && *v) {
    s = v;
    from = "CATLIP_CLUSTER_SECRET";
  } else if (const char* f = std::getenv("CATLIP_CLUSTER_SECRET_FILE"); f && *f) {
    s = trim(read_private_file(f));
    from = f;
  } else if (!secret_file.empty()) {
    s = trim(read_private_file(secret_file));
    from = secret_file;
  } else {
    return "";
  }
  if (s.size() < 16)
    throw std::runtime_error("the cluster secret from " + from + " is " + std::to_string(s.size()) +
                             " characters: use at least 16 (`catlip secret` prints a fresh one)");
  return s;
}

// ---------------------------------------------------------------- ZAP

ZapHandler::ZapHandler(zmq::context_t& ctx) : sock_(ctx, zmq::socket_type::rep) {
  sock_.set(zmq::sockopt::linger, 0);
  sock_.bind("inproc://zeromq.zap.01");
  thread_ = std::thread([this] { loop(); });
}

ZapHandler::~ZapHandler() {
  done_ = true;
  if (thread_.joinable()) thread_.join();
}

void ZapHandler::allow(const std::string& public_z85, const std::string& user_id) {
  std::lock_guard<std::mutex> l(mu_);
  allowed_[public_z85] = user_id;
}

void ZapHandler::loop() {
  while (!done_) {
    zmq::pollitem_t it{sock_.handle(), 0, ZMQ_POLLIN, 0};
    try {
      if (zmq::poll(&it, 1, std::chrono::milliseconds(100)) <= 0) continue;
    } catch (const zmq::error_t&) {
      continue;
    }
    // version, request id, domain, address, routing id, mechanism, credentials...
    std::vector<zmq::message_t> f;
    for (;;) {
      zmq::message_t m;
      if (!sock_.recv(m, zmq::recv_flags::dontwait)) break;
      bool more = m.more();
      f.push_back(std::move(m));
      if (!more) break;
    }
    if (f.empty()) continue;
    std::string version = f[0].to_string(), request_id = f.size() > 1 ? f[1].to_string() : "";
    std::string address = f.size() > 3 ? f[3].to_string() : "?";
    std::string mechanism = f.size() > 5 ? f[5].to_string() : "";
    std::string status = "400", text = "not a member of this run", user;
    if (version != "1.0") {
      status = "500";
      text = "unsupported ZAP version";
    } else if (mechanism == "CURVE" && f.size() > 6 && f[6].size() == 32) {
      std::string pub = z85(static_cast<const unsigned char*>(f[6].data()));
      std::lock_guard<std::mutex> l(mu_);
      auto a = allowed_.find(pub);
      if (a != allowed_.end()) {
        status = "200";
        text = "OK";
        user = a->second;
      }
    } else {
      text = "mechanism " + mechanism + " is not accepted";
    }
    if (status == "200") {
      admitted_++;
    } else {
      refused_++;
      bool tell = false;
      {
        std::lock_guard<std::mutex> l(mu_);
        tell = !told_[address] && told_.size() < 1000;
        if (tell) told_[address] = true;
      }
      if (tell && on_refused) on_refused(address, text);
    }
    std::vector<std::string> reply = {version.empty() ? "1.0" : version, request_id, status, text, user, ""};
    for (size_t i = 0; i < reply.size(); ++i)
      sock_.send(zmq::buffer(reply[i]), i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

// ---------------------------------------------------------------- refusals

bool RefusalLogLimit::allow(const std::string& address, int64_t& unlogged) {
  std::lock_guard<std::mutex> l(mu_);
  auto now = std::chrono::steady_clock::now();
  if (now - minute_start_ >= std::chrono::minutes(1)) {
    minute_start_ = now;
    in_minute_ = 0;
  }
  bool first = !seen_.count(address);
  if (first && seen_.size() < 1000) seen_[address] = true;
  if (!first || in_minute_ >= per_minute_) {
    unlogged_++;
    return false;
  }
  in_minute_++;
  unlogged = std::exchange(unlogged_, 0);
  return true;
}

std::string handshake_failure_text(int event, int value) {
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
    switch (value) {
      case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return "security mechanism mismatch (plain ZeroMQ against a CURVE port, or the reverse: not a peer of this run)";
      case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        return "its CURVE handshake did not decrypt (not this stage's server key)";
      case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE:
        return "its CURVE key exchange failed";
      default: {
        char b[16];
        std::snprintf(b, sizeof b, "0x%08x", unsigned(value));
        return std::string("ZMTP protocol error ") + b + " (not a ZeroMQ peer of this run)";
      }
    }
  }
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) return "refused by the ZAP handler (status " + std::to_string(value) + ")";
  // NO_DETAIL: the connection ended during the handshake (value is errno).
  return std::string("the connection ended during the handshake") +
         (value > 0 ? " (" + std::string(std::strerror(value)) + ")" : std::string());
}

namespace {

// "ip:port" of a connected socket; "" when it cannot be asked (closed).
std::string peer_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  return "";  // ipc and inproc peers have no address to name
}

std::atomic<int> g_watch_seq{0};

}  // namespace

HandshakeWatch::HandshakeWatch(zmq::context_t& ctx, zmq::socket_t& sock, Callback on_refused, double silent_after_s)
    : ctx_(ctx), sock_(sock), on_refused_(std::move(on_refused)), silent_after_s_(silent_after_s) {
  std::string address = "inproc://catlip-handshake-watch-" + std::to_string(::getpid()) + "-" +
                        std::to_string(g_watch_seq.fetch_add(1));
  constexpr int kEvents = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                          ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;
  if (zmq_socket_monitor(sock_.handle(), address.c_str(), kEvents) != 0)
    throw std::runtime_error("cannot monitor a socket's handshakes: " + std::string(zmq_strerror(zmq_errno())));
  thread_ = std::thread([this, address] { loop(address); });
}

HandshakeWatch::~HandshakeWatch() {
  // The monitor stops first, while the thread still reads its events: the
  // other order deadlocked at exit (libzmq's I/O thread, holding the
  // monitor's lock, blocks sending an event to a reader that has gone, and
  // zmq_socket_monitor(nullptr) waits for that lock).
  zmq_socket_monitor(sock_.handle(), nullptr, 0);
  done_ = true;
  if (thread_.joinable()) thread_.join();
}

void HandshakeWatch::heard_from(int fd) {
  std::lock_guard<std::mutex> l(mu_);
  if (auto c = conns_.find(fd); c != conns_.end()) c->second.heard = true;
  else if (fd >= 0 && heard_early_.size() < 4096) heard_early_.insert(fd);
}

void HandshakeWatch::tell(const std::string& who, const std::string& reason) {
  int64_t unlogged = 0;
  if (on_refused_ && limit_.allow(who, unlogged))
    on_refused_(who, reason + (unlogged ? " (" + std::to_string(unlogged) + " more refusals not logged)" : ""));
}

void HandshakeWatch::check_silent() {
  if (silent_after_s_ <= 0) return;
  auto now = std::chrono::steady_clock::now();
  std::vector<std::string> quiet;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [fd, c] : conns_)
      if (!c.heard && !c.reported && !c.address.empty() && std::chrono::duration<double>(now - c.accepted).count() > silent_after_s_) {
        c.reported = true;
        quiet.push_back(c.address.empty() ? "an unknown address" : c.address);
      }
  }
  char secs[32];
  std::snprintf(secs, sizeof secs, "%g", silent_after_s_);
  for (auto& who : quiet) {
    silent_++;
    tell(who, std::string("its connection has sent nothing for ") + secs +
                  " s: ignored (a routing id another connection holds, i.e. an impersonated identity, or a peer "
                  "that only listens)");
  }
}

void HandshakeWatch::loop(std::string address) {
  zmq::socket_t mon(ctx_, zmq::socket_type::pair);
  mon.set(zmq::sockopt::linger, 0);
  mon.connect(address);
  int pending_event = 0, pending_value = 0;  // a failure waiting for its DISCONNECTED (which names the fd)
  while (!done_) {
    check_silent();
    zmq::pollitem_t it{mon.handle(), 0, ZMQ_POLLIN, 0};
    try {
      if (zmq::poll(&it, 1, std::chrono::milliseconds(100)) <= 0) continue;
    } catch (const zmq::error_t&) {
      continue;
    }
    zmq::message_t ev, endpoint;
    if (!mon.recv(ev, zmq::recv_flags::dontwait)) continue;
    if (ev.more()) (void)mon.recv(endpoint);
    if (ev.size() < 6) continue;
    uint16_t event = 0;
    uint32_t value = 0;
    std::memcpy(&event, ev.data(), 2);
    std::memcpy(&value, static_cast<const char*>(ev.data()) + 2, 4);
    int fd = static_cast<int>(value);
    if (event == ZMQ_EVENT_ACCEPTED) {
      // Asked at once: the fd is only this connection's until it closes.
      std::string who = peer_of(fd);
      std::lock_guard<std::mutex> l(mu_);
      Conn c{who, std::chrono::steady_clock::now()};
      c.heard = heard_early_.erase(fd) > 0;
      conns_[fd] = c;
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
      // The engine reports the failure, then its DISCONNECTED (with the fd).
      pending_event = event;
      pending_value = static_cast<int>(value);
    } else if (event == ZMQ_EVENT_DISCONNECTED) {
      std::string who;
      {
        std::lock_guard<std::mutex> l(mu_);
        if (auto c = conns_.find(fd); c != conns_.end()) {
          who = c->second.address;
          conns_.erase(c);
        }
      }
      if (!pending_event) continue;
      failed_++;
      std::string reason = handshake_failure_text(pending_event, pending_value);
      pending_event = 0;
      tell(who.empty() ? "an unknown address (gone before it could be looked up)" : who, reason);
    }
  }
}

}  // namespace catlip
