// The implementation of catlip/model/safetensors.h: the bounds-checked safetensors
// parser and writer, and AtomicFile (write, then rename).
#include "catlip/model/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include <nlohmann/json.hpp>

#include "catlip/json.h"
#include "catlip/model/atomic_file.h"

namespace catlip::model {

namespace {
// As the reference implementation (safetensors' MAX_HEADER_SIZE): a header
// is parsed into memory whole, so a hostile length must not make it huge.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Real headers nest 3 levels (root, entry, shape); hostile ones may not go deep.
constexpr int kMaxHeaderDepth = 64;

struct DTypeName {
  DType t;
  const char* name;
};
constexpr DTypeName kNames[] = {{DType::U8, "U8"},   {DType::I8, "I8"},     {DType::I16, "I16"},
                                {DType::I32, "I32"}, {DType::I64, "I64"},   {DType::F16, "F16"},
                                {DType::BF16, "BF16"}, {DType::F32, "F32"}, {DType::F64, "F64"}};

std::string sys_error(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}
}  // namespace

const char* safetensors_dtype(DType t) {
  for (auto& n : kNames)
    if (n.t == t) return n.name;
  return "?";
}

bool safetensors_dtype_from(const std::string& s, DType* out) {
  for (auto& n : kNames)
    if (s == n.name) {
      *out = n.t;
      return true;
    }
  return false;
}

std::string safetensors_header(const std::map<std::string, std::string>& metadata,
                               const std::vector<TensorView>& tensors) {
  json::Ordered h = json::Ordered::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (auto& t : tensors) {
    h[t.name] = {{"dtype", safetensors_dtype(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.nbytes}}};
    offset += t.nbytes;
  }
  std::string s = json::dump(h);
  while (s.size() % 8) s += ' ';
  return s;
}

SafeTensorsFile safetensors_parse(const std::string& bytes, const std::string& what) {
  return safetensors_parse(bytes, 0, what);
}

SafeTensorsFile safetensors_parse(const std::string& all, size_t base, const std::string& what) {
  if (base > all.size()) throw std::runtime_error(what + ": offset beyond the end");
  const std::string_view bytes(all.data() + base, all.size() - base);
  auto fail = [&](const std::string& m) -> void {
    throw std::runtime_error(what + ": not a valid safetensors file: " + m);
  };
  if (bytes.size() < 8) fail("shorter than its 8-byte header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  if (n > bytes.size() - 8) fail("header length " + std::to_string(n) + " exceeds file size");
  if (n > kMaxHeaderBytes) fail("header length " + std::to_string(n) + " over the limit of " + std::to_string(kMaxHeaderBytes));
  json::Value root;
  try {
    root = json::parse(std::string(bytes.substr(8, n)), "header", kMaxHeaderDepth);
  } catch (const std::exception& e) {
    fail(e.what());
  }
  if (!root.is_object()) fail("header is not a JSON object");
  const uint64_t data_begin = 8 + n;
  const uint64_t data_size = bytes.size() - data_begin;
  SafeTensorsFile out;
  for (auto& [name, v] : root.items()) {
    try {
      if (name == "__metadata__") {
        for (auto& [k, mv] : json::object(v).items()) out.metadata[k] = json::string(mv);
        continue;
      }
      json::object(v);
      Tensor t;
      const std::string& dtype = json::string(json::at(v, "dtype"));
      if (!safetensors_dtype_from(dtype, &t.dtype)) throw std::runtime_error("unsupported dtype " + dtype);
      int64_t numel = 1;
      for (auto& d : json::array(json::at(v, "shape"))) {
        int64_t x = json::integer(d);
        if (x < 0 || (x > 0 && numel > std::numeric_limits<int64_t>::max() / x))
          throw std::runtime_error("bad shape");
        t.shape.push_back(x);
        numel *= x;
      }
      auto& offs = json::array(json::at(v, "data_offsets"));
      if (offs.size() != 2) throw std::runtime_error("data_offsets must have 2 entries");
      int64_t b = json::integer(offs[0]), e = json::integer(offs[1]);
      if (b < 0 || e < b || uint64_t(e) > data_size)
        throw std::runtime_error("data_offsets [" + std::to_string(b) + "," + std::to_string(e) +
                                 "] outside the data section of " + std::to_string(data_size) +
                                 " bytes");
      // numel <= data_size first: numel * dtype size cannot wrap around then.
      if (uint64_t(numel) > data_size || uint64_t(e - b) != uint64_t(numel) * dtype_size(t.dtype))
        throw std::runtime_error("byte size does not match dtype and shape");
      t.data.assign(bytes.data() + data_begin + b, size_t(e - b));
      out.tensors.emplace(name, std::move(t));
    } catch (const std::exception& e) {
      fail("entry '" + name + "': " + e.what());
    }
  }
  return out;
}

std::string read_whole_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(sys_error("cannot open", path));
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw std::runtime_error(sys_error("cannot read", path));
  return ss.str();
}

void safetensors_save(const std::string& path, const std::map<std::string, std::string>& metadata,
                      const std::vector<TensorView>& tensors) {
  AtomicFile f(path);
  safetensors_write([&](const void* p, size_t n) { f.write(p, n); }, metadata, tensors);
  f.commit();
}

SafeTensorsFile safetensors_load(const std::string& path) {
  return safetensors_parse(read_whole_file(path), path);
}

// ---- AtomicFile ----

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp-" + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error(sys_error("cannot create", tmp_));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(sys_error("cannot write", tmp_));
    }
    p += w;
    n -= size_t(w);
    size_ += uint64_t(w);
  }
}

void AtomicFile::pwrite(const void* data, size_t n, uint64_t offset) {
  if (::pwrite(fd_, data, n, off_t(offset)) != ssize_t(n))
    throw std::runtime_error(sys_error("cannot write", tmp_));
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) throw std::runtime_error(sys_error("cannot fsync", tmp_));
  if (::close(fd_) != 0) {
    fd_ = -1;
    throw std::runtime_error(sys_error("cannot close", tmp_));
  }
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    ::unlink(tmp_.c_str());
    throw std::runtime_error(sys_error("cannot rename to", path_));
  }
  // Make the rename itself durable.
  std::string dir = path_.find('/') == std::string::npos ? "." : path_.substr(0, path_.rfind('/'));
  if (dir.empty()) dir = "/";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace catlip::model
