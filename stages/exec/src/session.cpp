// The implementation of catlip/exec/session.h: one running program speaking the stage protocol
#include "catlip/exec/session.h"

#include <poll.h>
#include <signal.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "catlip/codec.h"

namespace catlip::exec {

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
std::string seconds(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%g s", s);
  return b;
}
}  // namespace

ExecSession::ExecSession(SessionOptions opt, SessionCallbacks cb)
    : opt_(std::move(opt)), cb_(std::move(cb)), parser_(opt_.max_frame_bytes) {
  if (opt_.window < 1) opt_.window = 1;
}

std::string ExecSession::who() const {
  std::string s = "program `" + command_line(opt_.child.argv) + "` (stage " + opt_.stage + ", replica " +
                  std::to_string(opt_.replica);
  if (child_.pid() > 0) s += ", pid " + std::to_string(child_.pid());
  return s + ")";
}

void ExecSession::fail(const std::string& what, bool let_exit) {
  std::string msg = who() + " " + what;
  // A program that reported an error gets a moment to finish writing its
  // stderr (e.g. a traceback) and exit on its own.
  if (let_exit) {
    child_.close_stdin();
    child_.wait(1);
  }
  if (!unanswered_.empty()) {
    msg += " (oldest unanswered item: '" + unanswered_.front() + "'";
    if (unanswered_.size() > 1) msg += ", " + std::to_string(unanswered_.size()) + " unanswered";
    msg += ")";
  }
  child_.kill_and_reap();
  throw ExecError(msg);
}

void ExecSession::fail_gone(const std::string& when) {
  // The program closed its end. If it exited, say how; if it managed to
  // send an error frame before it went, that is the better message.
  child_.close_stdin();
  bool exited = child_.wait(2);
  if (child_.stdout_fd() >= 0) {
    char buf[65536];
    for (int i = 0; i < 64; ++i) {
      ssize_t k = ::read(child_.stdout_fd(), buf, sizeof buf);
      if (k <= 0) break;
      parser_.feed(buf, size_t(k));
    }
    try {
      Frame f;
      while (parser_.next(f))
        if (f.kind == FrameKind::Error) fail("failed: " + f.payload, true);
    } catch (const ExecError&) {
      throw;
    } catch (const std::exception&) {
      // A torn last frame of a program that died: its exit status, reported
      // below, says what happened.
    }
  }
  if (!exited) fail("closed its output " + when + " but did not exit");
  fail(child_.describe_status() + " " + when);
}

void ExecSession::start() {
  // A program that exits while catlip writes to it must give EPIPE, not
  // kill the process (the worker ignores SIGPIPE too).
  ::signal(SIGPIPE, SIG_IGN);
  try {
    child_.start(opt_.child);
  } catch (const std::exception& e) {
    throw ExecError(who() + " cannot be started: " + e.what());
  }
  Hello h;
  h.text = {{"mode", opt_.mode}, {"stage", opt_.stage}, {"type", opt_.stage_type}};
  h.ints = {{"replica", opt_.replica},
            {"replicas", opt_.replicas},
            {"window", opt_.window},
            {"max_frame_bytes", int64_t(opt_.max_frame_bytes)}};
  append_frame(wbuf_, FrameKind::Hello, encode_hello(h));
  pump([&] { return got_hello_ && wpos_ == wbuf_.size(); }, "its hello", opt_.startup_timeout_s);
}

void ExecSession::send(Sample&& s) {
  unanswered_.push_back(s.key);
  Message m;
  m.kind = MsgKind::Sample;
  m.id = {s.origin.epoch, s.origin.shard, s.origin.index};
  m.body = std::move(s);
  std::string payload;
  encode(m, payload);
  if (wpos_ == wbuf_.size()) {
    wbuf_.clear();
    wpos_ = 0;
  }
  wbuf_.reserve(wbuf_.size() + payload.size() + kFrameHeaderBytes);
  append_frame(wbuf_, FrameKind::Sample, payload);
  in_flight_++;
  items_in_++;
  pump([&] { return wpos_ == wbuf_.size() && in_flight_ < opt_.window; },
       "its answer", opt_.timeout_s);
}

void ExecSession::finish() {
  append_frame(wbuf_, FrameKind::End, "");
  finishing_ = true;
  pump([&] { return got_end_; }, "its end-of-stream", opt_.timeout_s);
  wait_exit();
}

bool ExecSession::receive() {
  int64_t before = received_;
  pump([&] { return got_end_ || received_ > before; }, "its next item", opt_.timeout_s);
  if (received_ > before) return true;
  wait_exit();
  return false;
}

void ExecSession::wait_exit() {
  child_.close_stdin();
  if (!child_.wait(opt_.exit_timeout_s)) {
    child_.kill_and_reap();
    if (cb_.count) cb_.count("exec.killed_after_end", 1);
    return;
  }
  child_.close_stdout();
  if (!child_.exited_ok()) fail(child_.describe_status() + " after its end-of-stream");
}

