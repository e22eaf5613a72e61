// catlip/plugin_loader.h - finding and loading plugin .so files.
//
// Search order: directories in $CATLIP_PLUGIN_PATH (colon-separated), then
// the built-in plugin directory: the first that exists of
// <exe dir>/../lib/catlip/plugins (installed), <dir of libcatlip_core.so>/
// catlip/plugins (installed SDK, a user's program), <exe dir>/../plugins
// (build tree), else the build tree's, compiled in. A plugin named P lives in
// a file `catlip_P.so`. Stage type "P.x" is served by plugin P, so a process
// loads only what it needs. Before loading a file, its C++ ABI tag (see
// plugin.h) is compared with this catlip's.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "catlip/plugin.h"

namespace catlip {

struct PluginError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct LoadedPlugin {
  std::string name, version, description, path;
  std::vector<const StageType*> types;
  void* handle = nullptr;  // dlopen handle; plugins stay loaded for the process lifetime
};

class PluginLoader {
 public:
  // Uses $CATLIP_PLUGIN_PATH and the default built-in directory.
  PluginLoader();
  explicit PluginLoader(std::vector<std::string> search_dirs);

  const std::vector<std::string>& search_dirs() const { return dirs_; }

  // Loads (once) the plugin with this name. Throws PluginError with a clear
  // message: not found (listing searched dirs), dlopen error, missing
  // descriptor symbol, plugin ABI or C++ standard library ABI mismatch,
  // name mismatch.
  const LoadedPlugin& load(const std::string& plugin_name);
  // Loads a plugin from an explicit file path.
  const LoadedPlugin& load_file(const std::string& path);
  // Finds the stage type "P.x" by loading plugin P. Returns nullptr if the
  // plugin loads but has no such type; throws PluginError if P can't load.
  const StageType* find_type(const std::string& type_name);
  // Loads every plugin found in the search dirs (for `catlip inspect`).
  // Plugins that fail to load are reported in `errors`.
  std::vector<const LoadedPlugin*> load_all(std::vector<std::string>* errors = nullptr);

  static std::string plugin_of(const std::string& type_name);  // "ingest.shards" -> "ingest"
  static std::string default_plugin_dir();

 private:
  std::vector<std::string> dirs_;
  std::vector<std::unique_ptr<LoadedPlugin>> loaded_;
};

}  // namespace catlip
