// The implementation of catlip/model/checkpoint_file.h: writing, verifying, listing and
// pruning checkpoint files (a safetensors payload in a CRC-checked 32-byte frame).
#include "catlip/model/checkpoint_file.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <zlib.h>

#include "catlip/model/atomic_file.h"

namespace fs = std::filesystem;

namespace catlip::model {

namespace {
void put_le(unsigned char* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
uint64_t get_le(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}
}  // namespace

std::string checkpoint_file_name(int64_t step) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "ckpt-%010lld.catlip", static_cast<long long>(step));
  return buf;
}

std::string write_checkpoint_file(const std::string& dir, int64_t step,
                                  const std::map<std::string, std::string>& metadata,
                                  const std::vector<TensorView>& tensors) {
  fs::create_directories(dir);
  std::string path = dir + "/" + checkpoint_file_name(step);
  AtomicFile f(path);
  unsigned char frame[kCheckpointFrameBytes] = {};
  f.write(frame, sizeof frame);  // placeholder; filled in once CRC and length are known
  uint32_t crc = 0;
  uint64_t len = 0;
  safetensors_write(
      [&](const void* p, size_t n) {
        crc = uint32_t(crc32_z(crc, static_cast<const Bytef*>(p), n));
        len += n;
        f.write(p, n);
      },
      metadata, tensors);
  std::memcpy(frame, kCheckpointMagic, 8);
  put_le(frame + 8, 1, 4);
  put_le(frame + 12, crc, 4);
  put_le(frame + 16, len, 8);
  put_le(frame + 24, uint64_t(step), 8);
  f.pwrite(frame, sizeof frame, 0);
  f.commit();
  return path;
}

Result<SafeTensorsFile> read_checkpoint_file(const std::string& path) {
  auto bad = [&](const std::string& m) -> Result<SafeTensorsFile> {
    return Status::Invalid("checkpoint " + path + ": " + m);
  };
  std::string bytes;
  try {
    bytes = read_whole_file(path);
  } catch (const std::exception& e) {
    return Status::NotFound("checkpoint " + path + ": " + e.what());
  }
  if (bytes.size() < kCheckpointFrameBytes)
    return bad("truncated (" + std::to_string(bytes.size()) + " bytes, shorter than its frame)");
  auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (std::memcmp(p, kCheckpointMagic, 8) != 0) return bad("bad magic, not a catlip checkpoint");
  if (get_le(p + 8, 4) != 1) return bad("unknown frame version " + std::to_string(get_le(p + 8, 4)));
  uint64_t len = get_le(p + 16, 8);
  uint64_t have = bytes.size() - kCheckpointFrameBytes;
  if (have != len)
    return bad((have < len ? "truncated: " : "trailing bytes: ") + std::to_string(have) + " of " +
               std::to_string(len) + " payload bytes");
  uint32_t want = uint32_t(get_le(p + 12, 4));
  uint32_t got = uint32_t(crc32_z(0, p + kCheckpointFrameBytes, size_t(len)));
  if (got != want) return bad("CRC mismatch (corrupted)");
  try {
    return safetensors_parse(bytes, kCheckpointFrameBytes, path);
  } catch (const std::exception& e) {
    return bad(e.what());
  }
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (n.size() == 22 && n.rfind("ckpt-", 0) == 0 && n.substr(15) == ".catlip")
      out.push_back(e.path().string());
  }
  // Zero-padded steps: name order is step order.
  std::sort(out.rbegin(), out.rend());
  return out;
}

void prune_checkpoints(const std::string& dir, int keep) {
  if (keep <= 0) return;
  auto all = list_checkpoints(dir);
  for (size_t i = size_t(keep); i < all.size(); ++i) {
    std::error_code ec;
    fs::remove(all[i], ec);
  }
}

}  // namespace catlip::model
