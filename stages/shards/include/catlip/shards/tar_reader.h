// catlip/shards/tar_reader.h - a streaming tar parser.
//
// Reads members one after another from a ByteStream without seeking back:
// ustar headers, GNU long names ('L'), pax extended headers ('x': path and
// size; 'g' global headers are skipped). Only regular files are returned;
// other members (directories, links, devices, fifos) are skipped and counted.
// The caller decides, per member, to read its data (bounded by
// max_member_bytes) or to skip it, so a hostile size never allocates.
// Member names are only ever used as strings, never as paths.
#pragma once

#include <cstdint>
#include <string>

#include "catlip/shards/byte_stream.h"

namespace catlip::shards {

struct TarHeader {
  std::string name;  // full name after long-name/pax processing
  uint64_t size = 0;
  char type = '0';
  uint64_t offset = 0;  // stream offset of the member's data
};

struct TarStats {
  uint64_t non_regular = 0;  // directories, links, ... skipped
  bool clean_end = false;    // saw the end-of-archive zero block
};

// The archive is damaged: bad checksum, garbage header, or it ends
// mid-member. Everything returned before it is intact.
struct TarError : std::runtime_error {
  using std::runtime_error::runtime_error;
  bool truncated = false;
};

class TarReader {
 public:
  // `name` is used in error messages (the shard URL).
  TarReader(ByteStream& in, std::string name) : in_(in), name_(std::move(name)) {}

  // Advances to the next regular-file member. Returns false at the end of
  // the archive (zero block, or a clean end of stream between members).
  // Throws TarError on damage and StreamError when the stream fails.
  // An unread member's data is skipped automatically.
  bool next(TarHeader& h);
  // Reads the current member's data (call at most once per member).
  void read_data(std::string& out);
  // Skips the current member's data.
  void skip_data();

  const TarStats& stats() const { return stats_; }
  uint64_t offset() const { return in_.offset(); }

 private:
  bool read_block(char* b, bool allow_eof);
  void read_exact(char* p, uint64_t n, const char* what);
  void skip_exact(uint64_t n, const char* what);
  [[noreturn]] void fail(const std::string& msg, bool truncated = false);

  ByteStream& in_;
  std::string name_;
  TarStats stats_;
  uint64_t pending_ = 0;  // data bytes (plus padding) of the current member not yet consumed
  uint64_t pending_data_ = 0;
  bool done_ = false;
};

// Limit on long-name/pax header data: such records are small in real tars.
constexpr uint64_t kMaxTarMetaBytes = 1 << 20;

}  // namespace catlip::shards