void ExecSession::handle(Frame& f) {
  if (!got_hello_ && f.kind != FrameKind::Hello) {
    if (f.kind == FrameKind::Error) fail("failed: " + f.payload, true);
    fail(std::string("sent a ") + frame_kind_name(f.kind) + " frame before its hello");
  }
  if (got_end_) fail(std::string("sent a ") + frame_kind_name(f.kind) + " frame after its end-of-stream");
  switch (f.kind) {
    case FrameKind::Hello: {
      if (got_hello_) fail("sent a second hello");
      Hello h;
      try {
        h = decode_hello(f.payload);
      } catch (const std::exception& e) {
        fail(std::string("sent a bad hello: ") + e.what());
      }
      if (h.protocol != kProtocolName)
        fail("does not speak the catlip stage protocol (its hello names protocol '" + h.protocol + "')");
      if (h.version != kProtocolVersion)
        fail("speaks stage protocol version " + std::to_string(h.version) + "; this catlip speaks version " +
             std::to_string(kProtocolVersion));
      got_hello_ = true;
      break;
    }
    case FrameKind::Sample: {
      Message m;
      auto r = decode(f.payload.data(), f.payload.size(), m, opt_.max_frame_bytes);
      if (!r.ok) fail("sent a sample frame that is not a catlip message: " + r.error);
      received_++;
      if (auto* s = std::get_if<Sample>(&m.body)) {
        items_out_++;
        if (cb_.sample) cb_.sample(std::move(*s));
      } else if (auto* b = std::get_if<Batch>(&m.body)) {
        items_out_++;
        if (cb_.batch) cb_.batch(std::move(*b));
      } else {
        fail(std::string("sent a sample frame holding a ") + msg_kind_name(m.kind) + " message");
      }
      break;
    }
    case FrameKind::Done:
      if (opt_.mode != "transform" || in_flight_ <= 0) fail("sent done with no item in flight");
      in_flight_--;
      unanswered_.pop_front();
      break;
    case FrameKind::End:
      if (opt_.mode == "transform" && !finishing_) fail("ended its stream before its input ended");
      if (in_flight_ > 0) fail("ended its stream with " + std::to_string(in_flight_) + " items unanswered");
      got_end_ = true;
      break;
    case FrameKind::Error: fail("failed: " + f.payload, true);
    case FrameKind::Count: {
      std::map<std::string, int64_t> c;
      try {
        c = decode_counts(f.payload);
      } catch (const std::exception& e) {
        fail(std::string("sent a bad count frame: ") + e.what());
      }
      if (cb_.count)
        for (auto& [k, v] : c) cb_.count(k, v);
      break;
    }
  }
}

void ExecSession::drain(const std::function<bool()>& done) {
  // One frame at a time, so that frames after the one that satisfies
  // `done` wait for the next call (e.g. a source's first items arriving
  // with its hello, before there is anywhere to emit them).
  while (!done()) {
    Frame f;
    bool got = false;
    try {
      got = parser_.next(f);
    } catch (const std::exception& e) {
      fail(std::string("wrote garbage to its output: ") + e.what() +
           (got_hello_ ? "" : "; its stdout carries the protocol: does it print there? (use stderr)"));
    }
    if (!got) return;
    handle(f);
  }
}

void ExecSession::pump(const std::function<bool()>& done, const std::string& what, double timeout_s) {
  double last = now_s();
  if (rbuf_.empty()) rbuf_.resize(size_t{1} << 20);
  char* buf = rbuf_.data();
  drain(done);  // frames left from an earlier read
  while (!done()) {
    if (cb_.stop && cb_.stop()) throw ExecStopped();
    pollfd p[2];
    int n = 0, ir = -1, iw = -1;
    if (child_.stdout_fd() >= 0) p[ir = n++] = {child_.stdout_fd(), POLLIN, 0};
    if (wpos_ < wbuf_.size() && child_.stdin_fd() >= 0) p[iw = n++] = {child_.stdin_fd(), POLLOUT, 0};
    if (n == 0) fail_gone("while catlip waited for " + what);
    int r = ::poll(p, nfds_t(n), 100);
    if (r < 0 && errno != EINTR) fail(std::string("poll failed: ") + std::strerror(errno));
    bool progress = false;
    if (ir >= 0 && p[ir].revents) {
      ssize_t k = ::read(child_.stdout_fd(), buf, rbuf_.size());
      if (k > 0) {
        progress = true;
        parser_.feed(buf, size_t(k));
        drain(done);
      } else if (k == 0) {
        if (got_end_) {
          child_.close_stdout();
          continue;
        }
        fail_gone("before " + (got_hello_ ? what : std::string("its hello")));
      } else if (errno != EAGAIN && errno != EINTR) {
        fail(std::string("read failed: ") + std::strerror(errno));
      }
    }
    if (iw >= 0 && p[iw].revents && child_.stdin_fd() >= 0) {
      size_t len = std::min(wbuf_.size() - wpos_, size_t{1} << 20);
      ssize_t w = ::write(child_.stdin_fd(), wbuf_.data() + wpos_, len);
      if (w > 0) {
        progress = true;
        wpos_ += size_t(w);
        if (wpos_ == wbuf_.size()) {
          wbuf_.clear();
          wpos_ = 0;
        }
      } else if (w < 0 && errno == EPIPE) {
        fail_gone("while catlip wrote to it, before " + what);
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        fail(std::string("write failed: ") + std::strerror(errno));
      }
    }
    double t = now_s();
    if (progress) last = t;
    else if (timeout_s > 0 && t - last > timeout_s)
      fail("did not respond for " + seconds(timeout_s) + " while catlip waited for " + what);
  }
}

}  // namespace catlip::exec
