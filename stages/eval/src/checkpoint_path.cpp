// The implementation of catlip/eval/checkpoint_path.h: from a file or run, export or
// checkpoint directory to the weights file to evaluate.
#include "catlip/eval/checkpoint_path.h"

#include <filesystem>
#include <stdexcept>

#include "catlip/model/checkpoint_file.h"

namespace fs = std::filesystem;

namespace catlip::eval {

std::string resolve_checkpoint(const std::string& path, bool ema) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    if (!fs::exists(path, ec)) throw std::runtime_error("checkpoint " + path + " does not exist");
    return path;
  }
  for (const std::string& dir : {path + "/export", path}) {
    if (ema && fs::exists(dir + "/model_ema.safetensors")) return dir + "/model_ema.safetensors";
    if (fs::exists(dir + "/model.safetensors")) return dir + "/model.safetensors";
  }
  for (const std::string& dir : {path + "/checkpoints", path}) {
    auto l = model::list_checkpoints(dir);
    if (!l.empty()) return l.front();
  }
  throw std::runtime_error("no weights in " + path +
                           " (looked for export/model[_ema].safetensors, model.safetensors, "
                           "checkpoints/ckpt-*.catlip)");
}

}  // namespace catlip::eval
