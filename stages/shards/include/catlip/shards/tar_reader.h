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
#include <string_view>

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
  // Headers with a bad checksum that were stepped over by resyncing to the
  // next valid header (512-byte block boundaries), bytes skipped doing so,
  // and a description of the latest one (for logs).
  uint64_t resyncs = 0;
  uint64_t resync_bytes = 0;
  std::string last_resync;
};

// The archive is damaged: bad checksum with no valid header after it,
// garbage header, or it ends mid-member. Everything returned before it is
// intact.
struct TarError : std::runtime_error {
  using std::runtime_error::runtime_error;
  bool truncated = false;
  // The damage lies after the previous member's data was fully consumed (in
  // a header, long-name or pax record): every member returned before it is
  // complete. False when it cut a member's data short.
  bool between_members = false;
};

// A member name that is safe to use as a sample key: not empty, no NUL, not
// absolute ("/x", "\\x", "C:/x"), and no ".." path component (with '/' or
// '\\' as separator). Readers skip other names; TarWriter refuses them.
bool safe_member_name(std::string_view name);

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
  size_t fill_block(char* b);
  bool read_block(char* b, bool allow_eof);
  bool resync(char* b, uint64_t bad_at);
  void skip_member_data(uint64_t n);
  void read_exact(char* p, uint64_t n, const char* what);
  void skip_exact(uint64_t n, const char* what);
  [[noreturn]] void fail(const std::string& msg, bool truncated = false);

  ByteStream& in_;
  std::string name_;
  TarStats stats_;
  uint64_t pending_ = 0;  // data bytes (plus padding) of the current member not yet consumed
  uint64_t pending_data_ = 0;
  bool done_ = false;
  bool in_header_ = false;  // parsing headers: damage now leaves earlier members complete
};

// Limit on long-name/pax header data: such records are small in real tars.
constexpr uint64_t kMaxTarMetaBytes = 1 << 20;

}  // namespace catlip::shards
