// The implementation of catlip/plugin_loader.h: finding and loading plugin .so files.
#include "catlip/plugin_loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>

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
// The directory of libcatlip_core.so itself (an installed prefix's lib/).
std::string core_lib_dir() {
  Dl_info info{};
  if (!::dladdr(reinterpret_cast<void*>(&core_lib_dir), &info) || !info.dli_fname) return "";
  std::string p(info.dli_fname);
  auto slash = p.rfind('/');
  return slash == std::string::npos ? "" : p.substr(0, slash);
}
bool is_dir(const std::string& p) {
  struct stat st;
  return !p.empty() && ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The ".catlip_abi" section of an ELF file: NUL-separated ABI tags (see
// plugin.h). Read from the file, without loading it. Empty when the file is
// not a 64-bit ELF file or has no such section (a plugin built before tags).
std::vector<std::string> read_abi_tags(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  Elf64_Ehdr eh{};
  if (!f.read(reinterpret_cast<char*>(&eh), sizeof eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 ||
      eh.e_shnum > 4096 || eh.e_shstrndx >= eh.e_shnum)
    return {};
  std::vector<Elf64_Shdr> sh(eh.e_shnum);
  f.seekg(static_cast<std::streamoff>(eh.e_shoff));
  if (!f.read(reinterpret_cast<char*>(sh.data()), static_cast<std::streamsize>(sh.size() * sizeof(Elf64_Shdr))))
    return {};
  auto read_section = [&](const Elf64_Shdr& s) {
    std::string data;
    if (s.sh_type == SHT_NOBITS || s.sh_size > (1u << 20)) return data;
    data.resize(s.sh_size);
    f.seekg(static_cast<std::streamoff>(s.sh_offset));
    if (!f.read(data.data(), static_cast<std::streamsize>(data.size()))) data.clear();
    return data;
  };
  std::string names = read_section(sh[eh.e_shstrndx]);
  std::vector<std::string> tags;
  for (auto& s : sh) {
    if (s.sh_name >= names.size() || std::strcmp(names.c_str() + s.sh_name, CATLIP_ABI_SECTION) != 0) continue;
    std::string data = read_section(s);
    for (size_t i = 0; i < data.size();) {
      size_t end = data.find('\0', i);
      if (end == std::string::npos) end = data.size();
      if (end > i) tags.push_back(data.substr(i, end - i));
      i = end + 1;
    }
  }
  return tags;
}

// "catlip-abi:plugin=3u;stdlib=libstdc++;cxx11=1;compiler=gcc-12" -> fields.
std::map<std::string, std::string> parse_abi_tag(const std::string& tag) {
  std::map<std::string, std::string> kv;
  const std::string prefix = "catlip-abi:";
  if (tag.rfind(prefix, 0) != 0) return kv;
  size_t i = prefix.size();
  while (i < tag.size()) {
    size_t end = tag.find(';', i);
    if (end == std::string::npos) end = tag.size();
    std::string item = tag.substr(i, end - i);
    auto eq = item.find('=');
    if (eq != std::string::npos) kv[item.substr(0, eq)] = item.substr(eq + 1);
    i = end + 1;
  }
  if (!kv["plugin"].empty() && kv["plugin"].back() == 'u') kv["plugin"].pop_back();
  return kv;
}

std::string describe_abi(std::map<std::string, std::string> kv) {
  std::string s = "plugin ABI " + kv["plugin"] + ", " + kv["stdlib"];
  if (kv["stdlib"] == "libstdc++") s += " with _GLIBCXX_USE_CXX11_ABI=" + kv["cxx11"];
  return s + ", compiler " + kv["compiler"];
}

// Refuses, before dlopen(), a plugin whose recorded C++ ABI differs from
// this catlip's: loading it would bind C++ symbols of another std::string
// layout (or fail with a mangled-symbol error).
void check_abi_tags(const std::string& path) {
  auto mine = parse_abi_tag(CATLIP_ABI_TAG);
  for (auto& tag : read_abi_tags(path)) {
    auto theirs = parse_abi_tag(tag);
    if (theirs.empty()) continue;
    for (const char* key : {"plugin", "stdlib", "cxx11"}) {
      if (theirs[key] == mine[key]) continue;
      std::string what = std::string(key) == "plugin" ? "plugin ABI" : "C++ standard library ABI";
      throw PluginError("plugin " + path + " was built for another " + what + ": it has " + describe_abi(theirs) +
                        ", but this catlip has " + describe_abi(mine) +
                        "; rebuild the plugin against this catlip's headers with the same C++ standard library "
                        "ABI (see README.md, Writing a stage)");
    }
  }
}
}  // namespace

std::string PluginLoader::default_plugin_dir() {
  // Installed: <prefix>/bin/catlip and <prefix>/lib/catlip/plugins, or the
  // plugins beside an installed libcatlip_core.so (a program of the user's
  // linked against the SDK). Build tree: <build>/bin and <build>/plugins.
  std::string exe = exe_dir(), lib = core_lib_dir();
  std::vector<std::string> cands;
  if (!exe.empty()) cands.push_back(exe + "/../lib/catlip/plugins");
  if (!lib.empty()) cands.push_back(lib + "/catlip/plugins");
  if (!exe.empty()) cands.push_back(exe + "/../plugins");
  for (auto& c : cands) {
    if (!is_dir(c)) continue;
    char real[PATH_MAX];
    return ::realpath(c.c_str(), real) ? std::string(real) : c;  // no "bin/.." in messages
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
  check_abi_tags(path);  // before dlopen() runs any of the plugin's code
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
