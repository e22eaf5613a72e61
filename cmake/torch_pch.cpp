// The translation unit of catlip_torch_pch, the target that owns the shared
// <torch/torch.h> precompiled header (cmake/torch.cmake).
