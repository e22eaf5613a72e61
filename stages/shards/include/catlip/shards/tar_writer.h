// catlip/shards/tar_writer.h - writing WebDataset tar shards.
//
// TarWriter appends regular-file members to one tar file in ustar format.
// Names that do not fit ustar's 100+155 byte name/prefix split are written
// with a pax extended header ('x', path=...), which GNU tar, Python tarfile
// and our reader all understand. Member sizes above ustar's 8 GiB octal limit
// use a pax size record too.
//
// ShardWriter groups samples into shards `prefix-000000.tar`,
// `prefix-000001.tar`, ... rolling to a new file every N samples or before a
// shard would exceed M bytes; each sample field becomes a member
// `<key>.<ext>` (the WebDataset convention).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace catlip::shards {

class TarWriter {
 public:
  TarWriter() = default;
  // Opens (truncates) `path`; throws std::runtime_error naming the path on failure.
  explicit TarWriter(const std::string& path);
  ~TarWriter();
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;
  TarWriter(TarWriter&& o) noexcept;
  TarWriter& operator=(TarWriter&& o) noexcept;

  void open(const std::string& path);
  bool is_open() const { return f_ != nullptr; }
  const std::string& path() const { return path_; }

  // Appends a regular file member. `mtime` is seconds since the epoch
  // (0 by default so shards are byte-for-byte reproducible). Throws
  // std::invalid_argument for a name safe_member_name() rejects ("../x",
  // "/x", NUL): readers would skip it anyway.
  void add(std::string_view name, std::string_view data, int64_t mtime = 0, uint32_t mode = 0644);
  // Force the GNU 'L' long-name form instead of pax for long names (used by
  // tests to produce both variants).
  void set_gnu_long_names(bool on) { gnu_long_ = on; }

  // Writes the two zero end blocks and closes. Idempotent.
  void close();
  // Bytes written so far (headers + data + padding), excluding the end blocks.
  uint64_t bytes_written() const { return written_; }

  // Builds one 512-byte header block (exposed for tests that craft odd tars).
  // `typeflag` '0' regular, '5' directory, '2' symlink, 'L', 'x', ...
  static std::string header_block(std::string_view name, uint64_t size, char typeflag,
                                  int64_t mtime = 0, uint32_t mode = 0644,
                                  std::string_view linkname = {});

 private:
  void write_raw(const void* p, size_t n);
  void pad_to_block(uint64_t n);
  FILE* f_ = nullptr;
  std::string path_;
  uint64_t written_ = 0;
  bool gnu_long_ = false;
};

struct ShardWriterOptions {
  uint64_t max_samples = 10000;        // per shard; 0 = unlimited
  uint64_t max_bytes = 1ull << 30;     // per shard file size, end marker included; 0 = unlimited
};

class ShardWriter {
 public:
  // Shards are named `<prefix>-%06d.tar`. The directory of prefix must exist.
  explicit ShardWriter(std::string prefix, ShardWriterOptions opts = {});
  ~ShardWriter();

  // Writes one sample: each (ext, data) pair becomes member `<key>.<ext>`.
  // Starts a new shard first if the current one is full. A single sample
  // larger than max_bytes still goes into a shard of its own.
  void write(std::string_view key, const std::vector<std::pair<std::string, std::string>>& fields);

  // Closes the last shard. Idempotent.
  void close();

  const std::vector<std::string>& shard_paths() const { return paths_; }
  uint64_t samples_written() const { return total_samples_; }

 private:
  void roll();
  std::string prefix_;
  ShardWriterOptions opts_;
  TarWriter tar_;
  std::vector<std::string> paths_;
  uint64_t shard_samples_ = 0;
  uint64_t total_samples_ = 0;
};

}  // namespace catlip::shards
