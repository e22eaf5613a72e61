// The implementation of catlip/sample.h: the unit of data that flows between stages.
#include "catlip/sample.h"

namespace catlip {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::U8: case DType::I8: return 1;
    case DType::I16: case DType::F16: case DType::BF16: return 2;
    case DType::I32: case DType::F32: return 4;
    case DType::I64: case DType::F64: return 8;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::U8: return "uint8";
    case DType::I8: return "int8";
    case DType::I16: return "int16";
    case DType::I32: return "int32";
    case DType::I64: return "int64";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::F32: return "float32";
    case DType::F64: return "float64";
  }
  return "?";
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    n *= d;
  }
  return n;
}

void Sample::erase(std::string_view name) {
  auto it = fields.find(name);
  if (it != fields.end()) fields.erase(it);
}

template <class T>
static const T* get_if_field(const std::map<std::string, Field, std::less<>>& f, std::string_view name) {
  auto it = f.find(name);
  return it == f.end() ? nullptr : std::get_if<T>(&it->second);
}

const Bytes* Sample::bytes(std::string_view n) const { return get_if_field<Bytes>(fields, n); }
const std::string* Sample::text(std::string_view n) const { return get_if_field<std::string>(fields, n); }
const IntList* Sample::ints(std::string_view n) const { return get_if_field<IntList>(fields, n); }
const Tensor* Sample::tensor(std::string_view n) const { return get_if_field<Tensor>(fields, n); }
Tensor* Sample::tensor(std::string_view n) {
  auto it = fields.find(n);
  return it == fields.end() ? nullptr : std::get_if<Tensor>(&it->second);
}

size_t Sample::payload_bytes() const {
  size_t n = key.size() + origin.url.size();
  for (auto& [name, f] : fields) {
    n += name.size();
    std::visit([&](auto& v) {
      using T = std::decay_t<decltype(v)>;
      if constexpr (std::is_same_v<T, Bytes>) n += v.data.size();
      else if constexpr (std::is_same_v<T, std::string>) n += v.size();
      else if constexpr (std::is_same_v<T, IntList>) n += v.size() * 8;
      else n += v.data.size();
    }, f);
  }
  return n;
}

}  // namespace catlip
