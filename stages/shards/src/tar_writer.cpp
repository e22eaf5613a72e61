// The implementation of catlip/shards/tar_writer.h: ustar members with pax headers for
// long names and large sizes, and ShardWriter's rolling shard files.
#include "catlip/shards/tar_writer.h"

#include "catlip/shards/tar_reader.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <algorithm>

namespace catlip::shards {
namespace {

constexpr size_t kBlock = 512;

// Writes `v` as zero-padded octal into a field of `width` bytes, NUL-terminated.
bool put_octal(char* dst, size_t width, uint64_t v) {
  std::string s(width - 1, '0');
  for (size_t i = width - 1; i-- > 0;) {
    s[i] = static_cast<char>('0' + (v & 7));
    v >>= 3;
  }
  if (v != 0) return false;  // did not fit
  std::memcpy(dst, s.data(), width - 1);
  dst[width - 1] = '\0';
  return true;
}

// A pax record "LEN key=value\n" where LEN counts itself.
std::string pax_record(std::string_view key, std::string_view value) {
  size_t body = key.size() + value.size() + 3;  // ' ' '=' '\n'
  size_t len = body + 1;
  while (std::to_string(len).size() + body != len) len = std::to_string(len).size() + body;
  return std::to_string(len) + " " + std::string(key) + "=" + std::string(value) + "\n";
}

// Splits `name` into ustar (prefix, name) at a '/', if possible.
bool ustar_split(std::string_view name, std::string_view& prefix, std::string_view& base) {
  if (name.size() <= 100) {
    prefix = {};
    base = name;
    return true;
  }
  if (name.size() > 256) return false;
  for (size_t i = name.size(); i-- > 0;) {
    if (name[i] != '/') continue;
    if (i <= 155 && name.size() - i - 1 <= 100 && name.size() - i - 1 > 0) {
      prefix = name.substr(0, i);
      base = name.substr(i + 1);
      return true;
    }
  }
  return false;
}

}  // namespace

std::string TarWriter::header_block(std::string_view name, uint64_t size, char typeflag, int64_t mtime,
                                    uint32_t mode, std::string_view linkname) {
  std::string h(kBlock, '\0');
  std::string_view prefix, base;
  if (!ustar_split(name, prefix, base)) {
    base = name.substr(0, 100);  // caller emits a long-name record first
    prefix = {};
  }
  if (!base.empty()) std::memcpy(&h[0], base.data(), base.size());
  put_octal(&h[100], 8, mode & 07777);
  put_octal(&h[108], 8, 0);
  put_octal(&h[116], 8, 0);
  if (!put_octal(&h[124], 12, size)) put_octal(&h[124], 12, 0);  // pax carries the size
  put_octal(&h[136], 12, static_cast<uint64_t>(mtime < 0 ? 0 : mtime));
  h[156] = typeflag;
  if (!linkname.empty()) std::memcpy(&h[157], linkname.data(), std::min<size_t>(linkname.size(), 100));
  std::memcpy(&h[257], "ustar\0" "00", 8);
  if (!prefix.empty()) std::memcpy(&h[345], prefix.data(), prefix.size());
  std::memset(&h[148], ' ', 8);
  uint32_t sum = 0;
  for (unsigned char c : h) sum += c;
  put_octal(&h[148], 7, sum);  // 6 digits + NUL, then the space already there
  h[155] = ' ';
  return h;
}

TarWriter::TarWriter(const std::string& path) { open(path); }
TarWriter::~TarWriter() {
  try {
    close();
  } catch (...) {
    // a destructor must not throw; a caller that needs to know calls close() first
  }
}
TarWriter::TarWriter(TarWriter&& o) noexcept { *this = std::move(o); }
TarWriter& TarWriter::operator=(TarWriter&& o) noexcept {
  if (this != &o) {
    try {
      close();
    } catch (...) {
      // noexcept: finishing the old file is best effort; call close() first to see errors
    }
    f_ = std::exchange(o.f_, nullptr);
    path_ = std::move(o.path_);
    written_ = std::exchange(o.written_, 0);
    gnu_long_ = o.gnu_long_;
  }
  return *this;
}

void TarWriter::open(const std::string& path) {
  close();
  f_ = std::fopen(path.c_str(), "wbe");
  if (!f_) throw std::runtime_error("tar: cannot create " + path + ": " + std::strerror(errno));
  path_ = path;
  written_ = 0;
}

void TarWriter::write_raw(const void* p, size_t n) {
  if (n && std::fwrite(p, 1, n, f_) != n)
    throw std::runtime_error("tar: write failed on " + path_ + ": " + std::strerror(errno));
  written_ += n;
}

void TarWriter::pad_to_block(uint64_t n) {
  static const char zeros[kBlock] = {};
  size_t rem = n % kBlock;
  if (rem) write_raw(zeros, kBlock - rem);
}

void TarWriter::add(std::string_view name, std::string_view data, int64_t mtime, uint32_t mode) {
  if (!f_) throw std::runtime_error("tar: add() on a closed writer");
  if (!safe_member_name(name))
    throw std::invalid_argument("tar: refusing unsafe member name '" + std::string(name.substr(0, 200)) +
                                "' (absolute, '..' component or NUL) in " + path_);
  std::string_view prefix, base;
  bool fits = ustar_split(name, prefix, base);
  bool big = data.size() > 077777777777ull;
  if (!fits && gnu_long_ && !big) {
    // GNU: a './@LongLink' member of type 'L' whose data is the name + NUL.
    std::string longname(name);
    longname.push_back('\0');
    write_raw(header_block("././@LongLink", longname.size(), 'L', 0, 0644).data(), kBlock);
    write_raw(longname.data(), longname.size());
    pad_to_block(longname.size());
  } else if (!fits || big) {
    std::string pax;
    if (!fits) pax += pax_record("path", name);
    if (big) pax += pax_record("size", std::to_string(data.size()));
    write_raw(header_block("PaxHeader", pax.size(), 'x', mtime, 0644).data(), kBlock);
    write_raw(pax.data(), pax.size());
    pad_to_block(pax.size());
  }
  write_raw(header_block(name, data.size(), '0', mtime, mode).data(), kBlock);
  write_raw(data.data(), data.size());
  pad_to_block(data.size());
}

void TarWriter::close() {
  if (!f_) return;
  static const char zeros[2 * kBlock] = {};
  FILE* f = std::exchange(f_, nullptr);
  bool ok = std::fwrite(zeros, 1, sizeof zeros, f) == sizeof zeros;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) throw std::runtime_error("tar: failed to finish " + path_);
}

