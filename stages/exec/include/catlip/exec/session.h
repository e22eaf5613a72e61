// catlip/exec/session.h - one running program speaking the stage protocol
// (docs/stage-protocol.md), independent of the worker so it can be tested
// on its own. Single-threaded: poll() drives both pipes, so the program can
// always write its output while catlip writes input, and every wait is
// bounded by a timeout. Every failure is an ExecError that names the
// program, the replica and what happened.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <stdexcept>
#include <string>

#include "catlip/exec/child.h"
#include "catlip/exec/protocol.h"
#include "catlip/sample.h"

namespace catlip::exec {

struct ExecError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Thrown when the run is being stopped (callbacks.stop() became true).
struct ExecStopped : std::runtime_error {
  ExecStopped() : std::runtime_error("stopped") {}
};

struct SessionOptions {
  ChildSpec child;
  std::string mode = "transform";  // or "source"
  std::string stage = "exec", stage_type = "exec.process";
  int replica = 0, replicas = 1;
  double startup_timeout_s = 30;  // for the program's hello
  double timeout_s = 60;          // longest silence while catlip waits (0: none)
  double exit_timeout_s = 5;      // after end-of-stream, before SIGKILL
  size_t max_frame_bytes = size_t{256} << 20;
  int window = 4;  // input items sent but not yet answered with done
};

struct SessionCallbacks {
  std::function<void(Sample&&)> sample;
  std::function<void(Batch&&)> batch;
  std::function<void(const std::string&, int64_t)> count;
  std::function<bool()> stop;  // polled; true: throw ExecStopped
};

class ExecSession {
 public:
  ExecSession(SessionOptions opt, SessionCallbacks cb);
  ~ExecSession() { kill(); }

  // Starts the program and exchanges hellos.
  void start();
  // Transform: sends one item, handling what the program writes meanwhile;
  // returns once fewer than `window` items are unanswered.
  void send(Sample&& s);
  // Transform: end of input; handles the remaining output until the
  // program's end-of-stream, then waits for it to exit.
  void finish();
  // Source: handles program output until at least one item arrived (true)
  // or the program ended its stream and exited (false).
  bool receive();
  // SIGKILL and reap the program if it still runs.
  void kill() { child_.kill_and_reap(); }

  pid_t pid() const { return child_.pid(); }
  int64_t in_flight() const { return in_flight_; }
  int64_t items_in() const { return items_in_; }
  int64_t items_out() const { return items_out_; }
  // "program `python3 f.py` (stage s, replica 0, pid 123)".
  std::string who() const;

 private:
  // Runs the poll loop until `done()`; `what` names what catlip is waiting
  // for, for the timeout message.
  void pump(const std::function<bool()>& done, const std::string& what, double timeout_s);
  void drain(const std::function<bool()>& done);
  void handle(Frame& f);
  void wait_exit();
  [[noreturn]] void fail(const std::string& what, bool let_exit = false);
  [[noreturn]] void fail_gone(const std::string& when);

  SessionOptions opt_;
  SessionCallbacks cb_;
  ChildProcess child_;
  FrameParser parser_;
  std::string wbuf_, rbuf_;
  size_t wpos_ = 0;
  bool got_hello_ = false, got_end_ = false, finishing_ = false;
  int64_t in_flight_ = 0, items_in_ = 0, items_out_ = 0, received_ = 0;
  std::deque<std::string> unanswered_;  // keys of the items in flight, for messages
};

}  // namespace catlip::exec
