// Fuzzes the streaming tar reader and WebDataset sample grouping
// (stages/shards: tar_reader.cpp, webdataset.cpp) over an in-memory stream.
//
// Input: byte 0 holds option bits, the rest is the tar archive.
//   bit 0: keep only jpg/png/txt    bit 1: require "jpg|png"
//   bit 2: max_member_bytes 100     bit 3: resume with skip_before = 1
//   bit 4: TarReader pass reads every member (else every other one)
//   bit 5: round trip instead: the rest is a list of members, each a 2-byte
//          little-endian name length, the name, a 2-byte data length and the
//          data; TarWriter writes them (bit 6: GNU long names, not pax) and
//          TarReader must return exactly the names and data written (names
//          TarWriter refuses as unsafe are left out)
//
// Properties: no crash, no exception other than TarError/StreamError out of
// TarReader, none at all out of SampleReader; TarReader never returns more
// data than it declared nor reads past the archive; SampleReader's samples
// have a key, fields and consecutive indices.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "catlip/shards/tar_reader.h"
#include "catlip/shards/tar_writer.h"
#include "catlip/shards/webdataset.h"
#include "fuzz_common.h"

using namespace catlip;
using namespace catlip::shards;

static void round_trip(const uint8_t* p, size_t n, bool gnu) {
  std::vector<std::pair<std::string, std::string>> members;
  auto take = [&](std::string& out) {
    if (n < 2) return false;
    size_t len = p[0] | (size_t{p[1]} << 8);
    p += 2, n -= 2;
    if (len > n) len = n;
    out.assign(reinterpret_cast<const char*>(p), len);
    p += len, n -= len;
    return true;
  };
  for (;;) {
    std::string name, body;
    if (!take(name) || !take(body)) break;
    // Names tar can hold as a regular file: not empty, no NUL, no trailing
    // '/' (that marks a directory in old tars).
    if (name.empty() || name.find('\0') != std::string::npos || name.back() == '/') continue;
    members.emplace_back(std::move(name), std::move(body));
  }
  // The writer wants a path: an anonymous in-memory file.
  static int fd = memfd_create("fuzz_tar", 0);
  FUZZ_CHECK(fd >= 0, "memfd_create failed");
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  {
    TarWriter w(path);
    w.set_gnu_long_names(gnu);
    std::vector<std::pair<std::string, std::string>> written;
    for (auto& m : members) {
      try {
        w.add(m.first, m.second);
      } catch (const std::invalid_argument&) {
        continue;  // a name the writer refuses by design ("../x", "/x"): nothing written
      }
      written.push_back(std::move(m));
    }
    members = std::move(written);
    w.close();
  }
  std::string tar(size_t(lseek(fd, 0, SEEK_END)), '\0');
  FUZZ_CHECK(pread(fd, tar.data(), tar.size(), 0) == ssize_t(tar.size()), "pread failed");
  auto in = memory_stream(std::move(tar));
  TarReader r(*in, "roundtrip.tar");
  TarHeader h;
  size_t i = 0;
  try {
    while (r.next(h)) {
      FUZZ_CHECK(i < members.size(), "read back more members than written");
      FUZZ_CHECK(h.name == members[i].first, "member %zu: name '%s' read back as '%s'", i,
                 members[i].first.c_str(), h.name.c_str());
      std::string d;
      r.read_data(d);
      FUZZ_CHECK(d == members[i].second, "member %zu ('%s'): data differs", i, h.name.c_str());
      ++i;
    }
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, "TarReader refused TarWriter's tar after %zu members: %s", i, e.what());
  }
  FUZZ_CHECK(i == members.size(), "read back %zu of %zu members", i, members.size());
  FUZZ_CHECK(r.stats().clean_end, "no clean end");
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t flags = data[0];
  if (flags & 32) {
    round_trip(data + 1, size - 1, flags & 64);
    return 0;
  }
  std::string tar(reinterpret_cast<const char*>(data) + 1, size - 1);

  // 1. The tar reader alone.
  {
    auto in = memory_stream(tar);
    TarReader r(*in, "fuzz.tar");
    TarHeader h;
    int i = 0;
    try {
      while (r.next(h)) {
        FUZZ_CHECK(h.offset <= tar.size(), "member offset %llu past the end (%zu)",
                   (unsigned long long)h.offset, tar.size());
        if (((flags & 16) || i % 2 == 0) && h.size <= (1u << 20)) {
          std::string d;
          r.read_data(d);
          FUZZ_CHECK(d.size() == h.size, "read %zu bytes of a %llu byte member", d.size(),
                     (unsigned long long)h.size);
          FUZZ_CHECK(h.offset + h.size <= tar.size(), "member data past the end");
        }
        ++i;
      }
    } catch (const TarError&) {
      // a clean rejection of a malformed tar is a pass; the checks below still run
    } catch (const StreamError&) {
      // likewise: a failing stream is a clean rejection too
    }
    FUZZ_CHECK(r.offset() <= tar.size(), "offset %llu past the end (%zu)",
               (unsigned long long)r.offset(), tar.size());
  }

  // 2. WebDataset grouping.
  ReadOptions opts;
  if (flags & 1) opts.keep = {"jpg", "png", "txt"};
  if (flags & 2) opts.require = {"jpg|png"};
  if (flags & 4) opts.max_member_bytes = 100;
  int64_t skip = (flags & 8) ? 1 : 0;
  size_t problems = 0;
  SampleReader sr(memory_stream(std::move(tar)), "fuzz.tar", 3, opts,
                  [&](const std::string& reason, const std::string& msg) {
                    FUZZ_CHECK(!reason.empty(), "problem without a reason");
                    ++problems;
                  },
                  skip);
  Sample s;
  int64_t last = -1;
  while (sr.next(s)) {
    FUZZ_CHECK(!s.fields.empty(), "sample %s without fields", s.key.c_str());
    FUZZ_CHECK(s.origin.index > last && s.origin.index >= skip, "sample index %lld after %lld",
               (long long)s.origin.index, (long long)last);
    FUZZ_CHECK(s.origin.shard == 3, "wrong shard");
    last = s.origin.index;
  }
  FUZZ_CHECK(sr.samples_seen() > last, "samples_seen %lld <= last index %lld",
             (long long)sr.samples_seen(), (long long)last);
  return 0;
}
