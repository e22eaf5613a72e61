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
//
// CATLIP_PLUGIN also records the C++ ABI the plugin was compiled with (plugin
// ABI version, standard library, _GLIBCXX_USE_CXX11_ABI, compiler family and
// major version) as the C string `catlip_plugin_abi` in the ELF section
// ".catlip_abi". The loader reads that section from the file before dlopen()
// (which would run the plugin's static constructors and bind its C++
// symbols) and refuses a plugin whose plugin ABI, standard library or
// _GLIBCXX_USE_CXX11_ABI differs from its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "catlip/stage.h"

// Bump when Stage, StageContext, Emitter, Sample, Params or StageSchema change
// layout or virtual tables. Plugins built against another ABI are refused.
// 5: ParamSpec::setter (parameters bound to members).
// 6: Stage::configure() without arguments; the base class holds the context
//    (ctx()) and the parameters (params()); Stage::check_placement().
// 8: Bytes::data and Tensor::data are a Blob (catlip/blob.h: owned bytes or
//    a shared view of a shared-memory payload) instead of a std::string;
//    Emitter::allocate() (a buffer in the shared-memory pool to fill in place).
#define CATLIP_PLUGIN_ABI_VERSION 8u

#define CATLIP_STR_INNER(x) #x
#define CATLIP_STR(x) CATLIP_STR_INNER(x)

// The C++ standard library (and its dual ABI) of this translation unit.
#if defined(_LIBCPP_VERSION)
#define CATLIP_ABI_STDLIB "libc++"
#define CATLIP_ABI_CXX11 "-"
#elif defined(__GLIBCXX__)
#define CATLIP_ABI_STDLIB "libstdc++"
#if defined(_GLIBCXX_USE_CXX11_ABI)
#define CATLIP_ABI_CXX11 CATLIP_STR(_GLIBCXX_USE_CXX11_ABI)
#else
#define CATLIP_ABI_CXX11 "0"
#endif
#else
#define CATLIP_ABI_STDLIB "unknown"
#define CATLIP_ABI_CXX11 "-"
#endif
#if defined(__clang__)
#define CATLIP_ABI_COMPILER "clang-" CATLIP_STR(__clang_major__)
#elif defined(__GNUC__)
#define CATLIP_ABI_COMPILER "gcc-" CATLIP_STR(__GNUC__)
#else
#define CATLIP_ABI_COMPILER "unknown"
#endif
// e.g. "catlip-abi:plugin=3;stdlib=libstdc++;cxx11=1;compiler=gcc-12"
#define CATLIP_ABI_TAG                                                              \
  "catlip-abi:plugin=" CATLIP_STR(CATLIP_PLUGIN_ABI_VERSION) ";stdlib=" CATLIP_ABI_STDLIB \
  ";cxx11=" CATLIP_ABI_CXX11 ";compiler=" CATLIP_ABI_COMPILER
#define CATLIP_ABI_SECTION ".catlip_abi"

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
  extern "C" {                                                                          \
  extern __attribute__((visibility("default"))) const char catlip_plugin_abi[];         \
  __attribute__((used, section(CATLIP_ABI_SECTION))) const char catlip_plugin_abi[] =   \
      CATLIP_ABI_TAG;                                                                   \
  }                                                                                     \
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
