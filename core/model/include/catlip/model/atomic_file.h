// catlip/model/atomic_file.h - write a file so readers see all of it or none.
//
// Bytes go to "<path>.tmp-<pid>"; commit() fsyncs it, renames it over <path>
// and fsyncs the directory, so a crash leaves either the old file or the new
// one, never a torn one. Destroying an uncommitted AtomicFile removes the
// temporary file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace catlip::model {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  // Overwrites bytes already written at `offset` (used to fill in a header).
  void pwrite(const void* data, size_t n, uint64_t offset);
  uint64_t size() const { return size_; }
  void commit();

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace catlip::model
