// Helpers shared by the producer and consumer halves of the transport.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include <zmq.hpp>

#include "catlip/codec.h"

namespace catlip::transport_detail {

using Clock = std::chrono::steady_clock;

inline double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

inline std::string control_bytes(MsgKind kind, int64_t value, const std::string& text) {
  Message m;
  m.kind = kind;
  m.value = value;
  m.text = text;
  return encode(m);
}

// A frame over a shared buffer: ZeroMQ holds one reference until it has
// sent the bytes; the producer may hold another until the item is acknowledged.
template <class T>
zmq::message_t shared_frame(const std::shared_ptr<T>& owner, const char* data, size_t size) {
  auto* ref = new std::shared_ptr<T>(owner);
  return zmq::message_t(const_cast<char*>(data), size, [](void*, void* hint) { delete static_cast<std::shared_ptr<T>*>(hint); },
                        ref);
}

inline bool stopped(const std::atomic<bool>* s) { return s && s->load(std::memory_order_relaxed); }

// zmq::poll, with a signal (EINTR) treated as "nothing ready": the caller's
// loop then sees the stop flag the signal handler set.
inline int poll_items(zmq::pollitem_t* items, size_t n, int timeout_ms) {
  try {
    return zmq::poll(items, n, std::chrono::milliseconds(timeout_ms));
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return 0;
    throw;
  }
}

// Runs a ZeroMQ send or receive again when a signal interrupted it (EINTR):
// any call can fail so while a signal is pending, dontwait ones included,
// and ZeroMQ has then queued or taken nothing, so the retry is safe.
template <class F>
auto no_eintr(F&& f) {
  for (;;) {
    try {
      return f();
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
  }
}

// Blocking receive of the next frame of a multipart message already queued.
inline void recv_part(zmq::socket_t& s, zmq::message_t& m) {
  for (;;) {
    try {
      (void)s.recv(m);
      return;
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
  }
}

}  // namespace catlip::transport_detail
