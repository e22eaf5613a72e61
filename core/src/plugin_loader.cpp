#include "catlip/plugin_loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace catlip {

namespace {
bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
std::string exe_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  buf[n] = 0;
  std::string p(buf);
  auto slash = p.rfind('/');
  return slash == std::string::npos ? "" : p.substr(0, slash);
}
}  // namespace

std::string PluginLoader::default_plugin_dir() {
  // Binaries live in <build>/bin and plugins in <build>/plugins.
  std::string d = exe_dir();
  if (!d.empty()) {
    std::string cand = d + "/../plugins";
    struct stat st;
    if (::stat(cand.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return cand;
  }
#ifdef CATLIP_BUILTIN_PLUGIN_DIR
  return CATLIP_BUILTIN_PLUGIN_DIR;
#else
  return "";
#endif
}

PluginLoader::PluginLoader() {
  if (const char* env = std::getenv("CATLIP_PLUGIN_PATH")) {
    std::string s(env);
    size_t start = 0;
    while (start <= s.size()) {
      size_t colon = s.find(':', start);
      if (colon == std::string::npos) colon = s.size();
      if (colon > start) dirs_.push_back(s.substr(start, colon - start));
      start = colon + 1;
    }
  }
  std::string d = default_plugin_dir();
  if (!d.empty()) dirs_.push_back(d);
}

PluginLoader::PluginLoader(std::vector<std::string> dirs) : dirs_(std::move(dirs)) {}

std::string PluginLoader::plugin_of(const std::string& type_name) {
  auto dot = type_name.find('.');
  return dot == std::string::npos ? type_name : type_name.substr(0, dot);
}

const LoadedPlugin& PluginLoader::load(const std::string& name) {
  for (auto& p : loaded_)
    if (p->name == name) return *p;
  std::string searched;
  for (auto& d : dirs_) {
    std::string path = d + "/catlip_" + name + ".so";
    if (file_exists(path)) {
      const LoadedPlugin& p = load_file(path);
      if (p.name != name)
        throw PluginError("plugin file " + path + " declares the name '" + p.name +
                          "', expected '" + name + "'");
      return p;
    }
    searched += "\n  " + d;
  }
  throw PluginError("no plugin named '" + name + "' (looked for catlip_" + name +
                    ".so in:" + (searched.empty() ? std::string(" <no directories>") : searched) +
                    "\n  set CATLIP_PLUGIN_PATH to add directories)");
}

const LoadedPlugin& PluginLoader::load_file(const std::string& path) {
  for (auto& p : loaded_)
    if (p->path == path) return *p;
  // RTLD_LOCAL: plugins do not see each other's symbols.
  void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) throw PluginError("cannot load plugin " + path + ": " + ::dlerror());
  using DescFn = const catlip_plugin_descriptor_t* (*)();
  auto fn = reinterpret_cast<DescFn>(::dlsym(h, CATLIP_PLUGIN_SYMBOL));
  if (!fn) {
    ::dlclose(h);
    throw PluginError("plugin " + path + " is not a catlip plugin: it does not export the symbol '" +
                      CATLIP_PLUGIN_SYMBOL + "' (use CATLIP_PLUGIN(...) in one source file)");
  }
  const catlip_plugin_descriptor_t* d = fn();
  if (!d) {
    ::dlclose(h);
    throw PluginError("plugin " + path + " returned no descriptor");
  }
  if (d->abi_version != CATLIP_PLUGIN_ABI_VERSION) {
    std::string nm = d->name ? d->name : "?";
    uint32_t abi = d->abi_version;
    ::dlclose(h);
    throw PluginError("plugin '" + nm + "' (" + path + ") was built for plugin ABI " +
                      std::to_string(abi) + ", but this catlip uses ABI " +
                      std::to_string(CATLIP_PLUGIN_ABI_VERSION) +
                      "; rebuild the plugin against this catlip's headers");
  }
  auto p = std::make_unique<LoadedPlugin>();
  p->name = d->name ? d->name : "";
  p->version = d->version ? d->version : "";
  p->description = d->description ? d->description : "";
  p->path = path;
  p->handle = h;
  size_t n = 0;
  const StageType* const* types = d->stage_types ? d->stage_types(&n) : nullptr;
  for (size_t i = 0; i < n; ++i) {
    const StageType* t = types[i];
    if (t->schema.type.rfind(p->name + ".", 0) != 0) {
      ::dlclose(h);
      throw PluginError("plugin '" + p->name + "' (" + path + ") declares stage type '" +
                        t->schema.type + "', which does not start with '" + p->name + ".'");
    }
    p->types.push_back(t);
  }
  loaded_.push_back(std::move(p));
  return *loaded_.back();
}

const StageType* PluginLoader::find_type(const std::string& type_name) {
  const LoadedPlugin& p = load(plugin_of(type_name));
  for (auto* t : p.types)
    if (t->schema.type == type_name) return t;
  return nullptr;
}

std::vector<const LoadedPlugin*> PluginLoader::load_all(std::vector<std::string>* errors) {
  std::vector<std::string> names;
  for (auto& d : dirs_) {
    DIR* dir = ::opendir(d.c_str());
    if (!dir) continue;
    while (dirent* e = ::readdir(dir)) {
      std::string f = e->d_name;
      if (f.rfind("catlip_", 0) == 0 && f.size() > 10 && f.compare(f.size() - 3, 3, ".so") == 0) {
        std::string name = f.substr(7, f.size() - 10);
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
      }
    }
    ::closedir(dir);
  }
  std::sort(names.begin(), names.end());
  std::vector<const LoadedPlugin*> out;
  for (auto& n : names) {
    try {
      out.push_back(&load(n));
    } catch (const PluginError& e) {
      if (errors) errors->push_back(e.what());
    }
  }
  return out;
}

}  // namespace catlip
