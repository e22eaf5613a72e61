// The implementation of catlip/model/state_io.h: converting between torch and catlip
// tensors, and copying named tensors in and out of modules.
#include "catlip/model/state_io.h"

#include <cstring>
#include <stdexcept>

namespace catlip::model {

DType catlip_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kUInt8: return DType::U8;
    case torch::kInt8: return DType::I8;
    case torch::kInt16: return DType::I16;
    case torch::kInt32: return DType::I32;
    case torch::kInt64: return DType::I64;
    case torch::kFloat16: return DType::F16;
    case torch::kBFloat16: return DType::BF16;
    case torch::kFloat32: return DType::F32;
    case torch::kFloat64: return DType::F64;
    default: throw std::runtime_error(std::string("unsupported tensor dtype ") + c10::toString(t));
  }
}

torch::ScalarType torch_dtype(DType t) {
  switch (t) {
    case DType::U8: return torch::kUInt8;
    case DType::I8: return torch::kInt8;
    case DType::I16: return torch::kInt16;
    case DType::I32: return torch::kInt32;
    case DType::I64: return torch::kInt64;
    case DType::F16: return torch::kFloat16;
    case DType::BF16: return torch::kBFloat16;
    case DType::F32: return torch::kFloat32;
    case DType::F64: return torch::kFloat64;
  }
  throw std::runtime_error("bad dtype");
}

NamedTensors named_state(const torch::nn::Module& m) {
  NamedTensors out;
  for (auto& kv : m.named_parameters(true)) out.emplace_back(kv.key(), kv.value());
  for (auto& kv : m.named_buffers(true)) out.emplace_back(kv.key(), kv.value());
  return out;
}

void TensorStash::add(const std::string& name, const torch::Tensor& t) {
  // CPU tensors are not copied unless asked (copy_): a synchronous writer
  // uses the views before training continues.
  auto c = t.detach().to(torch::kCPU).contiguous();
  if (copy_ && c.data_ptr() == t.data_ptr()) c = c.clone();
  TensorView v;
  v.name = name;
  v.dtype = catlip_dtype(c.scalar_type());
  v.shape = c.sizes().vec();
  v.data = c.data_ptr();
  v.nbytes = size_t(c.numel()) * c.element_size();
  keep_.push_back(c);
  views_.push_back(std::move(v));
}

void TensorStash::add_all(const std::string& prefix, const NamedTensors& ts) {
  for (auto& [n, t] : ts) add(prefix + n, t);
}

torch::Tensor to_torch(const Tensor& t) {
  auto out = torch::empty(t.shape, torch::TensorOptions().dtype(torch_dtype(t.dtype)));
  if (t.data.size() != size_t(out.numel()) * out.element_size())
    throw std::runtime_error("tensor byte size does not match its shape");
  std::memcpy(out.data_ptr(), t.data.data(), t.data.size());
  return out;
}

Tensor to_catlip(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU).contiguous();
  Tensor out;
  out.dtype = catlip_dtype(c.scalar_type());
  out.shape = c.sizes().vec();
  out.data.assign(static_cast<const char*>(c.data_ptr()), size_t(c.numel()) * c.element_size());
  return out;
}

void load_into(const NamedTensors& dst, const std::map<std::string, Tensor>& src,
               const std::string& prefix, const std::string& what) {
  std::string errors;
  for (auto& [name, t] : dst) {
    auto it = src.find(prefix + name);
    if (it == src.end()) {
      errors += "\n  missing " + prefix + name;
      continue;
    }
    if (it->second.shape != t.sizes().vec()) {
      errors += "\n  shape mismatch for " + prefix + name;
      continue;
    }
  }
  if (!errors.empty()) throw std::runtime_error(what + ": incompatible weights:" + errors);
  torch::NoGradGuard g;
  for (auto& [name, t] : dst) {
    auto src_t = to_torch(src.at(prefix + name));
    const_cast<torch::Tensor&>(t).copy_(src_t);
  }
}

}  // namespace catlip::model