ShardWriter::ShardWriter(std::string prefix, ShardWriterOptions opts)
    : prefix_(std::move(prefix)), opts_(opts) {}

ShardWriter::~ShardWriter() {
  try {
    close();
  } catch (...) {
    // a destructor must not throw; a caller that needs to know calls close() first
  }
}

void ShardWriter::roll() {
  char num[32];
  std::snprintf(num, sizeof num, "-%06zu.tar", paths_.size());
  std::string path = prefix_ + num;
  tar_.open(path);
  paths_.push_back(path);
  shard_samples_ = 0;
}

void ShardWriter::write(std::string_view key,
                        const std::vector<std::pair<std::string, std::string>>& fields) {
  uint64_t need = 0;
  for (auto& [ext, data] : fields) {
    uint64_t name_len = key.size() + 1 + ext.size();
    need += kBlock + (name_len > 100 ? 2 * kBlock + name_len : 0) + (data.size() + kBlock - 1) / kBlock * kBlock;
  }
  bool full = !tar_.is_open() || (opts_.max_samples && shard_samples_ >= opts_.max_samples) ||
              (opts_.max_bytes && shard_samples_ > 0 && tar_.bytes_written() + need + 2 * kBlock > opts_.max_bytes);
  if (full) roll();
  for (auto& [ext, data] : fields) {
    std::string name(key);
    name += '.';
    name += ext;
    tar_.add(name, data);
  }
  ++shard_samples_;
  ++total_samples_;
}

void ShardWriter::close() { tar_.close(); }

}  // namespace catlip::shards
