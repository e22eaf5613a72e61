// catlip/security.h - CurveZMQ keys for tcp links and the ZAP handler that
// admits only a run's members.
//
// Model (see README "Security model"):
//   - Every stage of a run gets a fresh Curve25519 keypair, made by the
//     coordinator when the run starts. A producer replica is a CURVE server
//     with its stage's secret key; a consumer replica is a CURVE client with
//     its own stage's keypair and the producer stage's public key.
//   - A ZAP handler in every producer process admits a client only if its
//     public key is one of the producer's consumer stages; the stage name
//     becomes the connection's ZAP user id, and the producer accepts a Hello
//     only when the claimed stage matches it.
//   - Keys reach local workers through a 0600 file in the run's 0700 socket
//     directory; remote nodes get theirs in the coordinator's ASSIGN, over a
//     CURVE channel whose keys both ends derive from the cluster secret.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <zmq.hpp>

namespace catlip {

// Z85 text (40 characters each), as ZeroMQ's CURVE options take them.
struct CurveKeyPair {
  std::string public_z85, secret_z85;
  bool empty() const { return public_z85.empty(); }
};

// A fresh random keypair (libsodium; safe to call while contexts run, unlike
// zmq_curve_keypair, libzmq #4241).
CurveKeyPair curve_keypair();
// The keypair both ends derive from a shared cluster secret for one role
// ("coordinator" or "node"): hash(role, secret) is the secret key.
CurveKeyPair curve_keypair_from_secret(std::string_view secret, std::string_view role);
// 32 random bytes as hex (for `catlip secret`).
std::string random_secret_hex();
// Messages of `bytes` per second one core seals with the box CurveZMQ uses
// for each frame (crypto_box_easy_afternm), measured for about `seconds`:
// the ceiling of one CURVE link's sender (its receiver opens as fast).
double curve_seal_rate(size_t bytes, double seconds = 0.3);

// One keypair per stage of a run. Text form, one stage per line:
// "<stage> <public> <secret>" where the secret is "-" when withheld.
struct RunKeys {
  std::map<std::string, CurveKeyPair> stages;
  bool empty() const { return stages.empty(); }
  const CurveKeyPair* find(const std::string& stage) const;
};
// Publics of every stage, secrets only of the stages in `secrets_of`
// (every stage when `all_secrets`).
std::string run_keys_to_text(const RunKeys& k, const std::vector<std::string>& secrets_of, bool all_secrets = false);
// Throws std::runtime_error naming the line on a malformed table.
RunKeys run_keys_from_text(const std::string& text);
// Writes the table to `path` with mode 0600 (created fresh; O_CLOEXEC).
void write_key_file(const std::string& path, const std::string& text);
// Reads a key or secret file, refusing one readable by group or others.
std::string read_private_file(const std::string& path);

// The cluster secret of a run, from (in order) CATLIP_CLUSTER_SECRET,
// CATLIP_CLUSTER_SECRET_FILE or `secret_file`; "" when none is given.
// Throws std::runtime_error naming the file when it cannot be used.
std::string cluster_secret(const std::string& secret_file);

// Serves ZAP (inproc://zeromq.zap.01) on one context: admits a CURVE client
// whose public key is listed, with the listed user id; refuses the rest,
// telling `on_refused` (address, reason) once per address.
class ZapHandler {
 public:
  explicit ZapHandler(zmq::context_t& ctx);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  void allow(const std::string& public_z85, const std::string& user_id);
  std::function<void(const std::string& address, const std::string& reason)> on_refused;
  int64_t refused() const { return refused_.load(); }
  int64_t admitted() const { return admitted_.load(); }

 private:
  void loop();
  zmq::socket_t sock_;
  std::mutex mu_;
  std::map<std::string, std::string> allowed_;  // public (z85) -> user id
  std::map<std::string, bool> told_;
  std::atomic<bool> done_{false};
  std::atomic<int64_t> refused_{0}, admitted_{0};
  std::thread thread_;
};

// Which refusals get a log line: the first from each address (up to 1000
// addresses), and at most `per_minute` lines a minute in all; the rest are
// only counted. Thread-safe.
class RefusalLogLimit {
 public:
  explicit RefusalLogLimit(int per_minute = 10) : per_minute_(per_minute) {}
  // True when a refusal from `address` should be logged now; `unlogged` is
  // then how many refusals were not logged since the last line.
  bool allow(const std::string& address, int64_t& unlogged);

 private:
  std::mutex mu_;
  int per_minute_;
  std::map<std::string, bool> seen_;
  std::chrono::steady_clock::time_point minute_start_{};
  int in_minute_ = 0;
  int64_t unlogged_ = 0;
};

// Watches the connections to a socket's listening endpoints
// (zmq_socket_monitor), reporting each peer turned away or ignored to
// `on_refused(address, reason)`, rate-limited by a RefusalLogLimit:
//   - a handshake that fails before the ZAP handler is asked (plain ZeroMQ
//     against a CURVE port, bytes that are not ZMTP, a connection dropped
//     mid-handshake): counted in failed();
//   - a connection that has sent nothing `silent_after_s` after it was
//     accepted (the socket's owner calls heard_from(fd) for every message,
//     ZMQ_SRCFD): counted in silent(). ZeroMQ drops without a word a peer
//     that claims a routing id another connection holds, so this is how an
//     impersonated identity shows (or a peer that only listens).
// The address is the peer's "ip:port" as getpeername() gave it when the
// connection was accepted, or "an unknown address" when the peer was gone
// before it could be asked (a fast refusal can beat the monitor). ZAP
// refusals (a key not in the run) are the ZAP handler's to count.
class HandshakeWatch {
 public:
  using Callback = std::function<void(const std::string& address, const std::string& reason)>;
  // Call from the thread that owns `sock`; it must outlive the watch.
  HandshakeWatch(zmq::context_t& ctx, zmq::socket_t& sock, Callback on_refused, double silent_after_s = 5);
  ~HandshakeWatch();  // from the socket's thread too
  HandshakeWatch(const HandshakeWatch&) = delete;
  HandshakeWatch& operator=(const HandshakeWatch&) = delete;
  // A message arrived over connection `fd` (any thread).
  void heard_from(int fd);
  int64_t failed() const { return failed_.load(); }
  int64_t silent() const { return silent_.load(); }

 private:
  struct Conn {
    std::string address;
    std::chrono::steady_clock::time_point accepted;
    bool heard = false, reported = false;
  };
  void loop(std::string address);
  void tell(const std::string& who, const std::string& reason);
  void check_silent();
  zmq::context_t& ctx_;
  zmq::socket_t& sock_;
  Callback on_refused_;
  double silent_after_s_;
  RefusalLogLimit limit_;
  std::mutex mu_;
  std::map<int, Conn> conns_;  // fd -> connection, from ACCEPTED to DISCONNECTED
  // Connections heard from before the monitor thread saw their ACCEPTED (the
  // socket's thread can read a peer's first message first): marked heard
  // when it does, so a peer that spoke is never taken for a silent one.
  std::set<int> heard_early_;
  std::atomic<bool> done_{false};
  std::atomic<int64_t> failed_{0}, silent_{0};
  std::thread thread_;
};

// Why a handshake failed, in words, from a monitor event and its value.
std::string handshake_failure_text(int event, int value);

}  // namespace catlip
