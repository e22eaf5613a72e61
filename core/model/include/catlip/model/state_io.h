// catlip/model/state_io.h - moving named torch tensors in and out of the
// safetensors/checkpoint containers.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "catlip/model/safetensors.h"
#include "catlip/sample.h"

namespace catlip::model {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

DType catlip_dtype(torch::ScalarType t);  // throws for unsupported types
torch::ScalarType torch_dtype(DType t);

// A module's parameters then buffers, by their state_dict names.
NamedTensors named_state(const torch::nn::Module& m);

// Holds contiguous CPU tensors so the TensorViews pointing into them stay
// valid. CPU tensors that are already contiguous are shared, not copied: use
// the views before the tensors are modified again.
class TensorStash {
 public:
  // copy = false: CPU tensors are referenced, so the views are valid only
  // until the tensors change (a writer between training steps). copy = true:
  // every tensor is snapshotted, so a writer may run while training goes on.
  explicit TensorStash(bool copy = false) : copy_(copy) {}
  void add(const std::string& name, const torch::Tensor& t);
  void add_all(const std::string& prefix, const NamedTensors& ts);
  const std::vector<TensorView>& views() const { return views_; }

 private:
  bool copy_ = false;
  std::vector<torch::Tensor> keep_;
  std::vector<TensorView> views_;
};

torch::Tensor to_torch(const Tensor& t);  // copies
Tensor to_catlip(const torch::Tensor& t);

// Copies src[prefix + name] into each destination tensor (in place, keeping
// its device and dtype). Throws naming `what` and every missing key or shape
// mismatch. Keys in src without the prefix are ignored.
void load_into(const NamedTensors& dst, const std::map<std::string, Tensor>& src,
               const std::string& prefix, const std::string& what);

}  // namespace catlip::model
