// catlip/model/safetensors.h - reading and writing the safetensors format.
//
// Layout (https://github.com/huggingface/safetensors): 8-byte little-endian
// header length N, N bytes of JSON
//   {"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [..],
//    "data_offsets": [begin, end]}, ...}
// then the raw little-endian tensor bytes, offsets relative to the data start.
// The header is read and written with nlohmann-json (catlip/json.h); the
// reader caps the header at 100 MB (as the reference implementation does) and
// 64 levels of nesting, and checks every offset and size, so a hostile file
// gets a clear error and cannot make it read out of bounds.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "catlip/sample.h"

namespace catlip::model {

// A tensor to write: points at bytes owned by the caller.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
};

// safetensors dtype strings ("F32", "BF16", "I64", "U8", ...).
const char* safetensors_dtype(DType t);
bool safetensors_dtype_from(const std::string& s, DType* out);

// Builds the JSON header (padded with spaces to a multiple of 8 bytes, as the
// reference implementation does) for tensors laid out in the given order.
std::string safetensors_header(const std::map<std::string, std::string>& metadata,
                               const std::vector<TensorView>& tensors);

// Where a byte sink should put things: the header, then each tensor's bytes.
// Sink: void(const void*, size_t).
template <class Sink>
void safetensors_write(Sink&& sink, const std::map<std::string, std::string>& metadata,
                       const std::vector<TensorView>& tensors) {
  std::string header = safetensors_header(metadata, tensors);
  uint64_t n = header.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  sink(len, 8);
  sink(header.data(), header.size());
  for (auto& t : tensors) sink(t.data, t.nbytes);
}

// A parsed file. Tensors keep their order of appearance in the data section.
struct SafeTensorsFile {
  std::map<std::string, std::string> metadata;
  std::map<std::string, Tensor> tensors;
};

// Parses an in-memory safetensors blob; `what` names it in error messages.
// Throws std::runtime_error on any inconsistency.
SafeTensorsFile safetensors_parse(const std::string& bytes, const std::string& what);
// Same, for a blob starting at `offset` in `bytes` (avoids copying a large
// payload out of a framed file).
SafeTensorsFile safetensors_parse(const std::string& bytes, size_t offset, const std::string& what);

// Writes atomically (temporary file, fsync, rename).
void safetensors_save(const std::string& path, const std::map<std::string, std::string>& metadata,
                      const std::vector<TensorView>& tensors);
SafeTensorsFile safetensors_load(const std::string& path);

// Reads a whole file; throws with the path on failure.
std::string read_whole_file(const std::string& path);

}  // namespace catlip::model
