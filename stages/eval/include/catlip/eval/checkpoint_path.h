// catlip/eval/checkpoint_path.h - finding the weights to evaluate.
#pragma once

#include <string>

namespace catlip::eval {

// `path` may be a .catlip checkpoint or a .safetensors export (returned as
// is), or a directory: a training run dir (export/ then checkpoints/), an
// export dir (model_ema.safetensors when `ema`, then model.safetensors) or a
// checkpoint dir (newest valid-named ckpt-*.catlip). Throws
// std::runtime_error saying what was looked for.
std::string resolve_checkpoint(const std::string& path, bool ema);

}  // namespace catlip::eval
