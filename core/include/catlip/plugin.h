// catlip/plugin.h - how a plugin .so describes itself.
//
// A plugin exports exactly one C symbol, `catlip_plugin_descriptor`, that
// returns a descriptor: ABI version, plugin name and version, and its stage
// types. The loader refuses a plugin whose ABI differs from its own.
//
// A plugin author writes, in one .cpp of the plugin:
//
//   CATLIP_PLUGIN("ingest", "0.1.0", "Web shard reading and image decoding");
//
// and, for each stage class (which has `static StageSchema schema();`):
//
//   CATLIP_REGISTER_STAGE(ShardSource);
//
// Stage type names must start with "<plugin name>." so that a process can
// find and load only the plugins its stages need.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "catlip/stage.h"

// Bump when Stage, StageContext, Emitter, Sample, Params or StageSchema change
// layout or virtual tables. Plugins built against another ABI are refused.
#define CATLIP_PLUGIN_ABI_VERSION 3u

extern "C" {
struct catlip_plugin_descriptor_t {
  uint32_t abi_version;
  const char* name;
  const char* version;
  const char* description;
  const char* compiler;  // __VERSION__ of the compiler that built it
  // Stage types; the array stays valid while the plugin is loaded.
  const catlip::StageType* const* (*stage_types)(size_t* count);
};
}

#define CATLIP_PLUGIN_SYMBOL "catlip_plugin_descriptor"

namespace catlip::detail {
// Defined once per plugin by CATLIP_PLUGIN, hidden so that every plugin .so
// keeps its own list even when loaded into one process.
__attribute__((visibility("hidden"))) std::vector<StageType>& plugin_local_types();

struct StageRegistrar {
  StageRegistrar(StageSchema (*schema)(), StageFactory create) {
    plugin_local_types().push_back(StageType{schema(), create});
  }
};

template <class T>
std::unique_ptr<Stage> make_stage() {
  return std::make_unique<T>();
}
}  // namespace catlip::detail

#define CATLIP_CONCAT_INNER(a, b) a##b
#define CATLIP_CONCAT(a, b) CATLIP_CONCAT_INNER(a, b)

#define CATLIP_REGISTER_STAGE(Class)                                              \
  static ::catlip::detail::StageRegistrar CATLIP_CONCAT(catlip_stage_registrar_, \
                                                        __LINE__)(              \
      &Class::schema, &::catlip::detail::make_stage<Class>)

#define CATLIP_PLUGIN(NAME, VERSION, DESCRIPTION)                                        \
  namespace catlip::detail {                                                            \
  __attribute__((visibility("hidden"))) std::vector<StageType>& plugin_local_types() {  \
    static std::vector<StageType> types;                                                \
    return types;                                                                       \
  }                                                                                     \
  }                                                                                     \
  static const ::catlip::StageType* const* catlip_plugin_stage_types(size_t* n) {       \
    static std::vector<const ::catlip::StageType*> ptrs = [] {                          \
      std::vector<const ::catlip::StageType*> v;                                        \
      for (auto& t : ::catlip::detail::plugin_local_types()) v.push_back(&t);          \
      return v;                                                                         \
    }();                                                                                \
    *n = ptrs.size();                                                                   \
    return ptrs.data();                                                                 \
  }                                                                                     \
  extern "C" __attribute__((visibility("default"))) const catlip_plugin_descriptor_t*  \
  catlip_plugin_descriptor() {                                                          \
    static const catlip_plugin_descriptor_t d = {CATLIP_PLUGIN_ABI_VERSION, NAME,       \
                                                 VERSION,  DESCRIPTION,                 \
                                                 __VERSION__, &catlip_plugin_stage_types}; \
    return &d;                                                                          \
  }
