// A stage program for tests/exec, in C++ so the tests need no Python:
//   exec_test_program MODE [N]
// echo (every input back), dup N (each input N times; 0 drops all),
// crash N (abort() at input N), exit N (exit(3) at input N), error N (an
// error frame at input N), garbage (text on stdout at the first input),
// hang (stops answering at the first input), nohello, version (hello with
// version 99), bigframe (a frame header claiming 3 GB), source N (emits N
// items), flood N (N outputs of 64 KB per input), linger (never exits
// after end-of-stream).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "catlip/codec.h"
#include "catlip/exec/protocol.h"

using namespace catlip;
using namespace catlip::exec;

static bool read_all(void* p, size_t n) {
  char* c = static_cast<char*>(p);
  while (n) {
    ssize_t k = ::read(0, c, n);
    if (k <= 0) return false;
    c += k;
    n -= size_t(k);
  }
  return true;
}
static void write_all(const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t k = ::write(1, s.data() + off, s.size() - off);
    if (k <= 0) std::exit(9);
    off += size_t(k);
  }
}
static bool read_frame(Frame& f) {
  unsigned char h[5];
  if (!read_all(h, 5)) return false;
  uint32_t n = uint32_t(h[0]) | uint32_t(h[1]) << 8 | uint32_t(h[2]) << 16 | uint32_t(h[3]) << 24;
  f.kind = FrameKind(h[4]);
  f.payload.resize(n);
  return read_all(f.payload.data(), n);
}
static void send(FrameKind k, const std::string& p = "") { write_all(frame(k, p)); }

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "echo";
  long n = argc > 2 ? std::atol(argv[2]) : 1;
  Frame f;
  if (!read_frame(f) || f.kind != FrameKind::Hello) return 2;
  if (mode == "nohello") pause();
  Hello h;
  if (mode == "version") h.version = 99;
  send(FrameKind::Hello, encode_hello(h));
  if (mode == "bigframe") {
    write_all(std::string("\x00\x00\x00\xc0S", 5));
    pause();
  }
  if (mode == "source") {
    for (long i = 0; i < n; ++i) {
      Sample s;
      s.key = "src" + std::to_string(i);
      s.origin = {"test-source", 0, i, 0};
      s.set_ints("n", {i});
      send(FrameKind::Sample, encode_sample(s));
    }
    send(FrameKind::End);
    return 0;
  }
  long seen = 0;
  while (read_frame(f)) {
    if (f.kind == FrameKind::End) {
      send(FrameKind::End);
      if (mode == "linger") pause();
      return 0;
    }
    if (f.kind != FrameKind::Sample) return 3;
    ++seen;
    if (mode == "crash" && seen == n) std::abort();
    if (mode == "exit" && seen == n) std::exit(3);
    if (mode == "error" && seen == n) {
      send(FrameKind::Error, "cannot handle item number " + std::to_string(seen));
      return 1;
    }
    if (mode == "garbage") write_all("this is not a frame\n");
    if (mode == "hang") pause();
    if (mode == "dup") {
      for (long i = 0; i < n; ++i) write_all(frame(FrameKind::Sample, f.payload));
    } else if (mode == "flood") {
      Message m;
      if (!decode(f.payload.data(), f.payload.size(), m).ok) return 4;
      Sample s = std::get<Sample>(m.body);
      s.set_bytes("blob", std::string(64 * 1024, 'x'));
      std::string enc = encode_sample(s);
      for (long i = 0; i < n; ++i) write_all(frame(FrameKind::Sample, enc));
    } else {
      write_all(frame(FrameKind::Sample, f.payload));
    }
    send(FrameKind::Count, std::string("\x81\xa4seen\x01", 7));
    send(FrameKind::Done);
  }
  return 0;
}
